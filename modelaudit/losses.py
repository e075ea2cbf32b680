"""Losses and metrics as written in a compile config -> one normalized form, assigned per output.

Keras 2 and Keras 3 write the same loss many ways: a string ("binary_crossentropy", "bce",
"BinaryCrossentropy"), a serialized loss object ({"class_name": "BinaryCrossentropy", "config":
{"from_logits": true, ...}}), a serialized function ({"class_name": "function", "config":
"binary_crossentropy"}), a LossFunctionWrapper naming its `fn`. Per output, compile takes a single
loss (every output), a list (by position) or a dict (by output name). All of it is normalized here,
once; the objective rules read only the result.

Nothing named in a config is imported or called: names are looked up in the tables below.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence


class LossFamily(str, enum.Enum):
    BINARY_CE = "binary-ce"
    CATEGORICAL_CE = "categorical-ce"
    SPARSE_CE = "sparse-categorical-ce"
    REGRESSION = "regression"
    HINGE = "hinge"
    OTHER = "other"

    @property
    def is_crossentropy(self) -> bool:
        return self in (LossFamily.BINARY_CE, LossFamily.CATEGORICAL_CE, LossFamily.SPARSE_CE)

    @property
    def is_categorical(self) -> bool:
        return self in (LossFamily.CATEGORICAL_CE, LossFamily.SPARSE_CE)


# canonical loss name -> family. Keys of the lookup are these names and the aliases below,
# compared without case and underscores, so "binary_crossentropy" and "BinaryCrossentropy" meet.
LOSSES = {
    "binary_crossentropy": LossFamily.BINARY_CE,
    "binary_focal_crossentropy": LossFamily.BINARY_CE,
    "categorical_crossentropy": LossFamily.CATEGORICAL_CE,
    "categorical_focal_crossentropy": LossFamily.CATEGORICAL_CE,
    "sparse_categorical_crossentropy": LossFamily.SPARSE_CE,
    "mean_squared_error": LossFamily.REGRESSION,
    "mean_absolute_error": LossFamily.REGRESSION,
    "mean_absolute_percentage_error": LossFamily.REGRESSION,
    "mean_squared_logarithmic_error": LossFamily.REGRESSION,
    "huber": LossFamily.REGRESSION,
    "log_cosh": LossFamily.REGRESSION,
    "hinge": LossFamily.HINGE,
    "squared_hinge": LossFamily.HINGE,
    "categorical_hinge": LossFamily.HINGE,
    "kl_divergence": LossFamily.OTHER,
    "poisson": LossFamily.OTHER,
    "cosine_similarity": LossFamily.OTHER,
    "dice": LossFamily.OTHER,
    "tversky": LossFamily.OTHER,
    "circle": LossFamily.OTHER,
    "ctc": LossFamily.OTHER,
}

LOSS_ALIASES = {
    "bce": "binary_crossentropy",
    "binary_focal_loss": "binary_focal_crossentropy",
    "mse": "mean_squared_error",
    "mae": "mean_absolute_error",
    "mape": "mean_absolute_percentage_error",
    "msle": "mean_squared_logarithmic_error",
    "huber_loss": "huber",
    "logcosh": "log_cosh",
    "kld": "kl_divergence",
    "kullback_leibler_divergence": "kl_divergence",
}

# Keras 3 resolves "crossentropy" / "ce" from the output's shape (compile_utils.get_loss):
# last dimension 1 -> binary, otherwise categorical or sparse categorical.
AUTO_CROSSENTROPY = ("crossentropy", "ce")

METRICS = {
    "accuracy", "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy",
    "top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy",
    "categorical_crossentropy", "sparse_categorical_crossentropy",  # as metrics: they read the labels too
}
METRIC_ALIASES = {"acc": "accuracy"}

# Modules a serialized loss or metric may name and still be a built-in.
BUILTIN_MODULES = ("keras", "tf_keras", "tensorflow", "builtins")


def _key(name: str) -> str:
    return re.sub(r"[_\s]", "", name).lower()


_LOSS_LOOKUP = {_key(n): n for n in LOSSES}
_LOSS_LOOKUP.update({_key(a): n for a, n in LOSS_ALIASES.items()})
_LOGITS_AWARE = {n for n, fam in LOSSES.items() if fam.is_crossentropy}
_METRIC_LOOKUP = {_key(n): n for n in METRICS}
_METRIC_LOOKUP.update({_key(a): n for a, n in METRIC_ALIASES.items()})


@dataclass(frozen=True)
class Loss:
    """One loss, normalized. `written` is how the file spells it, for messages."""

    family: LossFamily
    name: Optional[str]  # canonical snake_case name; None for a custom loss
    written: str
    from_logits: bool = False
    focal: bool = False
    auto: bool = False  # Keras 3 "crossentropy": the family was chosen from the output's shape

    @property
    def described(self) -> str:
        """The loss for a message: as written, with its canonical name when an alias hides it."""
        if self.name is None or "(" in self.written or _key(self.written) == _key(self.name):
            return self.written
        return f"{self.written} ({self.name})"


@dataclass(frozen=True)
class Metric:
    name: Optional[str]  # canonical name for the metrics the rules know; None otherwise
    written: str


def _builtin(obj: dict) -> bool:
    module = obj.get("module")
    registered = obj.get("registered_name")
    if isinstance(registered, str) and ">" in registered:
        return False  # keras.saving.register_keras_serializable: user code
    return module is None or (isinstance(module, str) and module.split(".")[0] in BUILTIN_MODULES)


def _loss_name(text: str) -> Optional[str]:
    return _LOSS_LOOKUP.get(_key(text))


def _class_name(obj: dict) -> Optional[str]:
    name = obj.get("class_name")
    if not isinstance(name, str):
        return None
    return name.split(">", 1)[1] if name.startswith("Custom>") else name


def normalize_loss(identifier: Any, units: Optional[int] = None) -> Optional[Loss]:
    """One loss identifier as written in a compile config -> Loss, or None for no loss.

    `units` is the last dimension of the output it applies to, for Keras 3's shape-resolved
    "crossentropy".
    """
    if identifier is None:
        return None
    if isinstance(identifier, str):
        if identifier.lower() in AUTO_CROSSENTROPY:
            if units is None:
                return Loss(LossFamily.OTHER, None, identifier)
            name = "binary_crossentropy" if units == 1 else "categorical_crossentropy"
            return Loss(LOSSES[name], name, identifier, auto=True)
        name = _loss_name(identifier)
        if name is None:
            return Loss(LossFamily.OTHER, None, identifier)
        return Loss(LOSSES[name], name, identifier, focal="focal" in name)
    if isinstance(identifier, dict):
        cls = _class_name(identifier)
        config = identifier.get("config")
        if cls is None:
            return Loss(LossFamily.OTHER, None, "a custom loss")
        if not _builtin(identifier):
            return Loss(LossFamily.OTHER, None, cls)
        if cls == "function":  # Keras 3: a loss function, its name in config
            if isinstance(config, str):
                return normalize_loss(config, units)
            return Loss(LossFamily.OTHER, None, "a custom loss function")
        cfg = config if isinstance(config, dict) else {}
        name, call = _loss_name(cls), f"{cls}()"
        if name is None and cls == "LossFunctionWrapper":  # a loss function wrapped: named by its fn
            fn = cfg.get("fn")
            fn = fn.get("config") if isinstance(fn, dict) else fn
            name = _loss_name(fn) if isinstance(fn, str) else None
            cls = call = fn if isinstance(fn, str) else cls
        if name is None:
            return Loss(LossFamily.OTHER, None, cls)
        if name in _LOGITS_AWARE:
            from_logits = cfg.get("from_logits", False) is True
            written = f"{cls}(from_logits={from_logits})"
        else:
            from_logits, written = False, call
        return Loss(LOSSES[name], name, written, from_logits=from_logits, focal="focal" in name)
    return Loss(LossFamily.OTHER, None, "a custom loss")


def normalize_metric(identifier: Any) -> Optional[Metric]:
    """One metric as written (Keras 3 string or object; tf_keras MeanMetricWrapper) -> Metric."""
    if identifier is None:
        return None
    if isinstance(identifier, str):
        return Metric(_METRIC_LOOKUP.get(_key(identifier)), identifier)
    if isinstance(identifier, dict):
        cls = _class_name(identifier)
        config = identifier.get("config")
        if cls is None or not _builtin(identifier):
            return Metric(None, cls or "a custom metric")
        if cls == "function":
            return normalize_metric(config) if isinstance(config, str) else Metric(None, "a custom metric")
        cfg = config if isinstance(config, dict) else {}
        if cls == "MeanMetricWrapper":
            # tf_keras stores the metric it resolved ("accuracy" becomes binary_accuracy after a
            # binary loss): the name keeps what was written, so read the name before the fn.
            name = cfg.get("name")
            written = _written_metric(name) if isinstance(name, str) else None
            if written is not None:
                return Metric(written, written)
            fn = cfg.get("fn")
            fn = fn.get("config") if isinstance(fn, dict) else fn
            if isinstance(fn, str):
                return Metric(_METRIC_LOOKUP.get(_key(fn)), fn)
            return Metric(None, name if isinstance(name, str) else cls)
        return Metric(_METRIC_LOOKUP.get(_key(cls)), cls)
    return Metric(None, "a custom metric")


def _written_metric(name: str) -> Optional[str]:
    """A tf_keras metric name -> the metric as written; multi-output models prefix the output's name
    ("kind_accuracy"), so the longest known name it ends with wins."""
    if _key(name) in _METRIC_LOOKUP:
        return _METRIC_LOOKUP[_key(name)]
    for known in sorted(list(METRICS) + list(METRIC_ALIASES), key=len, reverse=True):
        if name.endswith("_" + known):
            return METRIC_ALIASES.get(known, known)
    return None


# Every other name keras.metrics.get() resolves (Keras 3's keras/src/metrics/__init__.py, tf_keras's
# metrics module, Keras 2's aliases), compared like the tables above: a name outside all of them is a
# function of the user's, saved by its name.
OTHER_METRIC_NAMES = frozenset(_key(n) for n in (
    "auc", "binary_io_u", "binary_crossentropy", "categorical_hinge", "concordance_correlation",
    "cosine_similarity", "f1_score", "f_beta_score", "false_negatives", "false_positives", "hinge", "io_u",
    "kl_divergence", "log_cosh_error", "mae", "mape", "mean", "mean_absolute_error",
    "mean_absolute_percentage_error", "mean_io_u", "mean_metric_wrapper", "mean_squared_error",
    "mean_squared_logarithmic_error", "metric", "mse", "msle", "one_hot_io_u", "one_hot_mean_io_u",
    "pearson_correlation", "poisson", "precision", "precision_at_recall", "r2_score", "recall",
    "recall_at_precision", "root_mean_squared_error", "sensitivity_at_specificity", "specificity_at_sensitivity",
    "squared_hinge", "sum", "true_negatives", "true_positives", "bce", "accuracy",
    # tf_keras and Keras 2
    "cosine_proximity", "cosine", "kullback_leibler_divergence", "kld", "log_cosh", "logcosh",
    "mean_relative_error", "mean_tensor", "crossentropy", "ce",
))
OTHER_LOSS_NAMES = frozenset(_key(n) for n in ("cosine_proximity", "cosine") + AUTO_CROSSENTROPY)
MAX_OBJECTIVE_ITEMS = 10_000  # bound on the walk over a compile config's losses and metrics


def custom_by_name(objective) -> list:
    """(kind "loss" or "metric", name) of every loss or metric a compile config saves as a bare name
    that Keras does not define: a function of the user's, which Keras wrote by its name only."""
    if objective is None:
        return []
    found: list = []
    todo = [("metric", objective.weighted_metrics), ("metric", objective.metrics), ("loss", objective.loss)]
    for _ in range(MAX_OBJECTIVE_ITEMS):
        if not todo:
            break
        kind, item = todo.pop()
        if isinstance(item, (list, tuple)):
            todo.extend((kind, sub) for sub in reversed(item))
        elif isinstance(item, dict) and not _is_serialized(item):
            todo.extend((kind, sub) for sub in reversed(list(item.values())))
        else:
            name = _saved_name(item)
            if name is not None and not _defined(kind, name) and (kind, name) not in found:
                found.append((kind, name))
    return found


def _saved_name(item: Any) -> Optional[str]:
    """The name a loss or metric is saved under when it is only a name: a string, a Keras 3
    builtins 'function', a tf_keras MeanMetricWrapper's fn."""
    if isinstance(item, str):
        return item
    if not isinstance(item, dict) or not _builtin(item):
        return None
    config = item.get("config")
    if item.get("class_name") == "function":
        return config if isinstance(config, str) else None
    if item.get("class_name") == "MeanMetricWrapper" and isinstance(config, dict):
        fn = config.get("fn")
        fn = fn.get("config") if isinstance(fn, dict) and fn.get("class_name") == "function" else fn
        return fn if isinstance(fn, str) else None
    return None


def _defined(kind: str, name: str) -> bool:
    key = _key(name)
    if key in _LOSS_LOOKUP or key in OTHER_LOSS_NAMES:
        return True  # a loss function is a metric too
    return kind == "metric" and (key in _METRIC_LOOKUP or key in OTHER_METRIC_NAMES)


@dataclass
class Assignment:
    """What compile gives each output: its losses (usually one) and its metrics."""

    losses: list = field(default_factory=list)  # per output: tuple[Loss, ...]
    metrics: list = field(default_factory=list)  # per output: tuple[Metric, ...]
    problems: list = field(default_factory=list)  # (kind "list" | "dict", what does not fit the outputs)


def assign(
    objective,
    output_names: Sequence[str],
    *,
    dict_outputs: bool = False,
    units: Sequence[Optional[int]] = (),
) -> Assignment:
    """Spread an Objective's loss and metrics over the outputs, the way Keras's compile does.

    `dict_outputs`: the model's outputs are a dict (Keras 3), so a list maps to them in sorted
    key order, as keras.tree flattens a dict. `units`: each output's last dimension.
    """
    n = len(output_names)
    units = list(units) + [None] * (n - len(units))
    result = Assignment(losses=[() for _ in range(n)], metrics=[() for _ in range(n)])
    if objective is None or n == 0:
        return result
    order = _positions(output_names, dict_outputs)
    loss = objective.loss
    if isinstance(loss, dict) and not _is_serialized(loss):
        absent = [str(k) for k in loss if k not in output_names]
        if absent:
            result.problems.append((
                "dict",
                f"the loss dict names {_names(absent)}, which "
                f"{'is not an output' if len(absent) == 1 else 'are not outputs'} of the model "
                f"(outputs: {_names(output_names)})",
            ))
        for i, name in enumerate(output_names):
            result.losses[i] = _losses(loss.get(name), units[i])
    elif isinstance(loss, (list, tuple)):
        if n == 1:
            # A list on a single output: Keras applies every loss in it to that output.
            result.losses[0] = tuple(l for item in loss for l in _losses(item, units[0]))
        else:
            if len(loss) != n:
                result.problems.append((
                    "list",
                    f"the loss list has {len(loss)} entr{'y' if len(loss) == 1 else 'ies'} but the model has "
                    f"{n} outputs ({_names(output_names)})",
                ))
            for pos, item in enumerate(loss[:n]):
                i = order[pos]
                result.losses[i] = _losses(item, units[i])
    else:
        for i in range(n):
            result.losses[i] = _losses(loss, units[i])
    result.metrics = _assign_metrics(objective.metrics, output_names, order)
    return result


def _is_serialized(obj: dict) -> bool:
    return "class_name" in obj


def _losses(item: Any, units: Optional[int]) -> tuple:
    if isinstance(item, (list, tuple)):
        return tuple(l for sub in item for l in _losses(sub, units))
    loss = normalize_loss(item, units)
    return (loss,) if loss is not None else ()


def _positions(output_names: Sequence[str], dict_outputs: bool) -> list[int]:
    """List position -> output index."""
    if not dict_outputs:
        return list(range(len(output_names)))
    return sorted(range(len(output_names)), key=lambda i: output_names[i])


def _assign_metrics(metrics: Any, output_names: Sequence[str], order: list[int]) -> list:
    n = len(output_names)
    out: list = [() for _ in range(n)]
    if not metrics:
        return out
    if isinstance(metrics, dict) and not _is_serialized(metrics):
        for i, name in enumerate(output_names):
            out[i] = _metrics(metrics.get(name))
        return out
    if n == 1:
        out[0] = _metrics(metrics)
        return out
    if isinstance(metrics, (list, tuple)) and (len(metrics) == n or any(map(_is_group, metrics))):
        # one entry per output (Keras 3 flat case; tf_keras stores its resolved list of lists)
        for pos, item in enumerate(metrics[:n]):
            out[order[pos]] = _metrics(item)
        return out
    every = _metrics(metrics)  # tf_keras: a flat list applies to every output
    return [every for _ in range(n)]


def _is_group(item: Any) -> bool:
    """A list, or a dict by name, of metrics (not one serialized metric)."""
    return isinstance(item, (list, tuple)) or (isinstance(item, dict) and not _is_serialized(item))


def _metrics(item: Any) -> tuple:
    if item is None:
        return ()
    if isinstance(item, (list, tuple)):
        return tuple(m for sub in item for m in _metrics(sub))
    metric = normalize_metric(item)
    return (metric,) if metric is not None else ()


def _names(names: Sequence[str]) -> str:
    return ", ".join(f"'{n}'" for n in names)
