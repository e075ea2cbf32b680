"""Conv, pooling and normalization specs against real Keras 3 (and Keras 2, tf_keras, where it has the class).

Each case builds the real layer on symbolic inputs and asserts our spec agrees on output shapes,
params, weight shapes and trainability (tests/differential/keras_check.py). The remaining tests
check hand-derived numbers (params, MACs) and what Keras refuses but we must still report.
"""

from __future__ import annotations

import re

import pytest

from modelaudit.infer import registry
from modelaudit.infer.registry import ShapeError
from tests.differential.keras_check import check_layer, check_layer_keras2, json_config

N = None
CF = "channels_first"

# (id, factory taking the layers module, input shapes, also run on Keras 2)
CASES = [
    # ---- Conv1D / 2D / 3D
    ("conv1d-valid", lambda L: L.Conv1D(8, 3), [(N, 10, 4)], True),
    ("conv1d-same-stride2-odd", lambda L: L.Conv1D(8, 4, strides=2, padding="same"), [(N, 11, 3)], True),
    ("conv1d-causal-dil2", lambda L: L.Conv1D(6, 3, padding="causal", dilation_rate=2), [(N, 9, 2)], True),
    ("conv1d-causal-stride3", lambda L: L.Conv1D(6, 2, padding="causal", strides=3), [(N, 10, 2)], True),
    ("conv1d-cf-stride2", lambda L: L.Conv1D(5, 3, strides=2, data_format=CF), [(N, 4, 13)], True),
    ("conv1d-groups4", lambda L: L.Conv1D(8, 3, groups=4), [(N, 10, 8)], True),
    ("conv1d-unknown-length", lambda L: L.Conv1D(8, 3), [(N, N, 4)], True),
    ("conv2d-textbook", lambda L: L.Conv2D(32, (5, 5)), [(N, 28, 28, 1)], True),
    ("conv2d-same-stride2-odd", lambda L: L.Conv2D(16, 3, strides=2, padding="same"), [(N, 15, 15, 3)], True),
    ("conv2d-valid-rect-stride", lambda L: L.Conv2D(4, (3, 5), strides=(3, 2)), [(N, 17, 20, 2)], True),
    ("conv2d-dilation", lambda L: L.Conv2D(4, 3, dilation_rate=(2, 3)), [(N, 16, 16, 3)], True),
    ("conv2d-dilation-same", lambda L: L.Conv2D(4, 3, dilation_rate=2, padding="same"), [(N, 9, 9, 3)], True),
    ("conv2d-groups3-nobias", lambda L: L.Conv2D(12, 3, groups=3, use_bias=False), [(N, 8, 8, 6)], True),
    ("conv2d-cf-same-stride2", lambda L: L.Conv2D(8, 3, strides=2, padding="same", data_format=CF), [(N, 3, 9, 7)], True),
    ("conv2d-cf-groups2", lambda L: L.Conv2D(6, (2, 3), groups=2, data_format=CF), [(N, 4, 9, 8)], True),
    ("conv2d-lora", lambda L: L.Conv2D(4, 3, lora_rank=2), [(N, 8, 8, 3)], False),
    ("conv3d-valid", lambda L: L.Conv3D(4, (3, 3, 2), strides=(1, 2, 1)), [(N, 8, 9, 5, 2)], True),
    ("conv3d-cf-same-stride2", lambda L: L.Conv3D(3, 3, strides=2, padding="same", data_format=CF), [(N, 2, 7, 6, 5)], True),
    ("conv3d-groups2-dil2", lambda L: L.Conv3D(4, 2, groups=2, dilation_rate=2), [(N, 7, 7, 7, 4)], True),
    # ---- transposed convolutions
    ("conv1dT-valid-stride2", lambda L: L.Conv1DTranspose(6, 3, strides=2), [(N, 7, 4)], True),
    ("conv1dT-same-outpad", lambda L: L.Conv1DTranspose(6, 4, strides=3, padding="same", output_padding=1), [(N, 5, 3)], True),
    ("conv1dT-cf-dil2", lambda L: L.Conv1DTranspose(2, 3, dilation_rate=2, data_format=CF), [(N, 3, 8)], True),
    ("conv2dT-same-stride2", lambda L: L.Conv2DTranspose(8, 3, strides=2, padding="same"), [(N, 7, 7, 16)], True),
    ("conv2dT-valid-outpad", lambda L: L.Conv2DTranspose(8, (3, 4), strides=(2, 3), output_padding=(1, 2)), [(N, 5, 6, 3)], True),
    ("conv2dT-kernel-lt-stride", lambda L: L.Conv2DTranspose(4, 2, strides=3), [(N, 4, 5, 2)], True),
    ("conv2dT-dil2", lambda L: L.Conv2DTranspose(4, 3, dilation_rate=2, use_bias=False), [(N, 6, 6, 2)], True),
    ("conv2dT-cf-same-outpad0", lambda L: L.Conv2DTranspose(5, 3, strides=2, padding="same", output_padding=0, data_format=CF), [(N, 3, 5, 6)], True),
    ("conv2dT-unknown-hw", lambda L: L.Conv2DTranspose(4, 3, strides=2), [(N, N, N, 3)], True),
    ("conv3dT-same-stride2", lambda L: L.Conv3DTranspose(4, 3, strides=2, padding="same"), [(N, 3, 4, 5, 2)], True),
    ("conv3dT-cf-valid", lambda L: L.Conv3DTranspose(2, (2, 3, 1), strides=(1, 2, 2), data_format=CF), [(N, 3, 4, 4, 4)], True),
    # ---- depthwise
    ("dw2d-valid", lambda L: L.DepthwiseConv2D(3), [(N, 10, 10, 8)], True),
    ("dw2d-same-stride2-dm2", lambda L: L.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2), [(N, 11, 11, 4)], True),
    ("dw2d-cf-dil2-nobias", lambda L: L.DepthwiseConv2D(3, dilation_rate=2, use_bias=False, data_format=CF), [(N, 4, 12, 12)], True),
    ("dw1d-dm3", lambda L: L.DepthwiseConv1D(5, depth_multiplier=3), [(N, 20, 2)], True),
    ("dw1d-cf-same-stride2", lambda L: L.DepthwiseConv1D(4, strides=2, padding="same", data_format=CF), [(N, 3, 9)], True),
    # ---- separable
    ("sep2d-valid", lambda L: L.SeparableConv2D(16, 3), [(N, 12, 12, 8)], True),
    ("sep2d-same-stride2-dm2-nobias", lambda L: L.SeparableConv2D(8, 3, strides=2, padding="same", depth_multiplier=2, use_bias=False), [(N, 9, 9, 3)], True),
    ("sep2d-cf", lambda L: L.SeparableConv2D(4, (3, 2), data_format=CF), [(N, 5, 8, 7)], True),
    ("sep1d-dil2", lambda L: L.SeparableConv1D(8, 3, dilation_rate=2), [(N, 15, 4)], True),
    ("sep1d-cf-dm2", lambda L: L.SeparableConv1D(3, 2, strides=2, depth_multiplier=2, data_format=CF), [(N, 5, 11)], True),
    # ---- ConvLSTM
    ("convlstm1d", lambda L: L.ConvLSTM1D(4, 3), [(N, 5, 10, 2)], True),
    ("convlstm1d-cf-seq-same", lambda L: L.ConvLSTM1D(4, 3, padding="same", return_sequences=True, data_format=CF), [(N, 5, 2, 10)], True),
    ("convlstm2d", lambda L: L.ConvLSTM2D(8, 3), [(N, 4, 10, 10, 1)], True),
    ("convlstm2d-stride2-state", lambda L: L.ConvLSTM2D(3, 3, strides=2, return_state=True), [(N, 4, 9, 9, 2)], True),
    ("convlstm2d-cf-seq-state-nobias", lambda L: L.ConvLSTM2D(2, (3, 2), use_bias=False, return_sequences=True, return_state=True, data_format=CF), [(N, 3, 2, 7, 6)], True),
    ("convlstm2d-unknown-time", lambda L: L.ConvLSTM2D(2, 3, dilation_rate=2), [(N, N, 8, 8, 3)], True),
    ("convlstm3d", lambda L: L.ConvLSTM3D(2, 3, padding="same"), [(N, 3, 5, 5, 5, 1)], True),
    # ---- pooling
    ("maxpool1d-default-odd", lambda L: L.MaxPooling1D(), [(N, 11, 3)], True),
    ("maxpool1d-cf-same", lambda L: L.MaxPooling1D(3, strides=2, padding="same", data_format=CF), [(N, 3, 10)], True),
    ("maxpool2d-default-odd", lambda L: L.MaxPooling2D(), [(N, 7, 7, 3)], True),
    ("maxpool2d-rect-same", lambda L: L.MaxPooling2D((3, 2), strides=(2, 1), padding="same"), [(N, 9, 8, 3)], True),
    ("maxpool2d-cf", lambda L: L.MaxPooling2D(3, data_format=CF), [(N, 2, 10, 11)], True),
    ("maxpool2d-unknown-hw", lambda L: L.MaxPooling2D(), [(N, N, N, 3)], True),
    ("maxpool3d", lambda L: L.MaxPooling3D(), [(N, 5, 6, 7, 2)], True),
    ("maxpool3d-cf-same", lambda L: L.MaxPooling3D(3, strides=2, padding="same", data_format=CF), [(N, 2, 5, 6, 7)], True),
    ("avgpool1d", lambda L: L.AveragePooling1D(2), [(N, 9, 4)], True),
    ("avgpool2d-stride2-odd", lambda L: L.AveragePooling2D(3, strides=2), [(N, 10, 11, 3)], True),
    ("avgpool2d-cf-same", lambda L: L.AveragePooling2D(2, padding="same", data_format=CF), [(N, 3, 7, 5)], True),
    ("avgpool3d-cf", lambda L: L.AveragePooling3D((2, 1, 3), data_format=CF), [(N, 2, 6, 5, 9)], True),
    ("gmaxpool1d", lambda L: L.GlobalMaxPooling1D(), [(N, 10, 4)], True),
    ("gmaxpool1d-cf-keepdims", lambda L: L.GlobalMaxPooling1D(data_format=CF, keepdims=True), [(N, 4, 10)], True),
    ("gmaxpool2d-keepdims", lambda L: L.GlobalMaxPooling2D(keepdims=True), [(N, 5, 6, 3)], True),
    ("gmaxpool3d-cf", lambda L: L.GlobalMaxPooling3D(data_format=CF), [(N, 3, 4, 5, 6)], True),
    ("gavgpool1d-keepdims", lambda L: L.GlobalAveragePooling1D(keepdims=True), [(N, N, 7)], True),
    ("gavgpool2d", lambda L: L.GlobalAveragePooling2D(), [(N, 7, 7, 32)], True),
    ("gavgpool2d-cf-keepdims", lambda L: L.GlobalAveragePooling2D(data_format=CF, keepdims=True), [(N, 32, 7, 7)], True),
    ("gavgpool3d-keepdims", lambda L: L.GlobalAveragePooling3D(keepdims=True), [(N, 2, 3, 4, 5)], True),
    ("adaptive-avg2d", lambda L: L.AdaptiveAveragePooling2D((3, 4)), [(N, 9, 8, 2)], False),
    ("adaptive-max1d-cf", lambda L: L.AdaptiveMaxPooling1D(5, data_format=CF), [(N, 3, 10)], False),
    # ---- normalization
    ("bn-last", lambda L: L.BatchNormalization(), [(N, 8, 8, 16)], True),
    ("bn-axis1-cf", lambda L: L.BatchNormalization(axis=1), [(N, 3, 8, 8)], True),
    ("bn-axis2-3d", lambda L: L.BatchNormalization(axis=2), [(N, 5, 7)], True),
    ("bn-no-center", lambda L: L.BatchNormalization(center=False), [(N, 10)], True),
    ("bn-no-scale-no-center", lambda L: L.BatchNormalization(scale=False, center=False), [(N, 4, 6)], True),
    ("bn-renorm", lambda L: L.BatchNormalization(renorm=True), [(N, 6)], True),
    ("ln-last", lambda L: L.LayerNormalization(), [(N, 10, 64)], True),
    ("ln-axes12", lambda L: L.LayerNormalization(axis=[1, 2]), [(N, 10, 64)], True),
    ("ln-axes-neg", lambda L: L.LayerNormalization(axis=[-1, -2]), [(N, 4, 5, 6)], True),
    ("ln-axes-mixed", lambda L: L.LayerNormalization(axis=[3, 1]), [(N, 4, 5, 6)], False),
    ("ln-axis1-no-center", lambda L: L.LayerNormalization(axis=1, center=False), [(N, 7, 3)], True),
    ("ln-rms-scaling", lambda L: L.LayerNormalization(rms_scaling=True), [(N, 9)], False),
    ("gn-4", lambda L: L.GroupNormalization(groups=4), [(N, 8, 8, 16)], True),
    ("gn-instance", lambda L: L.GroupNormalization(groups=-1), [(N, 10, 6)], True),
    ("gn-cf-no-scale", lambda L: L.GroupNormalization(groups=3, axis=1, scale=False), [(N, 6, 5, 5)], True),
    ("unitnorm", lambda L: L.UnitNormalization(), [(N, 5, 3)], True),
    ("unitnorm-axes", lambda L: L.UnitNormalization(axis=[1, 2]), [(N, 5, 3)], True),
    ("rmsnorm", lambda L: L.RMSNormalization(), [(N, 4, 12)], False),
    ("prep-norm-last", lambda L: L.Normalization(), [(N, 5, 3)], True),
    ("prep-norm-axis-none", lambda L: L.Normalization(axis=None), [(N, 5, 3)], True),
    ("prep-norm-axes", lambda L: L.Normalization(axis=(2, 1)), [(N, 4, 5, 6)], True),
    ("prep-norm-neg", lambda L: L.Normalization(axis=-2), [(N, 4, 5, 6)], True),
    ("prep-norm-given-stats", lambda L: L.Normalization(mean=[1.0, 2.0, 3.0], variance=[1.0, 1.0, 4.0]), [(N, 5, 3)], True),
]

# Keras 2 only: BatchNormalization on several axes, virtual batches (tf_keras writes shifted axes)
KERAS2_CASES = [
    ("bn-multi-axis", lambda L: L.BatchNormalization(axis=[1, 2], fused=False), [(N, 4, 5, 6)]),
    ("bn-virtual-batch", lambda L: L.BatchNormalization(virtual_batch_size=2), [(N, 8, 8, 4)]),
    ("bn-virtual-batch-cf", lambda L: L.BatchNormalization(axis=1, virtual_batch_size=2, fused=False), [(N, 3, 5)]),
]

PARAMS = [pytest.param("keras3", f, s, id=f"k3-{i}") for i, f, s, _ in CASES]
PARAMS += [pytest.param("keras2", f, s, id=f"k2-{i}") for i, f, s, k2 in CASES if k2]
PARAMS += [pytest.param("keras2", f, s, id=f"k2-{i}") for i, f, s in KERAS2_CASES]


def _check_formula(config, class_name, shapes, weights):
    """A formula, when given, is arithmetic that evaluates to its own total and to the params."""
    text = registry.get(class_name).formula(config, shapes)
    if text is None:
        assert not weights, f"{class_name}: weights but no formula"
        return
    lhs, rhs = text.rsplit(" = ", 1)
    assert re.fullmatch(r"[0-9+·/() ]+", lhs), text
    assert eval(lhs.replace("·", "*")) == int(rhs) == sum(w.size for w in weights), text


@pytest.mark.filterwarnings("ignore:You passed `rms_scaling=True`")
@pytest.mark.parametrize("dialect, factory, shapes", PARAMS)
def test_spec_matches_keras(dialect, factory, shapes):
    if dialect == "keras3":
        import keras

        layer = factory(keras.layers)
        _, weights = check_layer(layer, shapes)
        config = json_config(layer)
        _check_formula(config, type(layer).__name__, [tuple(s) for s in shapes], weights)
    else:
        import tf_keras

        check_layer_keras2(factory(tf_keras.layers), shapes)


# ---- hand-derived numbers -----------------------------------------------------------------------


def _spec(class_name, config, shape):
    spec = registry.get(class_name)
    outs = spec.output_shapes(config, [shape])
    return spec, outs, spec.weights(config, [shape]), spec.macs(config, [shape], outs)


def test_textbook_conv2d():
    import keras

    layer = keras.layers.Conv2D(32, (5, 5))
    outs, weights = check_layer(layer, [(None, 28, 28, 1)])
    assert outs == [(None, 24, 24, 32)]  # 28 - 5 + 1 = 24
    assert sum(w.size for w in weights) == layer.count_params() == 5 * 5 * 1 * 32 + 32 == 832
    spec = registry.get("Conv2D")
    assert spec.formula(json_config(layer), [(None, 28, 28, 1)]) == "(5·5·1 + 1)·32 = 832"


def test_conv_macs_by_hand():
    # Conv2D(32, 5x5) on 28x28x1: 24·24 = 576 output positions, each 5·5·1 inputs for 32 filters
    # -> 576 · 800 = 460800.
    _, _, _, macs = _spec("Conv2D", {"filters": 32, "kernel_size": [5, 5]}, (None, 28, 28, 1))
    assert macs == 460_800
    # Conv2D(12, 3x3, groups=3, same) on 8x8x6: 64 positions, each filter sees 6/3 = 2 channels
    # -> 64 · 3·3·2 · 12 = 64 · 216 = 13824.
    cfg = {"filters": 12, "kernel_size": 3, "groups": 3, "padding": "same"}
    assert _spec("Conv2D", cfg, (None, 8, 8, 6))[3] == 13_824
    # channels_first Conv2D(8, 3x3, stride 2, same) on (3, 9, 7): out 5x4 = 20 positions
    # -> 20 · 3·3·3 · 8 = 20 · 216 = 4320.
    cfg = {"filters": 8, "kernel_size": [3, 3], "strides": [2, 2], "padding": "same", "data_format": CF}
    assert _spec("Conv2D", cfg, (None, 3, 9, 7))[3] == 4_320
    # unknown length -> unknown MACs
    assert _spec("Conv1D", {"filters": 8, "kernel_size": 3}, (None, None, 4))[3] is None


def test_depthwise_and_separable_macs_by_hand():
    # DepthwiseConv2D(3x3, depth_multiplier=2) on 10x10x8, valid: 8·8 = 64 positions, each
    # 3·3 taps on each of 8 channels for 2 multipliers -> 64 · 9 · 16 = 9216.
    cfg = {"kernel_size": [3, 3], "depth_multiplier": 2}
    spec, outs, weights, macs = _spec("DepthwiseConv2D", cfg, (None, 10, 10, 8))
    assert outs == [(None, 8, 8, 16)] and macs == 9_216
    assert sum(w.size for w in weights) == 3 * 3 * 8 * 2 + 16 == 160
    # SeparableConv2D(16, 3x3) on 12x12x8, valid: 10·10 = 100 positions; depthwise 3·3·8 = 72
    # plus pointwise 8·16 = 128 per position -> 100 · 200 = 20000.
    spec, outs, weights, macs = _spec("SeparableConv2D", {"filters": 16, "kernel_size": 3}, (None, 12, 12, 8))
    assert outs == [(None, 10, 10, 16)] and macs == 20_000
    assert sum(w.size for w in weights) == 72 + 128 + 16 == 216
    assert spec.formula({"filters": 16, "kernel_size": 3}, [(None, 12, 12, 8)]) == "3·3·8·1 + 8·1·16 + 16 = 216"


def test_transpose_and_convlstm_macs_by_hand():
    # Conv2DTranspose(8, 3x3, stride 2, same) on 7x7x16: counted per input position,
    # 49 · 3·3·16·8 = 49 · 1152 = 56448.
    cfg = {"filters": 8, "kernel_size": 3, "strides": 2, "padding": "same"}
    assert _spec("Conv2DTranspose", cfg, (None, 7, 7, 16))[3] == 56_448
    # ConvLSTM2D(8, 3x3) on 4 steps of 10x10x1: the state is 8x8 = 64 positions; per step the
    # input conv 3·3·1·32 and the recurrent conv 3·3·8·32 (4 gates · 8 filters = 32)
    # -> 4 · 64 · (288 + 2304) = 663552.
    assert _spec("ConvLSTM2D", {"filters": 8, "kernel_size": 3}, (None, 4, 10, 10, 1))[3] == 663_552


def test_pooling_has_no_macs():
    cfg = {"pool_size": [2, 2]}
    assert _spec("MaxPooling2D", cfg, (None, 8, 8, 3))[3] == 0


# ---- what Keras refuses, we report ---------------------------------------------------------------


def test_non_positive_dims_are_returned_not_raised():
    # Keras raises "Computed output size would be zero or negative"; a later rule names the layer.
    assert _spec("Conv2D", {"filters": 8, "kernel_size": 5}, (None, 3, 4, 1))[1] == [(None, -1, 0, 8)]
    # floor((1 - 3) / 3) + 1 = 0; with stride 1: (1 - 3) + 1 = -1
    assert _spec("MaxPooling1D", {"pool_size": 3}, (None, 1, 3))[1] == [(None, 0, 3)]
    assert _spec("MaxPooling1D", {"pool_size": 3, "strides": 1}, (None, 1, 3))[1] == [(None, -1, 3)]
    assert _spec("Conv1D", {"filters": 2, "kernel_size": 3, "dilation_rate": 4}, (None, 5, 1))[3] is None


@pytest.mark.parametrize(
    "class_name, config, shape, words",
    [
        ("Conv2D", {"filters": 8, "kernel_size": 3}, (None, 8, 8), "rank 4"),
        ("Conv2D", {"filters": 8, "kernel_size": 3, "groups": 4}, (None, 8, 8, 6), "not divisible by groups=4"),
        ("Conv2D", {"filters": 6, "kernel_size": 3, "groups": 4}, (None, 8, 8, 8), "filters=6"),
        ("Conv2D", {"filters": 8, "kernel_size": 3}, (None, 8, 8, None), "channel"),
        ("ConvLSTM2D", {"filters": 8, "kernel_size": 3}, (None, 8, 8, 3), "rank 5"),
        ("Conv2D", {"kernel_size": 3}, (None, 8, 8, 3), "no 'filters'"),
        ("MaxPooling2D", {}, (None, 8, 3), "rank 4"),
        ("GlobalAveragePooling1D", {}, (None, 8, 8, 3), "rank 3"),
        ("BatchNormalization", {"axis": 3}, (None, 8, 3), "out of bounds"),
        ("GroupNormalization", {"groups": 4}, (None, 8, 6), "not divisible"),
        ("GroupNormalization", {"groups": 8}, (None, 8, 6), "more than"),
    ],
)
def test_shape_errors(class_name, config, shape, words):
    spec = registry.get(class_name)
    with pytest.raises(ShapeError, match=words):
        spec.output_shapes(config, [shape])
        spec.weights(config, [shape])


def test_missing_keys_take_keras_defaults():
    # strides 1, valid, channels_last, bias on; BN gamma/beta/mean/variance on the last axis
    spec, outs, weights, _ = _spec("Conv2D", {"filters": 4, "kernel_size": 3}, (None, 6, 6, 2))
    assert outs == [(None, 4, 4, 4)] and [w.shape for w in weights] == [(3, 3, 2, 4), (4,)]
    spec, outs, weights, _ = _spec("BatchNormalization", {}, (None, 5, 7))
    assert [(w.shape, w.trainable) for w in weights] == [((7,), True)] * 2 + [((7,), False)] * 2
    assert _spec("MaxPooling2D", {"strides": None}, (None, 9, 9, 1))[1] == [(None, 4, 4, 1)]
    assert _spec("GroupNormalization", {}, (None, 64))[2][0].shape == (64,)


def test_aliases_share_the_spec():
    for alias, name in [("Convolution2D", "Conv2D"), ("MaxPool2D", "MaxPooling2D"), ("GlobalAvgPool1D", "GlobalAveragePooling1D")]:
        assert registry.get(alias) is registry.get(name)
