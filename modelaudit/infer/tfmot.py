"""tensorflow-model-optimization (tfmot) wrappers: the wrapped layer's weights plus the wrapper's own.

Formulas from tfmot 0.8's source, tensorflow_model_optimization/python/core/:
sparsity/keras/pruning_wrapper.py (PruneLowMagnitude), quantization/keras/quantize_wrapper.py,
quantize_layer.py, quantize_aware_activation.py, quantizers.py and default_8bit/ (QuantizeWrapper,
QuantizeWrapperV2, QuantizeLayer, QuantizeAnnotate), clustering/keras/cluster_wrapper.py (ClusterWeights).
tfmot builds on tf_keras only: the wrapped layer's config is a Keras 2 one, in `config["layer"]` as
for TimeDistributed (formats/dialects.py normalizes it). Every wrapper keeps its input's shape
through the wrapped layer: output shapes and MACs are the wrapped layer's.
"""

from __future__ import annotations

from typing import Optional

from modelaudit.infer import registry
from modelaudit.infer.registry import LayerSpec, WeightSpec, inner_layer, register

SCALAR = ()

# prune_registry.py _LAYERS_WEIGHTS_MAP: the weights each built-in layer has pruned (others: none).
PRUNED_WEIGHTS = {
    "Conv1D": ("kernel",), "Conv2D": ("kernel",), "Conv2DTranspose": ("kernel",), "Conv3D": ("kernel",),
    "Conv3DTranspose": ("kernel",), "SeparableConv1D": ("pointwise_kernel",),
    "SeparableConv2D": ("pointwise_kernel",), "Dense": ("kernel",), "Embedding": ("embeddings",),
    "LocallyConnected1D": ("kernel",), "LocallyConnected2D": ("kernel",),
}
# Layers whose prunable weights sit in cells or sublayers (RNNs, MultiHeadAttention) or that bring
# their own get_prunable_weights(): not modelled.
PRUNED_ELSEWHERE = frozenset({"SimpleRNN", "LSTM", "GRU", "RNN", "Bidirectional", "MultiHeadAttention"})

# clustering_registry.py _LAYERS_WEIGHTS_MAP (RNNs and MultiHeadAttention are not modelled).
CLUSTERED_WEIGHTS = {
    "Conv1D": ("kernel",), "Conv1DTranspose": ("kernel",), "Conv2D": ("kernel",),
    "Conv2DTranspose": ("kernel",), "Conv3D": ("kernel",), "Conv3DTranspose": ("kernel",),
    "DepthwiseConv2D": (), "SeparableConv1D": ("pointwise_kernel",), "SeparableConv2D": ("pointwise_kernel",),
    "Dense": ("kernel",), "Embedding": ("embeddings",), "LocallyConnected1D": ("kernel",),
    "LocallyConnected2D": ("kernel",), "BatchNormalization": (), "LayerNormalization": (),
}

# quantize_aware_activation.py: which activations get a quantizer before / after them.
PRE_QUANT_ACTIVATIONS = frozenset({"softmax", "sigmoid", "tanh", "gelu"})
POST_QUANT_ACTIVATIONS = frozenset({"linear", "relu", "swish", "gelu"})
# default_8bit_quantize_registry.py Default8BitActivationQuantizeConfig.get_output_quantizers()
OUTPUT_QUANT_ACTIVATIONS = frozenset({"relu", "swish", "gelu", "relu6"})
PASS_ACTIVATIONS = frozenset({"linear", "softmax", "sigmoid", "tanh"})


def _wrapped(config: dict, wrapper: str) -> tuple[str, dict, LayerSpec]:
    cls, cfg = inner_layer(config)
    spec = registry.get(cls)
    if spec is None:
        raise NotImplementedError(f"{wrapper}: no spec for the wrapped layer class {cls!r}")
    return cls, cfg, spec


def _inner_weights(spec: LayerSpec, cfg: dict, input_shapes) -> list[WeightSpec]:
    # trainable=False on the wrapped layer freezes its variables; the wrapper's own flag is
    # applied by propagation, as for any layer
    frozen = cfg.get("trainable", True) is False
    return [WeightSpec(w.name, tuple(w.shape), w.trainable and not frozen) for w in spec.weights(cfg, input_shapes)]


# tf_keras attribute names our specs call by their Keras 3 names
KERAS2_WEIGHT_NAMES = {"depthwise_kernel": "kernel"}


def _named(weights: list[WeightSpec], names, wrapper: str) -> list[WeightSpec]:
    """The wrapped layer's weights that tfmot names by attribute (`kernel`, `depthwise_kernel`)."""
    by_name = {w.name: w for w in weights}
    out = []
    for name in names:
        found = by_name.get(name) or by_name.get(KERAS2_WEIGHT_NAMES.get(name, ""))
        if found is None:
            raise NotImplementedError(f"{wrapper}: the wrapped layer has no weight {name!r}")
        out.append(found)
    return out


class _Wrapper(LayerSpec):
    """Shapes, MACs and formula of the wrapped layer; weights its own plus `extra()`."""

    wrapper = ""
    own_variables = ""  # what the wrapper adds, in the formula's words

    def output_shapes(self, config, input_shapes):
        _, cfg, spec = _wrapped(config, self.wrapper)
        return spec.output_shapes(cfg, input_shapes)

    def weights(self, config, input_shapes):
        cls, cfg, spec = _wrapped(config, self.wrapper)
        inner = _inner_weights(spec, cfg, input_shapes)
        return inner + self.extra(config, cls, cfg, inner, input_shapes)

    def extra(self, config, cls, cfg, inner, input_shapes) -> list[WeightSpec]:
        return []

    def macs(self, config, input_shapes, output_shapes):
        _, cfg, spec = _wrapped(config, self.wrapper)
        return spec.macs(cfg, input_shapes, output_shapes)

    def formula(self, config, input_shapes):
        cls, cfg, spec = _wrapped(config, self.wrapper)
        inner = spec.formula(cfg, input_shapes)
        weights = self.weights(config, input_shapes)
        own = sum(w.size for w in weights) - sum(w.size for w in _inner_weights(spec, cfg, input_shapes))
        if inner is None:
            return None
        lhs = inner.rsplit(" = ", 1)[0]
        total = sum(w.size for w in weights)
        return f"{cls} {lhs} + {own} {self.own_variables} = {total}" if own else f"{lhs} = {total}"


@register("QuantizeAnnotate")
class QuantizeAnnotateSpec(_Wrapper):
    # quantize_annotate.py: marks a layer for quantize_apply(); no variables of its own
    wrapper = "QuantizeAnnotate"


@register("PruneLowMagnitude")
class PruneLowMagnitudeSpec(_Wrapper):
    # build(): per prunable weight a mask (its shape) and a scalar threshold, then a scalar
    # pruning_step; all non-trainable
    wrapper = "PruneLowMagnitude"
    own_variables = "(masks, thresholds, pruning step)"

    def extra(self, config, cls, cfg, inner, input_shapes):
        if cls in PRUNED_ELSEWHERE:
            raise NotImplementedError(f"PruneLowMagnitude of {cls} (prunable weights in its cells) is not modelled")
        out = []
        for w in _named(inner, PRUNED_WEIGHTS.get(cls, ()), self.wrapper):
            out += [WeightSpec("mask", w.shape, False), WeightSpec("threshold", SCALAR, False)]
        return out + [WeightSpec("pruning_step", SCALAR, False)]


@register("ClusterWeights")
class ClusterWeightsSpec(_Wrapper):
    # build(): per clusterable weight, trainable centroids (number_of_clusters,) — per channel
    # (channels, number_of_clusters) for a Conv2D with cluster_per_channel — and non-trainable
    # pulling indices of the weight's shape
    wrapper = "ClusterWeights"
    own_variables = "(centroids, pulling indices)"

    def extra(self, config, cls, cfg, inner, input_shapes):
        # clustering_registry.supports(): a layer without trainable weights has nothing clustered
        if cls not in CLUSTERED_WEIGHTS and any(w.trainable for w in inner):
            raise NotImplementedError(f"ClusterWeights of {cls} is not modelled")
        clusters = int(config["number_of_clusters"])
        out = []
        for w in _named(inner, CLUSTERED_WEIGHTS.get(cls, ()), self.wrapper):
            if config.get("cluster_per_channel") and cls == "Conv2D":
                axis = 1 if cfg.get("data_format") == "channels_first" else -1
                centroids = (w.shape[axis], clusters)
            else:
                centroids = (clusters,)
            out += [WeightSpec("cluster_centroids", centroids, True), WeightSpec("pulling_indices", w.shape, False)]
        return out


@register("QuantizeWrapper", "QuantizeWrapperV2")
class QuantizeWrapperSpec(_Wrapper):
    # build(): a scalar optimizer_step, then the quantize config's quantizer variables (min and
    # max of each quantized weight, activation and output), all non-trainable
    wrapper = "QuantizeWrapper"
    own_variables = "(quantizer min/max, optimizer step)"

    def extra(self, config, cls, cfg, inner, input_shapes):
        qc = config.get("quantize_config") or {}
        kind, qcfg = qc.get("class_name", ""), qc.get("config") or {}
        out = [WeightSpec("optimizer_step", SCALAR, False)]
        if kind == "NoOpQuantizeConfig":
            return out
        if kind == "Default8BitOutputQuantizeConfig":
            return out + _range("output", SCALAR)
        if kind == "Default8BitActivationQuantizeConfig":
            return out + self._activation_layer_output(qcfg, cfg)
        if kind not in ("Default8BitQuantizeConfig", "Default8BitConvQuantizeConfig",
                        "Default8BitConvTransposeQuantizeConfig"):
            raise NotImplementedError(f"QuantizeWrapper: quantize config {kind or '?'} is not modelled")
        per_channel = kind == "Default8BitConvQuantizeConfig"  # Default8BitConvWeightsQuantizer
        for w in _named(inner, list(qcfg.get("weight_attrs") or ()), self.wrapper):
            out += _range(w.name, (w.shape[-1],) if per_channel else SCALAR)
        for attr in qcfg.get("activation_attrs") or ():
            name = _activation_name(cfg.get(attr))
            if name in PRE_QUANT_ACTIVATIONS:
                out += _range("pre_activation", SCALAR)
            if name in POST_QUANT_ACTIVATIONS:
                out += _range("post_activation", SCALAR)
        if qcfg.get("quantize_output"):
            out += _range("output", SCALAR)
        return out

    def _activation_layer_output(self, qcfg, cfg) -> list[WeightSpec]:
        if not qcfg.get("quantize_output", True):
            return []
        name = _activation_name(cfg.get("activation"))
        if name in OUTPUT_QUANT_ACTIVATIONS:
            return _range("output", SCALAR)
        if name in PASS_ACTIVATIONS:
            return []
        raise NotImplementedError(f"QuantizeWrapper: activation {name!r} is not modelled")


@register("QuantizeLayer")
class QuantizeLayerSpec(LayerSpec):
    # quantize_layer.py build(): the quantizer's min and max (per channel only for a per-axis
    # LastValueQuantizer), then a scalar optimizer_step; the input passes through
    def weights(self, config, input_shapes):
        q = config.get("quantizer") or None
        out = []
        if q:
            kind, qcfg = q.get("class_name", ""), q.get("config") or {}
            if kind == "LastValueQuantizer" and qcfg.get("per_axis"):
                shape = registry.single_input(input_shapes, "QuantizeLayer")
                out = _range("quantize_layer", (shape[-1],))
            elif kind in ("LastValueQuantizer", "MovingAverageQuantizer", "AllValuesQuantizer"):
                out = _range("quantize_layer", SCALAR)
            elif kind not in ("NoQuantizer", "FixedQuantizer"):
                raise NotImplementedError(f"QuantizeLayer: quantizer {kind or '?'} is not modelled")
        return out + [WeightSpec("optimizer_step", SCALAR, False)]


def _range(name: str, shape: tuple) -> list[WeightSpec]:
    return [WeightSpec(f"{name}_min", shape, False), WeightSpec(f"{name}_max", shape, False)]


def _activation_name(value) -> Optional[str]:
    """The activation's name under QuantizeAwareActivation ('relu', 'NoOpActivation', ...)."""
    for _ in range(4):  # QuantizeAwareActivation -> its activation -> a serialized function
        if not isinstance(value, dict):
            break
        cls = value.get("class_name")
        inner = value.get("config")
        if cls == "QuantizeAwareActivation" and isinstance(inner, dict):
            value = inner.get("activation")
        elif cls == "function" and isinstance(inner, str):
            value = inner
        else:
            return cls
    return value if isinstance(value, str) else None
