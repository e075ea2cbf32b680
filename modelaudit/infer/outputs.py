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
from modelaudit.infer.families import ACTIVATION_LAYER_FUNCTIONS, LINEAR_LAYERS, MEANING_PRESERVING
from modelaudit.infer.families import ACTIVATION_NAMES, PROBABILITY_ACTIVATIONS, activation_name  # noqa: F401
from modelaudit.infer.wiring import Scope

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
    if cls in ACTIVATION_LAYER_FUNCTIONS:
        return ACTIVATION_LAYER_FUNCTIONS[cls], cfg.get("axis", -1) if cls == "Softmax" else -1, True
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
    return layer.dtypes[1]


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
        found = _trace(Scope(graph), ref)
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


@dataclass(frozen=True)
class ObjectiveOutput:
    """One model output as the objective rules see it: its activation, its losses and metrics."""

    out: OutputActivation
    losses: tuple  # tuple[losses.Loss, ...]: usually one; none for an output compile gives no loss
    metrics: tuple  # tuple[losses.Metric, ...]

    @property
    def name(self) -> str:
        return self.out.name

    @property
    def activation(self) -> Optional[str]:
        return self.out.activation

    @property
    def where(self) -> str:
        """'Dense 'dense_1'': the layer that sets the activation, for messages."""
        return f"{self.out.set_by_class} '{self.out.set_by}'"

    @property
    def layer(self) -> str:
        """The path a finding points at: the layer setting the activation, else the output's layer."""
        return self.out.set_by or self.out.layer

    def with_units(self, units: Optional[int]) -> str:
        return f"{self.where}, {units} unit{'s' if units != 1 else ''}" if units is not None else self.where


def loss_assignment(model):
    """The compile config's losses and metrics paired with the model outputs (losses.assign: the
    loss families per output, and what does not pair). Read it as `Inferred.loss_assignment`."""
    from modelaudit.losses import assign

    outs = model.output_activations
    graph = model.graph
    inner = graph.config.get("config") if isinstance(graph.config, dict) else None
    dict_outputs = isinstance(inner, dict) and isinstance(inner.get("output_layers"), dict)
    return assign(graph.objective, [o.name for o in outs], dict_outputs=dict_outputs, units=[o.units for o in outs])


def objective_outputs(model) -> list[ObjectiveOutput]:
    """Every model output with its effective activation, its losses and its metrics (read it as
    `Inferred.objective_outputs`, computed once per model)."""
    assignment = model.loss_assignment
    return [ObjectiveOutput(o, assignment.losses[i], assignment.metrics[i])
            for i, o in enumerate(model.output_activations)]


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


def _trace(scope: Scope, ref: TensorRef):
    """Follow a tensor back to the layer that sets its activation, through the graph of nested
    models (infer/wiring.py's scopes): into a nested model by the call that produced the tensor, and
    out of it again through that call's inputs.

    Returns (scope, layer, call, tensor index, activation, axis), or a string saying why the
    activation is unknown.
    """
    calls: list = []  # per nested model entered: the call of it followed in (None: one the file does not list)
    for _ in range(MAX_STEPS):
        layer = scope.layer(ref.layer)
        if layer is None:
            return f"'{ref.layer}' is not a layer of the model"
        if layer.submodel is not None:
            sub = layer.submodel
            if sub.opaque or ref.index >= len(sub.outputs):
                return f"{layer.class_name} '{scope.path(layer.name)}' saves no layer graph"
            calls.append(layer.calls[ref.call] if ref.call < len(layer.calls) else None)
            scope, ref = scope.inner(layer), sub.outputs[ref.index]
            continue
        if layer.class_name == "InputLayer":
            position = scope.input_position(layer.name)
            call = calls.pop() if calls else None
            if call is None or position is None or position >= len(call.inputs):
                return f"the output is the model input '{scope.path(layer.name)}'"
            scope, ref = scope.parent, call.inputs[position]
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
