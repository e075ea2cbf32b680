"""MA2xx: the output activation, the loss and the metrics must agree.

One table of real models, each built in a few lines, compiled, saved by Keras 3 (.keras) and by
tf_keras (.h5), then audited: a case is (model builder, config) -> the MA2xx findings expected, as
(code, layer path) pairs. Every mistake is built in every spelling of its loss and with the activation
set three ways (on the Dense, in a separate Activation/Softmax layer, behind a Dropout); the correct
models must come out with nothing above info.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Optional

import pytest

import modelaudit
from modelaudit.losses import LossFamily, assign, normalize_loss, normalize_metric

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLES = os.path.join(ROOT, "samples")
K3, K2 = "keras", "tf_keras"


@dataclass
class Case:
    id: str
    build: Callable  # keras module -> compiled (or not) model
    expect: set  # {(code, layer path or None)} of MA2xx findings, info included
    dialects: tuple = (K3, K2)
    config: Optional[dict] = None
    clean: bool = False  # also: no finding of any family above info


# ---- model builders: K is the keras module (keras or tf_keras) --------------------------------


def classifier(units: int, activation: Optional[str], how: str = "dense"):
    """Layers of a small classifier whose output activation is set `how`: on the Dense ("dense"), in a
    separate layer ("layer": Softmax for softmax, else Activation; "activation": always Activation), or
    on a Dense behind a Dropout ("dropout"). The layer that sets the activation is always named 'out'."""

    def layers(K):
        body = [K.Input((8,)), K.layers.Dense(16, activation="relu", name="hidden")]
        if how == "dense":
            return body + [K.layers.Dense(units, activation=activation, name="out")]
        if how == "layer":
            act = K.layers.Softmax(name="out") if activation == "softmax" else K.layers.Activation(activation, name="out")
            return body + [K.layers.Dense(units, name="logits"), act]
        if how == "activation":
            return body + [K.layers.Dense(units, name="logits"), K.layers.Activation(activation, name="out")]
        if how == "dropout":
            return body + [K.layers.Dense(units, activation=activation, name="out"), K.layers.Dropout(0.2, name="drop")]
        raise ValueError(how)

    return layers


def compiled(layers, loss=None, metrics=None, optimizer="adam", compile=True):
    def build(K):
        model = K.Sequential(layers(K))
        if compile:
            model.compile(optimizer=_resolve(optimizer, K), loss=_resolve(loss, K), metrics=_resolve(metrics, K))
        return model

    return build


def _resolve(spec, K):
    """A loss/metric/optimizer spelled as a string, a list/dict of them, or a function of K."""
    if callable(spec):
        return spec(K)
    if isinstance(spec, list):
        return [_resolve(s, K) for s in spec]
    if isinstance(spec, dict):
        return {k: _resolve(v, K) for k, v in spec.items()}
    return spec


def _label(spec) -> str:
    return getattr(spec, "__name__", None) or str(spec)


def obj(path: str, **kwargs):
    """A Keras object made from K at build time: obj("losses.BinaryCrossentropy", from_logits=True).
    A function (a lowercase name, e.g. "losses.binary_crossentropy") is passed as it is; keyword
    values may be obj(...) themselves."""

    def make(K):
        target = K
        for part in path.split("."):
            target = getattr(target, part)
        if path.rsplit(".", 1)[-1][0].islower():
            return target
        return target(**{k: _resolve(v, K) for k, v in kwargs.items()})

    args = ", ".join(f"{k}={_label(v)}" for k, v in kwargs.items())
    make.__name__ = path if path.rsplit(".", 1)[-1][0].islower() else f"{path}({args})"
    return make


def functional(build_outputs, loss=None, metrics=None):
    def build(K):
        inputs = K.Input((8,), name="features")
        outputs = build_outputs(K, inputs)
        model = K.Model(inputs, outputs)
        if loss is not None:
            model.compile(optimizer="adam", loss=_resolve(loss, K), metrics=_resolve(metrics, K))
        return model

    return build


def two_heads(K, x):
    x = K.layers.Dense(16, activation="relu", name="trunk")(x)
    kind = K.layers.Dense(4, activation="softmax", name="kind")(x)
    score = K.layers.Dense(1, name="score")(x)
    return [kind, score]


# ---- loss spellings ----------------------------------------------------------------------------

BCE = ["binary_crossentropy", "bce", "BinaryCrossentropy", obj("losses.binary_crossentropy"),
       obj("losses.BinaryCrossentropy"), obj("losses.BinaryFocalCrossentropy")]
CATEGORICAL = ["categorical_crossentropy", "CategoricalCrossentropy", "sparse_categorical_crossentropy",
               obj("losses.SparseCategoricalCrossentropy"), obj("losses.CategoricalFocalCrossentropy")]
FROM_LOGITS = [obj("losses.BinaryCrossentropy", from_logits=True), obj("losses.BinaryFocalCrossentropy", from_logits=True),
               obj("losses.CategoricalCrossentropy", from_logits=True),
               obj("losses.SparseCategoricalCrossentropy", from_logits=True),
               obj("losses.CategoricalFocalCrossentropy", from_logits=True)]
PROBABILITY_CE = ["binary_crossentropy", "bce", obj("losses.BinaryCrossentropy"), "categorical_crossentropy",
                  "sparse_categorical_crossentropy", obj("losses.CategoricalCrossentropy", from_logits=False),
                  obj("losses.SparseCategoricalCrossentropy")]
REGRESSION = ["mse", "mean_absolute_error", "MeanSquaredError", obj("losses.Huber"), "log_cosh",
              obj("losses.MeanAbsolutePercentageError")]
HINGE = ["hinge", "squared_hinge", "categorical_hinge", obj("losses.Hinge")]
BINARY_ACCURACY = ["binary_accuracy", obj("metrics.BinaryAccuracy"), obj("metrics.binary_accuracy")]
HOWS = ["dense", "layer", "activation", "dropout"]


def _is_binary(spec) -> bool:
    return "inary" in _label(spec) or _label(spec) == "bce"


def mistakes() -> list[Case]:
    cases = []
    for how in HOWS:
        for loss in BCE:
            cases.append(Case(f"MA201-{how}-{_label(loss)}", compiled(classifier(10, "softmax", how), loss),
                              {("MA201", "out")}))
        for loss in CATEGORICAL:
            cases.append(Case(f"MA202-{how}-{_label(loss)}", compiled(classifier(5, "sigmoid", how), loss),
                              {("MA202", "out")}))
        for loss in FROM_LOGITS:
            act = "sigmoid" if _is_binary(loss) else "softmax"
            units = 1 if act == "sigmoid" else 10
            cases.append(Case(f"MA205-{how}-{act}-{_label(loss)}", compiled(classifier(units, act, how), loss),
                              {("MA205", "out")}))
        for loss in REGRESSION[:3] if how != "dense" else REGRESSION:
            cases.append(Case(f"MA207-{how}-{_label(loss)}", compiled(classifier(10, "softmax", how), loss),
                              {("MA207", "out")}))
        for metric in BINARY_ACCURACY:
            cases.append(Case(f"MA208-{how}-{_label(metric)}",
                              compiled(classifier(10, "softmax", how), "categorical_crossentropy", [metric]),
                              {("MA208", "out")}))
        for loss in HINGE[:2] if how != "dense" else HINGE:
            cases.append(Case(f"MA212-{how}-{_label(loss)}", compiled(classifier(1, "sigmoid", how), loss),
                              {("MA212", "out")}))
    # MA206: logits (a linear Dense, behind a Dropout, or a relu/tanh Activation layer) without from_logits
    for loss in PROBABILITY_CE:
        units = 1 if _is_binary(loss) else 10
        for how, act in (("dense", None), ("dropout", None), ("layer", "relu"), ("dense", "tanh")):
            cases.append(Case(f"MA206-{how}-{act}-{_label(loss)}", compiled(classifier(units, act, how), loss),
                              {("MA206", "out")}))
    return cases


def single_unit() -> list[Case]:
    cases = []
    for how in HOWS:
        cases.append(Case(f"MA203-{how}", compiled(classifier(1, "softmax", how), "binary_crossentropy"),
                          {("MA203", "out")}))
    # anywhere in the model, not only the output; and on an uncompiled model
    hidden = lambda K: [K.Input((8,)), K.layers.Dense(1, activation="softmax", name="gate"),  # noqa: E731
                        K.layers.Dense(3, activation="softmax", name="out")]
    cases.append(Case("MA203-hidden-layer", compiled(hidden, "categorical_crossentropy"), {("MA203", "gate")}))
    cases.append(Case("MA203-uncompiled", compiled(classifier(1, "softmax", "layer"), compile=False),
                      {("MA203", "out"), ("MA211", None)}))
    # MA204: a categorical loss on one unit, whatever the activation (MA203/MA206 add their own)
    for loss in CATEGORICAL:
        cases.append(Case(f"MA204-sigmoid-{_label(loss)}", compiled(classifier(1, "sigmoid"), loss), {("MA204", "out")}))
    cases.append(Case("MA204-softmax", compiled(classifier(1, "softmax"), "categorical_crossentropy"),
                      {("MA203", "out"), ("MA204", "out")}))
    cases.append(Case("MA204-linear-from-logits",
                      compiled(classifier(1, None), obj("losses.SparseCategoricalCrossentropy", from_logits=True)),
                      {("MA204", "out")}))
    return cases


def with_optimizer(optimizer):
    return compiled(classifier(10, "softmax"), "categorical_crossentropy", optimizer=optimizer)


def structure() -> list[Case]:
    cases = [
        Case("MA209-list-too-short", functional(two_heads, ["sparse_categorical_crossentropy"]), {("MA209", None)}),
        Case("MA209-list-too-long", functional(two_heads, ["sparse_categorical_crossentropy", "mse", "mse"]),
             {("MA209", None)}),
        Case("MA209-dict-unknown-name", functional(two_heads, {"kind": "sparse_categorical_crossentropy", "scor": "mse"}),
             {("MA209", None)}),
        # a list of several losses on one output: Keras applies them all
        Case("MA209-list-on-one-output", compiled(classifier(1, "sigmoid"), ["binary_crossentropy", "mse"]),
             {("MA207", "out")}),
        Case("MA211-uncompiled", compiled(classifier(10, "softmax"), compile=False), {("MA211", None)}, clean=True),
        Case("MA213-too-high", with_optimizer(obj("optimizers.SGD", learning_rate=0.5)), {("MA213", None)}),
        Case("MA213-too-low", with_optimizer(obj("optimizers.Adam", learning_rate=1e-9)), {("MA213", None)}),
        Case("MA213-zero", with_optimizer(obj("optimizers.SGD", learning_rate=0.0)), {("MA213", None)}),
        Case("MA213-edge-0.1-is-fine", with_optimizer(obj("optimizers.SGD", learning_rate=0.1)), set()),
        Case("MA213-configured", with_optimizer(obj("optimizers.SGD", learning_rate=0.5)), set(),
             config={"rules": {"MA213": {"max-lr": 1.0}}}),
        Case("MA213-schedule-is-not-constant", with_optimizer(obj("optimizers.SGD", learning_rate=obj(
            "optimizers.schedules.ExponentialDecay", initial_learning_rate=5.0, decay_steps=10, decay_rate=0.9))), set()),
    ]
    # MA210: the output activation computed in float16 under a mixed policy
    mixed = lambda K: [K.Input((8,)), K.layers.Dense(16, activation="relu", dtype="mixed_float16"),  # noqa: E731
                       K.layers.Dense(10, activation="softmax", dtype="mixed_float16", name="out")]
    mixed_fixed = lambda K: [K.Input((8,)), K.layers.Dense(16, activation="relu", dtype="mixed_float16"),  # noqa: E731
                             K.layers.Dense(10, dtype="mixed_float16", name="logits"),
                             K.layers.Activation("softmax", dtype="float32", name="out")]
    mixed_logits = lambda K: [K.Input((8,)), K.layers.Dense(10, dtype="mixed_float16", name="out")]  # noqa: E731
    mixed_bf16 = lambda K: [K.Input((8,)),  # noqa: E731
                            K.layers.Dense(1, activation="sigmoid", dtype="mixed_bfloat16", name="out")]
    cases += [
        Case("MA210-softmax-in-float16", compiled(mixed, "categorical_crossentropy"), {("MA210", "out")}),
        Case("MA210-sigmoid-in-bfloat16", compiled(mixed_bf16, "binary_crossentropy"), {("MA210", "out")}),
        Case("MA210-logits-in-float16", compiled(mixed_logits, obj("losses.CategoricalCrossentropy", from_logits=True)),
             {("MA210", "out")}),
        Case("MA210-float32-activation-is-fine", compiled(mixed_fixed, "categorical_crossentropy"), set(), clean=True),
    ]
    return cases


def correct() -> list[Case]:
    """Correct models: nothing above info, from any rule family."""
    segmentation = lambda K: [K.Input((16, 16, 3)), K.layers.Conv2D(8, 3, padding="same", activation="relu"),  # noqa: E731
                              K.layers.Conv2D(4, 1, activation="softmax", name="mask")]
    autoencoder = lambda K: [K.Input((28, 28, 1)), K.layers.Conv2D(8, 3, padding="same", activation="relu"),  # noqa: E731
                             K.layers.MaxPooling2D(), K.layers.UpSampling2D(),
                             K.layers.Conv2D(1, 3, padding="same", activation="sigmoid", name="decoded")]
    regression = lambda K: [K.Input((8,)), K.layers.Dense(16, activation="relu"),  # noqa: E731
                            K.layers.Dense(1, name="price")]

    def multi_output(K, x):
        x = K.layers.Dense(16, activation="relu", name="trunk")(x)
        return [K.layers.Dense(4, activation="softmax", name="kind")(x),
                K.layers.Dense(1, activation="sigmoid", name="flag")(x),
                K.layers.Dense(1, name="score")(x)]

    return [Case(name, build, expect, clean=True) for name, build, expect in [
        ("multi-label-sigmoid-bce", compiled(classifier(10, "sigmoid"), "binary_crossentropy", ["binary_accuracy"]), set()),
        ("multi-label-sigmoid-layer-bce", compiled(classifier(10, "sigmoid", "layer"), "bce", ["AUC"]), set()),
        ("logit-unit-bce-from-logits", compiled(classifier(1, None), obj("losses.BinaryCrossentropy", from_logits=True)),
         set()),
        ("logits-cce-from-logits", compiled(classifier(10, None, "dropout"),
                                            obj("losses.CategoricalCrossentropy", from_logits=True), ["accuracy"]), set()),
        ("softmax-sparse-cce", compiled(classifier(10, "softmax"), "sparse_categorical_crossentropy", ["accuracy"]), set()),
        ("softmax-layer-sparse-cce", compiled(classifier(10, "softmax", "layer"), "sparse_categorical_crossentropy",
                                              ["sparse_categorical_accuracy"]), set()),
        ("segmentation-head-cce", compiled(segmentation, "categorical_crossentropy", ["accuracy"]), set()),
        ("linear-regression-mse", compiled(regression, "mse", ["mae"]), set()),
        ("multi-output-loss-dict", functional(multi_output, {
            "kind": "sparse_categorical_crossentropy", "flag": "binary_crossentropy", "score": "mse"},
            {"kind": ["accuracy"], "flag": ["binary_accuracy"]}), set()),
        ("multi-output-loss-list", functional(multi_output, [
            "sparse_categorical_crossentropy", "binary_crossentropy", "mse"]), set()),
        ("autoencoder-sigmoid-bce", compiled(autoencoder, "binary_crossentropy"), set()),
        ("sigmoid-mse-bounded-regression", compiled(classifier(1, "sigmoid"), "mse"), {("MA207", "out")}),
        ("uncompiled", compiled(classifier(10, "softmax"), compile=False), {("MA211", None)}),
    ]]


def unknown_never_fires() -> list[Case]:
    """A Lambda or an unknown layer on the way to the output makes its activation unknown: silence."""
    through_lambda = lambda K: [K.Input((8,)), K.layers.Dense(10, activation="softmax", name="probs"),  # noqa: E731
                                K.layers.Lambda(lambda x: x * 1.0, name="scale")]
    return [
        Case("lambda-after-softmax-bce", compiled(through_lambda, "binary_crossentropy"), set()),
        Case("lambda-after-softmax-from-logits",
             compiled(through_lambda, obj("losses.CategoricalCrossentropy", from_logits=True)), set()),
    ]


def nested() -> list[Case]:
    """The walk follows tensors into and out of nested models."""

    def head_inside(K):  # the softmax sits inside a nested Sequential that is the model's output
        head = K.Sequential([K.Input((16,)), K.layers.Dropout(0.1), K.layers.Dense(10, activation="softmax", name="probs")],
                            name="head")
        inputs = K.Input((8,))
        model = K.Model(inputs, head(K.layers.Dense(16, activation="relu")(inputs)))
        model.compile(optimizer="adam", loss="binary_crossentropy")
        return model

    def softmax_before_nested(K):  # the nested model only drops out: the softmax is outside, before it
        tail = K.Sequential([K.Input((10,)), K.layers.Dropout(0.1, name="tail_drop")], name="tail")
        inputs = K.Input((8,))
        probs = K.layers.Dense(10, activation="softmax", name="probs")(inputs)
        model = K.Model(inputs, tail(probs))
        model.compile(optimizer="adam", loss=K.losses.CategoricalCrossentropy(from_logits=True))
        return model

    return [
        Case("keras3-crossentropy-alias-softmax", compiled(classifier(10, "softmax"), "crossentropy"), set(),
             dialects=(K3,)),
        Case("keras3-crossentropy-alias-logits", compiled(classifier(10, None), "crossentropy"), {("MA206", "out")},
             dialects=(K3,)),
        Case("nested-head-softmax-bce", head_inside, {("MA201", "head/probs")}),
        Case("nested-tail-after-softmax", softmax_before_nested, {("MA205", "probs")}),
    ]


def regression(activation: Optional[str], how: str = "dense", units: int = 1):
    """A small regressor whose output activation is set `how` (as in classifier); the output is 'out'."""
    return classifier(units, activation, how)


ADAPTIVE = ["Adam", "AdamW", "Adamax", "Nadam", "RMSprop", "Adagrad", "Lion", "Ftrl"]


def benchmark_rules() -> list[Case]:
    """Issue 17: what published buggy Keras programs showed the rules still missed (MA213 per optimizer,
    MA214, MA215, MA216), each with the fixed model next to it."""
    cases = [Case(f"MA213-{name}-0.1", with_optimizer(obj(f"optimizers.{name}", learning_rate=0.1)),
                  {("MA213", None)}, dialects=(K3,)) for name in ADAPTIVE]
    cases += [
        Case("MA213-adam-0.1-tf-keras", with_optimizer(obj("optimizers.Adam", learning_rate=0.1)), {("MA213", None)},
             dialects=(K2,)),
        Case("MA213-adam-0.01-is-fine", with_optimizer(obj("optimizers.Adam", learning_rate=0.01)), set()),
        Case("MA213-adadelta-1.0-is-fine", with_optimizer(obj("optimizers.Adadelta", learning_rate=1.0)), set()),
        Case("MA213-per-optimizer-configured", with_optimizer(obj("optimizers.Adam", learning_rate=0.1)), set(),
             config={"rules": {"MA213": {"optimizer-max-lr": {"adam": 0.5}}}}),
        Case("MA213-per-optimizer-configured-lower", with_optimizer(obj("optimizers.SGD", learning_rate=0.05)),
             {("MA213", None)}, config={"rules": {"MA213": {"optimizer-max-lr": {"SGD": 0.02}}}}),
    ]
    # MA214: a ReLU output under a regression loss, however the relu is set
    for how in HOWS:
        cases.append(Case(f"MA214-{how}-mse", compiled(regression("relu", how), "mse"), {("MA214", "out")}))
    cases += [
        Case("MA214-relu6-huber", compiled(regression("relu6"), obj("losses.Huber")), {("MA214", "out")}),
        Case("MA214-ReLU-layer-msle", compiled(lambda K: [K.Input((8,)), K.layers.Dense(1, name="lin"),
                                                          K.layers.ReLU(name="out")], "msle"), {("MA214", "out")}),
        Case("MA214-ReLU-threshold-still-dies", compiled(lambda K: [K.Input((8,)), K.layers.Dense(1, name="lin"),
                                                                    K.layers.ReLU(threshold=0.5, name="out")], "mse"),
             {("MA214", "out")}),
        Case("MA214-leaky-ReLU-is-fine", compiled(lambda K: [K.Input((8,)), K.layers.Dense(1, name="lin"),
                                                             K.layers.ReLU(negative_slope=0.1, name="out")], "mse"),
             set()),
        Case("MA214-softplus-is-fine", compiled(regression("softplus"), "mse"), set(), clean=True),
        Case("MA214-relu-with-poisson-is-fine", compiled(regression("relu"), "poisson"), set()),
    ]
    # MA215: accuracy on a regression output
    for metric in ["accuracy", "acc", "binary_accuracy", obj("metrics.BinaryAccuracy")]:
        cases.append(Case(f"MA215-mse-{_label(metric)}", compiled(regression(None), "mse", [metric]),
                          {("MA215", "out")}))
    cases += [
        Case("MA215-three-outputs-categorical-accuracy", compiled(regression(None, units=3), "mae",
                                                                  ["categorical_accuracy"]), {("MA215", "out")}),
        Case("MA215-regression-metrics-are-fine", compiled(regression(None), "mse",
                                                           ["mae", obj("metrics.RootMeanSquaredError")]), set(),
             clean=True),
        Case("MA215-accuracy-on-the-classifier-head-only", functional(two_heads, {
            "kind": "sparse_categorical_crossentropy", "score": "mse"}, {"kind": ["accuracy"], "score": ["mae"]}),
             set(), clean=True),
        Case("MA215-accuracy-on-the-regression-head", functional(two_heads, {
            "kind": "sparse_categorical_crossentropy", "score": "mse"}, {"kind": ["accuracy"], "score": ["accuracy"]}),
             {("MA215", "score")}),
    ]
    # MA216: the loss and a metric read the labels differently
    sparse_metrics = ["sparse_categorical_accuracy", obj("metrics.SparseTopKCategoricalAccuracy", k=2),
                      obj("metrics.SparseCategoricalCrossentropy")]
    one_hot_metrics = ["categorical_accuracy", obj("metrics.TopKCategoricalAccuracy", k=2),
                       obj("metrics.CategoricalCrossentropy")]
    for metric in one_hot_metrics:
        cases.append(Case(f"MA216-sparse-loss-{_label(metric)}",
                          compiled(classifier(10, "softmax"), "sparse_categorical_crossentropy", [metric]),
                          {("MA216", "out")}))
    for metric in sparse_metrics:
        cases.append(Case(f"MA216-one-hot-loss-{_label(metric)}",
                          compiled(classifier(10, "softmax"), "categorical_crossentropy", [metric]),
                          {("MA216", "out")}))
    cases += [
        Case("MA216-sparse-object-loss-one-hot-metric", compiled(classifier(10, None), obj(
            "losses.SparseCategoricalCrossentropy", from_logits=True), ["categorical_accuracy"]), {("MA216", "out")}),
        Case("MA216-sparse-matching-metrics", compiled(classifier(10, "softmax"), "sparse_categorical_crossentropy",
                                                       sparse_metrics), set(), clean=True),
        Case("MA216-one-hot-matching-metrics", compiled(classifier(10, "softmax"), "categorical_crossentropy",
                                                        one_hot_metrics), set(), clean=True),
    ]
    return cases


CASES = mistakes() + single_unit() + structure() + correct() + unknown_never_fires() + nested() + benchmark_rules()
PARAMS = [pytest.param(case, dialect, id=f"{case.id}[{dialect}]") for case in CASES for dialect in case.dialects]


def save(model, folder, dialect) -> str:
    import keras

    if dialect == K2:
        path = os.path.join(folder, "model.h5")
        model.save(path, save_format="h5")
    else:
        path = os.path.join(folder, "model.keras")
        keras.saving.save_model(model, path)
    return path


@pytest.mark.parametrize("case, dialect", PARAMS)
def test_objective_table(case: Case, dialect: str, tmp_path):
    import importlib

    K = importlib.import_module(dialect)
    path = save(case.build(K), str(tmp_path), dialect)
    report = modelaudit.audit(path, case.config)
    fr = report.files[0]
    assert fr.error is None and not fr.internal_errors, (fr.error, fr.internal_errors)
    found = {(f.code, f.layer) for f in fr.findings if f.code.startswith("MA2")}
    assert found == case.expect, "\n".join(f"{f.code} {f.layer}: {f.message}" for f in fr.findings)
    if case.clean:
        above_info = [f for f in fr.findings if f.severity.value != "info"]
        assert not above_info, "\n".join(f"{f.code} {f.layer}: {f.message}" for f in above_info)


# ---- the messages name the output, the layer, the loss and the fix ----------------------------


def test_ma201_message_reads_without_the_docs(tmp_path):
    import keras

    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(10, name="logits"), keras.layers.Softmax(name="probs"),
                              keras.layers.Dropout(0.1, name="drop")])
    model.compile(optimizer="adam", loss="bce")
    (finding,) = modelaudit.audit(save(model, str(tmp_path), K3)).findings
    assert finding.message == (
        "output 'drop' applies softmax (set by Softmax 'probs', 10 units) but is trained with bce "
        "(binary_crossentropy), which scores each unit as an independent yes/no; use categorical_crossentropy "
        "(one-hot labels) or sparse_categorical_crossentropy (integer labels), or sigmoid for multi-label"
    )


def test_cli_check_on_softmax_bce_sample_prints_one_error():
    from typer.testing import CliRunner

    from modelaudit.cli import app

    path = os.path.join(SAMPLES, "softmax_bce.keras")
    result = CliRunner().invoke(app, ["check", path, "--format", "concise"])  # the one-line layout
    assert result.exit_code == 1, result.output
    errors = [line for line in result.stdout.splitlines() if "[error]" in line]
    assert len(errors) == 1, result.stdout
    assert "MA201" in errors[0]
    assert errors[0] == (
        f"{path}: dense_1: MA201 [error] output 'dense_1' applies softmax (set by Dense 'dense_1', 10 units) but is "
        "trained with binary_crossentropy, which scores each unit as an independent yes/no; use "
        "categorical_crossentropy (one-hot labels) or sparse_categorical_crossentropy (integer labels), or sigmoid "
        "for multi-label"
    )
    assert result.stdout.splitlines()[-1] == "1 file checked: 1 error, 0 warnings, 0 info"


# ---- the committed samples: each shows what samples/README.md says it shows --------------------

SAMPLE_CODES = {
    "softmax_bce.keras": {"MA201"},
    "softmax_cce.keras": set(),
    "multi_label_sigmoid.keras": set(),
    "single_unit_softmax.keras": {"MA203"},
    "single_unit_sigmoid.keras": set(),
    "softmax_from_logits.keras": {"MA205"},
    "logits_from_logits.keras": set(),
    "logits_without_from_logits.keras": {"MA206"},
    "mnist_classifier.keras": set(),
    "mnist_classifier_keras2.h5": set(),
    "multi_input_functional.keras": set(),
    "conv2d_textbook.keras": {"MA211"},
}


@pytest.mark.parametrize("name", sorted(SAMPLE_CODES))
def test_committed_sample(name):
    report = modelaudit.audit(os.path.join(SAMPLES, name))
    assert report.files[0].error is None
    assert {f.code for f in report.findings} == SAMPLE_CODES[name], [f.message for f in report.findings]


def test_samples_readme_lists_every_sample():
    from samples import make_samples

    on_disk = {f for f in os.listdir(SAMPLES) if f.endswith((".keras", ".h5"))}
    assert on_disk == set(make_samples.SAMPLES) == set(SAMPLE_CODES)
    with open(os.path.join(SAMPLES, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    for name in on_disk:
        assert f"`{name}`" in readme, f"samples/README.md does not list {name}"
        assert os.path.getsize(os.path.join(SAMPLES, name)) < 200 * 1024


# ---- the normalization itself: pure functions, no Keras -----------------------------------------


@pytest.mark.parametrize("identifier, family, from_logits", [
    ("binary_crossentropy", LossFamily.BINARY_CE, False),
    ("BCE", LossFamily.BINARY_CE, False),
    ("BinaryCrossentropy", LossFamily.BINARY_CE, False),
    ({"module": "builtins", "class_name": "function", "config": "binary_crossentropy", "registered_name": "function"},
     LossFamily.BINARY_CE, False),
    ({"module": "keras.losses", "class_name": "BinaryFocalCrossentropy", "config": {"from_logits": True}},
     LossFamily.BINARY_CE, True),
    ({"class_name": "CategoricalCrossentropy", "config": {"from_logits": True, "fn": "categorical_crossentropy"}},
     LossFamily.CATEGORICAL_CE, True),
    ({"class_name": "LossFunctionWrapper", "config": {"fn": "sparse_categorical_crossentropy"}},
     LossFamily.SPARSE_CE, False),
    ("kullback_leibler_divergence", LossFamily.OTHER, False),
    ("huber_loss", LossFamily.REGRESSION, False),
    ("logcosh", LossFamily.REGRESSION, False),
    ("categorical_hinge", LossFamily.HINGE, False),
    ({"module": "my_project.losses", "class_name": "BinaryCrossentropy", "config": {}}, LossFamily.OTHER, False),
    ({"module": "keras.losses", "class_name": "MyLoss", "registered_name": "my>MyLoss"}, LossFamily.OTHER, False),
    ("my_loss", LossFamily.OTHER, False),
])
def test_loss_family(identifier, family, from_logits):
    loss = normalize_loss(identifier)
    assert (loss.family, loss.from_logits) == (family, from_logits)


def test_keras3_crossentropy_alias_follows_the_output_shape():
    assert normalize_loss("crossentropy", units=1).family is LossFamily.BINARY_CE
    assert normalize_loss("ce", units=10).family is LossFamily.CATEGORICAL_CE
    assert normalize_loss("crossentropy", units=None).family is LossFamily.OTHER


def test_tf_keras_metric_keeps_what_was_written():
    # tf_keras resolves "accuracy" to binary_accuracy after a binary loss; the user wrote "accuracy"
    wrapped = {"class_name": "MeanMetricWrapper", "config": {"name": "kind_accuracy", "fn": "binary_accuracy"}}
    assert normalize_metric(wrapped).name == "accuracy"
    explicit = {"class_name": "MeanMetricWrapper", "config": {"name": "kind_binary_accuracy", "fn": "binary_accuracy"}}
    assert normalize_metric(explicit).name == "binary_accuracy"


def test_assign_by_position_name_and_broadcast():
    from modelaudit.graph import Objective

    names = ["b_out", "a_out"]
    single = assign(Objective(loss="bce"), names)
    assert [[l.name for l in ls] for ls in single.losses] == [["binary_crossentropy"]] * 2
    by_list = assign(Objective(loss=["mse", "bce"]), names)
    assert [ls[0].name for ls in by_list.losses] == ["mean_squared_error", "binary_crossentropy"]
    # dict outputs: a list follows keras.tree's sorted-key order
    by_sorted = assign(Objective(loss=["mse", "bce"]), names, dict_outputs=True)
    assert [ls[0].name for ls in by_sorted.losses] == ["binary_crossentropy", "mean_squared_error"]
    by_dict = assign(Objective(loss={"a_out": "mse"}, metrics={"b_out": ["binary_accuracy"]}), names)
    assert by_dict.losses[0] == () and by_dict.losses[1][0].name == "mean_squared_error"
    assert [m.name for m in by_dict.metrics[0]] == ["binary_accuracy"] and by_dict.metrics[1] == ()
    assert not by_dict.problems
    assert assign(Objective(loss={"c_out": "mse"}), names).problems


def test_learning_rate_options_are_checked():
    from modelaudit.checks.objective import LearningRateOutOfRange
    from modelaudit.errors import ConfigError

    assert LearningRateOutOfRange(max_lr=1).opts["max_lr"] == 1.0
    with pytest.raises(ConfigError, match="MA213"):
        LearningRateOutOfRange(min_lr=0.5, max_lr=0.1)
    with pytest.raises(ConfigError, match="MA213"):
        LearningRateOutOfRange(max_lr="high")
    with pytest.raises(ConfigError, match="MA213"):
        LearningRateOutOfRange(lr=0.1)


def test_effective_output_activation_per_output(tmp_path):
    """infer.outputs on its own (other rule families reuse it): per output, the activation, the layer
    setting it (through Dropout and into a nested model) and the units; unknown behind an unknown class."""
    import json

    import keras

    from modelaudit.formats.json_config import graph_from_config
    from modelaudit.infer.outputs import effective_output_activations
    from modelaudit.infer.propagate import propagate

    inputs = keras.Input((8,), name="x")
    head = keras.Sequential([keras.Input((8,)), keras.layers.Dense(3, activation="sigmoid", name="tags")], name="head")
    kind = keras.layers.Dropout(0.1, name="kind_drop")(keras.layers.Dense(4, activation="softmax", name="kind")(inputs))
    score = keras.layers.Dense(1, name="score")(inputs)
    odd = keras.layers.Dropout(0.1, name="odd")(keras.layers.Dense(2, activation="softmax", name="odd_probs")(inputs))
    model = keras.Model(inputs, [kind, head(inputs), score, odd])
    config = json.loads(model.to_json())
    odd_layer = next(layer for layer in config["config"]["layers"] if layer["config"]["name"] == "odd")
    odd_layer["class_name"] = "MyNoise"  # a class no spec knows: its meaning is unknown
    outs = effective_output_activations(propagate(graph_from_config(config, format="json-config")))
    got = [(o.name, o.activation, o.set_by, o.units) for o in outs]
    assert got == [("kind_drop", "softmax", "kind", 4), ("head", "sigmoid", "head/tags", 3),
                   ("score", "linear", "score", 1), ("odd", None, None, None)]
    assert "MyNoise 'odd'" in outs[3].why_unknown


def test_learning_rate_bounds_follow_keras_defaults():
    """MA213's table against Keras's own optimizers: each default is what Keras 3 constructs, and an
    adaptive optimizer's bound is 10x it (Adadelta: the paper's 1.0, as its docstring advises)."""
    import keras

    from modelaudit.checks.objective import DEFAULT_LEARNING_RATES, LearningRateOutOfRange

    rule = LearningRateOutOfRange()
    classes = {name.lower(): getattr(keras.optimizers, name) for name in dir(keras.optimizers)}
    for name, default in DEFAULT_LEARNING_RATES.items():
        assert float(classes[name]().learning_rate) == pytest.approx(default), name
        expected = 0.1 if name == "sgd" else 1.0 if name == "adadelta" else 10 * default
        assert rule.max_lr(classes[name].__name__)[0] == pytest.approx(expected), name
    assert rule.max_lr("MyOptimizer")[0] == 0.1
    assert LearningRateOutOfRange(optimizer_max_lr={"Adam": 1}).max_lr("adam") == (1.0, "configured")
    from modelaudit.errors import ConfigError

    for bad in ({"optimizer_max_lr": {"Adam": "fast"}}, {"optimizer_max_lr": {"Adam": -1}}):
        with pytest.raises(ConfigError, match="MA213"):
            LearningRateOutOfRange(**bad)


def dice_coef(y_true, y_pred):
    return y_pred


def dice_coef_loss(y_true, y_pred):
    return -y_pred


@pytest.fixture(scope="module")
def custom_objective_files(tmp_path_factory):
    """One model compiled with a custom loss and metric function, saved by Keras 3 (.keras and legacy
    .h5) and by tf_keras (.h5): each writes the functions by their bare names."""
    import keras
    import tf_keras

    folder = tmp_path_factory.mktemp("custom_objective")
    files = {}
    for K, fmt in ((keras, "keras"), (keras, "h5"), (tf_keras, "h5")):
        model = K.Sequential([K.Input((8,)), K.layers.Dense(1, activation="sigmoid", name="out")])
        model.compile(optimizer="adam", loss=dice_coef_loss, metrics=[dice_coef, "accuracy"])
        path = str(folder / f"{K.__name__}.{fmt}")
        model.save(path, **({"save_format": "h5"} if K is tf_keras else {}))
        files[f"{K.__name__}-{fmt}"] = path
    return files


@pytest.mark.parametrize("which", ["keras-keras", "keras-h5", "tf_keras-h5"])
def test_custom_loss_and_metric_by_name_are_ma407(custom_objective_files, which):
    """Item 8 of issue 17: a loss or metric Keras does not define, saved by name, is MA407 info (the
    objective rules cannot check it), not silence; the Keras metric beside it is not."""
    report = modelaudit.audit(custom_objective_files[which])
    found = [f for f in report.findings if f.code == "MA407"]
    named = {f.message.split("'")[1] for f in found}
    assert named == {dice_coef_loss.__name__, dice_coef.__name__}, [f.message for f in found]
    assert all(f.severity.value == "info" and f.layer is None for f in found)
    assert any("the loss 'dice_coef_loss', which is not a Keras loss" in f.message for f in found)
    assert not [f for f in report.findings if f.severity.value != "info"], [f.message for f in report.findings]


def test_keras_loss_and_metric_names_are_not_custom():
    """Every name Keras 3's own get() resolves is known (keras.losses / keras.metrics ALL_OBJECTS_DICT)."""
    from keras.src import losses as keras_losses
    from keras.src import metrics as keras_metrics

    from modelaudit.graph import Objective
    from modelaudit.losses import custom_by_name

    loss_names = [n for n in keras_losses.ALL_OBJECTS_DICT if n not in ("Loss", "LossFunctionWrapper")]
    metric_names = list(keras_metrics.ALL_OBJECTS_DICT)
    assert custom_by_name(Objective(loss=loss_names, metrics=metric_names)) == []
    assert custom_by_name(Objective(loss="my_loss", metrics=["acc", "my_metric"])) == [
        ("loss", "my_loss"), ("metric", "my_metric")]
