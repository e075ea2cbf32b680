"""Layer families: the one list of each group of Keras classes that the specs, the output tracing and
the rules ask about ("is this a dropout?", "does this layer only apply an activation?").

A family is named for what its members have in common, in the words a rule's message uses. A new
Keras class joins its family here, and every rule and view that asks about the family sees it.
"""

from __future__ import annotations

import math
from typing import Optional

# ---- activations ------------------------------------------------------------------------------------

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

# Activation layers -> the activation they apply (Activation itself reads its config).
ACTIVATION_LAYER_FUNCTIONS = {"Softmax": "softmax", "ReLU": "relu", "LeakyReLU": "leaky_relu", "PReLU": "prelu",
                              "ELU": "elu"}
# Layers that apply a fixed activation function: PReLU learns its slope (a weight), so it is not one.
ACTIVATION_LAYERS = frozenset({"Activation"} | (set(ACTIVATION_LAYER_FUNCTIONS) - {"PReLU"}))


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


# ---- layers that compute nothing at inference, or only rearrange ------------------------------------

DROPOUT_LAYERS = frozenset({"Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
                            "GaussianDropout", "AlphaDropout"})
# Layers that only rearrange values (no arithmetic on them).
SHAPE_LAYERS = frozenset({"Flatten", "Reshape", "Identity"})

# ---- convolutions and pooling -----------------------------------------------------------------------

# Forward convolutions with a kernel that slides over the spatial axes (transposed ones grow them).
SLIDING_CONVS = frozenset({"Conv1D", "Conv2D", "Conv3D", "Convolution1D", "Convolution2D", "Convolution3D",
                           "DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D", "SeparableConv2D",
                           "SeparableConvolution1D", "SeparableConvolution2D"})
TRANSPOSED_CONVS = frozenset({"Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose", "Convolution1DTranspose",
                              "Convolution2DTranspose", "Convolution3DTranspose"})
# Pools over a sliding window (pool_size, strides, padding), and those averaging it.
WINDOW_POOLS = frozenset(f"{kind}{d}D" for d in (1, 2, 3)
                         for kind in ("MaxPooling", "MaxPool", "AveragePooling", "AvgPool"))
AVERAGE_POOLS = frozenset(f"{kind}{d}D" for d in (1, 2, 3)
                          for kind in ("AveragePooling", "AvgPool", "GlobalAveragePooling", "GlobalAvgPool"))

# ---- what a layer does to its values ----------------------------------------------------------------

# Layers whose `activation` is the last thing they compute (not LSTM & co., whose output is o·tanh(c)).
ACTIVATED_LAYERS = frozenset({"Dense", "EinsumDense"}) | SLIDING_CONVS | TRANSPOSED_CONVS
# Layers with a per-unit (per-channel) bias on their output's feature axis, when use_bias is on.
BIASED_LAYERS = frozenset({"Dense"}) | SLIDING_CONVS | TRANSPOSED_CONVS
BATCHNORM_LAYERS = frozenset({"BatchNormalization", "SyncBatchNormalization"})
RECURRENT_LAYERS = frozenset({"SimpleRNN", "LSTM", "GRU", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D"})
ATTENTION_LAYERS = frozenset({"MultiHeadAttention", "Attention", "AdditiveAttention"})

# Layers that keep the values' meaning: identity at inference, a rearrangement, or (average
# pooling, bilinear upsampling) a convex combination, which keeps probabilities probabilities.
MEANING_PRESERVING = (
    DROPOUT_LAYERS
    | {"GaussianNoise", "ActivityRegularization", "Identity", "Masking", "Flatten", "Reshape", "Permute",
       "RepeatVector", "Cropping1D", "Cropping2D", "Cropping3D", "UpSampling1D", "UpSampling2D", "UpSampling3D"}
    | AVERAGE_POOLS
)
# Learnable layers without an `activation` config whose output is an unbounded (linear) value.
LINEAR_LAYERS = frozenset({"BatchNormalization", "LayerNormalization", "GroupNormalization", "RMSNormalization",
                           "Embedding"})

# Layers whose output keeps the layout (which axis holds the features) of their first input.
LAYOUT_KEEPING = frozenset({
    "Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax", "Identity", "Masking", "GaussianNoise",
    "ActivityRegularization", "Rescaling", "Normalization", "LayerScale", "StochasticDepth", "CustomScaleLayer",
    "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate",
    "LayerNormalization", "GroupNormalization", "RMSNormalization", "UnitNormalization",
}) | DROPOUT_LAYERS | BATCHNORM_LAYERS
# Layers whose output has its features on the last axis by construction.
FEATURES_LAST = frozenset({"Dense", "EinsumDense", "Embedding", "SimpleRNN", "LSTM", "GRU", "Bidirectional"}) \
    | ATTENTION_LAYERS


# ---- what a layer applies last ----------------------------------------------------------------------


def applied_activation(cls: str, config: dict, output_shape: Optional[tuple]):
    """(activation name, its parameters) of what a layer applies last, or None (linear, unknown, other):
    softmax with its axes (of `output_shape`), a leaky or clipped relu with its slope and bounds."""
    if cls in ACTIVATED_LAYERS or cls == "Activation":
        name = activation_name(config.get("activation"))
        if name is None or name == "linear":
            return None
        if name in ("softmax", "log_softmax"):
            return name, _axes_of(output_shape, -1)
        if name == "leaky_relu":
            return name, 0.2
        return name, None
    if cls == "ReLU":
        top, slope, threshold = (_number(config.get(k)) for k in ("max_value", "negative_slope", "threshold"))
        if slope or threshold:
            return "relu", (top, slope, threshold)
        if top is None:
            return "relu", None
        return ("relu6", None) if top == 6 else ("relu", (top, None, None))
    if cls == "Softmax":
        return "softmax", _axes_of(output_shape, config.get("axis", -1))
    if cls == "LeakyReLU":
        slope = _number(config.get("negative_slope", config.get("alpha", 0.3)))
        return "leaky_relu", slope
    if cls == "ELU":
        alpha = _number(config.get("alpha", 1.0))
        return ("elu", None) if alpha == 1.0 else ("elu", alpha)
    return None


def _axes_of(shape: Optional[tuple], axis):
    axes = axis if isinstance(axis, list) else [axis]
    if shape is None or not all(isinstance(a, int) and not isinstance(a, bool) and -len(shape) <= a < len(shape)
                                for a in axes):
        return ("?", tuple(axes) if all(isinstance(a, int) for a in axes) else None)
    return tuple(sorted(a % len(shape) for a in axes))


def _number(value) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)
