"""The effective output activation of each model output.

Walk back from a model output through layers that do not change what the values mean (Dropout,
Flatten, Reshape, ...) to the layer that sets the activation: an Activation / Softmax / ReLU ...
layer, or a learnable layer's `activation`. A Lambda, an unknown layer or a merge on the way makes
the activation unknown (None), and unknown never triggers a rule.

A pure function of the propagated model: no I/O, nothing imported from a config.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from modelaudit.graph import Layer, ModelGraph, Shape, TensorRef
from modelaudit.infer import registry

# Activation identifiers as Keras 2 and Keras 3 write them -> one canonical name.
# tf.nn functions serialize with a version suffix (tf.nn.softmax -> "softmax_v2").
ACTIVATION_NAMES = {
    None: "linear", "linear": "linear",
    "softmax": "softmax", "softmax_v2": "softmax",
    "log_softmax": "log_softmax", "log_softmax_v2": "log_softmax",
    "sigmoid": "sigmoid", "hard_sigmoid": "hard_sigmoid", "log_sigmoid": "log_sigmoid",
    "sparsemax": "sparsemax",
    "relu": "relu", "relu6": "relu6", "leaky_relu": "leaky_relu", "elu": "elu", "selu": "selu",
    "celu": "celu", "gelu": "gelu", "silu": "silu", "swish": "silu", "hard_silu": "hard_silu",
    "hard_swish": "hard_silu", "mish": "mish", "softplus": "softplus", "softsign": "softsign",
    "tanh": "tanh", "hard_tanh": "hard_tanh", "tanh_shrink": "tanh_shrink", "exponential": "exponential",
    "squareplus": "squareplus", "sparse_plus": "sparse_plus", "soft_shrink": "soft_shrink",
    "hard_shrink": "hard_shrink", "glu": "glu",
}

# Activations whose values are probabilities (each unit in [0, 1]).
PROBABILITY_ACTIVATIONS = frozenset({"softmax", "sigmoid", "hard_sigmoid", "sparsemax"})

# Activation layers -> the activation they apply (Activation reads its config).
ACTIVATION_LAYERS = {"Softmax": "softmax", "ReLU": "relu", "LeakyReLU": "leaky_relu", "PReLU": "prelu", "ELU": "elu"}

# Layers that keep the values' meaning: identity at inference, a rearrangement, or (average
# pooling, bilinear upsampling) a convex combination, which keeps probabilities probabilities.
MEANING_PRESERVING = frozenset(
    {"Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise",
     "GaussianDropout", "AlphaDropout", "ActivityRegularization", "Identity", "Masking",
     "Flatten", "Reshape", "Permute", "RepeatVector",
     "Cropping1D", "Cropping2D", "Cropping3D", "UpSampling1D", "UpSampling2D", "UpSampling3D"}
    | {f"{kind}{d}D" for d in (1, 2, 3) for kind in
       ("AveragePooling", "AvgPool", "GlobalAveragePooling", "GlobalAvgPool")}
)

# Learnable layers without an `activation` config whose output is an unbounded (linear) value.
LINEAR_LAYERS = frozenset({"BatchNormalization", "LayerNormalization", "GroupNormalization", "RMSNormalization",
                           "Embedding"})

MAX_STEPS = 10_000  # a bound on the walk, against a hostile graph with a cycle


@dataclass(frozen=True)
class OutputActivation:
    """One model output: the activation its values carry, and the layer that sets it."""

    index: int  # position in graph.outputs
    name: str  # the output's name (a dict key, or the producing layer's name)
    layer: str  # path of the layer that produces the output
    activation: Optional[str]  # canonical name ("softmax", "linear", ...); None: unknown
    set_by: Optional[str]  # path of the layer that sets the activation (None when unknown)
    set_by_class: Optional[str]
    units: Optional[int]  # last dimension of the output shape
    shape: Optional[Shape]  # the output's shape
    set_shape: Optional[Shape] = None  # the shape where the activation is applied
    axis: object = -1  # the softmax axis (an int, or a list for Keras 3's Softmax(axis=[...]))
    dtype: Optional[str] = None  # compute dtype of the layer that sets the activation
    output_dtype: Optional[str] = None  # compute dtype of the layer that produces the output
    why_unknown: Optional[str] = None

    @property
    def axis_size(self) -> Optional[int]:
        """Size of the axis a softmax normalizes over (None if unknown)."""
        return axis_size(self.set_shape, self.axis)

    @property
    def is_probability(self) -> bool:
        return self.activation in PROBABILITY_ACTIVATIONS


def activation_name(identifier) -> Optional[str]:
    """An `activation` config value -> canonical name, or None for a custom or unknown one."""
    if isinstance(identifier, dict):
        # Keras 3 may serialize a built-in function as {"class_name": "function", "config": "softmax"}
        module = identifier.get("module") or ""
        if identifier.get("class_name") == "function" and (module.startswith("keras") or module == "builtins"):
            identifier = identifier.get("config")
        else:
            return None
    if identifier is not None and not isinstance(identifier, str):
        return None
    return ACTIVATION_NAMES.get(identifier)


def axis_size(shape: Optional[Shape], axis) -> Optional[int]:
    if shape is None:
        return None
    axes = axis if isinstance(axis, (list, tuple)) else [axis]
    size = 1
    for a in axes:
        if not isinstance(a, int) or isinstance(a, bool) or not -len(shape) <= a < len(shape):
            return None
        d = shape[a]
        if d is None:
            return None
        size *= d
    return size


def layer_activation(layer: Layer) -> tuple[Optional[str], object, bool]:
    """What a layer does to the values' meaning: (activation, softmax axis, sets_it).

    sets_it is False for a layer that keeps the meaning (walk on through it). activation is None
    with sets_it True when the layer makes the meaning unknown.
    """
    cls = layer.class_name
    cfg = layer.config if isinstance(layer.config, dict) else {}
    if cls in ACTIVATION_LAYERS:
        return ACTIVATION_LAYERS[cls], cfg.get("axis", -1) if cls == "Softmax" else -1, True
    if cls == "Activation":
        name = activation_name(cfg.get("activation"))
        if name == "linear":  # the identity: the meaning comes from further back
            return None, -1, False
        return name, -1, True
    if cls in MEANING_PRESERVING:
        return None, -1, False
    if cls in LINEAR_LAYERS:
        return "linear", -1, True
    if cls == "TimeDistributed":
        inner = cfg.get("layer")
        if isinstance(inner, dict) and isinstance(inner.get("class_name"), str):
            inner_layer = Layer(name=layer.name, class_name=inner["class_name"], config=inner.get("config") or {})
            # an inner pass-through layer keeps the meaning of what TimeDistributed receives
            act, axis, sets = layer_activation(inner_layer)
            return act, _shift_axis(axis), sets
        return None, -1, True
    if "activation" in cfg and registry.get(cls) is not None:
        return activation_name(cfg.get("activation")), -1, True
    return None, -1, True


def _shift_axis(axis):
    """An inner layer's axis as seen outside TimeDistributed, which adds the time axis at 1."""
    if isinstance(axis, (list, tuple)):
        return [_shift_axis(a) for a in axis]
    return axis + 1 if isinstance(axis, int) and not isinstance(axis, bool) and axis >= 0 else axis


def softmax_of(layer: Layer):
    """(activation, axis) when a layer applies softmax or log-softmax, else None."""
    act, axis, sets = layer_activation(layer)
    if sets and act in ("softmax", "log_softmax"):
        return act, axis
    return None


def compute_dtype(layer: Layer) -> Optional[str]:
    from modelaudit.formats.dialects import normalize_dtype

    cfg = layer.config if isinstance(layer.config, dict) else {}
    return normalize_dtype(cfg.get("dtype"))[1]


@dataclass
class _Scope:
    """One (sub)model being walked: its graph, its path prefix, and what feeds its inputs."""

    graph: ModelGraph
    prefix: str
    feeds: Optional[tuple] = None  # per graph input: (outer scope, TensorRef), for a nested model
    by_name: Optional[dict] = None

    def layer(self, name: str) -> Optional[Layer]:
        if self.by_name is None:
            self.by_name = {layer.name: layer for layer in self.graph.layers}
        return self.by_name.get(name)

    def path(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name


def effective_output_activations(model) -> list[OutputActivation]:
    """Per model output (in graph.outputs order): the effective activation and the layer setting it.

    `model` is an infer.propagate.Inferred.
    """
    graph: ModelGraph = model.graph
    shapes_by_path = {row.path: row.output_shapes for row in model.rows}
    names = graph.output_names
    if len(names) != len(graph.outputs):
        names = tuple(ref.layer for ref in graph.outputs)
    out = []
    for i, ref in enumerate(graph.outputs):
        shape = model.output_shapes[i] if i < len(model.output_shapes) else None
        units = shape[-1] if shape else None
        producer = graph.layer(ref.layer) if ref.layer in {layer.name for layer in graph.layers} else None
        found = _trace(_Scope(graph, ""), ref)
        if isinstance(found, str):
            out.append(OutputActivation(
                index=i, name=names[i], layer=ref.layer, activation=None, set_by=None, set_by_class=None,
                units=units, shape=shape, why_unknown=found,
                output_dtype=compute_dtype(producer) if producer is not None else None,
            ))
            continue
        scope, layer, call, index, act, axis = found
        path = scope.path(layer.name)
        per_call = shapes_by_path.get(path) or []
        set_shape = per_call[call][index] if call < len(per_call) and index < len(per_call[call]) else None
        out.append(OutputActivation(
            index=i, name=names[i], layer=ref.layer, activation=act, set_by=path, set_by_class=layer.class_name,
            units=units, shape=shape, set_shape=set_shape, axis=axis, dtype=compute_dtype(layer),
            output_dtype=_output_dtype(graph, ref),
        ))
    return out


def _output_dtype(graph: ModelGraph, ref: TensorRef) -> Optional[str]:
    """The compute dtype of the innermost layer that produces an output (through nested models)."""
    for _ in range(MAX_STEPS):
        try:
            layer = graph.layer(ref.layer)
        except KeyError:
            return None
        if layer.submodel is None or ref.index >= len(layer.submodel.outputs):
            return compute_dtype(layer)
        graph, ref = layer.submodel, layer.submodel.outputs[ref.index]
    return None


def _trace(scope: _Scope, ref: TensorRef):
    """Follow a tensor back to the layer that sets its activation.

    Returns (scope, layer, call, tensor index, activation, axis), or a string saying why the
    activation is unknown.
    """
    for _ in range(MAX_STEPS):
        layer = scope.layer(ref.layer)
        if layer is None:
            return f"'{ref.layer}' is not a layer of the model"
        if layer.submodel is not None:
            sub = layer.submodel
            if sub.opaque or ref.index >= len(sub.outputs):
                return f"{layer.class_name} '{scope.path(layer.name)}' saves no layer graph"
            call = layer.calls[ref.call] if ref.call < len(layer.calls) else None
            feeds = tuple((scope, r) for r in call.inputs) if call is not None else None
            scope, ref = _Scope(sub, scope.path(layer.name), feeds), sub.outputs[ref.index]
            continue
        if layer.class_name == "InputLayer":
            position = next((i for i, r in enumerate(scope.graph.inputs) if r.layer == layer.name), None)
            if scope.feeds is None or position is None or position >= len(scope.feeds):
                return f"the output is the model input '{scope.path(layer.name)}'"
            scope, ref = scope.feeds[position]
            continue
        act, axis, sets = layer_activation(layer)
        if sets:
            if act is None:
                return f"{layer.class_name} '{scope.path(layer.name)}' does not say what its values mean"
            return scope, layer, ref.call, ref.index, act, axis
        call = layer.calls[ref.call] if ref.call < len(layer.calls) else None
        if call is None or len(call.inputs) != 1:
            return f"{layer.class_name} '{scope.path(layer.name)}' has no single input to follow"
        ref = call.inputs[0]
    return "the graph is too deep to follow"


__all__ = [
    "OutputActivation", "effective_output_activations", "activation_name", "layer_activation",
    "softmax_of", "axis_size", "compute_dtype", "PROBABILITY_ACTIVATIONS",
]
