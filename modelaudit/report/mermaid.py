"""Mermaid flowcharts of the layer graph, for Markdown that GitHub and GitLab render: the whole model
when it is small, else the neighbourhood of each layer asked for (a finding's, or a diff's changed
layers), always within a character budget.

Every name a model file chose is written as Mermaid entity codes (`#60;` for `<`) except letters,
digits and a few punctuation marks, inside a quoted label: a layer named `"]-->x` or `<script>` stays
text in its box. Node ids are ours (`n0_3`), never a name from the file."""

from __future__ import annotations

import re
from typing import Iterable, Mapping, Optional

from modelaudit.report import drawing
from modelaudit.report.drawing import count
from modelaudit.report.visible import visible

SMALL = 60  # a model of at most this many layers is drawn whole
MAX_NODES = 150  # Mermaid slows down and GitHub gives up on far larger charts
MAX_EDGES = 400  # below Mermaid's default maxEdges (500)
MAX_CHARS = 20_000  # one chart's text, fences included (a comment holds 65,536 characters)
LABEL_CHARS = 40  # of a name, in a box

STYLES = {
    "error": "fill:#fdecee,stroke:#d7263d,stroke-width:3px",
    "warning": "fill:#fff4e8,stroke:#f08a24,stroke-width:2px",
    "info": "fill:#eef4fd,stroke:#3a7bd5",
    "changed": "fill:#fff6d6,stroke:#b08800,stroke-width:2px",
    "added": "fill:#e6ffec,stroke:#1a7f37,stroke-width:2px",
    "removed": "fill:#ffebe9,stroke:#cf222e,stroke-dasharray:4 3",
}

_SAFE = re.compile(r"[A-Za-z0-9 _.,:()+=*/-]")


def label(text, limit: int = LABEL_CHARS) -> str:
    """`text` for a quoted Mermaid label: clipped to `limit` characters, every character but letters,
    digits and ` _.,:()+=*/-` as an entity code (`#34;`), so nothing in it is Mermaid or HTML syntax."""
    text = visible(text)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return "".join(c if _SAFE.fullmatch(c) else f"#{ord(c)};" for c in text)


def flowchart(inferred, focus: Optional[Iterable[str]] = None, *, marks: Optional[Mapping[str, str]] = None,
              max_chars: int = MAX_CHARS, radius: int = 2, whole_if_small: bool = True) -> str:
    """A fenced ```mermaid block of `inferred`'s (infer.propagate.Inferred) layer graph, '' when
    nothing fits in `max_chars` or there is nothing to draw.

    The whole model when it is small (SMALL layers), fits and `whole_if_small`; else the
    neighbourhoods of the layers in `focus` (layer paths, nested models joined with "/"; None: the
    layers in `marks`): the layers up to `radius` connections away, fewer when the chart would not fit.
    `marks`: layer path -> a key of STYLES ("error", "warning", "info", "changed", "added",
    "removed"), the box's colour."""
    if inferred.graph.opaque:
        return ""
    marks = dict(marks or {})
    scopes = drawing.scopes(inferred)
    total = sum(len(s.nodes) for s in scopes)
    if whole_if_small and total <= SMALL:
        chart = _chart(scopes, None, marks)
        if len(chart) <= max_chars:
            return chart
    wanted = _locate(scopes, set(marks if focus is None else focus))
    if not wanted:
        return ""
    for r in range(max(radius, 0), -1, -1):
        picked = _neighbourhood(scopes, wanted, r)
        if len(picked) > MAX_NODES:
            continue
        chart = _chart(scopes, picked, marks, left_out=total - len(picked))
        if len(chart) <= max_chars:
            return chart
    # even the flagged layers alone are too many: as many as fit, in graph order
    shown = sorted(wanted)[:MAX_NODES]
    while shown:
        chart = _chart(scopes, set(shown), marks, left_out=total - len(shown))
        if len(chart) <= max_chars:
            return chart
        shown = shown[: len(shown) // 2]
    return ""


def _locate(scopes: list, paths: set) -> set:
    return {(s, k) for s, scope in enumerate(scopes) for k, node in enumerate(scope.nodes) if node.path in paths}


def _neighbourhood(scopes: list, wanted: set, radius: int) -> set:
    """The nodes at most `radius` connections from a wanted one, within its model, both directions."""
    picked = set(wanted)
    adjacent: dict = {}
    for s in {s for s, _ in wanted}:
        for a, b, _ in scopes[s].edges:
            adjacent.setdefault((s, a), []).append((s, b))
            adjacent.setdefault((s, b), []).append((s, a))
    frontier = set(wanted)
    for _ in range(radius):
        frontier = {n for f in frontier for n in adjacent.get(f, ()) if n not in picked}
        picked |= frontier
    return picked


def _chart(scopes: list, picked: Optional[set], marks: dict, left_out: int = 0) -> str:
    """The chart of the picked (scope, node) pairs (None: all), nested models as subgraphs."""
    lines = ["```mermaid", "flowchart TD"]
    if picked is not None and left_out:
        lines.append(f"  %% {left_out:,} more layers not drawn")
    classes: dict = {}
    edges = 0
    parents = {node.scope: (s, k) for s, scope in enumerate(scopes) for k, node in enumerate(scope.nodes)
               if node.scope is not None}
    drawn: set = set()
    for s, scope in enumerate(scopes):
        shown = [k for k in range(len(scope.nodes)) if picked is None or (s, k) in picked]
        if not shown:
            continue
        indent = "  "
        if s:
            lines.append(f'  subgraph m{s}["{label(scope.path, 80)} ({label(scope.class_name)})"]')
            indent = "    "
        for k in shown:
            node = scope.nodes[k]
            drawn.add((s, k))
            lines.append(f'{indent}n{s}_{k}["{_box(node)}"]')
            style = marks.get(node.path)
            if style in STYLES:
                classes.setdefault(style, []).append(f"n{s}_{k}")
        keep = set(shown)
        for a, b, calls in scope.edges:
            if a in keep and b in keep and edges < MAX_EDGES:
                arrow = f"-- ×{calls} -->" if calls > 1 else "-->"
                lines.append(f"{indent}n{s}_{a} {arrow} n{s}_{b}")
                edges += 1
        if s:
            lines.append("  end")
            if parents.get(s) in drawn:  # the nested model's box, to the layers inside it
                lines.append(f"  n{parents[s][0]}_{parents[s][1]} -.- m{s}")
    for style, ids in classes.items():
        lines.append(f"  classDef {style} {STYLES[style]}")
        lines.append(f"  class {','.join(ids)} {style}")
    lines.append("```")
    return "\n".join(lines)


def _box(node) -> str:
    params = "? params" if node.params is None else f"{count(node.params)} params"
    return f"{label(node.name)}<br/>{label(node.class_name)} · {label(node.shape)} · {label(params)}"


def finding_focus(findings) -> set:
    """The layers to draw the neighbourhoods of: those with an error or a warning, else those with
    any finding (a model with info findings only)."""
    own, _ = drawing.worst_by_path(findings)
    return {path for path, severity in own.items() if severity != "info"} or set(own)


def severity_marks(findings) -> dict:
    """layer path -> the worst severity on it (a nested model: the worst inside it too), as marks."""
    own, inner = drawing.worst_by_path(findings)
    marks = dict(inner)
    for path, severity in own.items():
        if path not in marks or drawing.RANK[severity] >= drawing.RANK[marks[path]]:
            marks[path] = severity
    return marks
