"""One topological walk over the graph: the shape of every tensor, and for every layer the weights,
params and MACs its config implies, next to what the file stores.

Propagation records facts (a shape error, a recorded shape that differs, weights that do not match);
it never judges them: the integrity rules in checks/ turn facts into findings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Iterator, Optional

from modelaudit.graph import Layer, ModelGraph, Weight, is_shape, positional_constants, shape_or_none, topological_order
from modelaudit.infer import outputs as output_views
from modelaudit.infer import registry, stored
from modelaudit.infer.registry import ShapeError, WeightSpec
from modelaudit.infer.wiring import Wiring
from modelaudit.nesting import Steps, run


@dataclass
class WeightIssue:
    kind: str  # "mismatch" | "missing" | "unexpected"
    expected: Optional[WeightSpec] = None
    stored: Optional[Weight] = None


@dataclass
class LayerResult:
    """Everything recomputed about one layer (all its calls)."""

    path: str
    layer: Layer
    depth: int
    input_shapes: list = field(default_factory=list)  # per call: [shape per input tensor]
    output_shapes: list = field(default_factory=list)  # per call: [shape per output tensor]
    expected_weights: Optional[list] = None  # None: no spec, nothing recomputed
    # None: unknown (no spec recomputes the layer and the file stores no weights for it)
    params: Optional[int] = 0
    trainable_params: Optional[int] = 0
    non_trainable_params: Optional[int] = 0
    stored_params: Optional[int] = None
    macs: Optional[int] = 0
    recomputed: bool = True
    formula: Optional[str] = None
    # facts for the integrity rules
    shape_error: Optional[str] = None  # MA106
    non_positive: list = field(default_factory=list)  # MA105: output shapes with a dim <= 0
    recorded_mismatch: list = field(default_factory=list)  # MA104: (what, recorded, computed)
    weight_issues: list = field(default_factory=list)  # MA101/102/103
    unknown_reason: Optional[str] = None  # MA107

    @property
    def inbound(self) -> list[str]:
        seen = []
        for call in self.layer.calls:
            for ref in call.inputs:
                if ref.layer not in seen:
                    seen.append(ref.layer)
        return seen

    @property
    def first_output_shapes(self) -> list:
        return self.output_shapes[0] if self.output_shapes else []

    def where(self) -> str:
        """"Dense 'dense_1'": the layer, for messages (as wiring.Node.where)."""
        return f"{self.layer.class_name} '{self.path}'"


@dataclass
class Inferred:
    graph: ModelGraph
    rows: list  # LayerResult for every layer at every depth, nested rows after their model's row
    total_params: Optional[int] = 0  # None: unknown, never 0 for "could not count"
    trainable_params: Optional[int] = 0
    non_trainable_params: Optional[int] = 0
    stored_params: Optional[int] = None
    macs: Optional[int] = 0
    output_shapes: list = field(default_factory=list)  # one per model output
    input_shapes: list = field(default_factory=list)
    unassigned_weights: tuple = ()
    dtype_bytes: dict = field(default_factory=dict)  # dtype -> bytes of the weights stored/implied
    weight_scan: Any = None  # formats.scan.WeightScan with --scan-weights (MA108, MA110), else None
    _derived: dict = field(default_factory=dict, repr=False, compare=False)  # see derived()

    def visible_rows(self) -> list:
        """The rows Keras's summary() shows: a Sequential's InputLayer is not one of its layers."""
        sequential = {"": self.graph.sequential}
        for path, layer, _ in self.graph.walk():
            if layer.submodel is not None:
                sequential[path] = layer.submodel.sequential
        return [r for r in self.rows
                if not (r.layer.class_name == "InputLayer" and sequential.get(r.path.rpartition("/")[0], False))]

    def row(self, path: str) -> LayerResult:
        for r in self.rows:
            if r.path == path:
                return r
        raise KeyError(path)

    def layer_configs(self) -> Iterator[tuple[LayerResult, dict]]:
        """(row, config) of every layer at every depth that is not a model itself: a nested model's
        config is its layers', which have rows of their own."""
        for row in self.rows:
            if row.layer.submodel is None and isinstance(row.layer.config, dict):
                yield row, row.layer.config

    def weight_issues(self, kind: str) -> Iterator[tuple[LayerResult, WeightIssue]]:
        """(row, issue) of every stored weight that does not match its layer's config: "mismatch",
        "missing" or "unexpected" (MA101-MA103)."""
        for row in self.rows:
            for issue in row.weight_issues:
                if issue.kind == kind:
                    yield row, issue

    # ---- the model view: what several rules read, computed once per model, on first use ----

    @cached_property
    def wiring(self) -> Wiring:
        """The graph view (infer/wiring.py): who feeds whom, one node per layer call, nested models
        opened up, so that an edge may cross a model boundary."""
        return Wiring(self)

    @cached_property
    def output_activations(self) -> list:
        """Per model output, its effective activation and the layer setting it (infer/outputs.py)."""
        return output_views.effective_output_activations(self)

    @cached_property
    def loss_assignment(self):
        """The compile config's losses and metrics paired with the outputs (losses.Assignment): the
        loss families per output, and what does not pair (MA209)."""
        return output_views.loss_assignment(self)

    @cached_property
    def objective_outputs(self) -> list:
        """Per model output: its effective activation, its losses and its metrics."""
        return output_views.objective_outputs(self)

    def derived(self, compute: Callable[["Inferred"], Any]) -> Any:
        """What `compute` derives from this model for a family of rules (checks/security.py's config
        walk), computed once and kept with the model: it goes when the model goes."""
        if compute not in self._derived:
            self._derived[compute] = compute(self)
        return self._derived[compute]


def _ignored_stored(weight: Weight) -> bool:
    # Random layers save their seed generator's state; Keras's count_params() leaves it out.
    return "seed_generator" in weight.path


def propagate(graph: ModelGraph) -> Inferred:
    rows: list[LayerResult] = []
    if graph.opaque:
        if not graph.holds_weights:  # a subclassed model's bare config: nothing says what it holds
            return Inferred(graph=graph, rows=[], total_params=None, trainable_params=None,
                            non_trainable_params=None, macs=None)
        weights = [w for w in graph.unassigned_weights if not _ignored_stored(w)]
        trainable, non_trainable = stored.split_model(weights, graph.config)
        return Inferred(
            graph=graph, rows=[], total_params=trainable + non_trainable, trainable_params=trainable,
            non_trainable_params=non_trainable, stored_params=trainable + non_trainable,
            macs=None, unassigned_weights=graph.unassigned_weights,
        )
    outputs, inputs, totals = run(_walk(graph, "", 0, None, True, rows))
    stored_all = [r.stored_params for r in rows if r.layer.submodel is None and r.stored_params is not None]
    has_weights = any(r.layer.weights is not None for r in rows)
    macs_values = [r.macs for r in rows if r.layer.submodel is None]
    inferred = Inferred(
        graph=graph, rows=rows, total_params=totals[0], trainable_params=totals[1], non_trainable_params=totals[2],
        stored_params=sum(stored_all) if has_weights else None,
        macs=None if any(m is None for m in macs_values) else sum(macs_values),
        output_shapes=outputs, input_shapes=inputs, unassigned_weights=graph.unassigned_weights,
    )
    inferred.dtype_bytes = _dtype_bytes(rows)
    return inferred


def _dtype_bytes(rows: list) -> dict:
    sizes = {"float16": 2, "bfloat16": 2, "float32": 4, "float64": 8, "int8": 1, "uint8": 1, "int32": 4, "int64": 8}
    out: dict[str, int] = {}
    for r in rows:
        if r.layer.submodel is not None or not r.layer.weights:
            continue
        for w in r.layer.weights:
            if _ignored_stored(w):
                continue
            out[w.dtype] = out.get(w.dtype, 0) + w.size * sizes.get(w.dtype, 4)
    return out


def _walk(graph: ModelGraph, prefix: str, depth: int, fed: Optional[list], trainable: bool, rows: list) -> Steps:
    """Propagate one (sub)model. Returns (output shapes, input shapes, (total, trainable, non-trainable)).
    Steps (modelaudit/nesting.py): a nested model is propagated by yielding its own _walk."""
    by_name = {layer.name: layer for layer in graph.layers}
    # Shapes the file records for tensors, from their consumers' records (Keras 3 files).
    recorded = _recorded_shapes(graph)
    tensors: dict = {}
    results: dict[str, LayerResult] = {}
    sub_rows: dict[str, list] = {}
    input_index = {ref.layer: i for i, ref in enumerate(graph.inputs)}
    # A nested model called again on the shapes of an earlier call gives that call's outputs: walked
    # once, not once per call (a shared encoder; a hostile file calls one 49,000 times).
    nested_outputs: dict = {}

    for name, call_index in topological_order(graph):
        layer = by_name[name]
        result = results.get(name)
        if result is None:
            result = results[name] = LayerResult(path=f"{prefix}/{name}" if prefix else name, layer=layer, depth=depth)
        if layer.class_name == "InputLayer" and not layer.calls:
            position = input_index.get(name)
            is_fed = fed is not None and position is not None and position < len(fed)
            _model_input(result, layer, fed[position] if is_fed else None, is_fed, tensors)
            continue
        in_shapes = _call_inputs(result, layer, call_index, tensors)
        if layer.submodel is not None:
            key = (name, repr(in_shapes))
            outs = list(nested_outputs[key]) if call_index and key in nested_outputs else None
            if outs is None:
                nested: list = []
                outs, _, totals = yield _walk(
                    layer.submodel, result.path, depth + 1, in_shapes, trainable and layer.trainable, nested
                )
                nested_outputs.setdefault(key, outs)
                if call_index == 0:  # the nested rows and totals are the first call's
                    sub_rows[name] = nested
                    _nested_totals(result, layer, nested, totals)
        else:
            outs = _layer_call(result, layer, call_index, in_shapes, trainable, recorded)
        # by call index: the walk reaches a shared layer's calls in dependency order, not call order
        _put(result.output_shapes, call_index, outs)
        for i, shape in enumerate(outs):
            tensors[(name, call_index, i)] = shape

    totals = _rows_in_file_order(graph, results, sub_rows, prefix, depth, trainable, rows)
    outputs = [tensors.get((ref.layer, ref.call, ref.index)) for ref in graph.outputs]
    inputs = [tensors.get((ref.layer, ref.call, ref.index)) for ref in graph.inputs]
    return outputs, inputs, totals


def _model_input(result: LayerResult, layer: Layer, outer, is_fed: bool, tensors: dict) -> None:
    """An InputLayer: its configured shape, completed by the tensor a nested model is fed (`outer`)."""
    shape = _input_shape(layer)
    if is_fed and (shape is None or (outer is not None and len(outer) == len(shape))):
        shape = _merge(shape, outer)
    result.input_shapes.append([shape])
    result.output_shapes.append([shape])
    tensors[(layer.name, 0, 0)] = shape
    if layer.weights is not None:  # the file holds weights: an input's stored count is 0, not unknown
        result.stored_params = sum(w.size for w in layer.weights if not _ignored_stored(w))


def _call_inputs(result: LayerResult, layer: Layer, call_index: int, tensors: dict) -> list:
    """The shapes one call of a layer computes on: the propagated ones, else those the file records;
    a recorded shape that disagrees is kept as a fact (MA104)."""
    call = layer.calls[call_index] if call_index < len(layer.calls) else None
    in_shapes = []
    if call is not None:
        for i, ref in enumerate(call.inputs):
            shape = tensors.get((ref.layer, ref.call, ref.index))
            rec = call.input_shapes[i] if i < len(call.input_shapes) else None
            if shape is None:
                shape = rec
            elif rec is not None and _conflict(rec, shape):
                result.recorded_mismatch.append(
                    (f"input {i} of call {call_index} (from '{ref.layer}')", tuple(rec), tuple(shape))
                )
            in_shapes.append(shape)
        in_shapes = _data_inputs(layer, call, in_shapes)
    if call_index == 0 and _build_shape(layer) is not None and in_shapes and not result.recorded_mismatch:
        built = _build_shape(layer)
        first = in_shapes[0] if len(in_shapes) == 1 else in_shapes
        if is_shape(built) and is_shape(first) and _conflict(tuple(built), tuple(first)):
            result.recorded_mismatch.append(("build input shape", tuple(built), tuple(first)))
    _put(result.input_shapes, call_index, in_shapes)
    return in_shapes


def _nested_totals(result: LayerResult, layer: Layer, nested: list, totals: tuple) -> None:
    """A nested model's row: the totals of its layers (stored params and MACs of its leaves)."""
    result.params, result.trainable_params, result.non_trainable_params = totals
    stored = [r.stored_params for r in nested if r.layer.submodel is None and r.stored_params is not None]
    result.stored_params = sum(stored) if layer.weights is not None or stored else None
    macs = [r.macs for r in nested if r.layer.submodel is None]
    result.macs = None if any(m is None for m in macs) else sum(macs)
    result.expected_weights = []


def _rows_in_file_order(graph: ModelGraph, results: dict, sub_rows: dict, prefix: str, depth: int,
                        trainable: bool, rows: list) -> tuple:
    """Append the rows of a (sub)model's layers in file order, nested rows after their model's row;
    returns (total, trainable, non-trainable) params."""
    totals: list = [0, 0, 0]
    for layer in graph.layers:
        result = results.get(layer.name)
        if result is None:  # a layer nothing reaches and that is never called: still list it
            result = results[layer.name] = LayerResult(path=f"{prefix}/{layer.name}" if prefix else layer.name,
                                                       layer=layer, depth=depth)
            _weights_only(result, layer, trainable)
        rows.append(result)
        rows.extend(sub_rows.get(layer.name, []))
        totals = [add_known(t, n) for t, n in
                  zip(totals, (result.params, result.trainable_params, result.non_trainable_params))]
    return tuple(totals)


def propagate_submodel(graph: ModelGraph, input_shapes: list) -> tuple[list, list[LayerResult]]:
    """A model held in a layer's config (TimeDistributed(Sequential)) fed `input_shapes`:
    (its output shapes, the rows of its layers at every depth)."""
    rows: list[LayerResult] = []
    outputs, _, _ = run(_walk(graph, "", 1, list(input_shapes), True, rows))
    return outputs, rows


INPUT_UNKNOWN = "its input shape is unknown"
NO_INPUT = "the file records no input tensor for its call"

# What a spec raises on a config it cannot evaluate (a hostile or broken file): reported, never fatal.
SPEC_ERRORS = (KeyError, TypeError, ValueError, ZeroDivisionError, IndexError, AttributeError, OverflowError)


def _layer_call(result: LayerResult, layer: Layer, call_index: int, in_shapes: list, trainable: bool, recorded: dict):
    spec = registry.spec_for(layer)
    fallback = _recorded_outputs(layer.name, call_index, recorded)
    if spec is None:
        return _not_recomputed(result, layer, call_index, trainable, f"no spec for class {layer.class_name}", fallback)
    if not in_shapes or any(s is None for s in in_shapes):
        # a call the file gives no tensor at all (tf_keras saves none of tf.einsum's operands) is a
        # cause of its own, not the consequence of an earlier layer
        reason = INPUT_UNKNOWN if in_shapes else NO_INPUT
        return _not_recomputed(result, layer, call_index, trainable, reason, fallback)
    shapes = [tuple(s) for s in in_shapes]
    expected = None
    config = _call_config(spec, layer, call_index)
    try:
        outs = [tuple(o) if o is not None else None for o in spec.output_shapes(config, shapes)]
        if spec.opaque_shape and fallback and any(o is None for o in outs):
            outs = fallback
        for i in getattr(spec, "recorded_outputs", ()):
            if i < len(outs) and (layer.name, call_index, i) in recorded:
                outs[i] = tuple(recorded[(layer.name, call_index, i)])
        if call_index == 0:
            expected = spec.weights(config, shapes)
    except NotImplementedError as exc:
        # The spec declines a configuration it does not model (a wrapper around an unknown layer).
        reason = str(exc) or f"{layer.class_name} in this configuration is not modelled"
        return _not_recomputed(result, layer, call_index, trainable, reason, fallback)
    except ShapeError as exc:
        result.shape_error = str(exc)
        outs = fallback
    except SPEC_ERRORS as exc:
        result.shape_error = f"its config cannot be evaluated ({type(exc).__name__}: {exc})"
        outs = fallback
    for shape in outs:
        if shape is not None and any(d is not None and d <= 0 for d in shape):
            result.non_positive.append(shape)
    if call_index == 0:
        _account(result, layer, spec, shapes, expected, trainable)
    result.macs = add_known(result.macs, _macs(spec, layer, shapes, outs))
    return outs


def _data_inputs(layer: Layer, call, in_shapes: list) -> list:
    """The shapes a layer computes on: its positional tensors, then the tensor keyword arguments its
    spec reads (MultiHeadAttention's value= and key=), in the spec's order. Other tensors passed by
    keyword (mask=, attention_mask=, initial_state=) do not shape the output."""
    if not call.tensor_kwargs:
        return in_shapes
    spec = registry.spec_for(layer) if layer.submodel is None else None
    wanted = getattr(spec, "tensor_arguments", ())
    if wanted == registry.EVERY_ARGUMENT:
        return in_shapes
    n_args = len(in_shapes) - len(call.tensor_kwargs)
    out = list(in_shapes[:n_args])
    for name in wanted:
        out.extend(s for s, kw in zip(in_shapes[n_args:], call.tensor_kwargs) if kw == name)
    return out


def _call_config(spec, layer: Layer, call_index: int) -> dict:
    """The layer's config, plus the call arguments of this call that its spec reads."""
    names = getattr(spec, "call_arguments", ())
    if not names or call_index >= len(layer.calls):
        return layer.config
    if names == registry.EVERY_ARGUMENT:
        return {**layer.config, registry.CALL: layer.calls[call_index]}
    kwargs = layer.calls[call_index].kwargs
    extra = {k: kwargs[k] for k in names if k in kwargs}
    return {**layer.config, **extra} if extra else layer.config


def _not_recomputed(result, layer, call_index, trainable, reason, fallback):
    if call_index == 0:
        result.recomputed = False
        result.unknown_reason = reason
        _stored_totals(result, layer, trainable)
        result.macs = None
    return fallback


def _account(result: LayerResult, layer: Layer, spec, shapes, expected, trainable: bool) -> None:
    """Params of the layer from its expected weights, and those weights held against the stored ones."""
    try:
        result.formula = spec.formula(layer.config, shapes)
    except (ShapeError, NotImplementedError) + SPEC_ERRORS:
        result.formula = None
    if expected is None or any(d is None or d < 0 for w in expected for d in w.shape):
        result.recomputed = False
        if expected is not None:
            result.unknown_reason = "a weight dimension depends on an unknown input dimension"
        _stored_totals(result, layer, trainable)
        return
    result.expected_weights = expected
    layer_trainable = trainable and layer.trainable
    for w in expected:
        result.params += w.size
        if w.trainable and layer_trainable:
            result.trainable_params += w.size
        else:
            result.non_trainable_params += w.size
    if layer.weights is not None:
        uncounted = spec.uncounted_variables(layer.config)
        stored = [w for w in layer.weights if not _ignored_stored(w) and _variable_name(w) not in uncounted]
        result.stored_params = sum(w.size for w in stored)
        result.weight_issues = compare_weights(expected, stored)


def _variable_name(weight: Weight) -> str:
    # "layers/text_vectorization/vars/idf_weights" (Keras 3), "model_weights/lookup/Variable:0" (.h5)
    return weight.path.rpartition("/")[2].split(":", 1)[0]


def _macs(spec, layer, shapes, outs):
    if any(o is None for o in outs):
        return None
    try:
        return spec.macs(layer.config, shapes, outs)
    except (ShapeError, NotImplementedError) + SPEC_ERRORS:
        return None




def _stored_totals(result: LayerResult, layer: Layer, trainable: bool) -> None:
    """No recomputation possible: the params are what the file stores; unknown if it stores none."""
    if layer.weights is None:
        result.params = result.trainable_params = result.non_trainable_params = None
        return
    weights = [w for w in layer.weights if not _ignored_stored(w)]
    own_trainable, own_frozen = stored.split(weights, layer.class_name)
    result.stored_params = result.params = own_trainable + own_frozen
    if trainable and layer.trainable:
        result.trainable_params, result.non_trainable_params = own_trainable, own_frozen
    else:
        result.trainable_params, result.non_trainable_params = 0, own_trainable + own_frozen


def add_known(a: Optional[int], b: Optional[int]) -> Optional[int]:
    """A sum of counts, unknown (None) as soon as one of them is."""
    return None if a is None or b is None else a + b


def _weights_only(result: LayerResult, layer: Layer, trainable: bool) -> None:
    result.recomputed = False
    result.unknown_reason = "it is never called, so its input shape is unknown"
    _stored_totals(result, layer, trainable)
    result.macs = None


def compare_weights(expected: list[WeightSpec], stored: list[Weight]) -> list[WeightIssue]:
    """Pair expected and stored variables. Order is not trusted (a .keras file lists sub-layers
    alphabetically): exact shapes pair first, then the rest pair in order as mismatches, and what is
    left over is missing or unexpected."""
    left_expected = list(expected)
    left_stored = list(stored)
    for w in list(left_expected):
        for s in left_stored:
            if tuple(s.shape) == tuple(w.shape):
                left_stored.remove(s)
                left_expected.remove(w)
                break
    issues = []
    for w, s in zip(left_expected, left_stored):
        issues.append(WeightIssue("mismatch", w, s))
    n = min(len(left_expected), len(left_stored))
    issues.extend(WeightIssue("missing", expected=w) for w in left_expected[n:])
    issues.extend(WeightIssue("unexpected", stored=s) for s in left_stored[n:])
    return issues


def _put(per_call: list, call_index: int, value) -> None:
    """Store one call's shapes at its call index."""
    while len(per_call) <= call_index:
        per_call.append([])
    per_call[call_index] = value


def _recorded_shapes(graph: ModelGraph) -> dict:
    """(layer, call, tensor) -> the shape the file records for that tensor where its consumers
    record one: Keras 3 tensor records in their inbound nodes, else the input shape of a consumer's
    build_config (tf_keras's `.keras` writes no tensor records). What no spec computes (a custom
    layer) is then known from what the layers it feeds were built on."""
    recorded: dict = {}
    for layer in graph.layers:
        for call in layer.calls:
            for ref, shape in zip(call.inputs, call.input_shapes):
                if shape is not None:
                    recorded.setdefault((ref.layer, ref.call, ref.index), shape)
    for layer in graph.layers:
        built = _build_shape(layer)
        if built is None or not layer.calls or layer.submodel is not None:
            continue
        refs = layer.calls[0].inputs
        shapes = [built] if is_shape(built) else built if isinstance(built, (list, tuple)) else []
        if len(refs) == len(shapes) and all(is_shape(x) for x in shapes):
            for ref, shape in zip(refs, shapes):
                recorded.setdefault((ref.layer, ref.call, ref.index), tuple(shape))
    return recorded


def _build_shape(layer: Layer):
    """build_config's input shape, None where it is not that of the layer's tensors: tf_keras builds
    `2.0 - x` on its constant first argument (shape [])."""
    if layer.calls and positional_constants(layer.calls[0]):
        return None
    return layer.build_input_shape


def _recorded_outputs(name: str, call_index: int, recorded: dict) -> list:
    outs = []
    i = 0
    while (name, call_index, i) in recorded:
        outs.append(tuple(recorded[(name, call_index, i)]))
        i += 1
    return outs or [None]


def _input_shape(layer: Layer):
    cfg = layer.config
    shape = cfg.get("batch_shape") or cfg.get("batch_input_shape")
    if shape is None and isinstance(cfg.get("shape"), list):
        shape = [cfg.get("batch_size")] + cfg["shape"]
    return shape_or_none(shape)


def _merge(inner, outer):
    if inner is None:
        return tuple(outer) if outer is not None else None
    if outer is None:
        return inner
    return tuple(a if a is not None else b for a, b in zip(inner, outer))


def _conflict(recorded, computed) -> bool:
    """Two shapes disagree where both are known."""
    if not is_shape(recorded) or not is_shape(computed):
        return False
    if len(recorded) != len(computed):
        return True
    return any(a is not None and b is not None and a != b for a, b in zip(recorded, computed))

