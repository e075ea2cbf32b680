"""MA3xx: architecture mistakes that train without an error and cost weights, accuracy or time.

The rules read the propagated model (shapes and params of every layer) and, through its graph view
`model.wiring` (infer/wiring.py), who feeds whom: one node per call of a layer, with nested models
opened up, so that a Conv2D inside a nested Sequential feeding a BatchNormalization outside it is one
edge like any other. Layer families come from infer/families.py, windows from infer/geometry.py.

False positives are what makes a CI gate useless, so every rule stays quiet when it cannot tell:
an unknown layer, a Lambda, an unknown dimension or an unknown layout on the way silences it.
"""

from __future__ import annotations

import math
from typing import Iterator, Optional

from modelaudit.engine import Finding, Rule, Severity, register
from modelaudit.graph import fmt_shape
from modelaudit.infer.families import (
    ACTIVATED_LAYERS,
    ACTIVATION_LAYERS,
    ATTENTION_LAYERS,
    BATCHNORM_LAYERS,
    BIASED_LAYERS,
    DROPOUT_LAYERS,
    RECURRENT_LAYERS,
    SHAPE_LAYERS,
    SLIDING_CONVS,
    WINDOW_POOLS,
    activation_name,
    applied_activation,
)
from modelaudit.infer.geometry import Geometry, conv_geometry, data_format, pool_geometry, spatial_axes
from modelaudit.infer.wiring import Node, Wiring
from modelaudit.infer.wiring import known_shape as _shape
from modelaudit.options import Option, fraction, whole

KERNEL_INITIALIZERS = ("kernel_initializer", "depthwise_initializer", "pointwise_initializer",
                       "recurrent_initializer")
CONSTANT_INITIALIZERS = {"zeros": "Zeros", "zero": "Zeros", "ones": "Ones", "one": "Ones", "constant": "Constant"}

MAX_WALK = 10_000  # bound on every walk along the graph, against a hostile config

# ---- small readers of configs ----------------------------------------------------------------------


def _number(value) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _linear(config: dict) -> bool:
    return activation_name(config.get("activation")) == "linear"


def _params(n: int) -> str:
    return f"{n:,} param{'s' if n != 1 else ''}"


def _dims_x(dims) -> str:
    return "×".join(str(d) for d in dims)


def _dilated(win) -> str:
    return f" spanning {_dims_x(win.extent)} dilated" if win.extent != win.taps else ""


def _window(node: Node) -> Optional[Geometry]:
    """The geometry of a sliding conv's or pool's first call, read from its config once (None when
    its input or its sizes are not whole and known: the rules stay quiet)."""
    shape = node.input_shape()
    if shape is None or len(shape) < 3:
        return None
    if node.cls in WINDOW_POOLS:
        return pool_geometry(node.config, len(shape) - 2, strict=True)
    return conv_geometry(node.config, len(shape) - 2, node.path, strict=True)


def _windows(w) -> Iterator[tuple]:
    """(node, window) for the first call of every sliding conv or pool whose geometry is known."""
    for node in w.first_calls():
        if node.cls in SLIDING_CONVS | WINDOW_POOLS:
            win = _window(node)
            if win is not None:
                yield node, win


# ---- the rules --------------------------------------------------------------------------------------


@register
class DenseParameterHotspot(Rule):
    code = "MA301"
    name = "dense-parameter-hotspot"
    severity = Severity.WARNING
    summary = "One Dense after a Flatten holds most of the model's params"
    options = {"share": Option(0.5, fraction), "min_params": Option(1_000_000, whole)}

    def check(self, model) -> Iterator[Finding]:
        total = model.total_params
        if not total:
            return
        w = model.wiring
        for node in w.first_calls():
            if node.cls != "Dense":
                continue
            params = node.row.params
            if params is None or params <= self.opts["min_params"] or params / total <= self.opts["share"]:
                continue
            flatten = w.upstream(node, DROPOUT_LAYERS)
            if flatten is None or flatten.cls != "Flatten":
                continue
            source = flatten.input_shape()
            features = (node.input_shape() or (None,))[-1]
            units = node.config.get("units")
            why = (f"Flatten '{flatten.path}' turns every position of its {fmt_shape(source)} input into a "
                   f"feature ({features:,} of them) and the Dense connects each one to each of its {units} units"
                   if source is not None and isinstance(features, int) else f"it is fed by Flatten '{flatten.path}'")
            yield self.finding(
                node.path,
                f"Dense '{node.path}' holds {_params(params)}, {params / total:.1%} of the model's {total:,}: "
                f"{why}",
                fix=f"{_pooled_alternative(flatten, source, units, params)}downsample further before flattening",
            )


@register
class BiasBeforeBatchnorm(Rule):
    code = "MA302"
    name = "bias-before-batchnorm"
    severity = Severity.INFO
    summary = "A Conv/Dense bias that the BatchNormalization right after it cancels"

    def check(self, model) -> Iterator[Finding]:
        w = model.wiring
        for node in w.first_calls():
            cfg = node.config
            if node.cls not in BIASED_LAYERS or not cfg.get("use_bias", True) or not _linear(cfg):
                continue
            shape = node.output_shape()
            if shape is None or w.is_output(node):
                continue
            users = w.users(node)
            if not users or not all(u.cls in BATCHNORM_LAYERS and u.config.get("center", True)
                                    and _bn_axis(u, len(shape)) == _feature_axis(node, len(shape))
                                    for u, _ in users):
                continue
            bn = users[0][0]
            n = shape[_feature_axis(node, len(shape))]
            size = f"{n:,} values" if isinstance(n, int) else "one value per unit"
            yield self.finding(
                node.path,
                f"{node.where()} adds a bias ({size}, use_bias=True) that {bn.where()} removes again: it "
                f"subtracts the batch mean of each {'unit' if node.cls == 'Dense' else 'channel'}, bias included, "
                "and adds its own learned offset "
                "(beta, center=True), so the bias gets no gradient and never learns",
                fix="pass use_bias=False",
            )


@register
class DropoutBeforeBatchnorm(Rule):
    code = "MA303"
    name = "dropout-before-batchnorm"
    severity = Severity.WARNING
    summary = "Dropout feeds straight into BatchNormalization: its statistics shift at inference"

    def check(self, model) -> Iterator[Finding]:
        w = model.wiring
        for node in w.first_calls():
            if node.cls not in BATCHNORM_LAYERS:
                continue
            drop = w.upstream(node, SHAPE_LAYERS)
            if drop is None or drop.cls not in DROPOUT_LAYERS:
                continue
            rate = _number(drop.config.get("rate"))
            if not rate:
                continue
            scaled = f" and the rest scaled by {1 / (1 - rate):.3g}" if rate < 1 else ""
            yield self.finding(
                node.path,
                f"{drop.where()} (rate {rate:g}) feeds {node.where()}: in training the BatchNormalization learns "
                f"its moving variance from inputs with {rate:.0%} of the values dropped{scaled}, but at inference "
                "the dropout is off and the variance is different, so the normalized values shift (the "
                "'variance shift')",
                fix="put the Dropout after the BatchNormalization",
            )


@register
class LinearStack(Rule):
    code = "MA304"
    name = "linear-stack"
    severity = Severity.WARNING
    summary = "A linear Dense feeds another Dense with nothing nonlinear between: one linear map"
    options = {"allow_bottleneck": True}

    def check(self, model) -> Iterator[Finding]:
        w = model.wiring
        for node in w.first_calls():
            if node.cls != "Dense":
                continue
            first = w.upstream(node, DROPOUT_LAYERS | SHAPE_LAYERS | {"Activation"}, linear_activation=True,
                              sole_user=True)
            if first is None or first.cls != "Dense" or not _linear(first.config):
                continue
            if w.is_output(first):
                continue
            in_dim = (first.input_shape() or (None,))[-1]
            mid = first.config.get("units")
            out = node.config.get("units")
            if not all(isinstance(d, int) for d in (in_dim, mid, out)):
                continue
            if self.opts["allow_bottleneck"] and mid < min(in_dim, out):
                continue  # a low-rank factorization: fewer weights than one Dense, and deliberate
            one = in_dim * out + (out if node.config.get("use_bias", True) else 0)
            counts = (first.row.params, node.row.params)
            two = None if None in counts else sum(counts)  # a count unknown (a shape the file breaks)
            cost = (f"which a single Dense({out}) computes with {_params(one)} instead of {two:,}"
                    if two is not None and one < two else
                    f"one of rank at most {mid} (a linear bottleneck: nothing nonlinear is learned in it)")
            yield self.finding(
                node.path,
                f"Dense '{first.path}' has no activation (linear) and feeds Dense '{node.path}' with nothing "
                f"nonlinear between: together they compute one linear map of the {in_dim} inputs, {cost}",
                fix=f"give Dense '{first.path}' an activation (e.g. activation='relu'), or merge the two",
            )


@register
class DoubleActivation(Rule):
    code = "MA305"
    name = "double-activation"
    severity = Severity.WARNING
    summary = ("The same activation applied twice in a row: info when the repeat changes nothing (relu), an "
               "error at the output")

    def check(self, model) -> Iterator[Finding]:
        w = model.wiring
        for node in w.first_calls():
            if node.cls not in ACTIVATION_LAYERS:
                continue  # a Dense or conv computes before it activates: an activation before it is fine
            second = applied_activation(node.cls, node.config, node.output_shape())
            if second is None:
                continue
            # elementwise activations commute with rearrangements; softmax only with shape-keeping layers
            passing = DROPOUT_LAYERS | {"Identity", "Activation"}
            if second[0] not in ("softmax", "log_softmax"):
                passing = passing | SHAPE_LAYERS | {"Permute"} | WINDOW_POOLS
            before = w.upstream(node, passing, linear_activation=True)
            if before is None or applied_activation(before.cls, before.config, before.output_shape()) != second:
                continue
            # graded by harm: a repeat that changes nothing costs a pass; one that changes the function
            # distorts what the next layer sees, and at the output what the loss and the user see
            if _idempotent(second):
                severity = Severity.INFO
            else:
                severity = Severity.ERROR if _feeds_output(w, node) else Severity.WARNING
            yield self.finding(node.path, _double_message(before, node, second), severity, fix="keep one of the two")


@register
class DroppedInputRows(Rule):
    code = "MA306"
    name = "dropped-input-rows"
    severity = Severity.INFO
    summary = "A 'valid' conv or pool whose stride does not tile its input: the last rows are ignored"

    def check(self, model) -> Iterator[Finding]:
        for node, win in _windows(model.wiring):
            if win.padding != "valid":
                continue
            shape = node.input_shape()
            lost = []
            for i, axis in enumerate(win.axes):
                n, k, s = shape[axis], win.extent[i], win.strides[i]
                if n is None or n < k or s == 1 or (n - k) % s == 0:
                    continue
                rest = (n - k) % s
                lost.append(f"along its {win.axis_name(i)} of {n}, the {win.kind} windows cover the first {n - rest} "
                            f"and the last {rest} never {'reaches' if rest == 1 else 'reach'} the output")
            if not lost:
                continue
            yield self.finding(
                node.path,
                f"{node.where()} ({win.kind} {_dims_x(win.taps)}{_dilated(win)}, stride {_dims_x(win.strides)}, "
                f"padding 'valid') on input {fmt_shape(shape)}: " + "; ".join(lost),
                fix="use padding='same', or an input size the stride tiles",
            )


@register
class SpatialCollapse(Rule):
    code = "MA307"
    name = "spatial-collapse"
    severity = Severity.WARNING
    summary = "A conv or pool with kernel or stride > 1 runs over a spatial axis already of size 1"

    def check(self, model) -> Iterator[Finding]:
        w = model.wiring
        for node, win in _windows(w):
            shape, out = node.input_shape(), node.output_shape()
            if out is None or any(d is not None and d <= 0 for d in out):
                continue  # a dimension shrunk to nothing is MA105's error
            flat = [i for i, axis in enumerate(win.axes)
                    if shape[axis] == 1 and (win.taps[i] > 1 or win.strides[i] > 1)]
            if not flat:
                continue
            which = " and ".join(win.axis_name(i) for i in flat)
            waste = ""
            if win.kind == "kernel":
                used = math.prod(1 if i in flat else win.taps[i] for i in range(len(win.axes)))
                full = math.prod(win.taps)
                if used < full:
                    meets = "meets" if used == 1 else "meet"
                    waste = (f": only {used} of the {full} kernel positions ever {meets} data, the others meet "
                             f"padding, so {1 - used / full:.0%} of its kernel weights never learn")
            cause = _collapsed_at(w, node, [win.axes[i] for i in flat])
            yield self.finding(
                node.path,
                f"{node.where()} runs a {win.kind} of {_dims_x(win.taps)} with stride {_dims_x(win.strides)} "
                f"over input {fmt_shape(shape)}, whose {which} {'is' if len(flat) == 1 else 'are'} already 1"
                f"{cause}{waste or ': there is nothing left to slide over'}",
                fix="use fewer downsampling steps or a larger input, or a kernel and stride of 1 along that axis",
            )


@register
class ClassifierOutputRank(Rule):
    code = "MA308"
    name = "classifier-output-rank"
    severity = Severity.WARNING
    summary = ("A classifier's output Dense runs on a map that still has spatial axes, or on a sequence whose "
               "steps differ from the input's")

    def check(self, model) -> Iterator[Finding]:
        graph = model.graph
        if graph.objective is None:
            return
        w = model.wiring
        for output, tensors in zip(model.objective_outputs, w.outputs):
            name = output.name
            losses = [loss for loss in output.losses if loss.family.is_crossentropy]
            if not losses or len(tensors) != 1:
                continue
            path, call, _ = tensors[0]
            node = w.nodes.get((path, call))
            while node is not None and node.cls != "Dense" and _activation_only(node):
                node = w.producer(node)
            if node is None or node.cls != "Dense":
                continue
            shape, out = node.input_shape(), node.output_shape()
            if shape is None or out is None or len(shape) < 3:
                continue
            if len(shape) == 3:
                # a sequence: per-step tagging keeps the input's steps; other steps mean a missing pooling
                steps, given = out[1], _input_steps(model)
                if steps is None or given is None or steps in given:
                    continue
                yield self.finding(
                    node.path,
                    f"output '{name}' is Dense '{node.path}' applied to {fmt_shape(shape)}, a sequence of {steps} "
                    f"steps, not the {_or(given)} steps of the model's input (so not a per-step tagger): a Dense "
                    f"acts on the last axis only, so the model predicts {fmt_shape(out)} (one prediction per step) "
                    f"while {losses[0].described} scores one per sample",
                    fix="add a Flatten or GlobalAveragePooling1D before the Dense (or return_sequences=False on "
                    "the last recurrent layer)",
                )
                continue
            yield self.finding(
                node.path,
                f"output '{name}' is Dense '{node.path}' applied to {fmt_shape(shape)}, which still "
                f"has {len(shape) - 2} spatial axes: a Dense acts on the last axis only, so the model predicts "
                f"{fmt_shape(out)} (one prediction per position) while {losses[0].described} scores one per "
                "sample",
                fix=f"add a Flatten or GlobalAveragePooling{len(shape) - 2}D before the Dense",
            )


def _input_steps(model) -> Optional[set]:
    """The step counts (axis 1) of the model's inputs; None when one is unknown or an input has no steps."""
    rows = {row.path: row for row in model.rows}
    steps = set()
    for ref in model.graph.inputs:
        row = rows.get(ref.layer)
        shapes = row.output_shapes[0] if row is not None and row.output_shapes else []
        shape = _shape(shapes[0]) if shapes else None
        if shape is None or len(shape) < 2 or shape[1] is None:
            return None
        steps.add(shape[1])
    return steps or None


def _or(steps: set) -> str:
    return " or ".join(str(s) for s in sorted(steps))


@register
class FrozenModel(Rule):
    code = "MA309"
    name = "frozen-model"
    severity = Severity.WARNING
    summary = "A compiled model with no trainable params"

    def check(self, model) -> Iterator[Finding]:
        if model.graph.objective is None or not model.total_params or model.trainable_params:
            return
        yield self.finding(
            None,
            f"the model is compiled for training but all {_params(model.total_params)} are non-trainable "
            "(trainable=False on the model or on every layer): fit() updates nothing",
            fix="unfreeze the layers to train (at least the head, for transfer learning), or save it uncompiled "
            "for inference",
        )


@register
class HighDropoutRate(Rule):
    code = "MA310"
    name = "high-dropout-rate"
    severity = Severity.WARNING
    summary = "A dropout rate of 0.8 or more (configurable); a rate of 0 is info"
    options = {"high_rate": Option(0.8, fraction)}

    def check(self, model) -> Iterator[Finding]:
        high = self.opts["high_rate"]
        for row in model.rows:
            for cls, key, rate in _dropout_rates(row.layer.class_name, row.layer.config):
                if cls in DROPOUT_LAYERS and key == "rate" and rate == 0:
                    yield self.finding(
                        row.path,
                        f"{row.layer.class_name} '{row.path}' has rate 0: it does nothing",
                        fix="remove it, or set the rate you meant",
                        severity=Severity.INFO,
                    )
                elif rate >= high:
                    if cls == "GaussianDropout":
                        effect = (f"multiplies every value by noise of mean 1 and standard deviation "
                                  f"{math.sqrt(rate / (1 - rate)):.3g}" if rate < 1 else "drowns the values in noise")
                    else:
                        kept = f"; the {1 - rate:.0%} it keeps are scaled by {1 / (1 - rate):.3g}" if rate < 1 else ""
                        effect = f"drops {rate:.0%} of the values{kept}"
                    yield self.finding(
                        row.path,
                        f"{row.layer.class_name} '{row.path}'{_wrapped(row.layer.class_name, cls)} has {key} "
                        f"{rate:g} (at or above "
                        f"{high:g}): in every training step it "
                        f"{effect}, so the layers after it learn from noise and training converges slowly or not "
                        "at all",
                        fix="rates of 0.1 to 0.5 are usual",
                    )


@register
class BatchnormWrongAxis(Rule):
    code = "MA311"
    name = "batchnorm-wrong-axis"
    severity = Severity.WARNING
    summary = "A BatchNormalization normalizes an axis that does not hold the channels"

    def check(self, model) -> Iterator[Finding]:
        w = model.wiring
        for node in w.first_calls():
            if node.cls not in BATCHNORM_LAYERS or node.config.get("virtual_batch_size"):
                continue
            shape = node.input_shape()
            if shape is None or len(shape) < 3:
                continue
            axis = _bn_axis(node, len(shape))
            layout = w.layout(node)
            if axis is None or layout is None:
                continue
            fmt, source, upstream = layout
            channel = 1 if fmt == "channels_first" else len(shape) - 1
            size = shape[axis]
            if axis == channel or axis == 0 or size is None:
                continue
            vectors = len(node.row.expected_weights or ()) or 4
            said = (f"{source.where()} {'before' if upstream else 'after'} it is {fmt}"
                    if "data_format" in source.config else f"{source.where()} before it puts its features last")
            yield self.finding(
                node.path,
                f"{node.where()} normalizes axis {node.config.get('axis')} of its input {fmt_shape(shape)}, of "
                f"size {size} (so it holds {vectors} × {size} = {node.row.params:,} params), but the channels "
                f"are on axis {channel} (size {shape[channel]}; {said}): it learns one mean and variance per "
                f"{_axis_role(axis, len(shape), fmt)} instead of per channel",
                fix=f"use axis={-1 if fmt == 'channels_last' else 1}",
            )


@register
class ConstantInitializer(Rule):
    code = "MA312"
    name = "constant-initializer"
    severity = Severity.INFO
    summary = "A learnable layer's kernel starts as Zeros/Ones/Constant: all its units start identical"

    def check(self, model) -> Iterator[Finding]:
        for row, cfg in model.layer_configs():
            units = cfg.get("units", cfg.get("filters"))
            kind = "filters" if "filters" in cfg else "units"
            if units == 1:
                continue  # a single unit has no twin to stay identical to
            for key in KERNEL_INITIALIZERS:
                init = _constant_initializer(cfg.get(key))
                if init is None:
                    continue
                count = f"its {units} {kind}" if isinstance(units, int) else f"all its {kind}"
                yield self.finding(
                    row.path,
                    f"{row.where()} starts its {key.replace('_initializer', '')} weights "
                    f"from {init}: {count} compute the same thing and get the same gradient from it, so they "
                    "can only become different through the layers around them",
                    fix="use a random initializer (the default glorot_uniform, or he_normal before relu)",
                )


@register
class DeadLayer(Rule):
    code = "MA313"
    name = "dead-layer"
    severity = Severity.WARNING
    summary = "A layer in the config that no model output depends on"

    def check(self, model) -> Iterator[Finding]:
        w = model.wiring
        if model.graph.opaque or not w.outputs:
            return
        live: set = set()
        todo = [(path, call) for out in w.outputs for path, call, _ in out]
        while todo:
            key = todo.pop()
            if key in live:
                continue
            live.add(key)
            node = w.nodes.get(key)
            if node is not None:
                todo.extend((p, c) for tensors in node.inputs for p, c, _ in tensors)
        live_paths = {path for path, _ in live}
        node_paths = {path for path, _ in w.nodes}
        dead_models: list = []
        for row in model.rows:
            if any(row.path.startswith(prefix + "/") for prefix in dead_models):
                continue
            if row.layer.submodel is not None:
                if not any(p.startswith(row.path + "/") for p in live_paths):
                    dead_models.append(row.path)
                    message, fix = self._message(row, nested=True)
                    yield self.finding(row.path, message, fix=fix)
                continue
            if row.path in live_paths:
                continue
            if row.layer.class_name == "InputLayer" and row.path not in node_paths:
                continue  # a nested model's input, fed from outside: a boundary, not a layer of its own
            message, fix = self._message(row, nested=False)
            yield self.finding(row.path, message, fix=fix)

    @staticmethod
    def _message(row, nested: bool) -> tuple[str, str]:
        """(what is wrong, the fix)"""
        if row.layer.class_name == "InputLayer":
            return (f"input '{row.path}' is one of the model's inputs but no output depends on it: every caller "
                    "must feed it and the model ignores it", "remove it from the inputs, or connect it")
        weights = f" ({_params(row.params)} saved and loaded for nothing)" if row.params else ""
        never = "" if row.layer.calls or nested else " (it is never called)"
        return (f"{row.layer.class_name} '{row.path}'{weights} is in the config{never} but no model output depends "
                "on it", "remove it, or add its output to the model's outputs")


# ---- shared helpers ----------------------------------------------------------------------------------


def _pooled_alternative(flatten: Node, source, units, params: int) -> str:
    """'a GlobalAveragePooling2D ... would ...; or ': what pooling instead of flattening would cost."""
    if source is None or len(source) < 3 or not isinstance(units, int):
        return ""
    fmt = data_format(flatten.config)
    channels = source[1] if fmt == "channels_first" else source[-1]
    spatial = [source[a] for a in spatial_axes(len(source), fmt)]
    if channels is None:
        return ""
    pooled = (channels + 1) * units
    return (f"a GlobalAveragePooling{len(spatial)}D instead of the Flatten would feed it {channels:,} features "
            f"({_params(pooled)}, {params // pooled:,}× fewer), or ")


def _activation_only(node: Node) -> bool:
    """A node that only applies an activation or dropout (the output's head may end with these)."""
    if node.cls in DROPOUT_LAYERS or node.cls in ACTIVATION_LAYERS or node.cls == "Identity":
        return len(node.inputs) == 1
    return False


def _feature_axis(node: Node, rank: int) -> int:
    if node.cls == "Dense":
        return rank - 1
    return 1 if data_format(node.config) == "channels_first" else rank - 1


def _bn_axis(node: Node, rank: int) -> Optional[int]:
    axis = node.config.get("axis", -1)
    if isinstance(axis, list) and len(axis) == 1:
        axis = axis[0]
    if isinstance(axis, bool) or not isinstance(axis, int) or not -rank <= axis < rank:
        return None
    return axis % rank


def _axis_role(axis: int, rank: int, fmt: str) -> str:
    spatial = spatial_axes(rank, fmt)
    if rank == 3:
        return "time step"
    if rank == 4 and axis in spatial:
        return ("row", "column")[spatial.index(axis)]
    return "position along that axis"


def _collapsed_at(w: Wiring, node: Node, axes: list) -> str:
    """' (since <layer>)': the layer upstream that brought those axes down to 1, when one did."""
    current = node
    for _ in range(MAX_WALK):
        prev = w.producer(current)
        if prev is None:
            return ""
        before = prev.input_shape()
        after = prev.output_shape()
        if prev.cls == "InputLayer":
            return " (the model's input has size 1 there)"
        if before is None or after is None or len(before) != len(after):
            return ""
        if any(before[a] is not None and before[a] > 1 for a in axes):
            return f" since {prev.where()} turned {fmt_shape(before)} into {fmt_shape(after)}"
        current = prev
    return ""


def _idempotent(act) -> bool:
    """relu, relu6 and a plain clipping relu (no negative slope) give the same values applied twice."""
    name, params = act
    if name == "relu6":
        return True
    return name == "relu" and (params is None or not params[1])


def _feeds_output(w: Wiring, node: Node) -> bool:
    """The node is a model output, or reaches one only through layers that keep its values (Dropout ...)."""
    current = node
    for _ in range(MAX_WALK):
        if w.is_output(current):
            return True
        users = w.users(current)
        if len(users) != 1 or users[0][0].cls not in DROPOUT_LAYERS | SHAPE_LAYERS:
            return False
        current = users[0][0]
    return False


def _how(node: Node, name: str) -> str:
    if node.cls in ACTIVATED_LAYERS:
        return f"{node.where()} (activation='{name}')"
    return node.where()


def _double_message(first: Node, second: Node, act) -> str:
    name = act[0]
    head = f"{_how(first, name)} already applies {name} and {second.where()} applies it again"
    if name in ("relu", "relu6"):
        why = f"{name} of a {name} output changes nothing, so the second one only costs a pass over the data"
    elif name in ("softmax",):
        shape = second.output_shape()
        axes = act[1] if act[1] and act[1][0] != "?" else None
        n = math.prod(shape[a] for a in axes) if shape and axes and all(shape[a] for a in axes) else None
        cap = (f" (with {n} classes no probability can exceed e/(e+{n - 1}) = "
               f"{math.e / (math.e + n - 1):.0%})" if n and n > 1 else "")
        why = ("softmax of probabilities is nearly uniform: inputs in [0, 1] differ by at most 1, so the outputs "
               f"stay within a factor e of each other{cap} and the loss can barely push them apart")
    elif name == "sigmoid":
        why = "sigmoid of values in (0, 1) lands in (0.5, 0.73): the output can never go below 0.5"
    elif name == "tanh":
        why = "tanh of values in (-1, 1) lands in (-0.76, 0.76): the output can never reach ±1"
    else:
        why = f"{name} applied to its own output distorts the range the next layer and the loss expect"
    return f"{head}: {why}"


def _dropout_rates(cls: str, cfg) -> list:
    """(class, config key, rate) of every dropout a layer applies, wrapped layers' included."""
    if not isinstance(cfg, dict):
        return []
    keys: tuple = ()
    if cls in DROPOUT_LAYERS:
        keys = ("rate",)
    elif cls in RECURRENT_LAYERS:
        keys = ("dropout", "recurrent_dropout")
    elif cls in ATTENTION_LAYERS:
        keys = ("dropout",)
    elif cls in ("Bidirectional", "TimeDistributed"):  # the wrapped layer (Bidirectional's copies share it)
        inner = cfg.get("layer")
        if isinstance(inner, dict) and isinstance(inner.get("class_name"), str):
            return _dropout_rates(inner["class_name"], inner.get("config"))
    out = []
    for key in keys:
        rate = _number(cfg.get(key))
        if rate is not None:
            out.append((cls, key, rate))
    return out


def _wrapped(outer: str, inner: str) -> str:
    return "" if outer == inner else f" (its {inner})"


def _constant_initializer(init) -> Optional[str]:
    """'Zeros', 'Ones' or 'Constant(0.5)' when a serialized initializer is one of those, else None."""
    config = {}
    if isinstance(init, dict):
        module = init.get("module")
        if isinstance(module, str) and not module.startswith(("keras", "tf_keras", "tensorflow")):
            return None
        name, config = init.get("class_name"), init.get("config") or {}
    else:
        name = init
    if not isinstance(name, str):
        return None
    canonical = CONSTANT_INITIALIZERS.get(name.lower())
    if canonical == "Constant":
        value = _number(config.get("value", 0.0)) if isinstance(config, dict) else None
        return f"Constant({value:g})" if value is not None else "Constant"
    return canonical


