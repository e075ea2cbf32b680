"""MA2xx: the output activation, the loss and the metrics must agree.

Each output's effective activation comes from infer.outputs, its losses and metrics from losses.
An output whose activation is unknown (a Lambda, an unknown layer on the way) triggers none of the
rules that depend on it.
"""

from __future__ import annotations

import math
from typing import Iterator, Optional

from modelaudit.engine import Finding, Rule, Severity, register
from modelaudit.graph import fmt_shape
from modelaudit.infer.outputs import ObjectiveOutput, axis_size, softmax_of
from modelaudit.losses import Loss, LossFamily
from modelaudit.options import Option, non_negative, table_of

HALF_PRECISION = ("float16", "bfloat16")

# the loss class that takes logits, for "use ...(from_logits=True)"
LOGITS_CLASS = {
    "binary_crossentropy": "BinaryCrossentropy",
    "binary_focal_crossentropy": "BinaryFocalCrossentropy",
    "categorical_crossentropy": "CategoricalCrossentropy",
    "categorical_focal_crossentropy": "CategoricalFocalCrossentropy",
    "sparse_categorical_crossentropy": "SparseCategoricalCrossentropy",
}


def _crossentropy_fix(loss: Loss) -> str:
    if loss.focal:
        return "use categorical_focal_crossentropy"
    return "use categorical_crossentropy (one-hot labels) or sparse_categorical_crossentropy (integer labels)"


@register
class SoftmaxWithBinaryCrossentropy(Rule):
    code = "MA201"
    name = "softmax-with-binary-crossentropy"
    severity = Severity.ERROR
    summary = "Binary cross-entropy on a softmax output: each unit is scored as an independent yes/no"

    def check(self, model) -> Iterator[Finding]:
        for o in model.objective_outputs:
            n = o.out.axis_size
            if o.activation != "softmax" or n is None or n <= 1:
                continue
            for loss in o.losses:
                if loss.family is LossFamily.BINARY_CE:
                    yield self.finding(
                        o.layer,
                        f"output '{o.name}' applies softmax (set by {o.with_units(n)}) but is trained with "
                        f"{loss.described}, which scores each unit as an independent yes/no",
                        fix=f"{_crossentropy_fix(loss)}, or sigmoid for multi-label",
                    )


@register
class SigmoidWithCategoricalCrossentropy(Rule):
    code = "MA202"
    name = "sigmoid-with-categorical-crossentropy"
    severity = Severity.WARNING
    summary = "Categorical cross-entropy on a sigmoid output with several units"

    def check(self, model) -> Iterator[Finding]:
        for o in model.objective_outputs:
            n = o.out.units
            if o.activation not in ("sigmoid", "hard_sigmoid") or n is None or n <= 1:
                continue
            for loss in o.losses:
                if loss.family.is_categorical:
                    yield self.finding(
                        o.layer,
                        f"output '{o.name}' applies {o.activation} (set by {o.with_units(n)}) but is trained with "
                        f"{loss.described}, which treats the units as one distribution over classes; the sigmoid "
                        "units are independent and do not sum to 1, so the loss rescales them",
                        fix="use softmax for one class per sample, or binary_crossentropy for multi-label",
                    )


@register
class SingleUnitSoftmax(Rule):
    code = "MA203"
    name = "single-unit-softmax"
    severity = Severity.ERROR
    summary = "Softmax over an axis of size 1: the output is the constant 1.0"

    def check(self, model) -> Iterator[Finding]:
        for row in model.rows:
            layer = row.layer
            if layer.submodel is not None:
                continue
            softmax = softmax_of(layer)
            if softmax is None:
                continue
            act, axis = softmax
            shape = next((shapes[0] for shapes in row.output_shapes if shapes and shapes[0] is not None), None)
            if axis_size(shape, axis) != 1:
                continue
            constant = "0.0" if act == "log_softmax" else "1.0"
            how = f"activation='{act}'" if layer.class_name not in ("Softmax", "Activation") else act
            yield self.finding(
                row.path,
                f"{layer.class_name} '{row.path}' applies {how} over axis {axis} of size 1 (output shape "
                f"{fmt_shape(shape)}): its output is the constant {constant} whatever the input, so nothing "
                "before it can learn",
                fix="use sigmoid for a single yes/no unit, or one unit per class with softmax",
            )


@register
class CategoricalLossOnSingleUnit(Rule):
    code = "MA204"
    name = "categorical-loss-on-single-unit"
    severity = Severity.ERROR
    summary = "Categorical cross-entropy on an output whose last dimension is 1"

    def check(self, model) -> Iterator[Finding]:
        # Depends on the output's shape only, so it runs even when the activation is unknown.
        for o in model.objective_outputs:
            if o.out.units != 1:
                continue
            for loss in o.losses:
                if loss.family.is_categorical and not loss.auto:
                    yield self.finding(
                        o.layer,
                        f"output '{o.name}' has a single unit (shape {fmt_shape(o.out.shape)}) but is trained with "
                        f"{loss.described}, which needs one unit per class: over one unit the loss is constant "
                        "and nothing learns",
                        fix="for a yes/no target use binary_crossentropy with a sigmoid unit, "
                        "or give the output one unit per class",
                    )


@register
class ActivatedOutputWithFromLogits(Rule):
    code = "MA205"
    name = "activated-output-with-from-logits"
    severity = Severity.ERROR
    summary = "A cross-entropy loss with from_logits=True on an output already passed through softmax/sigmoid"

    def check(self, model) -> Iterator[Finding]:
        for o in model.objective_outputs:
            if not o.out.is_probability:
                continue
            for loss in o.losses:
                if loss.family.is_crossentropy and loss.from_logits:
                    yield self.finding(
                        o.layer,
                        f"output '{o.name}' already applies {o.activation} (set by {o.where}) but is trained with "
                        f"{loss.described}, which applies {_inner_activation(loss)} again inside the loss: the "
                        "predictions are squashed twice and can never become confident",
                        fix=f"remove the activation from {o.where} (a linear output, keep from_logits=True) "
                        "or set from_logits=False",
                    )


def _inner_activation(loss: Loss) -> str:
    return "sigmoid" if loss.family is LossFamily.BINARY_CE else "softmax"


@register
class LogitsWithoutFromLogits(Rule):
    code = "MA206"
    name = "logits-without-from-logits"
    severity = Severity.ERROR
    summary = "A cross-entropy loss with from_logits=False on a linear or unbounded output"

    def check(self, model) -> Iterator[Finding]:
        for o in model.objective_outputs:
            if o.activation is None or o.out.is_probability:
                continue
            for loss in o.losses:
                if not loss.family.is_crossentropy or loss.from_logits:
                    continue
                if o.activation == "linear":
                    values = f"has no activation (linear, set by {o.where}), so its values are logits"
                else:
                    values = f"applies {o.activation} (set by {o.where}), so its values are unbounded"
                default = ", the default" if "(" not in loss.written else ""
                fix = LOGITS_CLASS.get(loss.name or "", "the loss")
                yield self.finding(
                    o.layer,
                    f"output '{o.name}' {values}, not probabilities, but it is trained with {loss.described} "
                    f"and from_logits=False{default}: the loss clips them into (0, 1) and training stalls",
                    fix=f"use {fix}(from_logits=True), or end the output with {_inner_activation(loss)}",
                )


@register
class RegressionLossOnProbabilities(Rule):
    code = "MA207"
    name = "regression-loss-on-probabilities"
    severity = Severity.WARNING
    summary = "A regression loss on a softmax output (on a sigmoid output: info)"

    def check(self, model) -> Iterator[Finding]:
        for o in model.objective_outputs:
            if o.activation not in ("softmax", "sparsemax", "sigmoid", "hard_sigmoid"):
                continue
            for loss in o.losses:
                if loss.family is not LossFamily.REGRESSION:
                    continue
                if o.activation in ("softmax", "sparsemax"):
                    yield self.finding(
                        o.layer,
                        f"output '{o.name}' applies {o.activation} (set by {o.with_units(o.out.axis_size)}) but is "
                        f"trained with {loss.described}, a regression loss: it scores class probabilities as "
                        "plain numbers and its gradient fades as the softmax saturates",
                        fix="use categorical_crossentropy (one-hot labels) or sparse_categorical_crossentropy "
                        "(integer labels)",
                    )
                else:
                    yield self.finding(
                        o.layer,
                        f"output '{o.name}' applies {o.activation} (set by {o.where}) and is trained with "
                        f"{loss.described}: fine for targets in [0, 1] (a bounded regression)",
                        fix="for yes/no labels use binary_crossentropy",
                        severity=Severity.INFO,
                    )


@register
class BinaryAccuracyOnMulticlass(Rule):
    code = "MA208"
    name = "binary-accuracy-on-multiclass"
    severity = Severity.WARNING
    summary = "binary_accuracy as a metric on a softmax output with several units: it reads inflated"

    def check(self, model) -> Iterator[Finding]:
        for o in model.objective_outputs:
            n = o.out.axis_size
            if o.activation != "softmax" or n is None or n <= 1:
                continue
            for metric in o.metrics:
                if metric.name == "binary_accuracy":
                    yield self.finding(
                        o.layer,
                        f"output '{o.name}' applies softmax (set by {o.with_units(n)}) and reports "
                        f"{metric.written} as a metric, which thresholds each unit at 0.5 on its own: a model "
                        f"that predicts no class at all scores {(n - 1) / n:.0%}",
                        fix="use 'accuracy' or categorical_accuracy (sparse_categorical_accuracy for integer labels)",
                    )


@register
class LossOutputMismatch(Rule):
    code = "MA209"
    name = "loss-output-mismatch"
    severity = Severity.ERROR
    summary = "A loss list or dict that does not match the model's outputs"

    def check(self, model) -> Iterator[Finding]:
        if model.graph.objective is None:
            return
        for kind, problem in model.loss_assignment.problems:
            consequence = (
                "Keras pairs a list with the outputs by position, so an output goes without a loss or fit() fails"
                if kind == "list" else "fit() fails on a key that names no output"
            )
            yield self.finding(
                None,
                f"{problem}: {consequence}",
                fix="give one loss per output in output order, or a dict keyed by output name",
            )


@register
class Float16Output(Rule):
    code = "MA210"
    name = "float16-output"
    severity = Severity.WARNING
    summary = "Under mixed precision, the output activation is computed in float16"

    def check(self, model) -> Iterator[Finding]:
        for o in model.output_activations:
            if o.activation is None:
                continue
            if o.activation != "linear" and o.dtype in HALF_PRECISION:
                yield self.finding(
                    o.set_by,
                    f"output '{o.name}' applies {o.activation} in {o.dtype}: {o.set_by_class} '{o.set_by}' "
                    f"computes in {o.dtype} under its dtype policy, and {o.activation} in half precision "
                    "rounds and underflows before the loss sees it",
                    fix="Keras advises a float32 output activation: pass dtype='float32' to that layer, or end "
                    f"with Activation('{o.activation}', dtype='float32') after a linear layer",
                )
            elif o.output_dtype in HALF_PRECISION:
                yield self.finding(
                    o.layer,
                    f"output '{o.name}' is produced in {o.output_dtype} by '{o.layer}' under its dtype policy, "
                    "so the loss is computed on half-precision values",
                    fix="Keras advises float32 outputs: end the model with Activation('linear', "
                    "dtype='float32'), or pass dtype='float32' to the last layer",
                )


@register
class UncompiledModel(Rule):
    code = "MA211"
    name = "uncompiled-model"
    severity = Severity.INFO
    summary = "No compile config: the loss, metrics and optimizer cannot be checked"

    def check(self, model) -> Iterator[Finding]:
        if model.graph.objective is None:
            yield self.finding(
                None,
                "the file holds no compile config (the model was saved before compile()): the loss, "
                "metrics and learning rate cannot be checked against the outputs",
                fix="compile before saving to have them checked",
            )


@register
class HingeLossOnProbabilities(Rule):
    code = "MA212"
    name = "hinge-loss-on-probabilities"
    severity = Severity.WARNING
    summary = "A hinge-family loss on a sigmoid or softmax output"

    def check(self, model) -> Iterator[Finding]:
        for o in model.objective_outputs:
            if not o.out.is_probability:
                continue
            for loss in o.losses:
                if loss.family is LossFamily.HINGE:
                    binary = o.activation in ("sigmoid", "hard_sigmoid")
                    ce = "binary_crossentropy" if binary else "categorical_crossentropy"
                    yield self.finding(
                        o.layer,
                        f"output '{o.name}' applies {o.activation} (set by {o.where}) but is trained with "
                        f"{loss.described}, which wants labels of -1/1 and unbounded (or tanh) scores that clear "
                        "a margin of 1, and values in [0, 1] never do",
                        fix=f"keep {o.activation} with {ce}, or use a linear or tanh output with the hinge loss",
                    )


# Each optimizer's default learning rate in Keras 3 (keras/src/optimizers/*.py; tf_keras agrees but
# for Lion, 1e-4). An adaptive optimizer diverges far below SGD's range: its bound is 10x its default.
DEFAULT_LEARNING_RATES = {
    "adam": 0.001, "adamw": 0.001, "adamax": 0.001, "nadam": 0.001, "rmsprop": 0.001, "adagrad": 0.001,
    "adadelta": 0.001, "adafactor": 0.001, "ftrl": 0.001, "lion": 0.001, "lamb": 0.001, "muon": 0.001,
    "schedulefreeadamw": 0.0025, "sgd": 0.01,
}
# Keras's Adadelta docstring: "to match the exact form in the original paper, use 1.0".
DOCUMENTED_MAX_LR = {"adadelta": 1.0}
SCALED_OPTIMIZERS = frozenset(DEFAULT_LEARNING_RATES) - {"sgd"}  # SGD keeps max_lr


@register
class LearningRateOutOfRange(Rule):
    code = "MA213"
    name = "learning-rate-out-of-range"
    severity = Severity.WARNING
    summary = ("A constant learning rate more than 10x above an adaptive optimizer's Keras default (SGD: above "
               "0.1), or below 1e-7 (configurable)")
    options = {"min_lr": Option(1e-7, non_negative), "max_lr": Option(0.1, non_negative),
               "optimizer_max_lr": Option({}, table_of(non_negative, "optimizer name -> rate"))}

    @classmethod
    def validate_options(cls, opts: dict) -> Optional[str]:
        if opts["min_lr"] > opts["max_lr"]:
            return f"min-lr {opts['min_lr']:g} is above max-lr {opts['max_lr']:g}"
        return None

    def max_lr(self, optimizer: Optional[str]) -> tuple[float, str]:
        """(the upper bound for this optimizer, where it comes from) for messages."""
        key = (optimizer or "").lower()
        if key in self.opts["optimizer_max_lr"]:
            return self.opts["optimizer_max_lr"][key], "configured"
        if key in DOCUMENTED_MAX_LR:
            return DOCUMENTED_MAX_LR[key], "the original paper's rate, as Keras documents"
        if key in SCALED_OPTIMIZERS:
            return 10 * DEFAULT_LEARNING_RATES[key], f"10x its Keras default of {DEFAULT_LEARNING_RATES[key]:g}"
        return self.opts["max_lr"], "max_lr"

    def check(self, model) -> Iterator[Finding]:
        objective = model.graph.objective
        if objective is None:
            return
        lr = objective.learning_rate
        # A schedule (a dict) is not a constant; a learning rate is a number, not a bool.
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr):
            return
        low = self.opts["min_lr"]
        high, why = self.max_lr(objective.optimizer)
        opt = objective.optimizer or "the optimizer"
        default = DEFAULT_LEARNING_RATES.get((objective.optimizer or "").lower())
        suggested = f"{opt}'s Keras default is {default:g}" if default else "Adam's default is 0.001"
        # Keras stores the rate as float32: 0.1 reads back as 0.10000000149, which is not above 0.1.
        tolerance = 1e-6
        if lr > high * (1 + tolerance):
            yield self.finding(
                None,
                f"{opt} has a constant learning rate of {lr:.3g}, above {high:g} ({why}): the updates overshoot "
                "and training is likely to diverge (loss going to NaN)",
                fix=f"use a rate between {low:g} and {high:g} ({suggested}), or a schedule",
            )
        elif lr <= 0:
            yield self.finding(
                None,
                f"{opt} has a learning rate of {lr:g}: the weights "
                f"{'never move' if lr == 0 else 'move against the gradient'}",
                fix=f"use a positive rate ({suggested})",
            )
        elif lr < low * (1 - tolerance):
            yield self.finding(
                None,
                f"{opt} has a constant learning rate of {lr:.3g}, below {low:g}: the weights barely move and "
                "training stalls",
                fix=f"use a rate between {low:g} and {high:g} ({suggested})",
            )


# Output activations that cannot go negative and pass no gradient below 0: a unit pushed there is dead.
DEAD_BELOW_ZERO = ("relu", "relu6")
# Metrics named for classification: on a regression output Keras still computes them, on rounded values.
ACCURACY_METRICS = ("accuracy", "binary_accuracy", "categorical_accuracy")
# Metrics that read one-hot labels, and those that read integer labels (keras.metrics).
ONE_HOT_METRICS = ("categorical_accuracy", "top_k_categorical_accuracy", "categorical_crossentropy")
SPARSE_METRICS = ("sparse_categorical_accuracy", "sparse_top_k_categorical_accuracy", "sparse_categorical_crossentropy")


def _layer_config(layers: dict, path: Optional[str]) -> dict:
    layer = layers.get(path) if path else None
    cfg = layer.config if layer is not None else None
    return cfg if isinstance(cfg, dict) else {}


def _leaks_below_zero(cls: Optional[str], cfg: dict) -> bool:
    """A ReLU layer with a negative slope is leaky: its units keep a gradient below the threshold."""
    if cls != "ReLU":
        return False
    slope = cfg.get("negative_slope")
    return isinstance(slope, (int, float)) and not isinstance(slope, bool) and slope != 0


@register
class ReluRegressionOutput(Rule):
    code = "MA214"
    name = "relu-regression-output"
    severity = Severity.WARNING
    summary = "A ReLU output trained with a regression loss: a unit that goes below 0 is dead for good"

    def check(self, model) -> Iterator[Finding]:
        layers = None
        for o in model.objective_outputs:
            if o.activation not in DEAD_BELOW_ZERO:
                continue
            layers = layers if layers is not None else {row.path: row.layer for row in model.rows}
            if _leaks_below_zero(o.out.set_by_class, _layer_config(layers, o.out.set_by)):
                continue
            loss = next((l for l in o.losses if l.family is LossFamily.REGRESSION), None)
            if loss is None:
                continue
            yield self.finding(
                o.layer,
                f"output '{o.name}' applies {o.activation} (set by {o.where}) and is trained with "
                f"{loss.described}, a regression loss: an output unit whose input goes below 0 predicts 0 with "
                "zero gradient, so the loss cannot pull it back, and once pushed below 0 for every input it is "
                "dead and predicts 0 for every sample",
                fix="use a linear output (no activation), or softplus if the target is always positive",
            )


@register
class AccuracyOnRegression(Rule):
    code = "MA215"
    name = "accuracy-on-regression"
    severity = Severity.WARNING
    summary = "An accuracy metric on an output trained with a regression loss: a meaningless number"

    def check(self, model) -> Iterator[Finding]:
        for o in model.objective_outputs:
            if not o.losses or not all(l.family is LossFamily.REGRESSION for l in o.losses):
                continue
            for metric in o.metrics:
                if metric.name not in ACCURACY_METRICS:
                    continue
                yield self.finding(
                    o.layer,
                    f"output '{o.name}' is trained with {o.losses[0].described}, a regression loss, but reports "
                    f"{metric.written} as a metric: {_accuracy_meaning(metric.name, o.out.units)}, which says "
                    "nothing about how close the predictions are",
                    fix="report a regression metric instead: 'mae', 'mse' or keras.metrics.RootMeanSquaredError()",
                )


def _accuracy_meaning(name: str, units: Optional[int]) -> str:
    if name == "binary_accuracy" or (name == "accuracy" and units == 1):
        return "Keras computes it as binary_accuracy, the share of predictions that, thresholded at 0.5, equal the target exactly"
    return ("Keras computes it as categorical_accuracy, whether the largest predicted value sits where the "
            "largest target value does")


@register
class LabelEncodingMismatch(Rule):
    code = "MA216"
    name = "label-encoding-mismatch"
    severity = Severity.ERROR
    summary = "The loss and a metric of one output expect different label encodings (integer vs one-hot)"

    def check(self, model) -> Iterator[Finding]:
        for o in model.objective_outputs:
            for loss in o.losses:
                if loss.auto or not loss.family.is_categorical:
                    continue  # Keras 3's "crossentropy" picks the encoding from the labels
                sparse = loss.family is LossFamily.SPARSE_CE
                wrong = ONE_HOT_METRICS if sparse else SPARSE_METRICS
                for metric in o.metrics:
                    if metric.name in wrong:
                        yield self.finding(o.layer, _encoding_message(o, loss, metric, sparse),
                                           fix=_encoding_fix(loss, metric, sparse))
                break  # one loss decides the labels


def _encoding_message(o: ObjectiveOutput, loss: Loss, metric, sparse: bool) -> str:
    if sparse:
        expects = (f"{loss.described} reads integer class labels, one per sample, but {metric.written} reads "
                   "one-hot labels, one column per class")
    else:
        expects = (f"{loss.described} reads one-hot labels, one column per class, but {metric.written} reads "
                   "integer class labels")
    return (f"output '{o.name}': {expects}: the same labels cannot be both, so one of the two reads them wrongly "
            "(or fit() fails on their shape) and reports nonsense")


def _encoding_fix(loss: Loss, metric, sparse: bool) -> str:
    if sparse:
        twin = metric.name.replace("categorical", "sparse_categorical", 1) if metric.name.startswith("categorical") \
            else "sparse_" + metric.name
        return f"with integer labels use {twin} (or 'accuracy', which Keras matches to the labels)"
    twin = metric.name.replace("sparse_", "", 1)
    return f"with one-hot labels use {twin} (or 'accuracy', which Keras matches to the labels)"

