"""MA1xx: the independent recomputation held against what the file records."""

from __future__ import annotations

from modelaudit.engine import Rule, Severity, register
from modelaudit.graph import fmt_shape


def _how(row) -> str:
    return f" (computed as {row.formula})" if row.formula else ""


@register
class UnreadableFile(Rule):
    """Raised by the run, not by check(): a file that cannot be read has no model to check. It is a
    finding so that every format (SARIF, GitLab, annotations, JSON) shows it where dashboards look."""

    code = "MA100"
    name = "unreadable-file"
    severity = Severity.ERROR
    summary = "The input cannot be read as a model"

    def check(self, model):
        return iter(())


@register
class WeightShapeMismatch(Rule):
    code = "MA101"
    name = "weight-shape-mismatch"
    severity = Severity.ERROR
    summary = "A stored weight's shape differs from the shape its layer's config implies"

    def check(self, model):
        for row, issue in model.weight_issues("mismatch"):
            yield self.finding(
                row.path,
                f"{row.where()}: stored weight {issue.stored.path} has shape {fmt_shape(issue.stored.shape)}, "
                f"but the config and input shape "
                f"{fmt_shape(row.input_shapes[0][0] if row.input_shapes and row.input_shapes[0] else None)} "
                f"imply {issue.expected.name} of shape {fmt_shape(issue.expected.shape)}{_how(row)}",
            )


@register
class WeightMissing(Rule):
    code = "MA102"
    name = "weight-missing"
    severity = Severity.ERROR
    summary = "A weight the config implies is absent from the weights file"

    def check(self, model):
        for row, issue in model.weight_issues("missing"):
            yield self.finding(
                row.path,
                f"{row.where()}: the config implies {issue.expected.name} of shape "
                f"{fmt_shape(issue.expected.shape)}, but the weights file holds no such variable for it",
            )


@register
class WeightUnexpected(Rule):
    code = "MA103"
    name = "weight-unexpected"
    severity = Severity.WARNING
    summary = "The weights file holds variables its layer's config does not explain"

    def check(self, model):
        for row, issue in model.weight_issues("unexpected"):
            yield self.finding(
                row.path,
                f"{row.where()}: stored variable {issue.stored.path} of shape {fmt_shape(issue.stored.shape)} "
                "is not one its config creates",
            )
        for weight in () if model.graph.opaque else model.unassigned_weights:
            yield self.finding(
                None,
                f"stored variable {weight.path} of shape {fmt_shape(weight.shape)} belongs to no layer in the config",
            )


@register
class RecordedShapeMismatch(Rule):
    code = "MA104"
    name = "recorded-shape-mismatch"
    severity = Severity.ERROR
    summary = "A shape the file records differs from the propagated shape"

    def check(self, model):
        for row in model.rows:
            for what, recorded, computed in row.recorded_mismatch:
                yield self.finding(
                    row.path,
                    f"{row.where()}: the file records {what} as {fmt_shape(recorded)}, "
                    f"but propagating the config gives {fmt_shape(computed)}",
                )


@register
class NonPositiveDimension(Rule):
    code = "MA105"
    name = "non-positive-dimension"
    severity = Severity.ERROR
    summary = "A recomputed dimension is zero or negative"

    def check(self, model):
        for row in model.rows:
            for shape in row.non_positive:
                inp = row.input_shapes[0] if row.input_shapes else []
                yield self.finding(
                    row.path,
                    f"{row.where()} turns input {', '.join(fmt_shape(s) for s in inp)} into "
                    f"{fmt_shape(shape)}: a dimension is {min(d for d in shape if d is not None)}; "
                    "the kernel, pool or crop is larger than its input",
                )


@register
class IncompatibleShapes(Rule):
    code = "MA106"
    name = "incompatible-shapes"
    severity = Severity.ERROR
    summary = "A layer's inputs cannot be combined or consumed"

    def check(self, model):
        for row in model.rows:
            if row.shape_error:
                yield self.finding(row.path, f"{row.where()}: {row.shape_error}")


@register
class UnknownLayer(Rule):
    code = "MA107"
    name = "unknown-layer"
    severity = Severity.INFO
    summary = "A layer could not be recomputed; the file's recorded shapes and stored weights are used"

    def check(self, model):
        from modelaudit.infer.propagate import INPUT_UNKNOWN

        unknown = [r for r in model.rows if not r.recomputed and r.layer.submodel is None and not r.shape_error]
        # A layer whose input is unknown only because an earlier layer could not be computed is a
        # consequence, not a finding of its own: the first cause is reported, with the count.
        causes = [r for r in unknown if r.unknown_reason != INPUT_UNKNOWN]
        upstream_errors = any(r.shape_error or r.non_positive for r in model.rows)
        consequences = [r for r in unknown if r.unknown_reason == INPUT_UNKNOWN]
        if not causes and not upstream_errors:
            causes, consequences = unknown, []
        for i, row in enumerate(causes):
            tail = ""
            if i == 0 and consequences:
                tail = f"; {len(consequences)} later layer(s) depend on it and are not recomputed either"
            yield self.finding(
                row.path,
                f"{row.where()} is not recomputed ({row.unknown_reason}); its shapes "
                f"come from the file's records where it has them, its params from the stored weights{tail}",
            )


@register
class OpaqueModel(Rule):
    code = "MA109"
    name = "opaque-model"
    severity = Severity.INFO
    summary = "A subclassed model saves no layer graph; only its weights are audited"

    def check(self, model):
        graph = model.graph
        if graph.opaque and graph.format == "savedmodel" and not graph.config:
            yield self.finding(
                None,
                f"SavedModel '{graph.name}' holds no Keras config (a Keras 3 export() or tf.saved_model.save()): "
                f"only its {len(model.unassigned_weights)} variables ({_count(model.total_params)} params) and "
                "its signatures are audited",
            )
        elif graph.opaque:
            yield self.finding(
                None,
                f"{graph.class_name} '{graph.name}' saves only its constructor arguments, no layer "
                f"graph: only the weights file's {len(model.unassigned_weights)} variables "
                f"({_count(model.total_params)} params) are audited",
            )


@register
class WeightsFileMissing(Rule):
    code = "MA111"
    name = "weights-file-missing"
    severity = Severity.ERROR
    summary = "A weights file the model names is not beside it"

    def check(self, model):
        missing = model.graph.source.missing_weight_files
        if missing:
            shown = ", ".join(f"'{p}'" for p in missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            yield self.finding(
                None,
                f"the weights manifest names {len(missing)} weight file{'s' if len(missing) != 1 else ''} that "
                f"{'are' if len(missing) != 1 else 'is'} not beside the model ({shown}): loading it fails, or "
                "fetches them from wherever the page serving it points",
                fix="commit or deploy the shards with model.json, in the same folder, as the converter wrote them",
            )


# ---- --scan-weights: what the weight data holds (formats/scan.py reads it; these rules only judge) ----


def _scanned(model):
    """(layer path or None, layer or None, stored Weight, its name in the layer's build() or None, facts)
    for every variable the scan read. The name comes from pairing the recomputed weights with the
    stored ones by shape, as the MA101-MA103 comparison does; without a recomputation, from the
    stored path (legacy .h5 names variables, `dense/kernel:0`; Keras 3 numbers them, `vars/0`)."""
    scan = getattr(model, "weight_scan", None)
    if scan is None:
        return
    for row in model.rows:
        stored = list(row.layer.weights or ())
        if not stored:
            continue
        names = {}
        left = list(stored)
        for spec in row.expected_weights or ():
            for s in left:
                if tuple(s.shape) == tuple(spec.shape):
                    names[id(s)] = spec.name
                    left.remove(s)
                    break
        for w in stored:
            facts = scan.facts.get(w.path)
            if facts is not None:
                yield row.path, row.layer, w, names.get(id(w)) or _name_from_path(w.path), facts
    for w in model.unassigned_weights:
        facts = scan.facts.get(w.path)
        if facts is not None:
            yield None, None, w, _name_from_path(w.path), facts


def _name_from_path(path: str):
    last = path.rsplit("/", 1)[-1].split(":", 1)[0]
    return None if last.isdigit() else last


def _owner(layer, path) -> str:
    return f"{layer.class_name} '{path}': " if layer is not None else ""


def _is_kernel(name) -> bool:
    # kernel, depthwise_kernel, pointwise_kernel, recurrent_kernel, MultiHeadAttention's query/kernel;
    # not LoRA's lora_kernel_b, which Keras initialises to zeros on purpose
    last = (name or "").rsplit("/", 1)[-1]
    return last == "kernel" or (last.endswith("_kernel") and not last.startswith("lora_"))


@register
class NonFiniteWeights(Rule):
    code = "MA108"
    name = "non-finite-weights"
    severity = Severity.ERROR
    summary = "With --scan-weights: a stored weight holds NaN or Inf"

    def check(self, model):
        for path, layer, weight, _, facts in _scanned(model):
            if facts.skipped or not facts.nonfinite:
                continue
            parts = [f"{n:,} {what}" for n, what in ((facts.nan, "NaN"), (facts.posinf, "+Inf"), (facts.neginf, "-Inf")) if n]
            yield self.finding(
                path,
                f"{_owner(layer, path)}stored weight {weight.path} of shape {fmt_shape(weight.shape)} holds "
                f"{', '.join(parts)} of its {weight.size:,} values: every output computed through it is NaN or Inf",
            )


@register
class AllZeroKernel(Rule):
    code = "MA110"
    name = "all-zero-kernel"
    severity = Severity.WARNING
    summary = "With --scan-weights: a learnable layer's kernel is entirely zeros"

    def check(self, model):
        for path, layer, weight, name, facts in _scanned(model):
            if facts.skipped or not facts.all_zero or not _is_kernel(name):
                continue
            yield self.finding(
                path,
                f"{_owner(layer, path)}{name} {weight.path} of shape {fmt_shape(weight.shape)} is all zeros "
                f"({weight.size:,} values): the layer outputs only its bias; never trained, or a broken export",
            )


def _count(n) -> str:
    return "an unknown number of" if n is None else f"{n:,}"
