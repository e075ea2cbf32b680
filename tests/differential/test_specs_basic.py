"""Differential tests: the core, activation, regularization, reshaping and merging specs against real Keras.

Every case builds the real layer (Keras 3, and Keras 2 through tf_keras where it has the class) and
`check_layer` asserts our output shapes, parameter count and weight shapes/trainability agree.
"""

from __future__ import annotations

import re

import pytest

import keras

from modelaudit.infer import registry  # noqa: E402
from modelaudit.infer.registry import ShapeError  # noqa: E402
from tests.differential.keras_check import check_layer, check_layer_keras2, json_config  # noqa: E402

K3_ONLY = "k3"  # the class or an argument used does not exist in tf_keras
K2_ONLY = "k2"  # an argument only tf_keras has
# tf_keras infers symbolic shapes by running TensorFlow ops, which sometimes know a dimension Keras 3's
# compute_output_shape leaves unknown, or the reverse. Keras 3 is the reference; for these cases Keras 2
# must agree on weights and on every dimension both sides know.
K2_UNKNOWN_DIMS = "k2-unknown-dims"
# Keras 3's EinsumDense compute_output_shape inserts the elided axes of "...x,..." in reverse order
# (`output_shape.insert(1, ...)` in a loop): with two or more non-batch elided axes its symbolic shape
# reverses them, while the tensor it computes (and tf_keras's symbolic shape) keep the input's order.
# The spec follows Keras 3, since Keras 3 files record that shape and build later layers on it.
K2_EINSUM_ELLIPSIS_ORDER = "k2-einsum-ellipsis-order"


def _case(id_, factory, shapes, *flags):
    """`factory(layers_module)` builds the layer, so one case serves Keras 3 and Keras 2 alike."""
    return (id_, factory, shapes, flags)


def _reshape_fn(x):
    # Used by a Lambda case: keras.ops in Keras 3. The function body is never run by modelaudit.
    return keras.ops.reshape(x, (-1, 3, 4))


CASES = [
    # ---- core
    _case("einsum-ab,bc->ac", lambda L: L.EinsumDense("ab,bc->ac", output_shape=64, bias_axes="c"), [(None, 32)]),
    _case("einsum-no-bias", lambda L: L.EinsumDense("ab,bc->ac", output_shape=8), [(None, 32)]),
    _case("einsum-abc,cd->abd", lambda L: L.EinsumDense("abc,cd->abd", output_shape=(10, 64), bias_axes="d"), [(None, 10, 32)]),
    _case("einsum-output-None", lambda L: L.EinsumDense("abc,cd->abd", output_shape=(None, 64), bias_axes="d"), [(None, 10, 32)], K2_UNKNOWN_DIMS),
    _case("einsum-abc,cde->abde", lambda L: L.EinsumDense("abc,cde->abde", output_shape=(10, 8, 16), bias_axes="de"), [(None, 10, 32)]),
    _case("einsum-bias-inner-axis", lambda L: L.EinsumDense("abc,cde->abde", output_shape=(10, 8, 16), bias_axes="d"), [(None, 10, 32)]),
    _case("einsum-abcd,cde->abe", lambda L: L.EinsumDense("abcd,cde->abe", output_shape=(10, 16), bias_axes="e"), [(None, 10, 4, 8)]),
    _case("einsum-left-ellipsis", lambda L: L.EinsumDense("...b,bc->...c", output_shape=16), [(None, 5, 7, 12)], K2_EINSUM_ELLIPSIS_ORDER),
    _case("einsum-left-ellipsis-one-axis", lambda L: L.EinsumDense("...b,bc->...c", output_shape=16, bias_axes="c"), [(None, 5, 12)]),
    _case("einsum-left-ellipsis-2", lambda L: L.EinsumDense("...ab,bc->...ac", output_shape=(7, 16), bias_axes="c"), [(None, 5, 7, 12)]),
    _case("einsum-right-ellipsis", lambda L: L.EinsumDense("abc...,cd->abd...", output_shape=(4, 8), bias_axes="d"), [(None, 4, 6, 3, 2)]),
    _case("einsum-lora", lambda L: L.EinsumDense("abc,cd->abd", output_shape=(10, 64), bias_axes="d", lora_rank=4), [(None, 10, 32)], K3_ONLY),
    _case("embedding", lambda L: L.Embedding(1000, 64), [(None, 20)]),
    _case("embedding-rank3-mask", lambda L: L.Embedding(50, 8, mask_zero=True), [(None, 4, 5)]),
    _case("embedding-unknown-length", lambda L: L.Embedding(50, 8), [(None, None)]),
    _case("embedding-input-length", lambda L: L.Embedding(50, 8, input_length=5), [(None, 5)], K2_ONLY),
    _case("embedding-lora", lambda L: L.Embedding(100, 16, lora_rank=2), [(None, 7)], K3_ONLY),
    _case("identity", lambda L: L.Identity(), [(None, 3, 4)]),
    _case("masking", lambda L: L.Masking(mask_value=0.0), [(None, 10, 8)]),
    _case("lambda-output-shape", lambda L: L.Lambda(lambda x: x, output_shape=(12,)), [(None, 12)]),
    _case("lambda-reshape", lambda L: L.Lambda(_reshape_fn, output_shape=(3, 4)), [(None, 12)], K3_ONLY),
    _case("lambda-two-outputs", lambda L: L.Lambda(lambda x: [x, x], output_shape=[(5,), (5,)]), [(None, 5)], K3_ONLY),
    # ---- activations
    _case("activation-relu", lambda L: L.Activation("relu"), [(None, 7, 3)]),
    _case("relu-max6", lambda L: L.ReLU(max_value=6.0), [(None, 5)]),
    _case("leaky-relu", lambda L: L.LeakyReLU(), [(None, 4, 4, 2)]),
    _case("elu", lambda L: L.ELU(alpha=0.5), [(None, 9)]),
    _case("softmax-axis1", lambda L: L.Softmax(axis=1), [(None, 3, 6)]),
    _case("softmax-axes", lambda L: L.Softmax(axis=[1, 2]), [(None, 3, 6)], K3_ONLY),
    _case("prelu", lambda L: L.PReLU(), [(None, 10, 8)]),
    _case("prelu-shared-hw", lambda L: L.PReLU(shared_axes=[1, 2]), [(None, 6, 6, 3)]),
    _case("prelu-shared-unknown-steps", lambda L: L.PReLU(shared_axes=[1]), [(None, None, 8)]),
    _case("prelu-shared-int", lambda L: L.PReLU(shared_axes=3), [(None, 4, 5, 6)]),
    # ---- regularization
    _case("dropout", lambda L: L.Dropout(0.5), [(None, 16)]),
    _case("dropout-noise-shape", lambda L: L.Dropout(0.2, noise_shape=(None, 1, 8)), [(None, 5, 8)]),
    _case("spatial-dropout1d", lambda L: L.SpatialDropout1D(0.3), [(None, 10, 8)]),
    _case("spatial-dropout2d-last", lambda L: L.SpatialDropout2D(0.3), [(None, 8, 8, 3)]),
    _case("spatial-dropout2d-first", lambda L: L.SpatialDropout2D(0.3, data_format="channels_first"), [(None, 3, 8, 8)]),
    _case("spatial-dropout3d-last", lambda L: L.SpatialDropout3D(0.3), [(None, 4, 4, 4, 2)]),
    _case("spatial-dropout3d-first", lambda L: L.SpatialDropout3D(0.3, data_format="channels_first"), [(None, 2, 4, 4, 4)]),
    _case("gaussian-noise", lambda L: L.GaussianNoise(0.1), [(None, 6)]),
    _case("gaussian-dropout", lambda L: L.GaussianDropout(0.3), [(None, 6, 2)]),
    _case("alpha-dropout", lambda L: L.AlphaDropout(0.2), [(None, 6)]),
    _case("activity-regularization", lambda L: L.ActivityRegularization(l1=0.01, l2=0.001), [(None, 6)]),
    # ---- reshaping
    _case("flatten", lambda L: L.Flatten(), [(None, 4, 5, 6)]),
    _case("flatten-channels-first", lambda L: L.Flatten(data_format="channels_first"), [(None, 3, 5, 6)]),
    _case("flatten-unknown", lambda L: L.Flatten(), [(None, None, 5)]),
    _case("flatten-rank2", lambda L: L.Flatten(), [(None, 7)]),
    _case("reshape-minus1-last", lambda L: L.Reshape((-1, 4)), [(None, 6, 8)]),
    _case("reshape-minus1-inner", lambda L: L.Reshape((2, -1, 3)), [(None, 24)]),
    _case("reshape-minus1-unknown", lambda L: L.Reshape((4, -1)), [(None, None, 8)]),
    _case("reshape-flat", lambda L: L.Reshape((12,)), [(None, 3, 4)]),
    _case("permute-21", lambda L: L.Permute((2, 1)), [(None, 3, 4)]),
    _case("permute-312", lambda L: L.Permute((3, 1, 2)), [(None, 2, 3, 4)]),
    _case("repeat-vector", lambda L: L.RepeatVector(3), [(None, 5)]),
    _case("upsampling1d", lambda L: L.UpSampling1D(3), [(None, 10, 4)]),
    _case("upsampling2d-last", lambda L: L.UpSampling2D((2, 3)), [(None, 5, 7, 3)]),
    _case("upsampling2d-first", lambda L: L.UpSampling2D((2, 3), data_format="channels_first"), [(None, 3, 5, 7)]),
    _case("upsampling2d-unknown", lambda L: L.UpSampling2D(2), [(None, None, 7, 3)], K2_UNKNOWN_DIMS),
    _case("upsampling3d-last", lambda L: L.UpSampling3D((1, 2, 3)), [(None, 2, 3, 4, 5)]),
    _case("upsampling3d-first", lambda L: L.UpSampling3D((1, 2, 3), data_format="channels_first"), [(None, 5, 2, 3, 4)]),
    _case("zeropad1d", lambda L: L.ZeroPadding1D(2), [(None, 10, 4)]),
    _case("zeropad1d-odd", lambda L: L.ZeroPadding1D((1, 3)), [(None, 10, 4)]),
    _case("zeropad1d-first", lambda L: L.ZeroPadding1D((1, 3), data_format="channels_first"), [(None, 4, 10)], K3_ONLY),
    _case("zeropad2d-last", lambda L: L.ZeroPadding2D(((1, 2), (3, 4))), [(None, 5, 6, 3)]),
    _case("zeropad2d-first", lambda L: L.ZeroPadding2D(((1, 2), (3, 4)), data_format="channels_first"), [(None, 3, 5, 6)]),
    _case("zeropad2d-sym", lambda L: L.ZeroPadding2D((1, 2)), [(None, 5, 6, 3)]),
    _case("zeropad2d-int-unknown", lambda L: L.ZeroPadding2D(3), [(None, None, 6, 3)]),
    _case("zeropad3d-last", lambda L: L.ZeroPadding3D(((1, 2), (0, 3), (2, 0))), [(None, 4, 5, 6, 2)]),
    _case("zeropad3d-first", lambda L: L.ZeroPadding3D(((1, 2), (0, 3), (2, 0)), data_format="channels_first"), [(None, 2, 4, 5, 6)]),
    _case("zeropad3d-default", lambda L: L.ZeroPadding3D(), [(None, 4, 5, 6, 2)]),
    _case("crop1d-odd", lambda L: L.Cropping1D((1, 3)), [(None, 10, 4)]),
    _case("crop1d-unknown", lambda L: L.Cropping1D(2), [(None, None, 4)]),
    _case("crop2d-last", lambda L: L.Cropping2D(((1, 2), (0, 3))), [(None, 8, 9, 3)]),
    _case("crop2d-first", lambda L: L.Cropping2D(((1, 2), (0, 3)), data_format="channels_first"), [(None, 3, 8, 9)]),
    _case("crop2d-int", lambda L: L.Cropping2D(2), [(None, 8, 9, 3)]),
    _case("crop3d-last", lambda L: L.Cropping3D(((1, 0), (2, 1), (0, 3))), [(None, 5, 6, 7, 2)]),
    _case("crop3d-first", lambda L: L.Cropping3D(((1, 0), (2, 1), (0, 3)), data_format="channels_first"), [(None, 2, 5, 6, 7)]),
    _case("crop3d-default", lambda L: L.Cropping3D(), [(None, 5, 6, 7, 2)]),
    # ---- merging
    _case("add", lambda L: L.Add(), [(None, 3), (None, 3)]),
    _case("add-three", lambda L: L.Add(), [(None, 4, 2), (None, 4, 2), (None, 4, 2)]),
    _case("add-broadcast-ones", lambda L: L.Add(), [(None, 4, 1), (None, 1, 5)]),
    _case("add-broadcast-ranks", lambda L: L.Add(), [(None, 4, 5), (None, 5)]),
    _case("subtract-broadcast", lambda L: L.Subtract(), [(None, 4, 5), (None, 1, 5)]),
    _case("multiply-broadcast", lambda L: L.Multiply(), [(None, 3, 1), (None, 3, 6)]),
    _case("average", lambda L: L.Average(), [(None, 8), (None, 8)]),
    _case("maximum-unknown", lambda L: L.Maximum(), [(None, None, 8), (None, 6, 8)], K2_UNKNOWN_DIMS),
    _case("minimum", lambda L: L.Minimum(), [(None, 2, 8), (None, 2, 8)]),
    _case("concat-last", lambda L: L.Concatenate(), [(None, 3, 4), (None, 3, 5)]),
    _case("concat-axis1-three", lambda L: L.Concatenate(axis=1), [(None, 2, 4), (None, 5, 4), (None, 1, 4)]),
    _case("concat-axis-2-unknown", lambda L: L.Concatenate(axis=-2), [(None, None, 4), (None, 3, 4)]),
    _case("concat-unknown-other-axis", lambda L: L.Concatenate(axis=1), [(None, 2, None), (None, 5, 4)], K2_UNKNOWN_DIMS),
    _case("dot-axes1", lambda L: L.Dot(axes=1), [(None, 5), (None, 5)]),
    _case("dot-axes-pair", lambda L: L.Dot(axes=(1, 2)), [(None, 3, 4), (None, 5, 3)]),
    _case("dot-axes-neg", lambda L: L.Dot(axes=-1), [(None, 3, 4), (None, 5, 4)]),
    _case("dot-normalize", lambda L: L.Dot(axes=2, normalize=True), [(None, 3, 4), (None, 6, 4)]),
    _case("dot-axes-21", lambda L: L.Dot(axes=[2, 1]), [(None, 3, 4), (None, 4, 6)]),
]


def _params():
    for id_, factory, shapes, flags in CASES:
        if K2_ONLY not in flags:
            yield pytest.param("keras3", factory, shapes, id=f"keras3-{id_}")
        if K3_ONLY in flags:
            continue
        if K2_UNKNOWN_DIMS in flags:
            yield pytest.param("keras2-loose", factory, shapes, id=f"keras2-{id_}")
        elif K2_EINSUM_ELLIPSIS_ORDER in flags:
            continue  # test_einsum_ellipsis_order_keras3_vs_keras2 pins this difference down
        else:
            yield pytest.param("keras2", factory, shapes, id=f"keras2-{id_}")


def _check_keras2_loose(layer, input_shapes):
    """check_layer_keras2, but a dimension only one side knows is not a disagreement."""
    import json

    import tf_keras

    from modelaudit.formats.dialects import normalize_layer_config

    inputs = [tf_keras.Input(batch_shape=s) for s in input_shapes]
    out = layer(inputs[0] if len(inputs) == 1 else inputs)
    theirs = [tuple(t.shape) for t in (out if isinstance(out, (list, tuple)) else [out])]
    raw = json.loads(json.dumps(tf_keras.layers.serialize(layer)))
    config = normalize_layer_config(raw["class_name"], raw["config"])
    spec = registry.get(type(layer).__name__)
    ours = spec.output_shapes(config, [tuple(s) for s in input_shapes])
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert len(a) == len(b) and all(x is None or y is None or x == y for x, y in zip(a, b)), (ours, theirs)
    weights = spec.weights(config, [tuple(s) for s in input_shapes])
    assert sorted((w.shape, w.trainable) for w in weights) == sorted(
        (tuple(w.shape), bool(w.trainable)) for w in layer.weights
    )


@pytest.mark.parametrize("dialect, factory, shapes", list(_params()))
def test_spec_matches_keras(dialect, factory, shapes):
    if dialect == "keras3":
        check_layer(factory(keras.layers), shapes)
        return
    import tf_keras
    if dialect == "keras2-loose":
        _check_keras2_loose(factory(tf_keras.layers), shapes)
    else:
        check_layer_keras2(factory(tf_keras.layers), shapes)


def test_einsum_ellipsis_order_keras3_vs_keras2():
    import numpy as np

    import tf_keras
    shape = (None, 5, 7, 12)
    spec = registry.get("EinsumDense")
    k3 = keras.layers.EinsumDense("...b,bc->...c", output_shape=16)
    assert tuple(k3(keras.Input(batch_shape=shape)).shape) == (None, 7, 5, 16)  # Keras 3's symbolic shape
    assert tuple(k3(np.zeros((2, 5, 7, 12), "float32")).shape) == (2, 5, 7, 16)  # what it computes
    assert spec.output_shapes(json_config(k3), [shape]) == [(None, 7, 5, 16)]
    k2 = tf_keras.layers.EinsumDense("...b,bc->...c", output_shape=16)
    assert tuple(k2(tf_keras.Input(batch_shape=shape)).shape) == (None, 5, 7, 16)


# ---- inputs a layer cannot take: ShapeError with a message that says why ----------------------

BAD = [
    ("add-3-vs-4", "Add", {}, [(None, 3), (None, 4)], r"incompatible shapes \(None, 3\), \(None, 4\)"),
    ("add-batch-sizes", "Add", {}, [(2, 3), (4, 3)], r"different batch sizes"),
    ("subtract-three-inputs", "Subtract", {}, [(None, 3)] * 3, r"exactly 2 inputs"),
    ("concat-mismatch", "Concatenate", {"axis": -1}, [(None, 3, 4), (None, 5, 6)], r"matching shapes except"),
    ("concat-rank", "Concatenate", {"axis": -1}, [(None, 3, 4), (None, 4)], r"same rank"),
    ("reshape-count", "Reshape", {"target_shape": [5]}, [(None, 12)], r"element count must not change"),
    ("reshape-minus1-indivisible", "Reshape", {"target_shape": [5, -1]}, [(None, 12)], r"not divisible by 5"),
    ("reshape-two-minus1", "Reshape", {"target_shape": [-1, -1]}, [(None, 12)], r"more than one -1"),
    ("dot-sizes", "Dot", {"axes": 1}, [(None, 3), (None, 4)], r"sizes must be equal"),
    ("crop1d-too-much", "Cropping1D", {"cropping": [3, 2]}, [(None, 5, 4)], r"removes all of axis 1"),
    ("crop2d-too-much", "Cropping2D", {"cropping": [[2, 2], [0, 0]], "data_format": "channels_last"}, [(None, 4, 8, 3)], r"removes all"),
    ("einsum-bad-equation", "EinsumDense", {"equation": "ab->b", "output_shape": [4]}, [(None, 3)], r"not of the form"),
    ("einsum-bias-axis", "EinsumDense", {"equation": "ab,bc->ac", "output_shape": [4], "bias_axes": "x"}, [(None, 3)], r"bias axis 'x'"),
    ("permute-rank", "Permute", {"dims": [2, 1]}, [(None, 3, 4, 5)], r"rank 3"),
    ("repeat-vector-rank", "RepeatVector", {"n": 2}, [(None, 3, 4)], r"rank 2"),
    ("spatial-dropout2d-rank", "SpatialDropout2D", {"rate": 0.1}, [(None, 3, 4)], r"rank 4"),
]


@pytest.mark.parametrize("class_name, config, shapes, message", [pytest.param(*b[1:], id=b[0]) for b in BAD])
def test_incompatible_inputs_raise_shape_error(class_name, config, shapes, message):
    spec = registry.get(class_name)
    with pytest.raises(ShapeError, match=message):
        spec.output_shapes(config, shapes)
        spec.weights(config, shapes)


# ---- MACs and formulas, counted by hand ----------------------------------------------------------

MACS = [
    # Dense-like: each of the 64 outputs sums 32 products -> 32·64 = 2048
    ("einsum-dense", lambda L: L.EinsumDense("ab,bc->ac", output_shape=64, bias_axes="c"), (None, 32), 2048),
    # 10 positions, each a 32 -> 64 projection: 10·32·64 = 20480
    ("einsum-seq", lambda L: L.EinsumDense("abc,cd->abd", output_shape=(10, 64), bias_axes="d"), (None, 10, 32), 20480),
    # multi-head projection: 10 positions · 32 inputs · 8 heads · 16 per head = 40960
    ("einsum-heads", lambda L: L.EinsumDense("abc,cde->abde", output_shape=(10, 8, 16)), (None, 10, 32), 40960),
    # contracts two axes c, d (4·8 = 32) into 16 outputs at 10 positions: 10·4·8·16 = 5120
    ("einsum-two-contracted", lambda L: L.EinsumDense("abcd,cde->abe", output_shape=(10, 16)), (None, 10, 4, 8), 5120),
    # ellipsis keeps 5·7 positions, each 12 -> 16: 5·7·12·16 = 6720
    ("einsum-ellipsis", lambda L: L.EinsumDense("...b,bc->...c", output_shape=16), (None, 5, 7, 12), 6720),
    # unknown sequence length: per-sample count unknown
    ("einsum-unknown", lambda L: L.EinsumDense("abc,cd->abd", output_shape=(None, 64)), (None, None, 32), None),
    # a lookup copies rows: no multiplies
    ("embedding", lambda L: L.Embedding(1000, 64), (None, 20), 0),
    ("embedding-lora", lambda L: L.Embedding(1000, 64, lora_rank=4), (None, 20), 0),
]


@pytest.mark.parametrize("factory, shape, expected", [pytest.param(*m[1:], id=m[0]) for m in MACS])
def test_macs_by_hand(factory, shape, expected):
    layer = factory(keras.layers)
    layer.build(shape)
    config = json_config(layer)
    spec = registry.get(type(layer).__name__)
    outputs = spec.output_shapes(config, [shape])
    assert spec.macs(config, [shape], outputs) == expected


FORMULAS = [
    # kernel 32·64 = 2048, bias 64
    ("einsum-dense", lambda L: L.EinsumDense("ab,bc->ac", output_shape=64, bias_axes="c"), (None, 32), "32·64 + 64 = 2112"),
    # bias over d only is stored as (8, 1): written without the 1
    ("einsum-bias-inner", lambda L: L.EinsumDense("abc,cde->abde", output_shape=(10, 8, 16), bias_axes="d"), (None, 10, 32), "32·8·16 + 8 = 4104"),
    ("einsum-lora", lambda L: L.EinsumDense("ab,bc->ac", output_shape=64, lora_rank=4), (None, 32), "32·64 + 32·4 + 4·64 = 2432"),
    ("embedding", lambda L: L.Embedding(1000, 64), (None, 20), "1000·64 = 64000"),
    ("prelu-shared", lambda L: L.PReLU(shared_axes=[1, 2]), (None, 6, 6, 3), "1·1·3 = 3"),
]


@pytest.mark.parametrize("factory, shape, expected", [pytest.param(*f[1:], id=f[0]) for f in FORMULAS])
def test_formula(factory, shape, expected):
    layer = factory(keras.layers)
    layer.build(shape)
    config = json_config(layer)
    spec = registry.get(type(layer).__name__)
    assert spec.formula(config, [shape]) == expected
    total = int(re.search(r"= (\d+)$", expected).group(1))
    assert layer.count_params() == total


# ---- Lambda, tolerant configs ------------------------------------------------------------------


def test_lambda_without_output_shape_is_unknown():
    # Keras would run the function to know the shape; we never do: one output of unknown shape.
    spec = registry.get("Lambda")
    assert spec.opaque_shape
    layer = keras.layers.Lambda(lambda x: x * 2)
    assert spec.output_shapes(json_config(layer), [(None, 3)]) == [None]
    # Keras 2 writes a function-valued output_shape as code with output_shape_type "lambda"
    k2 = {"output_shape": ["4wEAAAAA", None, None], "output_shape_type": "lambda"}
    assert spec.output_shapes(k2, [(None, 3)]) == [None]


def test_weight_shapes_with_unknown_dims_stay_unknown():
    # Not an error here: the dim may be known to Keras though not to us; propagation reports it.
    prelu = registry.get("PReLU")
    assert [w.shape for w in prelu.weights({"shared_axes": None}, [(None, None, 8)])] == [(None, 8)]
    assert prelu.formula({"shared_axes": None}, [(None, None, 8)]) is None
    einsum = registry.get("EinsumDense")
    config = {"equation": "ab,bc->ac", "output_shape": [4], "bias_axes": "c"}
    assert [w.shape for w in einsum.weights(config, [(None, None)])] == [(None, 4), (4,)]


def test_missing_keys_take_keras_defaults():
    get = registry.get
    assert get("ZeroPadding2D").output_shapes({}, [(None, 4, 5, 3)]) == [(None, 6, 7, 3)]
    assert get("ZeroPadding3D").output_shapes({}, [(None, 4, 5, 6, 3)]) == [(None, 6, 7, 8, 3)]
    assert get("Cropping1D").output_shapes({}, [(None, 5, 3)]) == [(None, 3, 3)]
    assert get("Cropping2D").output_shapes({}, [(None, 4, 5, 3)]) == [(None, 4, 5, 3)]
    assert get("Cropping3D").output_shapes({}, [(None, 4, 5, 6, 3)]) == [(None, 2, 3, 4, 3)]
    assert get("UpSampling2D").output_shapes({}, [(None, 4, 5, 3)]) == [(None, 8, 10, 3)]
    assert get("Concatenate").output_shapes({}, [(None, 2), (None, 3)]) == [(None, 5)]
    assert get("Dot").output_shapes({}, [(None, 3, 4), (None, 5, 4)]) == [(None, 3, 5)]
    assert [w.shape for w in get("PReLU").weights({}, [(None, 3, 4)])] == [(3, 4)]
