"""MA5xx: the team's contract for its models, written in [tool.modelaudit.policy].

Every rule here is off until its policy key is configured. Each rule owns its key: `parse()` checks
the value (config.py refuses a bad one with the rule's message) and `check()` holds the model to it.
"""

from __future__ import annotations

from typing import Any, Optional

from modelaudit.engine import Rule, Severity, register
from modelaudit.graph import fmt_shape

MB = 1_000_000  # max-file-mb counts decimal megabytes, as file managers and registries do

POLICY_KEYS: dict[str, type["PolicyRule"]] = {}


class PolicyRule(Rule):
    severity = Severity.ERROR
    default_enabled = False
    policy_key: str = ""
    options = {"limit": None}  # the policy's value, parsed; None when the rule is selected without one

    @classmethod
    def enabled_by(cls, settings) -> bool:
        return cls.policy_key in settings.policy

    @classmethod
    def parse(cls, value: Any) -> Any:
        """The configured value, checked; raises ValueError saying what is expected."""
        raise NotImplementedError

    @classmethod
    def configured_options(cls, settings) -> dict:
        """The policy's value as the rule's `limit` option (config.py has refused a bad one already)."""
        if cls.policy_key not in settings.policy:
            return {}
        try:
            return {"limit": cls.parse(settings.policy[cls.policy_key])}
        except ValueError as exc:
            from modelaudit.errors import ConfigError

            raise ConfigError(f"policy.{cls.policy_key}: {exc}") from None

    def limit(self) -> Any:
        """The configured value, or None when this rule was selected without one."""
        return self.opts["limit"]


def policy_rule(cls: type[PolicyRule]) -> type[PolicyRule]:
    POLICY_KEYS[cls.policy_key] = cls
    return register(cls)


class _CountPolicy(PolicyRule):
    """A policy value that is a count of `counted` (params, layers)."""

    counted = ""

    @classmethod
    def parse(cls, value):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"must be a whole number of {cls.counted} (0 or more), not {value!r}")
        return value


@policy_rule
class MaxParams(_CountPolicy):
    code = "MA501"
    name = "max-params"
    policy_key = "max-params"
    summary = "The model has more params than the policy's max-params"
    counted = "params"

    def check(self, model):
        limit = self.limit()
        if limit is not None and model.total_params is not None and model.total_params > limit:
            yield self.finding(
                None,
                f"the model has {model.total_params:,} params ({model.trainable_params:,} trainable), "
                f"above the policy's max-params of {limit:,}",
            )


@policy_rule
class MaxLayers(_CountPolicy):
    code = "MA507"
    name = "max-layers"
    policy_key = "max-layers"
    summary = "The model has more layers than the policy's max-layers"
    counted = "layers"

    def check(self, model):
        limit = self.limit()
        count = len(model.visible_rows())  # the rows `modelaudit summary` lists, at every depth
        if limit is not None and count > limit:
            yield self.finding(None, f"the model has {count} layers (at every depth), above the policy's "
                                     f"max-layers of {limit}")


@policy_rule
class ForbiddenLayer(PolicyRule):
    code = "MA502"
    name = "forbidden-layer"
    policy_key = "forbid-layers"
    summary = "A layer whose class the policy's forbid-layers names"

    @classmethod
    def parse(cls, value):
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ValueError(f"must be a list of layer class names such as [\"Lambda\"], not {value!r}")
        return value

    def check(self, model):
        forbidden = self.limit() or []
        for path, layer, _ in model.graph.walk():
            hit = next((f for f in forbidden if f in (layer.class_name, layer.registered_name)), None)
            if hit and not layer.synthetic:
                yield self.finding(path, f"{layer.class_name} '{path}': the policy forbids {hit} layers (forbid-layers)")


@policy_rule
class MaxFileSize(PolicyRule):
    code = "MA505"
    name = "max-file-size"
    policy_key = "max-file-mb"
    summary = "The model file is larger than the policy's max-file-mb"

    @classmethod
    def parse(cls, value):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ValueError(f"must be a positive number of megabytes (1 MB = 1,000,000 bytes), not {value!r}")
        return value

    def check(self, model):
        limit = self.limit()
        size = model.graph.source.file_size
        if limit is not None and size and size > limit * MB:
            yield self.finding(None, f"the file is {size / MB:,.2f} MB ({size:,} bytes), above the policy's "
                                     f"max-file-mb of {limit:g}")


@policy_rule
class RequireCompiled(PolicyRule):
    code = "MA506"
    name = "require-compiled"
    policy_key = "require-compiled"
    summary = "The policy requires a compile config (loss, optimizer) and the model has none"

    @classmethod
    def parse(cls, value):
        if not isinstance(value, bool):
            raise ValueError(f"must be true or false, not {value!r}")
        return value

    def check(self, model):
        if self.limit() and model.graph.objective is None and not model.graph.opaque:
            yield self.finding(None, f"{model.graph.class_name} '{model.graph.name}' was saved without a compile "
                                     "config (no loss, no optimizer), and the policy requires one (require-compiled)")


# --- the input and output contract -------------------------------------------------------------

ANY = "*"  # a dimension the contract leaves open


def _dims(value: Any, key: str) -> tuple:
    if not isinstance(value, list):
        raise ValueError(f"{key} must be a list of dimensions such as [28, 28, 1], not {value!r}")
    dims = []
    for d in value:
        if d is None or d == "None":
            dims.append(None)  # the model must leave this dimension unknown, as Keras writes None
        elif d == ANY:
            dims.append(ANY)
        elif isinstance(d, int) and not isinstance(d, bool) and d >= 0:
            dims.append(d)
        else:
            raise ValueError(f"{key}: a dimension is a size, \"*\" (any) or \"None\" (left unknown), not {d!r}")
    return tuple(dims)


class Contract:
    """One entry of `inputs` or `outputs`: which tensor (by name or position) and what it must be."""

    def __init__(self, selector, shape: Optional[tuple], batch: bool, dtype: Optional[str], activation: Optional[str]):
        self.selector = selector  # an int position or a str name
        self.shape = shape
        self.batch = batch  # shape includes the batch dimension (batch-shape)
        self.dtype = dtype
        self.activation = activation

    def shape_differs(self, actual) -> bool:
        if self.shape is None or actual is None:
            return False
        actual = tuple(actual) if self.batch else tuple(actual)[1:]
        if len(actual) != len(self.shape):
            return True
        return any(want != ANY and want != got for want, got in zip(self.shape, actual))

    def shape_text(self) -> str:
        text = fmt_shape(self.shape)
        return text if self.batch else f"{text} per sample"


def _contracts(value: Any, key: str, fields: tuple) -> list[Contract]:
    """A list (by position; an entry may give `name`) or a table by name -> [Contract]."""
    if isinstance(value, dict):
        entries = [(name, spec) for name, spec in value.items()]
    elif isinstance(value, list):
        entries = [(i, spec) for i, spec in enumerate(value)]
    else:
        raise ValueError(f"must be a list of tables (by position) or a table of tables (by name), not {value!r}")
    out = []
    for selector, spec in entries:
        where = f"{key}[{selector}]" if isinstance(selector, int) else f"{key}.{selector}"
        if not isinstance(spec, dict):
            raise ValueError(f"{where} must be a table with {', '.join(fields)}, not {spec!r}")
        allowed = set(fields) | ({"name"} if isinstance(selector, int) else set())
        unknown = sorted(set(spec) - allowed)
        if unknown:
            raise ValueError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(allowed))})")
        if "shape" in spec and "batch-shape" in spec:
            raise ValueError(f"{where}: give shape (per sample) or batch-shape, not both")
        for text_key in ("name", "dtype", "activation"):
            if text_key in spec and not (isinstance(spec[text_key], str) and spec[text_key]):
                raise ValueError(f"{where}.{text_key} must be a string, not {spec[text_key]!r}")
        shape = None
        if "shape" in spec:
            shape = _dims(spec["shape"], f"{where}.shape")
        elif "batch-shape" in spec:
            shape = _dims(spec["batch-shape"], f"{where}.batch-shape")
        activation = spec.get("activation")
        if activation is not None:
            from modelaudit.infer.families import ACTIVATION_NAMES

            if activation not in ACTIVATION_NAMES:
                raise ValueError(f"{where}.activation: unknown activation {activation!r} (\"linear\" means logits)")
            activation = ACTIVATION_NAMES[activation]
        out.append(Contract(spec.get("name", selector), shape, "batch-shape" in spec, spec.get("dtype"), activation))
    return out


def _pick(contract: Contract, tensors: list, kind: str):
    """The model tensor a contract entry speaks of: (entry, None), or (None, why it is missing)."""
    if isinstance(contract.selector, str):
        found = next((t for t in tensors if contract.selector in (t.name, t.layer)), None)
        if found is None:
            names = ", ".join(repr(t.name) for t in tensors) or "none"
            return None, f"the policy's {kind}s name {kind} {contract.selector!r}, but the model's {kind}s are {names}"
        return found, None
    if contract.selector >= len(tensors):
        return None, None  # counted once, by the caller
    return tensors[contract.selector], None


class _Tensor:
    def __init__(self, name: str, layer: str, shape, dtype: Optional[str], activation: Optional[str] = None,
                 activation_layer: Optional[str] = None):
        self.name, self.layer, self.shape, self.dtype = name, layer, shape, dtype
        self.activation = activation
        self.activation_layer = activation_layer or layer  # where the activation is applied: the fix goes there


def _check_contracts(rule: PolicyRule, contracts: list[Contract], tensors: list[_Tensor], kind: str):
    positional = [c for c in contracts if isinstance(c.selector, int)]
    if positional and len(positional) != len(tensors):
        yield rule.finding(None, f"the model has {len(tensors)} {kind}{'s' if len(tensors) != 1 else ''}; "
                                 f"the policy's {kind}s list {len(positional)}")
    for contract in contracts:
        tensor, missing = _pick(contract, tensors, kind)
        if missing:
            yield rule.finding(None, missing)
        if tensor is None:
            continue
        label = f"{kind} {tensor.name!r}" if tensor.name == tensor.layer else f"{kind} {tensor.name!r} ({tensor.layer})"
        if contract.shape_differs(tensor.shape):
            yield rule.finding(tensor.layer, f"{label} has shape {fmt_shape(tensor.shape)}; the policy requires "
                                             f"{contract.shape_text()}")
        if contract.dtype and tensor.dtype and contract.dtype != tensor.dtype:
            yield rule.finding(tensor.layer, f"{label} has dtype {tensor.dtype}; the policy requires {contract.dtype}")
        if contract.activation and tensor.activation and contract.activation != tensor.activation:
            where = "" if tensor.activation_layer == tensor.layer else f" (applied by '{tensor.activation_layer}')"
            yield rule.finding(tensor.activation_layer,
                               f"{label} comes out of a {tensor.activation} activation{where}; the policy requires "
                               f"{contract.activation}" + (" (logits)" if contract.activation == "linear" else ""))


def _input_dtype(graph, layer) -> Optional[str]:
    dtype = layer.dtypes[0]
    if dtype is None and layer.synthetic:
        # a Sequential saved without an Input: Keras gives its input the first layer's dtype
        first = next((lay for lay in graph.layers if not lay.synthetic), None)
        dtype = first.dtypes[0] if first is not None else None
    return dtype or "float32"  # Keras's default floatx


@policy_rule
class InputContract(PolicyRule):
    code = "MA503"
    name = "input-contract"
    policy_key = "inputs"
    summary = "A model input's shape or dtype differs from the policy's inputs"

    @classmethod
    def parse(cls, value):
        return _contracts(value, "inputs", ("shape", "batch-shape", "dtype"))

    def check(self, model):
        contracts = self.limit()
        if not contracts or model.graph.opaque:
            return
        graph = model.graph
        tensors = []
        for i, ref in enumerate(graph.inputs):
            try:
                layer = graph.layer(ref.layer)
            except KeyError:
                continue
            shape = model.input_shapes[i] if i < len(model.input_shapes) else None
            tensors.append(_Tensor(ref.layer, ref.layer, shape, _input_dtype(graph, layer)))
        yield from _check_contracts(self, contracts, tensors, "input")


@policy_rule
class OutputContract(PolicyRule):
    code = "MA504"
    name = "output-contract"
    policy_key = "outputs"
    summary = "A model output's shape, dtype or effective activation differs from the policy's outputs"

    @classmethod
    def parse(cls, value):
        return _contracts(value, "outputs", ("shape", "batch-shape", "dtype", "activation"))

    def check(self, model):
        contracts = self.limit()
        if not contracts or model.graph.opaque:
            return
        tensors = [
            _Tensor(out.name, out.layer, out.shape, out.output_dtype, out.activation, out.set_by)
            for out in model.output_activations
        ]
        yield from _check_contracts(self, contracts, tensors, "output")
