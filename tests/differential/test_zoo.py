"""Differential zoo: whole real models, built with Keras 3 (`keras`) and Keras 2 (`tf_keras`), read
back by every reader, recomputed by modelaudit and compared with Keras layer by layer.

Each zoo entry is (id, flavour, builder): the builder takes the Keras module and returns a model.
For a Keras 3 model the comparison runs on `formats.live.read(model)` and on the model saved as
`.keras` and as legacy `.h5`; for a Keras 2 (tf_keras) model on the `.h5` it saves and on
`live.read(model)`. Per layer: params == `layer.count_params()`, trainable params == the sizes of
`layer.trainable_weights`, output shapes of call 0 == Keras's own symbolic output shapes of the
layer's first call, recomputed with no shape error, no weight issue, no non-positive dimension and
no recorded-shape conflict; per model: total / trainable / non-trainable params and output shapes;
and `modelaudit.audit(path, select=["MA1"])` raises nothing at warning or error level.

`test_zoo_covers_every_spec` holds the zoo to the registry: every class with a spec must appear in
some zoo model, so adding a spec without a zoo model fails. Pure aliases are exempt: a name that
Keras resolves to a class of another name (Convolution2D is Conv2D, MaxPool2D is MaxPooling2D ...),
because Keras never writes it as a class_name, so no saved model can contain it.
"""

from __future__ import annotations

import math
import os

import pytest

import keras
import tf_keras

import modelaudit  # noqa: E402
from modelaudit import formats  # noqa: E402
from modelaudit.formats import live  # noqa: E402
from modelaudit.infer import registry  # noqa: E402
from modelaudit.infer.propagate import propagate  # noqa: E402
from tests import zoo as reader_zoo  # noqa: E402

K3, K2 = "k3", "k2"


def _cf_axis(fmt):
    return 1 if fmt == "channels_first" else -1


def _image_shape(fmt, hw, channels):
    return (channels, *hw) if fmt == "channels_first" else (*hw, channels)


# ---- the zoo builders: tiny models, each takes the keras module --------------------------------


def mlp_activations(k):
    L = k.layers
    inp = k.Input((12,), name="features")
    x = L.Dense(8, name="d1")(inp)
    x = L.Activation("relu")(x)
    x = L.ReLU(max_value=6.0)(x)
    x = L.LeakyReLU()(x)
    x = L.ELU()(x)
    x = L.PReLU()(x)
    x = L.Dropout(0.2)(x)
    x = L.GaussianNoise(0.1)(x)
    x = L.GaussianDropout(0.1)(x)
    x = L.AlphaDropout(0.1)(x)
    x = L.ActivityRegularization(l1=0.01)(x)
    x = L.Dense(6, trainable=False, name="frozen_dense")(x)
    x = L.UnitNormalization()(x)
    x = L.Dense(4, use_bias=False)(x)
    out = L.Softmax()(x)
    return k.Model(inp, out, name="mlp_activations")


def _cnn2d(k, fmt):
    L = k.layers
    inp = k.Input(_image_shape(fmt, (16, 16), 3))
    x = L.Rescaling(1 / 255.0)(inp)
    x = L.Conv2D(4, 3, padding="same", activation="relu", data_format=fmt)(x)
    x = L.BatchNormalization(axis=_cf_axis(fmt))(x)
    x = L.MaxPooling2D(data_format=fmt)(x)  # 8x8
    x = L.SeparableConv2D(6, 3, depth_multiplier=2, data_format=fmt)(x)  # 6x6
    x = L.DepthwiseConv2D(3, depth_multiplier=2, data_format=fmt)(x)  # 4x4, 12 channels
    x = L.AveragePooling2D(pool_size=2, strides=1, padding="same", data_format=fmt)(x)
    x = L.SpatialDropout2D(0.1, data_format=fmt)(x)
    x = L.ZeroPadding2D(((1, 0), (2, 1)), data_format=fmt)(x)  # 5x7
    x = L.Cropping2D(((0, 1), (1, 1)), data_format=fmt)(x)  # 4x5
    x = L.UpSampling2D((2, 1), data_format=fmt)(x)  # 8x5
    x = L.Conv2DTranspose(3, 3, strides=2, output_padding=1, data_format=fmt)(x)  # 18x12
    x = L.Conv2D(4, 3, strides=2, dilation_rate=1, use_bias=False, data_format=fmt)(x)  # 8x5
    a = L.GlobalAveragePooling2D(data_format=fmt)(x)
    b = L.GlobalMaxPooling2D(data_format=fmt)(x)
    c = L.Flatten(data_format=fmt)(x)
    x = L.Concatenate()([a, b, c])
    out = L.Dense(2, activation="softmax")(x)
    return k.Model(inp, out, name=f"cnn2d_{fmt}")


def cnn2d_channels_last(k):
    return _cnn2d(k, "channels_last")


def cnn2d_channels_first(k):
    return _cnn2d(k, "channels_first")


def _conv1d(k, fmt):
    L = k.layers
    inp = k.Input((20, 4) if fmt == "channels_last" else (4, 20))
    x = L.Conv1D(6, 3, padding="causal" if fmt == "channels_last" else "same", dilation_rate=2, data_format=fmt)(inp)
    x = L.MaxPooling1D(2, data_format=fmt)(x)  # 10
    x = L.SeparableConv1D(8, 3, padding="same", data_format=fmt)(x)
    x = L.DepthwiseConv1D(3, depth_multiplier=2, data_format=fmt)(x)  # 8 steps, 16 channels
    x = L.Conv1DTranspose(4, 3, strides=2, data_format=fmt)(x)  # 17
    x = L.AveragePooling1D(3, strides=2, data_format=fmt)(x)  # 8
    if fmt == "channels_last":  # these three have no data_format
        x = L.UpSampling1D(2)(x)  # 16
        x = L.ZeroPadding1D((1, 2))(x)  # 19
        x = L.Cropping1D((2, 1))(x)  # 16
        x = L.SpatialDropout1D(0.1)(x)
    a = L.GlobalMaxPooling1D(data_format=fmt)(x)
    b = L.GlobalAveragePooling1D(data_format=fmt)(x)
    out = L.Dense(3)(L.Concatenate()([a, b]))
    return k.Model(inp, out, name=f"conv1d_{fmt}")


def conv1d_channels_last(k):
    return _conv1d(k, "channels_last")


def conv1d_channels_first(k):
    return _conv1d(k, "channels_first")


def _conv3d(k, fmt):
    L = k.layers
    inp = k.Input(_image_shape(fmt, (6, 6, 6), 2))
    x = L.Conv3D(3, 3, padding="same", data_format=fmt)(inp)
    x = L.MaxPooling3D(2, data_format=fmt)(x)  # 3
    x = L.UpSampling3D(2, data_format=fmt)(x)  # 6
    x = L.ZeroPadding3D(1, data_format=fmt)(x)  # 8
    x = L.Cropping3D(((1, 0), (0, 1), (1, 1)), data_format=fmt)(x)  # 7, 7, 6
    x = L.Conv3DTranspose(2, 2, strides=2, data_format=fmt)(x)  # 14, 14, 12
    x = L.AveragePooling3D(2, data_format=fmt)(x)  # 7, 7, 6
    x = L.BatchNormalization(axis=_cf_axis(fmt))(x)
    x = L.SpatialDropout3D(0.1, data_format=fmt)(x)
    a = L.GlobalAveragePooling3D(data_format=fmt)(x)
    b = L.GlobalMaxPooling3D(data_format=fmt)(x)
    out = L.Dense(2)(L.Average()([a, b]))
    return k.Model(inp, out, name=f"conv3d_{fmt}")


def conv3d_channels_last(k):
    return _conv3d(k, "channels_last")


def conv3d_channels_first(k):
    return _conv3d(k, "channels_first")


def conv_groups(k):
    L = k.layers
    inp = k.Input((10, 10, 4))
    x = L.Conv2D(6, 3, groups=2, dilation_rate=2, padding="same")(inp)
    x = L.Conv2D(4, (3, 1), strides=(2, 1), groups=2, use_bias=False)(x)  # 4x10
    y = k.Input((12, 4))
    z = L.Conv1D(4, 3, groups=4, strides=2, padding="same")(y)  # 6
    out = L.Concatenate()([L.GlobalAveragePooling2D()(x), L.GlobalAveragePooling1D()(z)])
    return k.Model([inp, y], L.Dense(1, activation="sigmoid")(out), name="conv_groups")


def adaptive_pooling(k):
    L = k.layers
    a_in = k.Input((12, 3))
    b_in = k.Input((2, 9, 8))  # channels_first
    c_in = k.Input((4, 4, 4, 1))
    parts = [
        L.AdaptiveAveragePooling1D(4)(a_in),
        L.AdaptiveMaxPooling1D(3)(a_in),
        L.AdaptiveAveragePooling2D((2, 3), data_format="channels_first")(b_in),
        L.AdaptiveMaxPooling2D(2, data_format="channels_first")(b_in),
        L.AdaptiveAveragePooling3D(2)(c_in),
        L.AdaptiveMaxPooling3D((1, 2, 2))(c_in),
    ]
    flat = [L.Flatten()(p) for p in parts]
    return k.Model([a_in, b_in, c_in], L.Dense(2)(L.Concatenate()(flat)), name="adaptive_pooling")


def conv_lstm(k):
    L = k.layers
    a_in = k.Input((4, 10, 3))  # time, width, channels
    a = L.ConvLSTM1D(2, 3, return_sequences=True)(a_in)  # (4, 8, 2)
    a = L.ConvLSTM1D(2, 3, padding="same")(a)  # (8, 2)
    b_in = k.Input((3, 6, 6, 1))
    b, h, c = L.ConvLSTM2D(2, 3, padding="same", return_state=True)(b_in)
    c_in = k.Input((2, 4, 4, 4, 1))
    d = L.ConvLSTM3D(1, 2)(c_in)  # (3, 3, 3, 1)
    flat = L.Concatenate()([L.Flatten()(t) for t in (a, b, h, c, d)])
    return k.Model([a_in, b_in, c_in], L.Dense(2)(flat), name="conv_lstm")


def rnn_stack(k):
    L = k.layers
    inp = k.Input((7,), dtype="int32")
    x = L.Embedding(20, 4, mask_zero=True)(inp)
    x = L.LSTM(5, return_sequences=True)(x)
    x = L.GRU(4, return_sequences=True, reset_after=False)(x)
    x = L.SimpleRNN(3, return_sequences=True)(x)
    x = L.GRU(3, return_sequences=True)(x)
    x = L.LSTM(3, use_bias=False, go_backwards=True)(x)
    return k.Model(inp, L.Dense(2)(x), name="rnn_stack")


def seq2seq_states(k):
    L = k.layers
    enc_in = k.Input((6, 3), name="encoder_in")
    dec_in = k.Input((5, 4), name="decoder_in")
    _, h, c = L.LSTM(4, return_state=True, name="encoder")(enc_in)
    dec_out, _, _ = L.LSTM(4, return_sequences=True, return_state=True, name="decoder")(dec_in, initial_state=[h, c])
    seq, gh = L.GRU(3, return_sequences=True, return_state=True)(dec_out)
    last = L.SimpleRNN(3)(seq, initial_state=[gh])
    probs = L.TimeDistributed(L.Dense(2, activation="softmax"), name="per_step")(dec_out)
    return k.Model([enc_in, dec_in], [probs, last], name="seq2seq_states")


def rnn_cells(k):
    L = k.layers
    inp = k.Input((5, 3))
    x = L.RNN(L.LSTMCell(4), return_sequences=True)(inp)
    x = L.RNN([L.GRUCell(3), L.SimpleRNNCell(2)], return_sequences=True)(x)
    y, state = L.RNN(L.SimpleRNNCell(2), return_state=True)(x)
    return k.Model(inp, L.Dense(1)(L.Concatenate()([y, state])), name="rnn_cells")


def bidirectional(k):
    L = k.layers
    inp = k.Input((6, 3))
    x = L.Bidirectional(L.LSTM(4, return_sequences=True))(inp)  # concat: 8
    x = L.Bidirectional(L.GRU(3, return_sequences=True), merge_mode="sum")(x)
    x = L.Bidirectional(
        L.SimpleRNN(2, return_sequences=True),
        backward_layer=L.SimpleRNN(2, return_sequences=True, go_backwards=True),
        merge_mode="mul",
    )(x)
    f, b = L.Bidirectional(L.LSTM(2), merge_mode=None)(x)
    y, fh, fc, bh, bc = L.Bidirectional(L.LSTM(3, return_state=True), merge_mode="ave")(x)
    out = L.Concatenate()([f, b, y, fh, fc, bh, bc])
    return k.Model(inp, L.Dense(1)(out), name="bidirectional")


def time_distributed(k):
    L = k.layers
    inp = k.Input((4, 8, 8, 1))
    x = L.TimeDistributed(L.Conv2D(2, 3))(inp)  # (4, 6, 6, 2)
    x = L.TimeDistributed(L.MaxPooling2D())(x)  # (4, 3, 3, 2)
    x = L.TimeDistributed(L.Flatten())(x)  # (4, 18)
    x = L.TimeDistributed(L.Dense(3))(x)
    x = L.LSTM(2)(x)
    return k.Model(inp, x, name="time_distributed")


def mha_cross(k):
    """Query, value and key of three different shapes; the attention scores returned; an attention
    mask and key= before value= passed by keyword."""
    L = k.layers
    q = k.Input((4, 8), name="query")
    v = k.Input((6, 5), name="value")
    key = k.Input((6, 3), name="key")
    mask = k.Input((4, 6), dtype="bool", name="mask")
    out, scores = L.MultiHeadAttention(num_heads=2, key_dim=3, value_dim=2, name="cross")(
        q, v, key=key, return_attention_scores=True
    )
    out2 = L.MultiHeadAttention(2, 4, output_shape=7, use_bias=False, name="proj")(q, v)
    out3 = L.MultiHeadAttention(1, 2, name="masked")(q, key=key, value=v, attention_mask=mask)
    flat = L.Concatenate()([L.Flatten()(t) for t in (out, scores, out2, out3)])
    return k.Model([q, v, key, mask], L.Dense(2)(flat), name="mha_cross")


def mha_axes(k):
    L = k.layers
    inp = k.Input((3, 4, 6))
    x = L.MultiHeadAttention(2, 3, attention_axes=(1, 2))(inp, inp)
    return k.Model(inp, L.GlobalAveragePooling2D()(x), name="mha_axes")


def attention_layers(k):
    L = k.layers
    q = k.Input((4, 6))
    v = k.Input((5, 6))
    key = k.Input((5, 6))
    q_mask = k.Input((4,), dtype="bool")
    v_mask = k.Input((5,), dtype="bool")
    a, scores = L.Attention(use_scale=True)([q, v, key], return_attention_scores=True)
    b = L.AdditiveAttention()([q, v], mask=[q_mask, v_mask])
    c = L.Attention(score_mode="concat")([q, v], mask=[q_mask, v_mask])
    x = L.Concatenate()([a, b, c, scores])
    return k.Model([q, v, key, q_mask, v_mask], L.GlobalMaxPooling1D()(x), name="attention_layers")


def transformer_block(k):
    L = k.layers
    inp = k.Input((5, 8))
    x = L.EinsumDense("abc,cd->abd", output_shape=(5, 8), bias_axes="d")(inp)
    att = L.MultiHeadAttention(2, 4)(x, x)
    x = L.LayerNormalization(epsilon=1e-6)(L.Add()([x, att]))
    ff = L.Dense(16, activation="gelu")(x)
    # an unknown (None) output axis: Keras 3 keeps it unknown; tf_keras fills it in by running the
    # einsum (a known divergence the specs follow Keras 3 on), so Keras 2 gets the explicit length
    ff = L.EinsumDense("abc,cd->abd", output_shape=(None, 8) if k.__name__ == "keras" else (5, 8))(ff)
    x = L.LayerNormalization()(L.Add()([x, ff]))
    return k.Model(inp, L.Dense(2)(L.GlobalAveragePooling1D()(x)), name="transformer_block")


def merges(k):
    L = k.layers
    a = k.Input((6,))
    b = k.Input((6,))
    s = k.Input((3, 4))
    t = k.Input((5, 4))
    parts = [
        L.Add()([a, b]),
        L.Subtract()([a, b]),
        L.Multiply()([a, b]),
        L.Average()([a, b]),
        L.Maximum()([a, b]),
        L.Minimum()([a, b]),
        L.Dot(axes=1)([a, b]),
        L.Flatten()(L.Dot(axes=2, normalize=True)([s, t])),  # (3, 5)
        L.Flatten()(L.Concatenate(axis=1)([s, t])),  # (8, 4)
    ]
    return k.Model([a, b, s, t], L.Dense(1)(L.Concatenate()(parts)), name="merges")


def reshaping(k):
    L = k.layers
    inp = k.Input((12,))
    x = L.Reshape((3, 4))(inp)
    x = L.Permute((2, 1))(x)  # (4, 3)
    x = L.Reshape((-1,))(x)  # 12
    x = L.RepeatVector(3)(x)  # (3, 12)
    x = L.Reshape((3, 2, 6))(x)
    x = L.Permute((3, 1, 2))(x)  # (6, 3, 2)
    x = L.Flatten()(x)  # 36
    return k.Model(inp, L.Dense(2)(inputs=x), name="reshaping")  # the input passed by keyword


def shared_layers(k):
    """A Dense called three times, a Conv2D and a pooling layer called twice each."""
    L = k.layers
    a, b, c = (k.Input((8,), name=n) for n in ("a", "b", "c"))
    shared = L.Dense(4, name="shared_dense")
    ya, yb, yc = shared(a), shared(b), shared(c)
    i1 = k.Input((8, 8, 1), name="img1")
    i2 = k.Input((6, 6, 1), name="img2")  # a different size: the second call's shape differs
    conv = L.Conv2D(2, 3, name="shared_conv")
    pool = L.GlobalAveragePooling2D(name="shared_pool")
    f1, f2 = pool(conv(i1)), pool(conv(i2))
    x = L.Concatenate()([ya, yb, yc, f1, f2])
    return k.Model([a, b, c, i1, i2], L.Dense(2)(x), name="shared_layers")


def nested_frozen(k):
    """A frozen Sequential inside a Functional inside a Functional, the middle one called twice."""
    L = k.layers
    seq = k.Sequential(
        [k.Input((6,)), L.Dense(5, name="seq_dense"), L.BatchNormalization(name="seq_bn"), L.Dense(4, name="seq_out")],
        name="inner_seq",
    )
    seq.trainable = False
    mid_in = k.Input((6,))
    mid = k.Model(mid_in, L.Dense(3, name="mid_dense")(seq(mid_in)), name="mid")
    a = k.Input((6,), name="a")
    b = k.Input((6,), name="b")
    x = L.Concatenate()([mid(a), mid(b)])
    return k.Model([a, b], L.Dense(2, name="head")(x), name="nested_frozen")


def nested_sequentials(k):
    """Sequential in Sequential, and a Functional in a Sequential."""
    L = k.layers
    block = k.Sequential([k.Input((4, 4, 2)), L.Conv2D(3, 1), L.ReLU()], name="block")
    fin = k.Input((4, 4, 3))
    head = k.Model(fin, L.Dense(2)(L.Flatten()(fin)), name="head_model")
    return k.Sequential([k.Input((4, 4, 2)), block, head], name="nested_sequentials")


def multi_io_dict(k):
    L = k.layers
    img = k.Input((8, 8, 1), name="image")
    meta = k.Input((3,), name="meta")
    x = L.Flatten()(L.Conv2D(2, 3)(img))
    x = L.Concatenate()([x, meta])
    score = L.Dense(1, activation="sigmoid", name="score")(x)
    cls = L.Dense(4, activation="softmax", name="cls")(x)
    box = L.Reshape((2, 2), name="box")(L.Dense(4)(x))
    return k.Model({"image": img, "meta": meta}, {"score": score, "cls": cls, "box": box}, name="multi_io_dict")


def multi_io_list(k):
    L = k.layers
    a = k.Input((5,))
    b = k.Input((4, 2))
    h = L.Concatenate()([a, L.Flatten()(b)])
    o1 = L.Dense(3)(h)
    o2 = L.Reshape((4, 2))(L.Dense(8)(h))
    o3 = L.Dense(1)(o1)
    return k.Model([a, b], [o1, o2, o3], name="multi_io_list")


def preprocessing_image(k):
    L = k.layers
    inp = k.Input((20, 20, 3))
    x = L.Resizing(16, 16)(inp)
    x = L.CenterCrop(14, 14)(x)
    x = L.RandomCrop(12, 12)(x)
    x = L.RandomFlip()(x)
    x = L.RandomRotation(0.1)(x)
    x = L.RandomZoom(0.1)(x)
    x = L.RandomContrast(0.1)(x)
    x = L.RandomTranslation(0.1, 0.1)(x)
    if k.__name__ == "tf_keras":  # Keras 3 cannot write RandomBrightness to legacy h5 (see NO_LEGACY_H5)
        x = L.RandomBrightness(0.1, value_range=(0, 255))(x)
    x = L.Rescaling(1 / 127.5, offset=-1)(x)
    x = L.Normalization(axis=-1)(x)
    x = L.Conv2D(2, 3)(x)
    return k.Model(inp, L.Dense(1)(L.Flatten()(x)), name="preprocessing_image")


def preprocessing_channels_first(k):
    L = k.layers
    fmt = "channels_first"
    inp = k.Input((3, 12, 10))
    x = L.Resizing(10, 8, data_format=fmt)(inp)
    x = L.CenterCrop(8, 6, data_format=fmt)(x)
    x = L.RandomCrop(6, 6, data_format=fmt)(x)
    x = L.RandomFlip(data_format=fmt)(x)
    x = L.RandomBrightness(0.1, value_range=(0, 255), data_format=fmt)(x)
    x = L.Normalization(axis=1, mean=[0.1, 0.2, 0.3], variance=[1.0, 2.0, 3.0])(x)
    x = L.Conv2D(2, 3, data_format=fmt)(x)
    return k.Model(inp, L.Flatten()(x), name="preprocessing_channels_first")


def normalization_family(k):
    L = k.layers
    inp = k.Input((6, 8))
    x = L.LayerNormalization(axis=-1)(inp)
    x = L.LayerNormalization(axis=[1, 2], center=False)(x)
    x = L.GroupNormalization(groups=4)(x)
    x = L.BatchNormalization(axis=1, scale=False)(x)
    x = L.UnitNormalization(axis=-1)(x)
    x = L.Normalization(mean=0.5, variance=2.0)(x)
    x = L.Normalization(axis=(1, 2))(x)
    if hasattr(L, "RMSNormalization"):  # Keras 3 only
        x = L.RMSNormalization(axis=-1)(x)
    return k.Model(inp, L.Flatten()(x), name="normalization_family")


def embedding_masking(k):
    L = k.layers
    tok = k.Input((6,), dtype="int32")
    x = L.Embedding(30, 4, mask_zero=True)(tok)
    x = L.Identity()(x)
    seq = k.Input((6, 4))
    m = L.Masking(0.0)(seq)
    y = L.LSTM(3)(m)
    x = L.GlobalAveragePooling1D()(x)
    return k.Model([tok, seq], L.Concatenate()([x, y]), name="embedding_masking")


def _times_two(t):
    return t * 2.0


def lambda_layer(k):
    L = k.layers
    inp = k.Input((5,))
    x = L.Lambda(_times_two, output_shape=(5,), name="double")(inp)
    return k.Model(inp, L.Dense(2)(x), name="lambda_layer")


def applications_blocks(k):
    """The helper layers keras.applications defines for its own models (ConvNeXt, InceptionResNetV2)."""
    import importlib

    convnext = importlib.import_module(f"{k.__name__}.src.applications.convnext")
    inception = importlib.import_module(f"{k.__name__}.src.applications.inception_resnet_v2")
    L = k.layers
    inp = k.Input((6, 6, 4))
    x = L.DepthwiseConv2D(3, padding="same")(inp)
    x = L.LayerNormalization(epsilon=1e-6)(x)
    x = L.Dense(8, activation="gelu")(x)
    x = L.Dense(4)(x)
    x = convnext.LayerScale(1e-6, 4, name="layer_scale")(x)
    x = convnext.StochasticDepth(0.1, name="stochastic_depth")(x)
    x = L.Add()([inp, x])
    y = L.Conv2D(4, 1)(x)
    x = inception.CustomScaleLayer(0.17, name="custom_scale")([x, y])
    return k.Model(inp, L.GlobalAveragePooling2D()(x), name="applications_blocks")


def sequential_cnn(k):
    L = k.layers
    return k.Sequential(
        [
            k.Input((12, 12, 1)),
            L.Conv2D(4, 3, activation="relu"),
            L.BatchNormalization(),
            L.MaxPooling2D(),
            L.Dropout(0.25),
            L.Flatten(),
            L.Dense(8, activation="relu"),
            L.Dense(3, activation="softmax"),
        ],
        name="sequential_cnn",
    )


def sequential_built(k):
    """No Input layer: built with build(input_shape), so the config has no InputLayer."""
    L = k.layers
    model = k.Sequential([L.Dense(4, activation="relu"), L.LayerNormalization(), L.Dense(2)], name="sequential_built")
    model.build((None, 6))
    return model


BOTH = [
    mlp_activations, cnn2d_channels_last, cnn2d_channels_first, conv1d_channels_last, conv1d_channels_first,
    conv3d_channels_last, conv3d_channels_first, conv_groups, conv_lstm, rnn_stack, seq2seq_states, rnn_cells,
    bidirectional, time_distributed, mha_cross, mha_axes, attention_layers, transformer_block, merges, reshaping,
    shared_layers, nested_frozen, nested_sequentials, multi_io_dict, multi_io_list, preprocessing_image,
    normalization_family, embedding_masking, lambda_layer, applications_blocks, sequential_cnn, sequential_built,
]
KERAS3_ONLY = [adaptive_pooling, preprocessing_channels_first]  # classes or arguments tf_keras lacks
# lookups, wrapped models and mask ops, built in tests/zoo.py
BOTH += reader_zoo.ZOO_BOTH
KERAS3_ONLY += reader_zoo.ZOO_KERAS3_ONLY

ZOO = [(f"k3-{f.__name__}", K3, f) for f in BOTH + KERAS3_ONLY] + [(f"k2-{f.__name__}", K2, f) for f in BOTH]
BY_ID = {id_: (flavour, builder) for id_, flavour, builder in ZOO}
# Keras 3 cannot save these as legacy .h5: RandomBrightness keeps value_range in a tracked list
# whose deepcopy in get_config fails ("cannot pickle 'module' object"), a Keras bug.
NO_LEGACY_H5 = {"k3-preprocessing_channels_first"}


# ---- building and saving, once per module -----------------------------------------------------


class Built:
    def __init__(self, id_, flavour, model, files):
        self.id, self.flavour, self.model, self.files = id_, flavour, model, files


@pytest.fixture(scope="module")
def zoo_models(tmp_path_factory):
    """get(id) -> Built: each model built and saved on first use, then kept for the module."""
    folder = str(tmp_path_factory.mktemp("zoo_models"))
    cache: dict[str, Built] = {}

    def get(id_: str) -> Built:
        if id_ not in cache:
            flavour, builder = BY_ID[id_]
            module = keras if flavour == K3 else tf_keras
            model = builder(module)
            files = {}
            if flavour == K3:
                files["keras-v3"] = os.path.join(folder, f"{id_}.keras")
                keras.saving.save_model(model, files["keras-v3"])
                if id_ not in NO_LEGACY_H5:
                    files["keras-h5"] = os.path.join(folder, f"{id_}.h5")
                    keras.saving.save_model(model, files["keras-h5"])
            else:
                files["keras-h5"] = os.path.join(folder, f"{id_}.h5")
                model.save(files["keras-h5"], save_format="h5")
            cache[id_] = Built(id_, flavour, model, files)
        return cache[id_]

    yield get
    cache.clear()
    # Reset Keras's global layer-name counters, so that later test modules get the auto-names
    # ("dense", "add") they expect, as if the zoo had never been built.
    keras.backend.clear_session()
    tf_keras.backend.clear_session()


# ---- what Keras says --------------------------------------------------------------------------


def _dims(tensor) -> tuple:
    shape = tensor.shape
    if hasattr(shape, "as_list"):
        shape = shape.as_list()
    return tuple(None if d is None else int(d) for d in shape)


def _flat(obj) -> list:
    if isinstance(obj, dict):
        return [t for v in obj.values() for t in _flat(v)]
    if isinstance(obj, (list, tuple)):
        return [t for v in obj for t in _flat(v)]
    return [obj]


def _is_model(layer) -> bool:
    return hasattr(layer, "layers") and hasattr(layer, "outputs") and not hasattr(layer, "cell")


def _first_call_outputs(layer, flavour) -> list:
    """The output shapes of the layer's first call (a nested model: its own outputs)."""
    if _is_model(layer):
        return [_dims(t) for t in layer.outputs]
    if flavour == K2:
        return [_dims(t) for t in _flat(layer.get_output_at(0))]
    return [_dims(t) for t in _flat(layer.output)]


def _size(variables) -> int:
    return sum(math.prod(int(d) for d in v.shape) for v in variables)


def _keras_layers(model, prefix=""):
    """(path, layer) for every layer at every depth, InputLayers left out."""
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        path = f"{prefix}/{layer.name}" if prefix else layer.name
        yield path, layer
        if _is_model(layer):
            yield from _keras_layers(layer, path)


def _keras_ops(model, prefix=""):
    """Paths of the Keras 3 operations in a functional graph that are not layers (ops.NotEqual ...)."""
    for op in getattr(model, "operations", None) or []:
        path = f"{prefix}/{op.name}" if prefix else op.name
        if not hasattr(op, "count_params"):
            yield path
        elif _is_model(op):
            yield from _keras_ops(op, path)


def _shapes(shapes) -> list:
    return [None if s is None else tuple(s) for s in shapes]


# ---- the comparison -------------------------------------------------------------------------------


def compare(built: Built, graph, where: str) -> list[str]:
    """Every disagreement between modelaudit's recomputation of `graph` and Keras, one line each."""
    model, flavour = built.model, built.flavour
    problems = []

    def bad(path, what, ours, theirs):
        problems.append(f"{built.id} [{where}] {path}: {what}: modelaudit {ours!r} != keras {theirs!r}")

    inferred = propagate(graph)
    rows = {r.path: r for r in inferred.rows}
    ops = set(_keras_ops(model))
    seen = set()
    for path, layer in _keras_layers(model):
        row = rows.get(path)
        if row is None:
            problems.append(f"{built.id} [{where}] {path}: no row for this Keras layer")
            continue
        seen.add(path)
        if row.params != layer.count_params():
            bad(path, "params", row.params, layer.count_params())
        trainable = _size(layer.trainable_weights)
        if row.trainable_params != trainable:
            bad(path, "trainable params", row.trainable_params, trainable)
        if row.non_trainable_params != layer.count_params() - trainable:
            bad(path, "non-trainable params", row.non_trainable_params, layer.count_params() - trainable)
        ours = _shapes(row.output_shapes[0]) if row.output_shapes else None
        theirs = _first_call_outputs(layer, flavour)
        if ours != theirs:
            bad(path, "output shapes of call 0", ours, theirs)
        if not row.recomputed:
            problems.append(f"{built.id} [{where}] {path}: not recomputed ({row.unknown_reason})")
        if row.shape_error:
            problems.append(f"{built.id} [{where}] {path}: shape error: {row.shape_error}")
        if row.non_positive:
            problems.append(f"{built.id} [{where}] {path}: non-positive dimension in {row.non_positive}")
        if row.recorded_mismatch:
            problems.append(f"{built.id} [{where}] {path}: recorded shape conflicts: {row.recorded_mismatch}")
        for issue in row.weight_issues:
            expected = issue.expected and (issue.expected.name, issue.expected.shape)
            stored = issue.stored and (issue.stored.path, issue.stored.shape)
            problems.append(f"{built.id} [{where}] {path}: weight {issue.kind}: expected {expected}, stored {stored}")
    for path, row in rows.items():
        if path in seen or row.layer.class_name == "InputLayer":
            continue
        if path in ops:
            # A Keras 3 op in the graph (Embedding(mask_zero=True) adds a NotEqual computing the mask):
            # not in model.layers, no spec; its shape comes from the file's records.
            if row.shape_error or not row.output_shapes or None in row.output_shapes[0]:
                problems.append(f"{built.id} [{where}] {path}: op {row.layer.class_name} has no recorded shape")
            continue
        problems.append(f"{built.id} [{where}] {path}: a row ({row.layer.class_name}) with no Keras layer")

    total, trainable = model.count_params(), _size(model.trainable_weights)
    non_trainable = _size(model.non_trainable_weights)
    if inferred.total_params != total:
        bad("<model>", "total params", inferred.total_params, total)
    if inferred.trainable_params != trainable:
        bad("<model>", "trainable params", inferred.trainable_params, trainable)
    if inferred.non_trainable_params != non_trainable:
        bad("<model>", "non-trainable params", inferred.non_trainable_params, non_trainable)
    if inferred.stored_params is not None and inferred.stored_params != total:
        bad("<model>", "stored params", inferred.stored_params, total)
    outs = _shapes(inferred.output_shapes)
    if isinstance(getattr(model, "output", None), dict):
        # dict outputs: the config keeps them in insertion order, Keras flattens them sorted by name
        outs = [shape for _, shape in sorted(zip(graph.output_names, outs))]
    theirs = [_dims(t) for t in model.outputs]
    if outs != theirs:
        bad("<model>", "model output shapes", outs, theirs)
    if graph.unassigned_weights:
        problems.append(f"{built.id} [{where}]: weights assigned to no layer: {graph.unassigned_weights}")
    return problems


def audit_problems(built: Built, target, where: str) -> list[str]:
    # integrity and security: no error or warning on a correct model (MA407 on a custom class is info),
    # but for what a Lambda layer is: bytecode (MA401) or a function by reference (MA402)
    report = modelaudit.audit(target, config={"select": ["MA1", "MA4"]})
    expected = {"MA401", "MA402"} if "lambda" in built.id else set()
    problems = []
    for fr in report.files:
        if fr.error:
            problems.append(f"{built.id} [{where}]: cannot read: {fr.error}")
        problems.extend(f"{built.id} [{where}]: internal error: {e}" for e in fr.internal_errors)
        for f in fr.findings:
            if f.severity.value in ("error", "warning") and f.code not in expected:
                problems.append(f"{built.id} [{where}] {f.layer}: {f.code} [{f.severity.value}] {f.message}")
    return problems


@pytest.mark.parametrize("model_id", [id_ for id_, _, _ in ZOO])
def test_zoo_model_matches_keras(zoo_models, model_id):
    built = zoo_models(model_id)
    problems = compare(built, live.read(built.model), "live")
    problems += audit_problems(built, built.model, "live")
    for fmt, path in built.files.items():
        graph = formats.read(path)
        assert graph.format == fmt, f"{model_id}: {path} read as {graph.format}, expected {fmt}"
        problems += compare(built, graph, fmt)
        problems += audit_problems(built, path, fmt)
    assert not problems, "\n".join(problems)


# ---- coverage: every spec'd class appears in the zoo -----------------------------------------------


def _aliases() -> set[str]:
    """Spec names Keras resolves to a class of another name: never written as a class_name."""
    out = set()
    for name in registry.known_classes():
        resolved = [getattr(m.layers, name, None) for m in (keras, tf_keras)]
        resolved = [c for c in resolved if c is not None]
        if resolved and all(getattr(c, "__name__", name) != name for c in resolved):
            out.add(name)
    return out


def _class_names(obj, out: set) -> set:
    if isinstance(obj, dict):
        if isinstance(obj.get("class_name"), str):
            out.add(obj["class_name"])
        for v in obj.values():
            _class_names(v, out)
    elif isinstance(obj, list):
        for v in obj:
            _class_names(v, out)
    return out


def test_zoo_covers_every_spec(zoo_models):
    used: set[str] = set()
    for id_, _, _ in ZOO:
        _class_names(live.read(zoo_models(id_).model).config, used)
    # keras_hub's specs ("keras_hub>TransformerEncoder") are held to test_keras_hub.py's own models
    required = {n for n in registry.known_classes() if not n.startswith("keras_hub>")} - _aliases()
    # tfmot's wrappers (infer/tfmot.py) are held to test_tfmot.py's own models
    required -= {n for n in required if type(registry.get(n)).__module__ == "modelaudit.infer.tfmot"}
    # QKeras's and Larq's (infer/qkeras.py, larq.py) are held to test_qkeras_larq.py's real files
    required -= {n for n in required if type(registry.get(n)).__module__ in ("modelaudit.infer.qkeras", "modelaudit.infer.larq")}
    # Keras's ReversibleEmbedding (float, reversed, int8 / int4) is held to test_reversible_embedding.py's
    required -= {"ReversibleEmbedding"}
    missing = sorted(required - used)
    assert not missing, f"classes with a spec but no zoo model: {missing}"


def test_zoo_is_large_and_varied():
    assert len(ZOO) >= 30
    assert {K3, K2} == {flavour for _, flavour, _ in ZOO}
