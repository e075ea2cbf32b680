"""Recurrent, attention and image-preprocessing specs against real Keras 3 and Keras 2 (tf_keras).

Each case builds one layer with `L` = keras.layers (and, where tf_keras has the same API,
tf_keras.layers) and compares our spec with what Keras builds: output shapes, params, weight shapes
and trainability. A few cases also pin MACs (derived by hand in the comment) or the formula text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable, Optional

import pytest

from modelaudit.infer import registry
from tests.differential.keras_check import _shape, check_layer, check_layer_keras2, json_config


@dataclass
class Case:
    id: str
    build: Callable  # L -> layer, L being keras.layers or tf_keras.layers
    shapes: list  # input shapes, batch included; [query, value(, key)] for attention
    keras2: bool = True  # tf_keras accepts the same constructor call
    positional: bool = False  # called as layer(query, value, key) rather than layer([...])
    frozen_inner: bool = False  # the wrapped layer has trainable=False
    macs: Optional[int] = None
    formula: Optional[str] = None


SEQ = [(None, 10, 8)]
IMG = [(None, 12, 16, 3)]
IMG_CF = [(None, 3, 12, 16)]

CASES = [
    # ---- SimpleRNN / LSTM / GRU: return_sequences x return_state, go_backwards, use_bias
    Case("simple_rnn", lambda L: L.SimpleRNN(5), SEQ),
    Case("simple_rnn-seq-state", lambda L: L.SimpleRNN(5, return_sequences=True, return_state=True), SEQ),
    Case("simple_rnn-backwards-nobias", lambda L: L.SimpleRNN(5, go_backwards=True, use_bias=False), SEQ),
    # LSTM, 10 steps of 8 features, 16 units: per step 4 gates x (8 input + 16 recurrent) x 16 units
    # = 4 * 24 * 16 = 1536 MACs; x 10 steps = 15360.
    Case("lstm", lambda L: L.LSTM(16), SEQ, macs=15360, formula="4·((8 + 16 + 1)·16) = 1600"),
    Case("lstm-seq", lambda L: L.LSTM(16, return_sequences=True), SEQ),
    Case("lstm-state", lambda L: L.LSTM(16, return_state=True), SEQ),
    Case("lstm-seq-state", lambda L: L.LSTM(16, return_sequences=True, return_state=True), SEQ),
    Case("lstm-unknown-steps-nobias", lambda L: L.LSTM(7, use_bias=False), [(None, None, 3)]),
    Case("lstm-stateful", lambda L: L.LSTM(4, stateful=True, return_state=True), [(2, 5, 3)]),
    Case("gru-reset_after", lambda L: L.GRU(6, reset_after=True), SEQ, formula="3·((8 + 6 + 2)·6) = 288"),
    Case("gru-reset_before", lambda L: L.GRU(6, reset_after=False), SEQ, formula="3·((8 + 6 + 1)·6) = 270"),
    Case(
        "gru-seq-state-backwards",
        lambda L: L.GRU(6, return_sequences=True, return_state=True, go_backwards=True),
        SEQ,
    ),
    Case("gru-nobias", lambda L: L.GRU(6, use_bias=False, reset_after=False), SEQ),
    # ---- RNN with a known cell; stacked cells
    Case("rnn-lstm_cell", lambda L: L.RNN(L.LSTMCell(4), return_sequences=True), SEQ),
    Case("rnn-gru_cell-state", lambda L: L.RNN(L.GRUCell(4, reset_after=False), return_state=True), SEQ),
    Case("rnn-stacked", lambda L: L.RNN([L.LSTMCell(4), L.GRUCell(3), L.SimpleRNNCell(2)]), SEQ),
    # ---- Bidirectional: merge modes, return_state, backward_layer, frozen inner layer
    Case("bidi-lstm-concat", lambda L: L.Bidirectional(L.LSTM(16)), SEQ, formula="2·(4·((8 + 16 + 1)·16)) = 3200"),
    Case("bidi-lstm-sum-seq", lambda L: L.Bidirectional(L.LSTM(4, return_sequences=True), merge_mode="sum"), SEQ),
    Case("bidi-gru-mul", lambda L: L.Bidirectional(L.GRU(4), merge_mode="mul"), SEQ),
    Case("bidi-simple-ave", lambda L: L.Bidirectional(L.SimpleRNN(4), merge_mode="ave"), SEQ),
    Case("bidi-lstm-none", lambda L: L.Bidirectional(L.LSTM(4, return_sequences=True), merge_mode=None), SEQ),
    Case("bidi-lstm-concat-state", lambda L: L.Bidirectional(L.LSTM(4, return_state=True)), SEQ),
    Case(
        "bidi-lstm-none-seq-state",
        lambda L: L.Bidirectional(L.LSTM(4, return_sequences=True, return_state=True), merge_mode=None),
        SEQ,
    ),
    Case("bidi-gru-sum-state", lambda L: L.Bidirectional(L.GRU(4, return_state=True), merge_mode="sum"), SEQ),
    Case(
        "bidi-backward_layer",
        lambda L: L.Bidirectional(
            L.LSTM(4, return_sequences=True), backward_layer=L.GRU(4, return_sequences=True, go_backwards=True)
        ),
        SEQ,
    ),
    Case("bidi-frozen-inner", lambda L: L.Bidirectional(L.GRU(3, trainable=False)), SEQ, frozen_inner=True),
    # ---- TimeDistributed(Dense) on rank 3 and 4, frozen inner layer
    Case("td-dense-rank3", lambda L: L.TimeDistributed(L.Dense(7)), SEQ),
    Case("td-dense-rank4", lambda L: L.TimeDistributed(L.Dense(7)), [(None, 10, 5, 8)]),
    Case("td-dense-unknown-steps", lambda L: L.TimeDistributed(L.Dense(7, use_bias=False)), [(None, None, 8)]),
    Case("td-dense-frozen", lambda L: L.TimeDistributed(L.Dense(7, trainable=False)), SEQ, frozen_inner=True),
    # ---- MultiHeadAttention (called as layer(query, value[, key]))
    # query (5, 6), value (7, 8), 2 heads, key_dim 3, value_dim 4; projections:
    #   query 5*6*2*3 = 180, key 7*8*2*3 = 336, value 7*8*2*4 = 448,
    #   output 5*(2*4)*6 = 240 (back to the query's 6 features);
    # scores 2 heads * 5 * 7 * 3 = 210; weighted sum 2 * 5 * 7 * 4 = 280.  Total 1694.
    Case(
        "mha-qv-value_dim",
        lambda L: L.MultiHeadAttention(num_heads=2, key_dim=3, value_dim=4),
        [(None, 5, 6), (None, 7, 8)],
        positional=True,
        macs=1694,
        formula="(6 + 1)·2·3 + (8 + 1)·2·3 + (8 + 1)·2·4 + (2·4 + 1)·6 = 222",
    ),
    Case("mha-self", lambda L: L.MultiHeadAttention(4, 8), [(None, 10, 16), (None, 10, 16)], positional=True),
    Case(
        "mha-key",
        lambda L: L.MultiHeadAttention(2, 3, output_shape=9),
        [(None, 5, 6), (None, 7, 8), (None, 7, 4)],
        positional=True,
    ),
    Case(
        "mha-output_shape-2d-nobias",
        lambda L: L.MultiHeadAttention(2, 3, output_shape=(4, 5), use_bias=False),
        [(None, 5, 6), (None, 7, 8)],
        positional=True,
    ),
    # query (3, 4, 8) attending over axis 2 only: per head and per index of axis 1 (3),
    # 4 query x 4 key positions: scores 2*3*4*4*2 = 192, sum 192; projections: q, k, v each
    # 12 positions * 8 * 2 * 2 = 384, output 12 * (2*2) * 8 = 384. Total 4 * 384 + 2 * 192 = 1920.
    Case(
        "mha-attention_axes",
        lambda L: L.MultiHeadAttention(2, 2, attention_axes=2),
        [(None, 3, 4, 8), (None, 3, 4, 8)],
        positional=True,
        macs=1920,
    ),
    Case(
        "mha-attention_axes-2d",
        lambda L: L.MultiHeadAttention(2, 2, attention_axes=(2, 3)),
        [(None, 5, 3, 4, 8), (None, 5, 3, 2, 8)],
        positional=True,
    ),
    Case(
        "mha-gate",
        lambda L: L.MultiHeadAttention(2, 3, use_gate=True),
        [(None, 5, 6), (None, 7, 8)],
        keras2=False,
        positional=True,
    ),
    # ---- Attention / AdditiveAttention (called on a list)
    Case("attention-dot", lambda L: L.Attention(), [(None, 5, 6), (None, 7, 6)]),
    Case("attention-scale", lambda L: L.Attention(use_scale=True), [(None, 5, 6), (None, 7, 9), (None, 7, 6)]),
    Case("attention-concat", lambda L: L.Attention(score_mode="concat"), [(None, 5, 6), (None, 7, 6)]),
    Case(
        "attention-concat-scale",
        lambda L: L.Attention(use_scale=True, score_mode="concat"),
        [(None, 5, 6), (None, 7, 6)],
    ),
    # Keras 2 sizes `scale` by the value's last dim, Keras 3 by the query's: equal in any model
    # that runs (Keras 2 multiplies scale into the query+key sum), so only Keras 3 gets unequal ones.
    Case(
        "additive-value_dim",
        lambda L: L.AdditiveAttention(),
        [(None, 5, 6), (None, 7, 4), (None, 7, 6)],
        keras2=False,
    ),
    Case("additive", lambda L: L.AdditiveAttention(), [(None, 5, 6), (None, 7, 6)]),
    Case("additive-noscale", lambda L: L.AdditiveAttention(use_scale=False), [(None, 5, 6), (None, 7, 6)]),
    # ---- image preprocessing
    Case("rescaling", lambda L: L.Rescaling(1 / 255.0, offset=-1.0), IMG),
    Case("rescaling-rank2", lambda L: L.Rescaling(2.0), [(None, 5)]),
    Case("resizing", lambda L: L.Resizing(6, 7), IMG),
    Case("resizing-cf", lambda L: L.Resizing(6, 7, data_format="channels_first"), IMG_CF, keras2=False),
    Case("center_crop", lambda L: L.CenterCrop(8, 9), IMG),
    Case("center_crop-cf", lambda L: L.CenterCrop(8, 9, data_format="channels_first"), IMG_CF, keras2=False),
    Case("random_crop", lambda L: L.RandomCrop(8, 9), IMG),
    Case("random_crop-cf", lambda L: L.RandomCrop(8, 9, data_format="channels_first"), IMG_CF, keras2=False),
    Case("random_flip", lambda L: L.RandomFlip("horizontal"), IMG),
    Case("random_rotation", lambda L: L.RandomRotation(0.1), IMG),
    Case("random_zoom", lambda L: L.RandomZoom(0.1, 0.2), IMG),
    Case("random_contrast", lambda L: L.RandomContrast(0.2), IMG),
    Case("random_translation", lambda L: L.RandomTranslation(0.1, 0.1), IMG),
    Case("random_brightness", lambda L: L.RandomBrightness(0.2), IMG),
]

# Keras 2 only: time_major swaps the batch and time axes of the input and of a returned sequence.
KERAS2_ONLY = [
    Case(
        "lstm-time_major",
        lambda L: L.LSTM(4, time_major=True, return_sequences=True, return_state=True),
        [(5, None, 3)],
    ),
]


def _check_keras2_own(layer, input_shapes, positional: bool):
    """check_layer_keras2 for what it cannot do: call layer(query, value, key) (tf_keras
    MultiHeadAttention), and read trainability as tf_keras means it. tf variables keep
    trainable=True under a frozen layer; tf_keras files them by the layer in trainable_weights.
    """
    import tf_keras

    from modelaudit.formats.dialects import normalize_layer_config

    inputs = [tf_keras.Input(batch_shape=s) for s in input_shapes]
    out = layer(*inputs) if positional else layer(inputs[0] if len(inputs) == 1 else inputs)
    outs = out if isinstance(out, (list, tuple)) else [out]
    trainable_ids = {id(w) for w in layer.trainable_weights}
    raw = json.loads(json.dumps(tf_keras.layers.serialize(layer)))
    config = normalize_layer_config(raw["class_name"], raw["config"])
    spec = registry.get(type(layer).__name__)
    shapes = [tuple(s) for s in input_shapes]
    ours = spec.weights(config, shapes)
    assert [tuple(s) for s in spec.output_shapes(config, shapes)] == [_shape(o.shape) for o in outs]
    assert sum(w.size for w in ours) == layer.count_params()
    assert sorted((tuple(w.shape), w.trainable) for w in ours) == sorted(
        (_shape(w.shape), id(w) in trainable_ids) for w in layer.weights
    )


PARAMS = [pytest.param(c, "keras3", id=f"{c.id}[keras3]") for c in CASES]
PARAMS += [pytest.param(c, "keras2", id=f"{c.id}[keras2]") for c in CASES + KERAS2_ONLY if c.keras2]


@pytest.mark.parametrize("case,dialect", PARAMS)
def test_spec_matches_keras(case: Case, dialect: str):
    if dialect == "keras2":
        import tf_keras

        layer = case.build(tf_keras.layers)
        if case.positional or case.frozen_inner:
            _check_keras2_own(layer, case.shapes, case.positional)
        else:
            check_layer_keras2(layer, case.shapes)
        return

    import keras

    layer = case.build(keras.layers)
    # a non-empty call_kwargs makes check_layer call layer(query, value, key) instead of layer([...])
    check_layer(layer, case.shapes, call_kwargs={"training": False} if case.positional else None)
    config, shapes = json_config(layer), [tuple(s) for s in case.shapes]
    spec = registry.get(type(layer).__name__)
    if case.macs is not None:
        assert spec.macs(config, shapes, spec.output_shapes(config, shapes)) == case.macs
    if case.formula is not None:
        assert spec.formula(config, shapes) == case.formula


TD_DENSE = {"layer": {"class_name": "Dense", "config": {"units": 3}}}
BIDI_SUM_UNEQUAL = {
    "layer": {"class_name": "LSTM", "config": {"units": 4}},
    "backward_layer": {"class_name": "GRU", "config": {"units": 6, "go_backwards": True}},
    "merge_mode": "sum",
}
MHA = {"num_heads": 2, "key_dim": 3}

# (id, class, config, input shapes, error): inputs Keras cannot run, refused with a clear error
REFUSED = [
    ("lstm-rank2", "LSTM", {"units": 4}, [(None, 8)], registry.ShapeError),
    ("gru-rank4", "GRU", {"units": 4}, [(None, 5, 4, 8)], registry.ShapeError),
    ("lstm-unknown-features", "LSTM", {"units": 4}, [(None, 5, None)], registry.ShapeError),
    ("td-rank2", "TimeDistributed", TD_DENSE, [(None, 8)], registry.ShapeError),
    ("bidi-sum-unequal", "Bidirectional", BIDI_SUM_UNEQUAL, [(None, 5, 8)], registry.ShapeError),
    ("mha-key-value-steps", "MultiHeadAttention", MHA, [(None, 5, 6), (None, 7, 8), (None, 6, 8)], registry.ShapeError),
    ("mha-rank-mismatch", "MultiHeadAttention", MHA, [(None, 5, 6), (None, 2, 7, 8)], registry.ShapeError),
    ("mha-axis-is-features", "MultiHeadAttention", dict(MHA, attention_axes=[2]), [(None, 5, 6)], registry.ShapeError),
    ("attention-rank2", "Attention", {}, [(None, 6), (None, 6)], registry.ShapeError),
    ("attention-query-key-dims", "Attention", {}, [(None, 5, 6), (None, 7, 6), (None, 7, 5)], registry.ShapeError),
    ("resizing-rank3", "Resizing", {"height": 4, "width": 4}, [(None, 28, 28)], registry.ShapeError),
    ("random_flip-rank3", "RandomFlip", {}, [(None, 28, 28)], registry.ShapeError),
    # a cell we have no spec for: not the user's error, so not a ShapeError
    ("rnn-unknown-cell", "RNN", {"cell": {"class_name": "MyCell", "config": {"units": 3}}}, [(None, 5, 8)],
     NotImplementedError),
]


@pytest.mark.parametrize("class_name,config,shapes,error", [pytest.param(*r[1:], id=r[0]) for r in REFUSED])
def test_impossible_input_is_refused(class_name, config, shapes, error):
    spec = registry.get(class_name)
    with pytest.raises(error):
        spec.output_shapes(config, shapes)
        spec.weights(config, shapes)
