"""`modelaudit textconv PATH`: a model as stable text, for git's textconv diff driver, so that `git diff`,
`git log -p` and `git show` of a model read like a code change.

Stable: the same architecture gives the same text whatever the weights, the file's path (git hands a
temporary file), the terminal, the clock or the modelaudit run. So no path, no file size (a retrained
model's bytes move), no colour, no timestamp, no version, no column padding that depends on other
rows (a longer layer name added would realign, and so change, every line). Layer headers start in
column 0 and their config keys are indented below them, so git's default hunk header names the layer
a change is in (`@@ -12,7 +12,7 @@ out (Dense) -> (None, 10), 1,450 params`).
"""

from __future__ import annotations

from typing import Any

from modelaudit.report.visible import visible

# keys of nested config objects that only repeat where Keras keeps its own classes
BUILTIN_MODULE = ("keras", "keras.")


def render(graph_format: str, inferred, findings: list) -> str:
    from modelaudit.diff import objective_view

    graph = inferred.graph
    out = [visible(f"model: {graph.name} ({graph.class_name}), {graph_format}"), ""]
    out += _layers(inferred)
    out += ["", "totals:"]
    for label, n in (("total params", inferred.total_params), ("trainable params", inferred.trainable_params),
                     ("non-trainable params", inferred.non_trainable_params), ("MACs", inferred.macs)):
        out.append(f"    {label}: {_count(n)}")
    out += ["", "objective:"]
    view = objective_view(graph)
    if graph.objective is None:
        out.append("    not compiled")
    else:
        out += [f"    {key}: {_value(v)}" for key, v in view.items()]
    out += ["", f"findings: {len(findings)}"]
    out += [visible(f"{f.code} [{f.severity.value}] {f.layer or '-'}: {f.message}") for f in findings]
    return "\n".join(out) + "\n"


def unreadable(reason: str) -> str:
    """What stands in for a file that cannot be read: git still shows the diff (a non-zero exit would
    stop `git log -p` at the first old file a reader refuses)."""
    return visible(f"modelaudit: cannot read: {reason}") + "\n"


def _layers(inferred) -> list[str]:
    from modelaudit.diff import NESTED_KEYS, flat_config, layer_config

    if inferred.graph.opaque:
        return ["layers: none saved (a subclassed model, or a SavedModel without a Keras config)"]
    functional = not inferred.graph.sequential
    out = [f"layers: {len(inferred.visible_rows())}"]
    for row in inferred.visible_rows():
        shapes = ", ".join(_shape(s) for s in row.first_output_shapes) or "?"
        head = f"{row.path} ({row.layer.class_name}) -> {shapes}, {_count(row.params)} params"
        if row.macs:
            head += f", {_count(row.macs)} MACs"
        if functional and row.inbound:
            head += f" <- {', '.join(row.inbound)}"
        out.append(visible(head))
        skip = NESTED_KEYS if row.layer.submodel is not None else frozenset()
        config = flat_config(layer_config(row.layer), skip)
        out += [visible(f"    {key}: {_value(v)}") for key, v in sorted(config.items()) if not _noise(key, v)]
    return out


def _noise(key: str, value: Any) -> bool:
    """A nested object's `module` naming Keras itself, or its empty `registered_name`."""
    if "." not in key:
        return False
    leaf = key.rpartition(".")[2]
    if leaf == "registered_name":
        return value is None
    return leaf == "module" and isinstance(value, str) and (value == "keras" or value.startswith("keras."))


def _shape(shape) -> str:
    from modelaudit.graph import fmt_shape

    return fmt_shape(shape)


def _count(n) -> str:
    return "unknown" if n is None else f"{n:,}"


def _value(v: Any) -> str:
    from modelaudit.report.diff import value

    return value(v)
