"""`modelaudit diff OLD NEW`: what changed between two models, as a reviewer reads a pull request.

Both sides go through the same pipeline as `check` (read -> recompute -> rules); the diff compares
their views: layers matched by path (nested `outer/inner`), totals, the objective, and findings
matched by code + layer (never by message text, which quotes numbers that move). Either side may be
`REV:PATH` (revision.py). The JSON shape (`to_dict`) is a contract documented in the README.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Optional

SCHEMA_VERSION = 1
TOTALS = ("total_params", "trainable_params", "non_trainable_params", "macs", "file_size")
OBJECTIVE_KEYS = ("loss", "from_logits", "metrics", "optimizer", "learning_rate", "loss_weights")
# a nested model's row: its layers are rows of their own, so its config's layer lists are not compared
NESTED_KEYS = frozenset({"layers", "input_layers", "output_layers"})
MAX_CONFIG_KEYS = 10_000  # per layer: a hostile config's million keys are cut, not walked
# Keras 3 marks an object shared by several layers (their dtype policy) with the id() it had in memory
# while saving: a new number on every save of the same model, never a change
UNSTABLE_KEYS = frozenset({"shared_object_id"})


@dataclass
class Side:
    """One model of the diff: the label it was given (`HEAD:models/net.keras`), its FileReport (with
    the Inferred when it was read) and its size on disk in bytes."""

    label: str
    report: Any
    file_size: Optional[int] = None

    @property
    def readable(self) -> bool:
        r = self.report
        return not r.error and not r.skipped and not r.internal_errors and r.inferred is not None

    @property
    def problem(self) -> str:
        """Why this side cannot be compared, one line."""
        r = self.report
        return r.error or r.skipped or "; ".join(r.internal_errors) or "nothing to compare"


def load(spec: str, settings) -> Side:
    """A path on disk or REV:PATH, audited with `settings`."""
    from modelaudit import revision
    from modelaudit.api import audit_file, unreadable
    from modelaudit.errors import ModelReadError, one_line

    rev = revision.split(spec)
    if rev is None:
        return Side(spec, audit_file(spec, settings), _disk_size(spec))
    try:
        with revision.checked_out(spec) as path:
            # per-file ignores match the file's path in the repository, the report names the revision
            report = audit_file(path, settings, name=rev[1])
            size = _disk_size(path)
    except ModelReadError as exc:
        return Side(spec, unreadable(spec, one_line(exc), settings))
    report.path = spec
    report.findings = [_relabel(f, spec) for f in report.findings]
    return Side(spec, report, size)


def _relabel(finding, path: str):
    from dataclasses import replace

    return replace(finding, path=path)


def _disk_size(path: str) -> Optional[int]:
    try:
        if os.path.isdir(path):
            return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)
        return os.path.getsize(path)
    except OSError:
        return None


# ---- the views compared --------------------------------------------------------------------------

@dataclass
class LayerView:
    path: str
    class_name: str
    config: dict  # flattened: `kernel_initializer.class_name` -> value
    params: Optional[int]
    output_shapes: list  # one per output tensor of its first call, JSON-ready
    inbound: list = field(default_factory=list)  # the layers it reads from, in order


def layer_views(inferred) -> dict[str, LayerView]:
    """Every layer Keras's summary shows, at every depth, by path, in file order."""
    out = {}
    for row in inferred.visible_rows():
        skip = NESTED_KEYS if row.layer.submodel is not None else frozenset()
        shapes = [None if s is None else list(s) for s in row.first_output_shapes]
        out[row.path] = LayerView(row.path, row.layer.class_name, flat_config(layer_config(row.layer), skip),
                                  row.params, shapes, list(row.inbound))
    return out


# the plain dtype policies, by the class name each dialect writes: compared (and shown) by their name
PLAIN_POLICIES = frozenset({"DTypePolicy", "Policy"})


def layer_config(layer) -> dict:
    """The layer's config with a plain dtype policy written as its name (`float32`, `mixed_float16`),
    as Keras 2 writes it, so that a model re-saved by the other Keras reads the same there."""
    config = layer.config if isinstance(layer.config, dict) else {}
    dtype = config.get("dtype")
    if isinstance(dtype, dict) and dtype.get("class_name") in PLAIN_POLICIES:
        name = dtype.get("config", {}).get("name") if isinstance(dtype.get("config"), dict) else None
        if isinstance(name, str):
            return {**config, "dtype": name}
    return config


def flat_config(config: Any, skip: frozenset = frozenset()) -> dict:
    """{"units": 10, "kernel_initializer.class_name": "GlorotUniform", ...}: nested dicts joined by
    dots, lists kept whole; the layer's own name left out (the path matched it already)."""
    out: dict = {}
    if not isinstance(config, dict):
        return out
    stack = [("", config)]
    while stack and len(out) < MAX_CONFIG_KEYS:
        prefix, table = stack.pop()
        for key, value in table.items():
            if (not prefix and (key == "name" or key in skip)) or key in UNSTABLE_KEYS:
                continue
            name = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, dict) and value:
                stack.append((name, value))
            else:
                out[name] = value
    return out


def objective_view(graph) -> dict:
    """The compile settings a reviewer compares: losses (canonical names), from_logits, metrics,
    optimizer and learning rate, loss weights. All None for a model saved uncompiled."""
    obj = graph.objective
    if obj is None:
        return dict.fromkeys(OBJECTIVE_KEYS)
    return {
        "loss": _map_losses(obj.loss, _loss_name),
        "from_logits": _map_losses(obj.loss, _from_logits),
        "metrics": _metric_names(obj.metrics),
        "optimizer": obj.optimizer,
        "learning_rate": _plain(obj.learning_rate),
        "loss_weights": _plain(obj.loss_weights),
    }


def _map_losses(loss: Any, leaf) -> Any:
    """`leaf` of each loss, keeping the file's structure (one, a list, or a dict by output name)."""
    if isinstance(loss, dict) and "class_name" not in loss:
        return {str(k): _map_losses(v, leaf) for k, v in loss.items()}
    if isinstance(loss, (list, tuple)):
        return [_map_losses(v, leaf) for v in loss]
    return leaf(loss)


def _loss_name(identifier: Any) -> Optional[str]:
    from modelaudit.losses import normalize_loss

    loss = normalize_loss(identifier)
    return None if loss is None else (loss.name or loss.written)


def _from_logits(identifier: Any) -> Optional[bool]:
    from modelaudit.losses import normalize_loss

    loss = normalize_loss(identifier)
    return None if loss is None else loss.from_logits


def _metric_names(metrics: Any) -> Any:
    from modelaudit.losses import normalize_metric

    if metrics is None:
        return None
    if isinstance(metrics, dict) and "class_name" not in metrics:
        return {str(k): _metric_names(v) for k, v in metrics.items()}
    if isinstance(metrics, (list, tuple)):
        return [_metric_names(m) for m in metrics]
    metric = normalize_metric(metrics)
    return None if metric is None else (metric.name or metric.written)


def _plain(value: Any) -> Any:
    """A value for JSON and for comparing: a schedule object shown by its class and config."""
    if isinstance(value, dict) and "class_name" in value:
        config = value.get("config")
        return {"class_name": value["class_name"], "config": config if isinstance(config, dict) else None}
    return value


# ---- the diff ------------------------------------------------------------------------------------

@dataclass
class LayerChange:
    path: str
    class_name: list  # [old, new]
    config: dict  # key -> [old, new], only the keys that differ
    params: list
    output_shapes: list
    inbound: list = field(default_factory=list)  # [old, new]: the layers it reads from (rewired when they differ)


@dataclass
class ModelDiff:
    old: Side
    new: Side
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[LayerChange] = field(default_factory=list)
    totals: dict = field(default_factory=dict)  # key -> [old, new]
    objective_old: dict = field(default_factory=dict)
    objective_new: dict = field(default_factory=dict)
    introduced: list = field(default_factory=list)  # Findings of the new model not in the old
    resolved: list = field(default_factory=list)  # Findings of the old model gone from the new
    new_layers: dict = field(default_factory=dict)  # path -> LayerView of the new model, for reporters
    old_layers: dict = field(default_factory=dict)

    @property
    def objective_changed(self) -> dict:
        return {k: [self.objective_old.get(k), self.objective_new.get(k)] for k in OBJECTIVE_KEYS
                if self.objective_old.get(k) != self.objective_new.get(k)}

    @property
    def unchanged(self) -> bool:
        return not (self.added or self.removed or self.changed or self.objective_changed or self.introduced
                    or self.resolved or any(o != n for k, (o, n) in self.totals.items() if k != "file_size"))

    def failing(self, fail_on) -> list:
        """The introduced findings at or above `fail_on` (a Severity): what makes the exit code 1."""
        return [f for f in self.introduced if f.severity.rank >= fail_on.rank]

    def to_dict(self) -> dict:
        return {
            "schema_version": SCHEMA_VERSION,
            "old": self.old.label,
            "new": self.new.label,
            "layers": {
                "added": list(self.added),
                "removed": list(self.removed),
                "changed": [{"path": c.path, "class": c.class_name, "config": c.config, "params": c.params,
                             "output_shapes": c.output_shapes, "inbound": c.inbound} for c in self.changed],
            },
            "totals": dict(self.totals),
            "objective": {"old": self.objective_old, "new": self.objective_new, "changed": self.objective_changed},
            "findings": {"introduced": [_finding_dict(f) for f in self.introduced],
                         "resolved": [_finding_dict(f) for f in self.resolved]},
        }


def _finding_dict(f) -> dict:
    return {"code": f.code, "name": f.name, "layer": f.layer, "severity": f.severity.value, "message": f.message}


def compare(old: Side, new: Side) -> ModelDiff:
    """The diff of two readable sides."""
    a, b = old.report.inferred, new.report.inferred
    old_layers, new_layers = layer_views(a), layer_views(b)
    d = ModelDiff(old, new, old_layers=old_layers, new_layers=new_layers)
    d.added = [p for p in new_layers if p not in old_layers]
    d.removed = [p for p in old_layers if p not in new_layers]
    for path, after in new_layers.items():
        before = old_layers.get(path)
        if before is not None:
            change = _layer_change(before, after)
            if change is not None:
                d.changed.append(change)
    for key in TOTALS:
        d.totals[key] = [old.file_size, new.file_size] if key == "file_size" else [getattr(a, key), getattr(b, key)]
    d.objective_old, d.objective_new = objective_view(a.graph), objective_view(b.graph)
    d.introduced = _unmatched(new.report.findings, old.report.findings)
    d.resolved = _unmatched(old.report.findings, new.report.findings)
    return d


def _layer_change(before: LayerView, after: LayerView) -> Optional[LayerChange]:
    keys = list(before.config) + [k for k in after.config if k not in before.config]
    config = {k: [before.config.get(k), after.config.get(k)] for k in keys
              if before.config.get(k) != after.config.get(k)}
    if (not config and before.class_name == after.class_name and before.params == after.params
            and before.output_shapes == after.output_shapes and before.inbound == after.inbound):
        return None
    return LayerChange(after.path, [before.class_name, after.class_name], config,
                       [before.params, after.params], [before.output_shapes, after.output_shapes],
                       [before.inbound, after.inbound])


def finding_key(f) -> tuple:
    """What makes two findings the same across versions of a model: the rule and the layer."""
    return f.code, f.layer or ""


def _unmatched(findings: list, others: list) -> list:
    """`findings` not matched by one of `others` (by code + layer, each match used once)."""
    left = Counter(finding_key(f) for f in others)
    out = []
    for f in findings:
        key = finding_key(f)
        if left[key]:
            left[key] -= 1
        else:
            out.append(f)
    return out
