"""MA3xx: architecture rules.

One table of small real models, each built in a few lines with Keras 3 (saved as .keras) and most also
with tf_keras (saved as .h5), then audited: a case is (model builder, config) -> the MA3xx findings
expected, as (code, layer path) pairs, info included. Every rule fires on its case and stays quiet on
the near-misses next to it. Then the false-positive guard a CI gate needs: none of the 40
keras.applications architectures, none of the committed samples and none of the correct models of the
objective tests gets an MA3xx warning or error, except MA301 on VGG16 and VGG19, whose first Dense
after the Flatten holds most of their weights.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass
from typing import Callable, Optional

import pytest

import modelaudit
from modelaudit.engine import Settings, Severity, run_rules
from tests.differential.test_applications import APPLICATIONS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
K3, K2 = "keras", "tf_keras"


@dataclass
class Case:
    id: str
    build: Callable  # keras module -> model
    expect: set  # {(code, layer path or None)} of MA3xx findings, info included
    dialects: tuple = (K3, K2)
    config: Optional[dict] = None
    edit: Optional[Callable] = None  # config.json -> None, applied to the saved .keras file
    severity: Optional[dict] = None  # {code: Severity} where the rule grades its findings


def seq(*make, compile_with=None, name="model"):
    """A Sequential of the layers `make(K)` returns, compiled with `compile_with` (a loss) if given."""

    def build(K):
        layers = [layer for m in make for layer in m(K)]
        model = K.Sequential(layers, name=name)
        if compile_with is not None:
            model.compile(optimizer="adam", loss=compile_with)
        return model

    return build


def image(size=16, channels=3):
    return lambda K: [K.Input((size, size, channels))]


def vector(n=32):
    return lambda K: [K.Input((n,))]


def layers(fn):
    """Layers written as a lambda of K: layers(lambda K: [K.layers.Dense(4)])."""
    return fn


HEAD = layers(lambda K: [K.layers.GlobalAveragePooling2D(), K.layers.Dense(10, activation="softmax", name="probs")])


# ---- MA301 dense-parameter-hotspot ---------------------------------------------------------------------

def hotspot(*between, units=256, size=32):
    # 30·30·8 = 7,200 features -> Dense(256): 1,843,456 params, 99% of the model
    return seq(image(size), layers(lambda K: [K.layers.Conv2D(8, 3, activation="relu", name="conv"),
                                             K.layers.Flatten(name="flatten")]),
               *between, layers(lambda K: [K.layers.Dense(units, activation="relu", name="fc"),
                                           K.layers.Dense(10, activation="softmax", name="probs")]))


MA301 = [
    Case("MA301-flatten-dense", hotspot(), {("MA301", "fc")}),
    Case("MA301-through-dropout", hotspot(layers(lambda K: [K.layers.Dropout(0.5, name="drop")])), {("MA301", "fc")}),
    Case("MA301-under-1M-params", hotspot(units=64), set()),  # 460,864 params: most of the model, but small
    Case("MA301-global-pooling-instead", seq(image(32), layers(lambda K: [K.layers.Conv2D(8, 3, activation="relu")]),
                                             layers(lambda K: [K.layers.GlobalAveragePooling2D(),
                                                               K.layers.Dense(256, activation="relu")])), set()),
    Case("MA301-configured-min-params", hotspot(units=64), {("MA301", "fc")},
         config={"rules": {"MA301": {"min-params": 100_000}}}),
    Case("MA301-configured-share", hotspot(), set(), config={"rules": {"dense-parameter-hotspot": {"share": 0.999}}}),
]


# ---- MA302 bias-before-batchnorm -----------------------------------------------------------------------

def conv_bn(conv=None, bn=None):
    conv, bn = conv or {}, bn or {}
    return seq(image(), layers(lambda K: [K.layers.Conv2D(8, 3, name="conv", **conv),
                                          K.layers.BatchNormalization(name="bn", **bn),
                                          K.layers.Activation("relu")]), HEAD)


def conv_bn_and_skip(K):
    inputs = K.Input((16, 16, 8))
    x = K.layers.Conv2D(8, 3, padding="same", name="conv")(inputs)
    y = K.layers.BatchNormalization(name="bn")(x)
    z = K.layers.Add(name="add")([x, y])  # the conv's output is also used as it is: its bias matters
    return K.Model(inputs, K.layers.GlobalAveragePooling2D()(z))


MA302 = [
    Case("MA302-conv-bias-bn", conv_bn(), {("MA302", "conv")}),
    Case("MA302-dense-bias-bn", seq(vector(), layers(lambda K: [K.layers.Dense(16, name="dense"),
                                                               K.layers.BatchNormalization(name="bn"),
                                                               K.layers.Dense(1)])), {("MA302", "dense")}),
    Case("MA302-use-bias-false", conv_bn(conv={"use_bias": False}), set()),
    Case("MA302-center-false", conv_bn(bn={"center": False}), set()),
    Case("MA302-activation-between", conv_bn(conv={"activation": "relu"}), set()),
    Case("MA302-bn-on-another-axis", conv_bn(bn={"axis": 1}), {("MA311", "bn")}),
    Case("MA302-output-also-used-elsewhere", conv_bn_and_skip, set()),
]


# ---- MA303 dropout-before-batchnorm ---------------------------------------------------------------------

def dropout_bn(rate, order=("drop", "bn")):
    def make(K):
        parts = {"drop": K.layers.Dropout(rate, name="drop"), "bn": K.layers.BatchNormalization(name="bn")}
        return ([K.layers.Dense(16, activation="relu", name="hidden")] + [parts[p] for p in order]
                + [K.layers.Dense(1, name="out")])

    return seq(vector(), make)


MA303 = [
    Case("MA303-dropout-bn", dropout_bn(0.3), {("MA303", "bn")}),
    Case("MA303-spatial-dropout-bn", seq(image(), layers(lambda K: [
        K.layers.Conv2D(8, 3, activation="relu", name="conv"), K.layers.SpatialDropout2D(0.2, name="drop"),
        K.layers.BatchNormalization(name="bn")]), HEAD), {("MA303", "bn")}),
    Case("MA303-bn-then-dropout", dropout_bn(0.3, order=("bn", "drop")), set()),
    Case("MA303-rate-zero", dropout_bn(0.0), {("MA310", "drop")}),
]


# ---- MA304 linear-stack -------------------------------------------------------------------------------

def dense_pair(first, *between, units=64, inputs=128, out=10):
    return seq(vector(inputs), layers(lambda K: [K.layers.Dense(units, name="first", **first)]), *between,
               layers(lambda K: [K.layers.Dense(out, activation="softmax", name="second")]))


def linear_conv_bottleneck(K):
    # MobileNetV2's block: expand (relu6), depthwise (relu6), project with a linear 1x1 conv, then a conv
    inputs = K.Input((16, 16, 8))
    x = K.layers.Conv2D(48, 1, activation="relu6")(inputs)
    x = K.layers.DepthwiseConv2D(3, padding="same", activation="relu6")(x)
    x = K.layers.Conv2D(8, 1, name="project")(x)  # linear: deliberate
    x = K.layers.Conv2D(16, 1, name="next")(x)
    return K.Model(inputs, K.layers.GlobalAveragePooling2D()(x))


MA304 = [
    Case("MA304-linear-dense-dense", dense_pair({}), {("MA304", "second")}),
    Case("MA304-through-dropout", dense_pair({}, layers(lambda K: [K.layers.Dropout(0.2)])), {("MA304", "second")}),
    Case("MA304-through-linear-activation", dense_pair({}, layers(lambda K: [K.layers.Activation("linear")])),
         {("MA304", "second")}),
    Case("MA304-relu-between", dense_pair({"activation": "relu"}), set()),
    Case("MA304-activation-layer-between", dense_pair({}, layers(lambda K: [K.layers.Activation("relu")])), set()),
    Case("MA304-normalization-between", dense_pair({}, layers(lambda K: [K.layers.BatchNormalization()])),
         {("MA302", "first")}),
    Case("MA304-low-rank-bottleneck", dense_pair({}, units=8, inputs=128, out=128), set()),
    Case("MA304-bottleneck-not-allowed", dense_pair({}, units=8, inputs=128, out=128), {("MA304", "second")},
         config={"rules": {"MA304": {"allow-bottleneck": False}}}),
    Case("MA304-linear-conv-bottleneck", linear_conv_bottleneck, set()),
]


# ---- MA305 double-activation --------------------------------------------------------------------------

def activated(dense_activation, *after, units=10):
    return seq(vector(), layers(lambda K: [K.layers.Dense(units, activation=dense_activation, name="dense")]), *after)


# graded by harm (issue 17): a repeat that changes nothing is info, one that changes the function a
# warning, an error when it makes the output
INFO, WARNING, ERROR = ({"MA305": s} for s in (Severity.INFO, Severity.WARNING, Severity.ERROR))

MA305 = [
    Case("MA305-relu-then-ReLU", activated("relu", layers(lambda K: [K.layers.ReLU(name="again")])),
         {("MA305", "again")}, severity=INFO),
    Case("MA305-softmax-then-Softmax", activated("softmax", layers(lambda K: [K.layers.Softmax(name="again")])),
         {("MA305", "again")}, severity=ERROR),
    Case("MA305-sigmoid-dropout-sigmoid", activated("sigmoid", layers(lambda K: [
        K.layers.Dropout(0.1), K.layers.Activation("sigmoid", name="again")])), {("MA305", "again")}, severity=ERROR),
    Case("MA305-activation-layers", activated(None, layers(lambda K: [K.layers.Activation("tanh", name="once"),
                                                                      K.layers.Activation("tanh", name="again")])),
         {("MA305", "again")}, severity=ERROR),
    Case("MA305-hidden-tanh-twice", activated("tanh", layers(lambda K: [
        K.layers.Activation("tanh", name="again"), K.layers.Dense(1, name="head")])), {("MA305", "again")},
         severity=WARNING),
    Case("MA305-relu-then-relu6", activated("relu", layers(lambda K: [K.layers.ReLU(6.0, name="clip")])), set()),
    Case("MA305-linear-then-relu", activated(None, layers(lambda K: [K.layers.ReLU(name="act")])), set()),
    Case("MA305-relu-dense-relu", activated("relu", layers(lambda K: [K.layers.Dense(4, activation="relu",
                                                                                    name="next")])), set()),
    Case("MA305-softmax-other-axis", seq(vector(12), layers(lambda K: [
        K.layers.Reshape((3, 4)), K.layers.Dense(4, activation="softmax", name="dense"),
        K.layers.Softmax(axis=1, name="over_rows")])), set()),
    Case("MA305-clipping-twice", activated(None, layers(lambda K: [K.layers.ReLU(3.0, name="once"),
                                                                   K.layers.ReLU(3.0, name="again")])),
         {("MA305", "again")}, severity=INFO),
    Case("MA305-leaky-twice", activated(None, layers(lambda K: [K.layers.LeakyReLU(0.2, name="once"),
                                                                K.layers.LeakyReLU(0.2, name="again")])),
         {("MA305", "again")}, severity=ERROR),
]


# ---- MA306 dropped-input-rows / MA307 spatial-collapse -----------------------------------------------------

def convs(size, *make, channels=3):
    return seq(image(size, channels), layers(lambda K: [m(K) for m in make]), HEAD)


MA306 = [
    Case("MA306-strided-conv", convs(28, lambda K: K.layers.Conv2D(8, 3, strides=2, name="conv")),
         {("MA306", "conv")}),  # (28 - 3) % 2 = 1
    Case("MA306-pool-on-odd-map", convs(11, lambda K: K.layers.MaxPooling2D(name="pool")), {("MA306", "pool")}),
    Case("MA306-pool-on-even-map", convs(12, lambda K: K.layers.MaxPooling2D(name="pool")), set()),
    Case("MA306-same-padding", convs(11, lambda K: K.layers.MaxPooling2D(padding="same", name="pool")), set()),
    Case("MA306-stride-1", convs(11, lambda K: K.layers.Conv2D(8, 4, name="conv")), set()),
    Case("MA306-conv1d", seq(lambda K: [K.Input((20, 4))], layers(lambda K: [
        K.layers.Conv1D(8, 3, strides=2, name="conv"), K.layers.GlobalAveragePooling1D()])),
         {("MA306", "conv")}),  # (20 - 3) % 2 = 1
]

MA307 = [
    Case("MA307-conv-on-1x1", convs(4, lambda K: K.layers.MaxPooling2D(4, name="pool"),
                                    lambda K: K.layers.Conv2D(8, 3, padding="same", name="conv"), channels=8),
         {("MA307", "conv")}),
    Case("MA307-pool-on-1x1", convs(2, lambda K: K.layers.MaxPooling2D(name="pool1"),
                                    lambda K: K.layers.MaxPooling2D(padding="same", name="pool2")),
         {("MA307", "pool2")}),
    Case("MA307-conv1d-on-length-1", seq(lambda K: [K.Input((1, 16))], layers(lambda K: [
        K.layers.Conv1D(8, 5, padding="same", name="conv"), K.layers.Flatten()])), {("MA307", "conv")}),
    Case("MA307-dilated-conv1d-on-length-1", seq(lambda K: [K.Input((1, 16))], layers(lambda K: [
        K.layers.Conv1D(8, 3, dilation_rate=2, padding="same", name="conv"), K.layers.Flatten()])),
         {("MA307", "conv")}),
    Case("MA307-1x1-conv-on-1x1", convs(4, lambda K: K.layers.MaxPooling2D(4, name="pool"),
                                        lambda K: K.layers.Conv2D(8, 1, name="conv"), channels=8), set()),
    Case("MA307-kernel-1-along-the-flat-axis", seq(lambda K: [K.Input((1, 20, 3))], layers(lambda K: [
        K.layers.Conv2D(8, (1, 5), padding="same", name="conv")]), HEAD), set()),
]


# ---- MA308 classifier-output-rank ---------------------------------------------------------------------

def dense_on_map(loss, *before):
    return seq(image(8), layers(lambda K: [K.layers.Conv2D(4, 3, activation="relu", name="conv")]), *before,
               layers(lambda K: [K.layers.Dense(10, activation="softmax", name="out")]), compile_with=loss)


def sequence(body, loss, steps=20):
    """Input((steps, 8)) -> body(K) -> Dense(5, softmax) named 'out', compiled with `loss`."""
    return seq(lambda K: [K.Input((steps, 8))], body,
               layers(lambda K: [K.layers.Dense(5, activation="softmax", name="out")]), compile_with=loss)


MA308 = [
    Case("MA308-dense-on-map-cce", dense_on_map("categorical_crossentropy"), {("MA308", "out")}),
    Case("MA308-dense-on-map-sparse", dense_on_map("sparse_categorical_crossentropy"), {("MA308", "out")}),
    Case("MA308-through-softmax-layer", seq(image(8), layers(lambda K: [
        K.layers.Conv2D(4, 3, activation="relu"), K.layers.Dense(10, name="logits"), K.layers.Softmax(name="out")]),
        compile_with="categorical_crossentropy"), {("MA308", "logits")}),
    Case("MA308-flatten-first", dense_on_map("categorical_crossentropy", layers(lambda K: [K.layers.Flatten()])),
         set()),
    Case("MA308-regression-loss", dense_on_map("mse"), set()),
    Case("MA308-uncompiled", dense_on_map(None), set()),
    Case("MA308-sequence-tagging", seq(lambda K: [K.Input((20, 8))], layers(lambda K: [
        K.layers.Dense(5, activation="softmax", name="tags")]), compile_with="sparse_categorical_crossentropy"),
         set()),
    Case("MA308-conv-head", seq(image(8), layers(lambda K: [
        K.layers.Conv2D(4, 1, activation="softmax", name="mask")]), compile_with="categorical_crossentropy"), set()),
    # sequences (issue 17): the output's steps differ from the input's -> a missing Flatten / global pooling
    Case("MA308-sequence-conv-pool", sequence(lambda K: [K.layers.Conv1D(16, 3, activation="relu"),
                                                         K.layers.MaxPooling1D()], "categorical_crossentropy"),
         {("MA308", "out")}),
    Case("MA308-text-conv-no-pooling", seq(lambda K: [K.Input((100,))], layers(lambda K: [
        K.layers.Embedding(1000, 16), K.layers.Conv1D(8, 5, activation="relu"),
        K.layers.Dense(1, activation="sigmoid", name="out")]), compile_with="binary_crossentropy"),
         {("MA308", "out")}),
    Case("MA308-strided-conv-then-lstm-sequences", sequence(lambda K: [
        K.layers.Conv1D(16, 3, strides=2, padding="same"), K.layers.LSTM(8, return_sequences=True)],
        "sparse_categorical_crossentropy"), {("MA308", "out")}),
    Case("MA308-lstm-tagger", sequence(lambda K: [K.layers.LSTM(8, return_sequences=True)],
                                       "sparse_categorical_crossentropy"), set()),
    Case("MA308-sequence-global-pooling", sequence(lambda K: [K.layers.Conv1D(16, 3, activation="relu"),
                                                              K.layers.GlobalAveragePooling1D()],
                                                   "categorical_crossentropy"), set()),
    Case("MA308-sequence-regression", sequence(lambda K: [K.layers.Conv1D(16, 3, activation="relu")], "mse"),
         set()),
    Case("MA308-variable-length", seq(lambda K: [K.Input((None, 8))], layers(lambda K: [
        K.layers.Conv1D(16, 3, activation="relu"), K.layers.Dense(5, activation="softmax", name="out")]),
        compile_with="categorical_crossentropy"), set()),
]


# ---- MA309 frozen-model -------------------------------------------------------------------------------

def frozen(compile_with, head_trainable=False):
    def build(K):
        base = K.Sequential([K.Input((8,)), K.layers.Dense(16, activation="relu")], name="base")
        base.trainable = False
        head = K.layers.Dense(1, activation="sigmoid", name="head")
        head.trainable = head_trainable
        model = K.Sequential([K.Input((8,)), base, head], name="model")
        if compile_with:
            model.compile(optimizer="adam", loss=compile_with)
        return model

    return build


MA309 = [
    Case("MA309-compiled-frozen", frozen("binary_crossentropy"), {("MA309", None)}),
    Case("MA309-trainable-head", frozen("binary_crossentropy", head_trainable=True), set()),
    Case("MA309-uncompiled-frozen", frozen(None), set()),
]


# ---- MA310 high-dropout-rate --------------------------------------------------------------------------

def dropout(layer):
    return seq(vector(), layers(lambda K: [K.layers.Dense(16, activation="relu"), layer(K),
                                           K.layers.Dense(1, name="out")]))


MA310 = [
    Case("MA310-rate-0.9", dropout(lambda K: K.layers.Dropout(0.9, name="drop")), {("MA310", "drop")}),
    Case("MA310-rate-0.8-is-high", dropout(lambda K: K.layers.Dropout(0.8, name="drop")), {("MA310", "drop")}),
    Case("MA310-rate-0.5", dropout(lambda K: K.layers.Dropout(0.5, name="drop")), set()),
    Case("MA310-rate-0-info", dropout(lambda K: K.layers.Dropout(0.0, name="drop")), {("MA310", "drop")}),
    Case("MA310-gaussian-dropout", dropout(lambda K: K.layers.GaussianDropout(0.85, name="drop")),
         {("MA310", "drop")}),
    Case("MA310-lstm-recurrent-dropout", seq(lambda K: [K.Input((10, 4))], layers(lambda K: [
        K.layers.LSTM(8, recurrent_dropout=0.9, name="lstm"), K.layers.Dense(1)])), {("MA310", "lstm")}),
    Case("MA310-bidirectional-lstm-dropout", seq(lambda K: [K.Input((10, 4))], layers(lambda K: [
        K.layers.Bidirectional(K.layers.LSTM(8, dropout=0.8), name="bi"), K.layers.Dense(1)])), {("MA310", "bi")}),
    Case("MA310-lstm-default", seq(lambda K: [K.Input((10, 4))], layers(lambda K: [
        K.layers.LSTM(8, name="lstm"), K.layers.Dense(1)])), set()),
    Case("MA310-configured", dropout(lambda K: K.layers.Dropout(0.9, name="drop")), set(),
         config={"rules": {"MA310": {"high-rate": 0.95}}}),
]


# ---- MA311 batchnorm-wrong-axis -----------------------------------------------------------------------

def bn_after(first, axis, *rest, shape=(16, 16, 3)):
    return seq(lambda K: [K.Input(shape)], layers(lambda K: [first(K), K.layers.BatchNormalization(axis=axis,
                                                                                                   name="bn")]),
               *rest)


CONV = lambda K: K.layers.Conv2D(8, 3, use_bias=False, name="conv")  # noqa: E731
CONV_FIRST = lambda K: K.layers.Conv2D(8, 3, use_bias=False, data_format="channels_first", name="conv")  # noqa: E731
GAP = layers(lambda K: [K.layers.GlobalAveragePooling2D()])
GAP_FIRST = layers(lambda K: [K.layers.GlobalAveragePooling2D(data_format="channels_first")])

MA311 = [
    Case("MA311-channels-last-axis-1", bn_after(CONV, 1, GAP), {("MA311", "bn")}),
    Case("MA311-channels-last-axis-3", bn_after(CONV, 3, GAP), set()),
    Case("MA311-channels-last-default", bn_after(CONV, -1, GAP), set()),
    Case("MA311-channels-first-axis-1", bn_after(CONV_FIRST, 1, GAP_FIRST, shape=(3, 16, 16)), set()),
    Case("MA311-channels-first-axis-last", bn_after(CONV_FIRST, -1, GAP_FIRST, shape=(3, 16, 16)),
         {("MA311", "bn")}),
    Case("MA311-conv1d-axis-1", bn_after(lambda K: K.layers.Conv1D(8, 3, use_bias=False, name="conv"), 1,
                                         layers(lambda K: [K.layers.GlobalAveragePooling1D()]), shape=(20, 4)),
         {("MA311", "bn")}),
    Case("MA311-through-activation", seq(image(), layers(lambda K: [
        K.layers.Conv2D(8, 3), K.layers.Activation("relu"), K.layers.BatchNormalization(axis=1, name="bn")]), GAP),
         {("MA311", "bn")}),
    Case("MA311-layout-from-the-conv-after", seq(image(), layers(lambda K: [
        K.layers.BatchNormalization(axis=1, name="bn"), K.layers.Conv2D(8, 3)]), GAP), {("MA311", "bn")}),
    Case("MA311-layout-unknown", seq(image(), layers(lambda K: [
        K.layers.BatchNormalization(axis=1, name="bn"), K.layers.Flatten(), K.layers.Dense(2)])), set()),
    Case("MA311-dense-rank-2", seq(vector(), layers(lambda K: [K.layers.Dense(8, name="dense"),
                                                               K.layers.BatchNormalization()])),
         {("MA302", "dense")}),
]


# ---- MA312 constant-initializer -----------------------------------------------------------------------

MA312 = [
    Case("MA312-zeros-kernel", seq(vector(), layers(lambda K: [
        K.layers.Dense(16, activation="relu", kernel_initializer="zeros", name="hidden"), K.layers.Dense(1)])),
         {("MA312", "hidden")}),
    Case("MA312-constant-conv", seq(image(), layers(lambda K: [
        K.layers.Conv2D(8, 3, kernel_initializer=K.initializers.Constant(0.5), name="conv")]), HEAD),
         {("MA312", "conv")}),
    Case("MA312-ones-lstm-recurrent", seq(lambda K: [K.Input((10, 4))], layers(lambda K: [
        K.layers.LSTM(8, recurrent_initializer="ones", name="lstm"), K.layers.Dense(1)])), {("MA312", "lstm")}),
    Case("MA312-single-unit", seq(vector(), layers(lambda K: [K.layers.Dense(1, kernel_initializer="zeros")])),
         set()),
    Case("MA312-zero-bias-is-normal", seq(vector(), layers(lambda K: [K.layers.Dense(4, bias_initializer="zeros")])),
         set()),
    Case("MA312-random", seq(vector(), layers(lambda K: [K.layers.Dense(4, kernel_initializer="he_normal")])), set()),
]


# ---- MA313 dead-layer ---------------------------------------------------------------------------------

def unused_input(K):
    a = K.Input((8,), name="a")
    b = K.Input((8,), name="b")
    return K.Model([a, b], K.layers.Dense(1, name="out")(a))


def two_heads(nested=False):
    def build(K):
        inputs = K.Input((8,), name="x")
        trunk = K.layers.Dense(16, activation="relu", name="trunk")(inputs)
        main = K.layers.Dense(1, name="main")(trunk)
        if nested:
            aux = K.Sequential([K.Input((16,)), K.layers.Dense(4, name="aux_dense")], name="aux")(trunk)
        else:
            aux = K.layers.Dense(4, name="aux")(K.layers.Dropout(0.1, name="aux_drop")(trunk))
        return K.Model(inputs, [main, aux])

    return build


def drop_second_output(config):
    """What a hand-edited config that strips a head looks like: the head's layers stay behind."""
    config["config"]["output_layers"] = config["config"]["output_layers"][:1]


def shared_twice(K):
    a, b = K.Input((8,), name="a"), K.Input((8,), name="b")
    shared = K.layers.Dense(4, name="shared")
    return K.Model([a, b], K.layers.Add()([shared(a), shared(b)]))


MA313 = [
    Case("MA313-unused-input", unused_input, {("MA313", "b")}),
    Case("MA313-stripped-head", two_heads(), {("MA313", "aux"), ("MA313", "aux_drop")}, dialects=(K3,),
         edit=drop_second_output),
    Case("MA313-stripped-nested-head", two_heads(nested=True), {("MA313", "aux")}, dialects=(K3,),
         edit=drop_second_output),
    Case("MA313-two-heads", two_heads(), set()),
    Case("MA313-shared-layer", shared_twice, set()),
]

# ---- MA314 constraint-as-regularizer -------------------------------------------------------------------

def dense_with(**slots):
    """A Dense named 'dense' with its regularizer / constraint arguments made from K: slots map an
    argument to (module, class, kwargs), e.g. kernel_regularizer=("constraints", "MaxNorm", {"max_value": 3})."""
    def make(K):
        made = {key: getattr(getattr(K, module), cls)(**kwargs) for key, (module, cls, kwargs) in slots.items()}
        return [K.layers.Dense(16, activation="relu", name="dense", **made), K.layers.Dense(1, name="head")]

    return seq(vector(), make)


def set_slot(layer: str, key: str, value, wrapped: bool = False):
    """An edit of config.json: layer `layer` (or the layer it wraps) gets `key` = `value`, a slot Keras
    itself refuses to build (a string name, or a constraint in an RNN's regularizer slot)."""
    def edit(config):
        for item in config["config"]["layers"]:
            if item["config"].get("name") == layer:
                target = item["config"]["layer"]["config"] if wrapped else item["config"]
                target[key] = value

    return edit


NON_NEG = {"module": "keras.constraints", "class_name": "NonNeg", "config": {}, "registered_name": None}
BI_LSTM = seq(lambda K: [K.Input((5, 8))], layers(lambda K: [K.layers.Bidirectional(K.layers.LSTM(4), name="bi"),
                                                            K.layers.Dense(1, name="head")]))

MA314 = [
    Case("MA314-maxnorm-as-kernel-regularizer", dense_with(kernel_regularizer=("constraints", "MaxNorm", {"max_value": 3})),
         {("MA314", "dense")}),
    Case("MA314-nonneg-as-bias-regularizer", dense_with(bias_regularizer=("constraints", "NonNeg", {})),
         {("MA314", "dense")}),
    Case("MA314-unitnorm-as-activity-regularizer", dense_with(activity_regularizer=("constraints", "UnitNorm", {})),
         {("MA314", "dense")}),
    Case("MA314-l2-as-kernel-constraint", dense_with(kernel_constraint=("regularizers", "L2", {"l2": 0.01})),
         {("MA314", "dense")}),
    Case("MA314-l1l2-as-bias-constraint", dense_with(bias_constraint=("regularizers", "L1L2", {"l1": 0.01})),
         {("MA314", "dense")}),
    Case("MA314-by-name", dense_with(), {("MA314", "dense")}, dialects=(K3,),
         edit=set_slot("dense", "kernel_constraint", "l2")),
    Case("MA314-inside-bidirectional", BI_LSTM, {("MA314", "bi")}, dialects=(K3,),
         edit=set_slot("bi", "recurrent_regularizer", NON_NEG, wrapped=True)),
    Case("MA314-each-in-its-slot", dense_with(kernel_regularizer=("regularizers", "L2", {"l2": 1e-4}),
                                              kernel_constraint=("constraints", "MaxNorm", {"max_value": 3})), set()),
    Case("MA314-a-custom-class-of-that-name", dense_with(), set(), dialects=(K3,), edit=set_slot(
        "dense", "kernel_regularizer", {**NON_NEG, "module": "acme.penalties", "registered_name": "acme>NonNeg"})),
]


# ---- edges across nested models ------------------------------------------------------------------------

def conv_in_block_then_bn(K):
    block = K.Sequential([K.Input((16, 16, 3)), K.layers.Conv2D(8, 3, name="conv")], name="block")
    inputs = K.Input((16, 16, 3))
    x = K.layers.BatchNormalization(name="bn")(block(inputs))
    return K.Model(inputs, K.layers.GlobalAveragePooling2D()(x))


def bn_in_block_after_conv(K):
    block = K.Sequential([K.Input((14, 14, 8)), K.layers.BatchNormalization(axis=1, name="bn")], name="block")
    inputs = K.Input((16, 16, 3))
    x = block(K.layers.Conv2D(8, 3, use_bias=False, name="conv")(inputs))
    return K.Model(inputs, K.layers.GlobalAveragePooling2D()(x))


def siamese(K):
    # one nested encoder called on both inputs: its InputLayer is fed twice, and both inputs are live
    encoder = K.Sequential([K.Input((8,)), K.layers.Dense(4, activation="relu", name="embed")], name="encoder")
    a, b = K.Input((8,), name="a"), K.Input((8,), name="b")
    distance = K.layers.Subtract(name="distance")([encoder(a), encoder(b)])
    return K.Model([a, b], K.layers.Dense(1, activation="sigmoid", name="same")(distance))


NESTED = [
    Case("nested-conv-inside-bn-outside", conv_in_block_then_bn, {("MA302", "block/conv")}),
    Case("nested-bn-inside-conv-outside", bn_in_block_after_conv, {("MA311", "block/bn")}),
    Case("nested-encoder-called-twice", siamese, set()),
]

CASES = (NESTED + MA301 + MA302 + MA303 + MA304 + MA305 + MA306 + MA307 + MA308 + MA309 + MA310 + MA311 + MA312
         + MA313 + MA314)
PARAMS = [pytest.param(case, dialect, id=f"{case.id}[{dialect}]") for case in CASES for dialect in case.dialects]


def save(model, folder: str, dialect: str) -> str:
    import keras

    if dialect == K2:
        path = os.path.join(folder, "model.h5")
        model.save(path, save_format="h5")
    else:
        path = os.path.join(folder, "model.keras")
        keras.saving.save_model(model, path)
    return path


def edit_config(path: str, edit: Callable) -> None:
    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    config = json.loads(members["config.json"])
    edit(config)
    members["config.json"] = json.dumps(config).encode("utf-8")
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def architecture_findings(fr) -> set:
    return {(f.code, f.layer) for f in fr.findings if f.code.startswith("MA3")}


@pytest.mark.parametrize("case, dialect", PARAMS)
def test_architecture_table(case: Case, dialect: str, tmp_path):
    import importlib

    K = importlib.import_module(dialect)
    path = save(case.build(K), str(tmp_path), dialect)
    if case.edit is not None:
        edit_config(path, case.edit)
    fr = modelaudit.audit(path, case.config).files[0]
    assert fr.error is None and not fr.internal_errors, (fr.error, fr.internal_errors)
    assert architecture_findings(fr) == case.expect, "\n".join(f"{f.code} {f.layer}: {f.message}" for f in fr.findings)
    for code, severity in (case.severity or {}).items():
        assert {f.severity for f in fr.findings if f.code == code} == {severity}, code


# ---- the messages carry the numbers that make the case ------------------------------------------------


def _one(build, code, tmp_path, config=None):
    import keras

    fr = modelaudit.audit(save(build(keras), str(tmp_path), K3), config).files[0]
    (finding,) = [f for f in fr.findings if f.code == code]
    return finding


def test_ma301_message_gives_params_and_share(tmp_path):
    finding = _one(hotspot(), "MA301", tmp_path)
    assert finding.severity is Severity.WARNING
    assert finding.message.startswith(
        "Dense 'fc' holds 1,843,456 params, 99.8% of the model's 1,846,250: Flatten 'flatten' turns every "
        "position of its (None, 30, 30, 8) input into a feature (7,200 of them)")
    assert "a GlobalAveragePooling2D instead of the Flatten would feed it 8 features (2,304 params" in finding.message


def test_ma311_message_names_the_axis_and_the_channels(tmp_path):
    finding = _one(bn_after(CONV, 1, GAP), "MA311", tmp_path)
    assert finding.message == (
        "BatchNormalization 'bn' normalizes axis 1 of its input (None, 14, 14, 8), of size 14 (so it holds "
        "4 × 14 = 56 params), but the channels are on axis 3 (size 8; Conv2D 'conv' before it is channels_last): "
        "it learns one mean and variance per row instead of per channel; use axis=-1")


def test_ma305_softmax_twice_says_how_flat_it_gets(tmp_path):
    finding = _one(activated("softmax", layers(lambda K: [K.layers.Softmax(name="again")])), "MA305", tmp_path)
    assert "Dense 'dense' (activation='softmax') already applies softmax and Softmax 'again' applies it again" \
        in finding.message
    assert "with 10 classes no probability can exceed e/(e+9) = 23%" in finding.message


def test_ma308_sequence_message_gives_both_step_counts(tmp_path):
    import keras

    build = sequence(lambda K: [K.layers.Conv1D(16, 3, activation="relu"), K.layers.MaxPooling1D()],
                     "categorical_crossentropy")
    model = build(keras)
    steps, out = model.layers[-2].output.shape[1], model.layers[-1].output.shape  # Keras's own: 9 steps left
    finding = _one(build, "MA308", tmp_path)
    assert finding.message.startswith(
        f"output 'out' is Dense 'out' applied to (None, {steps}, 16), a sequence of {steps} steps, not the 20 "
        f"steps of the model's input (so not a per-step tagger)")
    assert f"the model predicts {tuple(out)} (one prediction per step)" in finding.message
    assert finding.fix.startswith("add a Flatten or GlobalAveragePooling1D before the Dense")


def test_ma314_message_says_what_keras_does_instead(tmp_path):
    finding = _one(dense_with(kernel_regularizer=("constraints", "MaxNorm", {"max_value": 3})), "MA314", tmp_path)
    assert finding.severity is Severity.ERROR
    assert finding.message.startswith("Dense 'dense' has the constraint MaxNorm as its kernel_regularizer: ")
    assert finding.fix == "pass it as kernel_constraint=MaxNorm(...)"


def keras_io_image_classification_from_scratch(K, image_size=(180, 180)):
    """The model of https://keras.io/examples/vision/image_classification_from_scratch/ (make_model,
    two classes), compiled as the example compiles it."""
    L = K.layers
    inputs = K.Input(shape=image_size + (3,))
    x = L.Rescaling(1.0 / 255)(inputs)
    x = L.Conv2D(128, 3, strides=2, padding="same")(x)
    x = L.BatchNormalization()(x)
    x = L.Activation("relu")(x)
    previous_block_activation = x
    for size in [256, 512, 728]:
        x = L.Activation("relu")(x)
        x = L.SeparableConv2D(size, 3, padding="same")(x)
        x = L.BatchNormalization()(x)
        x = L.Activation("relu")(x)
        x = L.SeparableConv2D(size, 3, padding="same")(x)
        x = L.BatchNormalization()(x)
        x = L.MaxPooling2D(3, strides=2, padding="same")(x)
        residual = L.Conv2D(size, 1, strides=2, padding="same")(previous_block_activation)
        x = L.add([x, residual])
        previous_block_activation = x
    x = L.SeparableConv2D(1024, 3, padding="same")(x)
    x = L.BatchNormalization()(x)
    x = L.Activation("relu")(x)
    x = L.GlobalAveragePooling2D()(x)
    x = L.Dropout(0.25)(x)
    outputs = L.Dense(1, activation=None)(x)
    model = K.Model(inputs, outputs)
    model.compile(optimizer=K.optimizers.Adam(3e-4), loss=K.losses.BinaryCrossentropy(from_logits=True),
                  metrics=[K.metrics.BinaryAccuracy(name="acc")])
    return model


def test_keras_io_image_classification_from_scratch_passes_quietly(tmp_path):
    """Issue 17, item 6: the example's relu after the entry block's relu changes nothing: MA305 info,
    and nothing at all above info from any rule."""
    import keras

    model = keras_io_image_classification_from_scratch(keras)
    # Keras's own graph: the Activation layers fed straight by another Activation
    repeated = [layer.name for layer in model.layers if isinstance(layer, keras.layers.Activation)
                and isinstance(layer.input._keras_history.operation, keras.layers.Activation)]
    fr = modelaudit.audit(save(model, str(tmp_path), K3)).files[0]
    assert fr.error is None and not fr.internal_errors
    loud = [f for f in fr.findings if f.severity is not Severity.INFO]
    assert not loud, "\n".join(f"{f.code} {f.layer}: {f.message}" for f in loud)
    assert len(repeated) == 1 and [f.layer for f in fr.findings if f.code == "MA305"] == repeated


def test_ma310_zero_rate_is_info(tmp_path):
    finding = _one(dropout(lambda K: K.layers.Dropout(0.0, name="drop")), "MA310", tmp_path)
    assert finding.severity is Severity.INFO
    (tmp_path / "high").mkdir()
    high = _one(dropout(lambda K: K.layers.Dropout(0.9, name="drop")), "MA310", tmp_path / "high")
    assert high.severity is Severity.WARNING and "drops 90% of the values" in high.message


def test_ma310_severity_override_keeps_the_zero_rate_info(tmp_path):
    """severity.MA310 sets the rule's severity: the high rate follows it, the rate 0 the rule grades as
    info is never raised by it (it does nothing, whatever the team thinks of high rates)."""
    for level, high_level in (("error", Severity.ERROR), ("info", Severity.INFO)):
        config = {"severity": {"MA310": level}}
        (tmp_path / level).mkdir()
        zero = _one(dropout(lambda K: K.layers.Dropout(0.0, name="drop")), "MA310", tmp_path / level, config)
        assert zero.severity is Severity.INFO and "has rate 0" in zero.message
        (tmp_path / f"{level}-high").mkdir()
        high = _one(dropout(lambda K: K.layers.Dropout(0.9, name="drop")), "MA310", tmp_path / f"{level}-high", config)
        assert high.severity is high_level


def test_options_are_checked():
    from modelaudit.checks.architecture import DenseParameterHotspot, HighDropoutRate
    from modelaudit.errors import ConfigError

    assert DenseParameterHotspot(share=1).opts["share"] == 1.0
    for bad in ({"share": 1.5}, {"share": 0}, {"share": "half"}, {"min_params": -1}, {"min_params": 1.5},
                {"threshold": 3}):
        with pytest.raises(ConfigError, match="MA301"):
            DenseParameterHotspot(**bad)
    with pytest.raises(ConfigError, match="MA310"):
        HighDropoutRate(high_rate=0)


# ---- no false positives: keras.applications, the samples, the correct models --------------------------

# VGG16 and VGG19: fc1 is Dense(4096) on the 7·7·512 = 25,088 features of Flatten: 102,764,544 params.
HOTSPOTS = {"VGG16": "74.3%", "VGG19": "71.5%"}


@pytest.mark.parametrize("name", APPLICATIONS)
def test_application_gets_no_architecture_warning(name, application):
    built = application(name)
    findings, internal = run_rules(built.inferred, Settings(select=["MA3"]), name)
    assert not internal
    loud = [f for f in findings if f.severity is not Severity.INFO]
    if name in HOTSPOTS:
        assert [(f.code, f.layer) for f in loud] == [("MA301", "fc1")], [f.message for f in loud]
        share = HOTSPOTS[name]
        assert loud[0].message.startswith(f"Dense 'fc1' holds 102,764,544 params, {share} of the model's "
                                          f"{built.truth.total:,}: "), loud[0].message
        assert f"{102_764_544 / built.truth.total:.1%}" == share
    else:
        assert not loud, "\n".join(f"{f.code} {f.layer}: {f.message}" for f in loud)


@pytest.mark.parametrize("name", APPLICATIONS)
def test_application_gets_no_security_finding(name, application):
    """MA4xx on what Keras itself wrote, at any severity, is a rule bug (issue 14: quiet on correct models)."""
    built = application(name)
    findings, internal = run_rules(built.inferred, Settings(select=["MA4"]), name)
    assert not internal
    assert not findings, "\n".join(f"{f.code} {f.layer}: {f.message}" for f in findings)


@pytest.mark.parametrize("name", sorted(f for f in os.listdir(os.path.join(ROOT, "samples"))
                                        if f.endswith((".keras", ".h5"))))
def test_committed_sample_gets_no_architecture_warning(name):
    fr = modelaudit.audit(os.path.join(ROOT, "samples", name)).files[0]
    assert fr.error is None
    loud = [f for f in fr.findings if f.code.startswith("MA3") and f.severity is not Severity.INFO]
    assert not loud, [f.message for f in loud]


def _correct_models():
    from tests.test_objective import correct

    return [pytest.param(case, dialect, id=f"{case.id}[{dialect}]") for case in correct() for dialect in case.dialects]


@pytest.mark.parametrize("case, dialect", _correct_models())
def test_correct_model_gets_no_architecture_finding(case, dialect, tmp_path):
    import importlib

    fr = modelaudit.audit(save(case.build(importlib.import_module(dialect)), str(tmp_path), dialect)).files[0]
    assert fr.error is None
    assert architecture_findings(fr) == set(), [f.message for f in fr.findings if f.code.startswith("MA3")]
