"""`check --format html` and `summary --format html`: one self-contained page (no network: its
stylesheet and script are inline, allowed by hash, nothing else is) with, per model, the layer graph
as SVG (each node coloured by its worst finding; a click shows its findings and how its params were
counted), a bar chart of params and of MACs per layer, the findings, the totals and the objective.

The layout is igraph's Sugiyama layout (the `html` extra; bench/README.md says why igraph). Every
name a model file chose is escaped (and its control characters made visible) before it is written."""

from __future__ import annotations

import base64
import hashlib
import html
import json
from typing import Optional

from modelaudit.report import drawing
from modelaudit.report.drawing import count
from modelaudit.report.html_assets import SCRIPT, STYLE
from modelaudit.report.locate import display_path
from modelaudit.report.visible import visible

MISSING = ('--format html needs the igraph package (graph layout): pip install "keras-modelaudit[html]" '
           "(or pip install igraph)")

NODE_W, NODE_H = 200, 58  # a node's box, pixels
GAP_X, GAP_Y = 28, 40  # between columns, between ranks
MARGIN = 16
NAME_CHARS = 28  # what a box shows of a name; the whole name is in its tooltip and panel
MAX_TEXT = 600  # a tooltip's or panel's text of one value (a 5 MB layer name is not drawn whole)
SHORT = 560  # a graph lower than this is shown at its own height, not in a 78vh scrolling frame


def missing_extra() -> Optional[str]:
    """The message to stop with when the layout library is not installed, else None."""
    import importlib.util

    try:
        return None if importlib.util.find_spec("igraph") else MISSING
    except (ImportError, ValueError):
        return MISSING


def esc(text) -> str:
    return html.escape(visible(text), quote=True)


def clip(text: str, n: int) -> str:
    text = visible(text)
    return text if len(text) <= n else f"{text[:n - 1]}…"


def long_text(text) -> str:
    text = visible(text)
    return text if len(text) <= MAX_TEXT else f"{text[:MAX_TEXT - 20]}… ({len(text):,} chars)"


# ---- the page ------------------------------------------------------------------------------------

def _page(title: str, body: list[str]) -> str:
    def digest(text: str) -> str:
        return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()

    policy = (f"default-src 'none'; style-src '{digest(STYLE)}'; script-src '{digest(SCRIPT)}'; "
              "img-src data:; base-uri 'none'; form-action 'none'")
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{policy}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title>", f"<style>{STYLE}</style></head><body>",
        '<svg width="0" height="0" aria-hidden="true"><defs><marker id="arrow" viewBox="0 0 10 10" refX="10" '
        'refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z"/>'
        "</marker></defs></svg>",
        *body, f"<script>{SCRIPT}</script>", "</body></html>", ""])


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 or word == 'info' else 's'}"


def render(report, *, show_info: bool = False, color: bool = False) -> str:
    """The check report: every file's section (show_info and color change nothing: a page shows all)."""
    counts = report.counts
    head = [f"<h1>modelaudit: {_plural(len(report.files), 'file')} checked</h1>",
            '<p class="counts">' + "".join(
                f'<span><b class="pill {s}">{counts[s]:,}</b> {_plural(counts[s], s).split(" ", 1)[1]}</span>'
                for s in ("error", "warning", "info")) + "</p>"]
    if len(report.files) > 1:
        head.append("<ul>" + "".join(f'<li><a href="#m{i}">{esc(display_path(fr.path))}</a></li>'
                                      for i, fr in enumerate(report.files)) + "</ul>")
    body = head
    for i, fr in enumerate(report.files):
        body.extend(_file_section(fr, f"m{i}"))
    return _page("modelaudit report", body)


def render_summary(path: str, fmt: str, inferred) -> str:
    """`summary --format html`: the same section, without findings."""
    body = [f"<h1>modelaudit summary</h1>"] + _model_section(path, fmt, inferred, [], "m0")
    return _page(f"modelaudit summary: {path}", body)


def _file_section(fr, sid: str) -> list[str]:
    path = display_path(fr.path)
    if fr.skipped or fr.error or fr.inferred is None:
        why = (fr.skipped or (f"cannot read: {fr.error}" if fr.error else
               "its graph is not drawn: it was checked in a worker process (--jobs); run with -j 1"))
        out = [f'<section class="model" id="{sid}"><h2>{esc(path)}</h2><p>{esc(why)}</p>']
        out += _findings_table(fr.findings, sid, {})
        return out + ["</section>"]
    return _model_section(path, fr.format, fr.inferred, fr.findings, sid, fr.internal_errors)


def _model_section(path: str, fmt: str, inferred, findings: list, sid: str, internal=()) -> list[str]:
    graph = inferred.graph
    scopes = drawing.scopes(inferred) if not graph.opaque else []
    own, inner = drawing.worst_by_path(findings)
    ids = {}  # layer path -> its node's element id
    for s, scope in enumerate(scopes):
        for k, node in enumerate(scope.nodes):
            ids.setdefault(node.path, f"{sid}-s{s}-n{k}")
    rows_of: dict = {}
    for j, f in enumerate(findings):
        if f.layer:
            rows_of.setdefault(f.layer, []).append(f"{sid}-f{j}")
    out = [f'<section class="model" id="{sid}">',
           f"<h2>{esc(path)} — {esc(graph.name)} <span class=\"muted\">({esc(graph.class_name)}, {esc(fmt)})</span></h2>"]
    out += [f'<p class="muted">{esc(text)}</p>' for text in internal]
    out += _facts(inferred, findings)
    if graph.opaque:
        out.append("<p>The file saves no layer graph (a subclassed model or a SavedModel without a Keras config): "
                   "only its weights are audited.</p>")
    marks = (own, inner, rows_of, {f"{sid}-f{j}": f for j, f in enumerate(findings)})
    for s, scope in enumerate(scopes):
        out += _scope_block(scope, s, sid, scopes, marks)
    out.append('<div class="panel" aria-live="polite"></div>')
    out += _charts(scopes, own, ids)
    out += _findings_table(findings, sid, ids)
    return out + ["</section>"]


def _facts(inferred, findings: list) -> list[str]:
    counts = {s: sum(1 for f in findings if f.severity.value == s) for s in ("error", "warning", "info")}
    rows = [("Total params", count(inferred.total_params)), ("Trainable params", count(inferred.trainable_params)),
            ("Non-trainable params", count(inferred.non_trainable_params)),
            ("Total MACs", f"{count(inferred.macs)} per sample"),
            ("Findings", ", ".join(_plural(n, s) for s, n in counts.items()))]
    out = ['<table class="facts">'] + [f"<tr><td>{k}</td><td>{esc(v)}</td></tr>" for k, v in rows]
    out += [f"<tr><td>{k}</td><td><code>{esc(long_text(v))}</code></td></tr>" for k, v in _objective(inferred.graph)]
    return out + ["</table>"]


def _objective(graph) -> list[tuple[str, str]]:
    objective = graph.objective
    if objective is None:
        return [("Objective", "not compiled: the file saves no loss")]
    def text(value) -> str:
        if isinstance(value, float):
            return f"{value:.6g}"  # a float32 learning rate read back as 0.0010000000474974513
        return value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
    out = [("Loss", text(objective.loss))]
    for label, value in (("Metrics", objective.metrics), ("Weighted metrics", objective.weighted_metrics),
                         ("Loss weights", objective.loss_weights), ("Optimizer", objective.optimizer),
                         ("Learning rate", objective.learning_rate)):
        if value not in (None, [], {}):
            out.append((label, text(value)))
    return out


# ---- the graph -----------------------------------------------------------------------------------

def _layout(scope) -> tuple[list, list]:
    """(node positions in pixels, each edge's points) from igraph's Sugiyama layout."""
    try:
        import igraph
    except ImportError:  # the Python API's render(report, "html") without the html extra
        raise ImportError(MISSING) from None

    n = len(scope.nodes)
    if n == 0:
        return [], []
    g = igraph.Graph(n=n, edges=[(s, t) for s, t, _ in scope.edges], directed=True)
    layout = g.layout_sugiyama()
    coords = layout.coords[:n]
    step_x, step_y = NODE_W + GAP_X, NODE_H + GAP_Y
    left = min(x for x, _ in coords)
    places = [(MARGIN + (x - left) * step_x, MARGIN + y * step_y) for x, y in coords]
    routes = []
    for (s, t, _), bends in zip(scope.edges, layout.edge_routing):
        (sx, sy), (tx, ty) = places[s], places[t]
        points = [(sx + NODE_W / 2, sy + NODE_H)]
        points += [(MARGIN + (x - left) * step_x + NODE_W / 2, MARGIN + y * step_y + NODE_H / 2) for x, y in bends]
        points.append((tx + NODE_W / 2, ty))
        if ty < sy:  # an edge drawn upwards (a cycle in a broken file): from the top to the bottom
            points[0], points[-1] = (sx + NODE_W / 2, sy), (tx + NODE_W / 2, ty + NODE_H)
        routes.append(points)
    return places, routes


def _scope_block(scope, s: int, sid: str, scopes: list, marks) -> list[str]:
    places, routes = _layout(scope)
    width = int(max([x for x, _ in places] or [0]) + NODE_W + 2 * MARGIN)
    height = int(max([y for _, y in places] or [0]) + NODE_H + 2 * MARGIN)
    svg = [f'<svg class="graph" xmlns="http://www.w3.org/2000/svg" data-w="{width}" data-h="{height}" '
           f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
           ]
    for (src, dst, calls), points in zip(scope.edges, routes):
        d = "M" + "L".join(f"{x:.0f},{y:.0f}" for x, y in points)
        shared = " shared" if calls > 1 else ""
        svg.append(f'<path class="edge{shared}" data-from="{src}" data-to="{dst}" d="{d}"/>')
    for k, (node, (x, y)) in enumerate(zip(scope.nodes, places)):
        svg.append(_node_svg(node, f"{sid}-s{s}-n{k}", x, y, sid, scopes, marks))
    svg.append("</svg>")
    size = len(scope.nodes)
    box = ['<div class="graph-box"><div class="toolbar">'
           '<button class="zoom-out" title="zoom out">−</button><button class="zoom-in" title="zoom in">+</button>'
           '<button class="zoom-fit">fit</button><button class="zoom-one">100%</button>'
           f'<span class="muted">{_plural(size, "layer")}, {_plural(len(scope.edges), "connection")} · '
           'ctrl + wheel zooms · click a layer for its findings</span><span class="legend">'
           '<i class="error"></i>error<i class="warning"></i>warning<i class="info"></i>info<i class="none"></i>none'
           f'</span></div><div class="graph-wrap{" short" if height < SHORT else ""}">']
    box += svg + ["</div></div>"]
    if s == 0:
        return ["<h3>Layer graph</h3>"] + box
    title = (f"nested model {esc(clip(scope.path, 200))} — {esc(clip(scope.name, 80))} "
             f"({esc(clip(scope.class_name, 80))}): {_plural(size, 'layer')}")
    return [f'<details class="scope" id="{sid}-s{s}" data-path="{esc(scope.path)}"><summary>{title}</summary>'] + box + ["</details>"]


def _node_svg(node, element_id: str, x: float, y: float, sid: str, scopes: list, marks) -> str:
    own, inner, rows_of, by_id = marks
    severity = own.get(node.path)
    if node.scope is not None and node.path in inner:
        worst = inner[node.path]
        severity = worst if severity is None or drawing.RANK[worst] > drawing.RANK[severity] else severity
    classes = "node" + (" model" if node.scope is not None else "") + (f" sev-{severity}" if severity else "")
    attrs = [f'id="{element_id}"', f'class="{classes}"', f'data-layer="{esc(long_text(node.path))}"',
             f'data-class="{esc(long_text(node.class_name))}"', f'data-shape="{esc(long_text(node.shape))}"',
             f'data-params="{"" if node.params is None else node.params}"',
             f'data-params-text="{count(node.params)}"', f'data-macs-text="{count(node.macs)}"',
             f'transform="translate({x:.0f},{y:.0f})"', 'tabindex="0"']
    if severity:
        attrs.append(f'data-severity="{severity}"')
    rows = rows_of.get(node.path, [])
    if rows:
        attrs.append(f'data-findings="{" ".join(rows)}"')
    if node.formula:
        attrs.append(f'data-formula="{esc(long_text(node.formula))}"')
    if node.scope is not None:
        attrs.append(f'data-scope="{sid}-s{node.scope}"')
    tip = [f"{long_text(node.path)} ({long_text(node.class_name)})", f"output {long_text(node.shape)}",
           f"{count(node.params)} params · {count(node.macs)} MACs"]
    if node.formula:
        tip.append(f"How: {long_text(node.formula)}")
    tip += [f"{by_id[r].code} [{by_id[r].severity.value}] {long_text(by_id[r].message)}" for r in rows[:20]]
    params = "params unknown" if node.params is None else f"{node.params:,} params"
    kind = f"{node.class_name} ▸ nested" if node.scope is not None else node.class_name
    return (f"<g {' '.join(attrs)}><title>{esc(chr(10).join(tip))}</title>"
            f'<rect width="{NODE_W}" height="{NODE_H}" rx="6"/>'
            f'<text x="8" y="17">{esc(clip(node.name, NAME_CHARS))}</text>'
            f'<text class="c" x="8" y="33">{esc(clip(kind, NAME_CHARS - len(params) - 3))} · {esc(params)}</text>'
            f'<text class="s" x="8" y="49">{esc(clip(node.shape, NAME_CHARS + 3))}</text></g>')


# ---- the charts ----------------------------------------------------------------------------------

CHART_H = 150


def _charts(scopes: list, own: dict, ids: dict) -> list[str]:
    layers = [node for scope in scopes for node in scope.nodes if node.scope is None]
    out = []
    for label, key in (("Params per layer", "params"), ("MACs per layer", "macs")):
        bars = [(node, getattr(node, key)) for node in layers if getattr(node, key)]
        if not bars:
            continue
        out.append(f"<h3>{label}</h3>")
        out.append(_bar_chart(bars, key, own, ids))
    return out


def _bar_chart(bars: list, key: str, own: dict, ids: dict) -> str:
    n = len(bars)
    bar = max(2, min(22, 1400 // n))
    gap = 1 if bar < 6 else 2
    top = max(v for _, v in bars)
    left, base = 70, CHART_H + 10
    width = left + n * (bar + gap) + 10
    parts = [f'<div class="chart-wrap"><svg class="chart {key}" xmlns="http://www.w3.org/2000/svg" '
             f'width="{width}" height="{base + 6}" data-bars="{n}">',
             f'<text class="axis" x="4" y="14">{top:,}</text><text class="axis" x="4" y="{base}">0</text>',
             f'<path class="axis" d="M{left - 4},{base}L{width},{base}"/>']
    for i, (node, value) in enumerate(bars):
        h = max(1.0, CHART_H * value / top)
        x = left + i * (bar + gap)
        severity = own.get(node.path)
        cls = "bar" + (f" sev-{severity}" if severity else "")
        parts.append(f'<rect class="{cls}" data-layer="{esc(long_text(node.path))}" data-{key}="{value}" '
                     f'x="{x}" y="{base - h:.1f}" width="{bar}" height="{h:.1f}">'
                     f"<title>{esc(long_text(node.path))} ({esc(long_text(node.class_name))}): {value:,} {key.upper() if key == 'macs' else key}</title></rect>")
    peak = max(range(n), key=lambda i: bars[i][1])
    caption = (f'<p class="muted">{n:,} layers with {"params" if key == "params" else "MACs"}; the largest: '
               f"<code>{esc(clip(bars[peak][0].path, 120))}</code> ({bars[peak][1]:,})</p>")
    return "".join(parts) + "</svg></div>" + caption


# ---- the findings --------------------------------------------------------------------------------

def _findings_table(findings: list, sid: str, ids: dict) -> list[str]:
    if not findings:
        return ["<h3>Findings</h3>", "<p>No findings.</p>"]
    out = ["<h3>Findings</h3>", '<table class="findings"><tr><th>Severity</th><th>Rule</th><th>Layer</th><th>Message</th></tr>']
    for j, f in enumerate(findings):
        if f.layer and f.layer in ids:
            layer = f'<a class="layer" href="#{ids[f.layer]}"><code>{esc(long_text(f.layer))}</code></a>'
        else:
            layer = f"<code>{esc(long_text(f.layer))}</code>" if f.layer else '<span class="muted">(model)</span>'
        sev = f.severity.value
        out.append(f'<tr class="finding" id="{sid}-f{j}" data-severity="{sev}"><td><b class="pill {sev}">{sev}</b></td>'
                   f'<td><a href="{esc(f.url)}" rel="noopener noreferrer">{esc(f.code)}</a> {esc(f.name)}</td>'
                   f"<td>{layer}</td><td>{esc(long_text(f.message))}</td></tr>")
    return out + ["</table>"]
