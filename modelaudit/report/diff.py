"""`modelaudit diff --format text|json|markdown`: a ModelDiff (modelaudit/diff.py) for people, scripts
and pull-request comments. Every name and value from a model is escaped (report/visible.py)."""

from __future__ import annotations

import json
from typing import Any, Optional

from modelaudit.graph import fmt_shape
from modelaudit.report.visible import visible

FORMATS = ("text", "json", "markdown")
MAX_VALUE = 200  # characters of one config value shown (a 10,000-entry vocabulary is cut)
TOTAL_LABELS = {"total_params": "Total params", "trainable_params": "Trainable params",
                "non_trainable_params": "Non-trainable params", "macs": "MACs", "file_size": "File size"}


def render(diff, format: str) -> str:
    if format == "json":
        return json.dumps(diff.to_dict(), indent=2) + "\n"
    if format == "markdown":
        return render_markdown(diff)
    return render_text(diff)


# ---- values --------------------------------------------------------------------------------------

def value(v: Any) -> str:
    """A config or objective value on one line: strings bare, the rest as compact JSON."""
    text = v if isinstance(v, str) else json.dumps(v, separators=(", ", ": "), default=str)
    text = visible(text)
    return text if len(text) <= MAX_VALUE else f"{text[:MAX_VALUE - 20]}… ({len(text):,} chars)"


def count(n: Optional[int]) -> str:
    return "unknown" if n is None else f"{n:,}"


def size(n: Optional[int]) -> str:
    if n is None:
        return "unknown"
    for unit in ("B", "KB", "MB"):
        if n < 1000:
            return f"{n:,} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:,.1f} GB"


def shapes(list_of_shapes: list) -> str:
    return ", ".join(fmt_shape(None if s is None else tuple(s)) for s in list_of_shapes) or "?"


def total_cell(key: str, n: Optional[int]) -> str:
    return size(n) if key == "file_size" else count(n)


def change(old: Optional[int], new: Optional[int], key: str = "") -> str:
    if old is None or new is None:
        return "?"
    if old == new:
        return "unchanged"
    delta = new - old
    sign = "+" if delta > 0 else "-"
    text = size(abs(delta)) if key == "file_size" else f"{abs(delta):,}"
    pct = f" ({delta / old:+.1%})" if old and abs(delta / old) >= 0.0005 else ""
    return f"{sign}{text}{pct}"


def before_after(pair: list, show=value) -> str:
    return f"{show(pair[0])} -> {show(pair[1])}"


# ---- text ----------------------------------------------------------------------------------------

def render_text(diff) -> str:
    out = [visible(f"modelaudit diff: {diff.old.label} -> {diff.new.label}")]
    if diff.unchanged:
        out.append("No change in layers, totals, objective or findings.")
    out += _text_layers(diff) + _text_totals(diff) + _text_objective(diff) + _text_findings(diff)
    return "\n".join(out) + "\n"


def _text_layers(diff) -> list[str]:
    out = [f"Layers: {len(diff.added)} added, {len(diff.removed)} removed, {len(diff.changed)} changed"]
    for path in diff.added:
        out.append("  + " + _layer_line(diff.new_layers[path]))
    for path in diff.removed:
        out.append("  - " + _layer_line(diff.old_layers[path]))
    for c in diff.changed:
        cls = c.class_name[1] if c.class_name[0] == c.class_name[1] else before_after(c.class_name)
        out.append(visible(f"  ~ {c.path} ({cls})"))
        out += [f"      {visible(k)}: {before_after(pair)}" for k, pair in c.config.items()]
        out.append(f"      params: {before_after(c.params, count)}")
        out.append(f"      output shape: {before_after(c.output_shapes, shapes)}")
        if c.inbound[0] != c.inbound[1]:
            out.append(f"      inputs: {before_after(c.inbound, _names)}")
    return out


def _names(layers: list) -> str:
    return value(", ".join(layers) or "none")


def _layer_line(view) -> str:
    return visible(f"{view.path} ({view.class_name}): {count(view.params)} params, output {shapes(view.output_shapes)}")


def _text_totals(diff) -> list[str]:
    out = ["Totals:"]
    for key, (old, new) in diff.totals.items():
        out.append(f"  {TOTAL_LABELS[key]}: {total_cell(key, old)} -> {total_cell(key, new)}, {change(old, new, key)}")
    return out


def _text_objective(diff) -> list[str]:
    changed = diff.objective_changed
    if not changed:
        return ["Objective: unchanged"]
    return ["Objective:"] + [f"  {k}: {before_after(pair)}" for k, pair in changed.items()]


def _text_findings(diff) -> list[str]:
    out = [f"Findings: {len(diff.introduced)} introduced, {len(diff.resolved)} resolved"]
    out += ["  + " + _finding_line(f) for f in diff.introduced]
    out += ["  - " + _finding_line(f) for f in diff.resolved]
    return out


def _finding_line(f) -> str:
    return visible(f"{f.layer or '-'}: {f.code} [{f.severity.value}] {f.message}")


# ---- markdown ------------------------------------------------------------------------------------

def render_markdown(diff, max_chars: Optional[int] = None) -> str:
    """A pull-request comment of at most `max_chars` (GitHub's 65,536): the headline and totals
    always, then layers, objective and findings row by row while they fit, then what was left out."""
    from modelaudit.report.markdown import MAX_CHARS, RESERVE

    limit = (max_chars or MAX_CHARS) - RESERVE
    out = _md_head(diff)
    used = sum(len(line) + 1 for line in out)
    left = 0
    for lines in _md_pieces(diff):
        cost = sum(len(line) + 1 for line in lines)
        if left or used + cost > limit:
            left += 1
            continue
        out += lines
        used += cost
    chart = "" if left else _chart(diff, limit - used)
    if chart:
        out += ["#### Changed layers and their neighbours", "", chart.rstrip("\n"), ""]
    if left:
        out += ["", f"{left:,} more rows not shown: run `modelaudit diff --format json` for the whole diff "
                    f"(a pull-request comment holds at most {(max_chars or MAX_CHARS):,} characters)"]
    return "\n".join(out).rstrip("\n") + "\n"


def _cell(text: str) -> str:
    from modelaudit.report.markdown import _cell as cell

    return cell(text)


def _code(text: str) -> str:
    from modelaudit.report.markdown import _code_span

    return _code_span(text)


def _md_head(diff) -> list[str]:
    n_in, n_out = len(diff.introduced), len(diff.resolved)
    icon = "❌" if any(f.severity.value == "error" for f in diff.introduced) else "⚠️" if n_in else "✅"
    out = [f"### {icon} {_code(diff.new.label)} (was {_code(diff.old.label)})", ""]
    out.append(f"**{n_in} finding{'s' if n_in != 1 else ''} introduced**, {n_out} resolved · layers: "
               f"{len(diff.added)} added, {len(diff.removed)} removed, {len(diff.changed)} changed")
    out += ["", "| | before | after | change |", "|---|---:|---:|---:|"]
    for key, (old, new) in diff.totals.items():
        out.append(f"| {TOTAL_LABELS[key]} | {total_cell(key, old)} | {total_cell(key, new)} | {change(old, new, key)} |")
    return out + [""]


def _md_pieces(diff):
    """Pieces (lists of lines) in order of what a reviewer needs first — the findings (the gate's
    reason), the objective, then the layers — so a cut comment keeps them; a table's header travels
    with its first row."""
    yield from _table(_findings_header(), [_finding_row(f) for f in diff.introduced], "#### Findings introduced")
    yield from _table(_findings_header(), [_finding_row(f) for f in diff.resolved], "#### Findings resolved")
    changed = diff.objective_changed
    yield from _table(["| | before | after |", "|---|---|---|"],
                      [f"| {k} | {_cell(value(o))} | {_cell(value(n))} |" for k, (o, n) in changed.items()],
                      "#### Objective")
    rows = [("➕", diff.new_layers[p], None) for p in diff.added] + \
           [("➖", diff.old_layers[p], None) for p in diff.removed] + \
           [("✏️", diff.new_layers[c.path], c) for c in diff.changed]
    yield from _table(["| | Layer | Class | Params | Output shape | Config |", "|---|---|---|---:|---|---|"],
                      [_layer_row(*r) for r in rows], "#### Layers")


def _table(header: list[str], rows: list[str], title: str):
    for i, row in enumerate(rows):
        head = [title, ""] + header if i == 0 else []
        tail = [""] if i == len(rows) - 1 else []
        yield head + [row] + tail


def _layer_row(icon: str, view, c) -> str:
    if c is None:
        return (f"| {icon} | {_code(view.path)} | {_cell(view.class_name)} | {count(view.params)} | "
                f"{_cell(shapes(view.output_shapes))} | |")
    cls = _cell(c.class_name[1] if c.class_name[0] == c.class_name[1] else before_after(c.class_name))
    params = count(c.params[1]) if c.params[0] == c.params[1] else f"{count(c.params[0])} → {count(c.params[1])}"
    old_s, new_s = shapes(c.output_shapes[0]), shapes(c.output_shapes[1])
    out_shape = _cell(new_s) if old_s == new_s else f"{_cell(old_s)} → {_cell(new_s)}"
    config = [f"{_code(k)}: {_cell(value(o))} → {_cell(value(n))}" for k, (o, n) in c.config.items()]
    if c.inbound[0] != c.inbound[1]:
        config.append(f"inputs: {_cell(_names(c.inbound[0]))} → {_cell(_names(c.inbound[1]))}")
    config = "<br>".join(config)
    return f"| {icon} | {_code(c.path)} | {cls} | {params} | {out_shape} | {config} |"


def _findings_header() -> list[str]:
    return ["| Severity | Rule | Layer | Message |", "|---|---|---|---|"]


def _finding_row(f) -> str:
    layer = _code(f.layer) if f.layer else "(model)"
    return f"| {f.severity.value} | [{f.code}]({f.url}) {_code(f.name)} | {layer} | {_cell(f.message)} |"


def _chart(diff, room: int) -> str:
    """The Mermaid chart of the changed and added layers in the room the tables left (the heading's
    cost kept aside); '' when there is none or it does not fit."""
    marks = {c.path: "changed" for c in diff.changed}
    marks.update({path: "added" for path in diff.added})
    return neighbourhood_chart(diff.new.report.inferred, marks, room - 60)


def neighbourhood_chart(inferred, marks: dict, max_chars: int) -> str:
    """Issue 19's Mermaid flowchart (report/mermaid.py) of the marked layers of the new model (path ->
    "changed" | "added") and their neighbours, at most `max_chars`; '' when nothing changed."""
    if not marks or inferred is None or max_chars <= 0:
        return ""
    from modelaudit.report import mermaid

    return mermaid.flowchart(inferred, focus=list(marks), marks=marks, max_chars=min(max_chars, mermaid.MAX_CHARS))
