"""Layer class name -> LayerSpec.

A LayerSpec mirrors a Keras layer's `build()` (its weights) and `compute_output_shape()` (its output
shapes) as pure functions of the layer's config and its input shapes. Dimensions are ints or None
(unknown). Formulas follow Keras's own source, `keras/src/layers/...`; Keras is never imported here.

Each family module (core, conv, pooling, ...) registers its specs with `@register("ClassName", ...)`.
The modules are imported on first lookup, so importing the registry costs nothing.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable, Optional

from modelaudit.graph import Shape, fmt_shape, size_of  # noqa: F401  (fmt_shape: the specs' messages)

FAMILIES = (
    "core",
    "activations",
    "regularization",
    "conv",
    "pooling",
    "reshaping",
    "normalization",
    "merging",
    "recurrent",
    "attention",
    "preprocessing",
    "applications",
    "tf_ops",
    "tfmot",
    "keras_hub",
    "keras_hub_sam",
    "keras_hub_sam3",
    "qkeras",
    "larq",
)

# A spec's call_arguments / tensor_arguments when it reads every argument of the call: propagation
# then passes the call itself in the config under CALL, and every tensor in the call's order (the op
# specs of infer/tf_ops.py bind them to the op's signature).
EVERY_ARGUMENT = ("*",)
CALL = "*call"


class ShapeError(ValueError):
    """The inputs cannot be consumed by this layer (rank, merge of unequal shapes, bad reshape...).

    The message says what is wrong in the user's words; the integrity rules turn it into MA106.
    """


@dataclass(frozen=True)
class WeightSpec:
    """A variable the layer's build() creates, in the order Keras lists it in `layer.weights`."""

    name: str
    shape: tuple
    trainable: bool = True

    @property
    def size(self) -> int:
        return size_of(self.shape)


class LayerSpec:
    """Base spec: a layer that keeps its input's shape and has no weights."""

    # True for layers whose output_shapes cannot be known from the config (Lambda): propagation
    # then takes the shapes the file records.
    opaque_shape: bool = False
    # Call arguments (from the file's inbound node, not the layer config) that change the outputs,
    # e.g. MultiHeadAttention's return_attention_scores: propagation passes them in the config.
    call_arguments: tuple = ()
    # Tensors passed by keyword that the layer computes on, in the order output_shapes() expects them
    # after the positional ones (`layer(inputs=x)`); any other tensor keyword (mask=, initial_state=)
    # is left out.
    tensor_arguments: tuple = ("inputs",)
    # Indices of outputs whose shape Keras 3 computes symbolically unlike the real tensor (and unlike
    # Keras 2): when the file records that tensor's shape, propagation takes the record, since that
    # is the shape Keras built the consuming layers on.
    recorded_outputs: tuple = ()

    def output_shapes(self, config: dict, input_shapes: list[Shape]) -> list[Shape]:
        return [input_shapes[0]]

    def weights(self, config: dict, input_shapes: list[Shape]) -> list[WeightSpec]:
        return []

    def macs(self, config: dict, input_shapes: list[Shape], output_shapes: list[Shape]) -> Optional[int]:
        """Multiply-accumulates for one sample (batch dimension excluded); None if not known."""
        return 0

    def formula(self, config: dict, input_shapes: list[Shape]) -> Optional[str]:
        """How the parameter count was computed, in words a person checks by hand."""
        return None

    def uncounted_variables(self, config: dict) -> frozenset:
        """Names of variables the layer saves but Keras's count_params() leaves out (a TF-IDF
        lookup's idf_weights, a plain tf.Variable): the stored-weight comparison passes over them."""
        return frozenset()


class SameShapeSpec(LayerSpec):
    """A layer with one input whose output has that input's shape (an activation, a dropout, a mask);
    `check_input` refuses an input the layer cannot take."""

    def output_shapes(self, config: dict, input_shapes: list[Shape]) -> list[Shape]:
        # messages name the class, not the package of its registered name ("keras_hub>AlibiBias")
        shape = single_input(input_shapes, self.name.rpartition(">")[2])
        self.check_input(config, shape)
        return [shape]

    def check_input(self, config: dict, shape: Shape) -> None:
        """Raise ShapeError where the layer cannot take this input (its rank, an axis out of range)."""


SPECS: dict[str, LayerSpec] = {}
_loaded = False


def register(*class_names: str, **attributes) -> Callable[[type], type]:
    """Register a spec under the Keras class names it computes; its messages name the first, unless
    the spec names itself (`name = ...` in its own body).

    With attributes (`@register("Conv2D", "Convolution2D", rank=2)`), the decorated class is a
    family's base: a subclass with those attributes, named for the first class name, is registered,
    and the base is returned as it is, so one base takes a line per Keras class, decorators stacked."""

    def deco(cls: type) -> type:
        if attributes:
            spec = _subclass(cls, class_names[0], attributes)
        else:
            spec = cls
            if "name" not in cls.__dict__:
                cls.name = class_names[0]
        instance = spec()
        for name in class_names:
            SPECS[name] = instance
        return cls

    return deco


def register_each(*class_names: str) -> Callable[[type], type]:
    """Register a family's base once per Keras class name, each its own spec named for it
    (Add, Multiply, ...: one computation, messages that name the layer's class)."""

    def deco(cls: type) -> type:
        for name in class_names:
            SPECS[name] = _subclass(cls, name, {})()
        return cls

    return deco


def register_by_rank(*class_names: str, aliases: tuple = ()) -> Callable[[type], type]:
    """Register a family's base once per rank, from 1: the i-th class name (and the i-th alias, the
    short name Keras resolves too) computed with rank=i+1, as `register(name, alias, rank=i+1)`."""

    def deco(cls: type) -> type:
        for rank, name in enumerate(class_names, start=1):
            names = (name, aliases[rank - 1]) if aliases else (name,)
            register(*names, rank=rank)(cls)
        return cls

    return deco


def spec_class(class_name: str) -> type:
    """The spec class a Keras class name is registered with (to subclass or alias it; its family
    module imported first)."""
    return type(SPECS[class_name])


def _subclass(base: type, class_name: str, attributes: dict, module: Optional[str] = None) -> type:
    namespace = {"name": class_name, "__module__": module or base.__module__, **attributes}
    return type(f"{class_name.rpartition('>')[2]}Spec", (base,), namespace)


def alias(base, class_name: str) -> type:
    """Register `class_name` as computed like `base` (a spec class, or the Keras class name it is
    registered with): a library's subclass of a Keras layer that adds no weight (QKeras's QDense,
    Larq's QuantConv2D), its messages naming `class_name`."""
    import sys

    if isinstance(base, str):
        base = type(SPECS[base])
    # the new class belongs to the calling family module, as namedtuple's classes do
    module = sys._getframe(1).f_globals.get("__name__", __name__)
    spec = _subclass(base, class_name, {}, module)
    register(class_name)(spec)
    return spec


def _load_families() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for family in FAMILIES:  # every family exists: a renamed one fails loudly, never drops its specs
        importlib.import_module(f"modelaudit.infer.{family}")
    from modelaudit import plugins

    plugins.load_entry_points()  # a team's installed specs (entry point group modelaudit.layers)


def get(class_name: str) -> Optional[LayerSpec]:
    _load_families()
    return SPECS.get(class_name)


def spec_for(layer) -> Optional[LayerSpec]:
    """The spec of one layer of the graph (a graph.Layer): by its class name, except where the class
    name alone does not say what the node computes (a tf.keras TFOpLambda names its op in
    `config["function"]`; a Keras 3 op node is told apart from the layer of the same name by its
    module)."""
    if layer.class_name in ("TFOpLambda", "SlicingOpLambda") or layer.is_op:
        _load_families()
        from modelaudit.infer import tf_ops

        return tf_ops.spec_for_op(layer)
    # a registered class ("keras_hub>TransformerEncoder") is looked up by the name it registered
    registered = get(layer.registered_name) if layer.registered_name else None
    return registered or get(layer.class_name)


def known_classes() -> list[str]:
    _load_families()
    return sorted(SPECS)


# ---- helpers the family modules share -------------------------------------------------------


def prod(dims) -> Optional[int]:
    """Product of dims; None if any is unknown."""
    n = 1
    for d in dims:
        if d is None:
            return None
        n *= int(d)
    return n


def as_tuple(value, n: int) -> tuple:
    """Keras's `standardize_tuple`: an int or a sequence, as an n-tuple of ints."""
    if isinstance(value, (list, tuple)):
        if len(value) == 1 and n > 1:
            return tuple(int(value[0]) for _ in range(n))
        return tuple(int(v) for v in value)
    return tuple(int(value) for _ in range(n))


def single_input(input_shapes: list[Shape], layer: str) -> Shape:
    if len(input_shapes) < 1 or input_shapes[0] is None:
        raise ShapeError(f"{layer} expects one input")
    return tuple(input_shapes[0])


def require_rank(shape: Shape, rank: int, layer: str) -> None:
    if len(shape) != rank:
        raise ShapeError(
            f"{layer} expects an input of rank {rank} (batch included), got rank {len(shape)} {fmt_shape(shape)}"
        )


def inner_layer(config: dict) -> tuple[str, dict]:
    """A wrapper's (TimeDistributed, Bidirectional) serialized inner layer: (class name, config)."""
    inner = config.get("layer") or {}
    return inner.get("class_name", ""), inner.get("config", {}) or {}


def use_bias(config: dict) -> bool:
    return bool(config.get("use_bias", True))
