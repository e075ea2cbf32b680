"""`modelaudit summary`: the per-layer table, laid out like Keras's own model.summary()."""

from __future__ import annotations

import json
import re
from typing import Optional

from modelaudit.graph import fmt_shape
from modelaudit.report.text import terminal_width, wrap
from modelaudit.report.visible import visible

DTYPE_BYTES = {"float16": 2, "bfloat16": 2, "float32": 4, "float64": 8}


def to_dict(path: str, fmt: str, inferred) -> dict:
    graph = inferred.graph
    layers = []
    for row in inferred.visible_rows():
        layers.append({
            "path": row.path,
            "class": row.layer.class_name,
            "depth": row.depth,
            "inbound": row.inbound,
            "output_shapes": [list(s) if s is not None else None for s in row.first_output_shapes],
            "params": row.params,
            "trainable_params": row.trainable_params,
            "non_trainable_params": row.non_trainable_params,
            "stored_params": row.stored_params,
            "macs": row.macs,
            "recomputed": row.recomputed,
            "formula": row.formula,
        })
    from modelaudit.report.json import SCHEMA_VERSION

    out = {
        "schema_version": SCHEMA_VERSION,
        "path": path,
        "format": fmt,
        "model": {"name": graph.name, "class": graph.class_name},
        "layers": layers,
        "total_params": inferred.total_params,
        "trainable_params": inferred.trainable_params,
        "non_trainable_params": inferred.non_trainable_params,
        "macs": inferred.macs,
    }
    if graph.source.signatures:  # a SavedModel's serving signatures (formats/savedmodel.py)
        out["signatures"] = [
            {"name": sig.name,
             "inputs": [{"key": k, "dtype": d, "shape": None if s is None else list(s)} for k, d, s in sig.inputs],
             "outputs": [{"key": k, "dtype": d, "shape": None if s is None else list(s)} for k, d, s in sig.outputs]}
            for sig in graph.source.signatures
        ]
    return out


def render_json(path: str, fmt: str, inferred) -> str:
    return json.dumps(to_dict(path, fmt, inferred), indent=2) + "\n"


def _human_bytes(n: float) -> str:
    try:
        n = float(n)
    except OverflowError:  # a hostile config's 10**400 params: no float holds it
        return "over 1e308 B"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.2f} GB"  # pragma: no cover


def _count(n) -> str:
    return "?" if n is None else f"{n:,}"


def _total(n, per: int) -> str:
    # unknown, not 0: a layer no spec recomputes and whose weights the file does not store
    return "unknown" if n is None else f"{n:,} ({_human_bytes(n * per)})"


def _table_rows(inferred, formulas: bool, markdown: bool):
    functional = not inferred.graph.sequential
    headers = ["Layer (type)", "Output Shape", "Param #"]
    if functional:
        headers.append("Connected to")
    headers.append("MACs")
    if formulas:
        headers.append("How")
    rows = []
    for row in inferred.visible_rows():
        name = row.path.rpartition("/")[2]
        # nested layers hang under their model, as in Keras's summary(expand_nested=True)
        label = _nesting(row.depth) + visible(f"{name} ({row.layer.class_name})")
        shapes = row.first_output_shapes
        shape_text = ", ".join(fmt_shape(s) for s in shapes) if shapes else "?"
        params = _count(row.params)
        if not row.recomputed and row.layer.submodel is None:
            params += " *"
        cells = [label, shape_text, params]
        if functional:
            entries = [visible(e) for e in _connections(row)]
            cells.append((", ".join(entries) if markdown else _connections_cell(entries)) or "-")
        cells.append(_count(row.macs))
        if formulas:
            cells.append(row.formula or ("from the file" if not row.recomputed else ""))
        rows.append([_fit(c) for c in cells])
    return headers, rows


# A table pads every row to its widest cell: one cell of a hostile file (a 5 MB layer name, a layer
# called 90,000 times) times thousands of rows would be gigabytes. No real cell is this wide.
MAX_CELL = 240


def _fit(text: str) -> str:
    return text if len(text) <= MAX_CELL else f"{text[:MAX_CELL - 20]}… ({len(text):,} chars)"


def _connections_cell(entries: list[str]) -> str:
    """`a[0][0], b[0][0], … +88 more`: the entries that fit in MAX_CELL characters, then how many
    more there are (a cell cut in the middle of a name could not say)."""
    text = ", ".join(entries)
    if len(text) <= MAX_CELL:
        return text
    shown, used = [], 0
    for entry in entries:
        used += len(entry) + 2
        if used > MAX_CELL - 20:
            break
        shown.append(entry)
    return ", ".join(shown + [f"… +{len(entries) - len(shown):,} more"])


def _connections(row):
    out = []
    for call in row.layer.calls:
        for ref in call.inputs:
            out.append(f"{ref.layer}[{ref.call}][{ref.index}]")
    return out


# Nesting levels drawn as indentation; deeper rows (models nest 1,000 levels deep) say their depth
# instead, so the column stays narrow and the table is built in linear time.
MAX_INDENT = 12


def _nesting(depth: int) -> str:
    if not depth:
        return ""
    if depth <= MAX_INDENT:
        return "  " * (depth - 1) + "└ "
    return "  " * (MAX_INDENT - 1) + f"└{depth} "


def _footer(inferred) -> list[str]:
    sizes = inferred.dtype_bytes
    main_dtype = max(sizes, key=sizes.get) if sizes else "float32"
    per = DTYPE_BYTES.get(main_dtype, 4)
    lines = [f"{label}: {_total(n, per)}" for label, n in (
        ("Total params", inferred.total_params), ("Trainable params", inferred.trainable_params),
        ("Non-trainable params", inferred.non_trainable_params))]
    if len(sizes) > 1:
        lines.append("Stored by dtype: " + ", ".join(f"{d} {_human_bytes(b)}" for d, b in sorted(sizes.items())))
    lines.append(f"Total MACs: {_count(inferred.macs)} per sample")
    if any(not r.recomputed and r.layer.submodel is None for r in inferred.rows):
        lines.append("* not recomputed (no spec, or an unknown input shape): taken from the file")
    return lines


def render_text(path: str, fmt: str, inferred, formulas: bool = False, width: Optional[int] = None) -> str:
    """The table and its totals, every line at most `width` columns (default: text.terminal_width())."""
    import tabulate as tabulate_module
    from tabulate import tabulate

    tabulate_module.PRESERVE_WHITESPACE = True  # keep the nesting indent
    width = terminal_width() if width is None else width

    graph = inferred.graph
    title = visible(f'Model: "{graph.name}" ({graph.class_name}, {fmt}) — {path}')
    out = wrap(title.split(" "), width)
    if graph.opaque:
        for line in _opaque_lines(graph):
            out.extend(wrap(line.split(" "), width))
    else:
        headers, rows = _table_rows(inferred, formulas, markdown=False)
        headers, rows = fit_table(headers, rows, width)
        align = tuple("right" if h.split("\n")[0] in NUMERIC else "left" for h in headers)
        out.append(tabulate(rows, headers=headers, tablefmt="simple_outline", colalign=align,
                            disable_numparse=True))
    for line in _footer(inferred):
        out.extend(wrap(line.split(" "), width))
    if formulas:
        out.extend(_legend(width))
    return "\n".join(out) + "\n"


# ---- fitting the table to the width -------------------------------------------------------------

NUMERIC = ("Param #", "MACs")  # never wrapped: a count cut in two misreads
CONNECTED = "Connected to"
MAX_CONNECTION_LINES = 3  # an Add of 50 inputs: the first entries, then "… +N more"
MIN_COLUMN = 4  # at 60 columns with --formulas, four text columns share about 20
HEADER_PADDING = 2  # tabulate.MIN_PADDING
MORE = re.compile(r"… \+([\d,]+) more")
ENTRY = re.compile(r"(.*?)(\[\d+\]\[\d+\])")  # "conv1_bn[0][0]": a layer, its call and tensor
SHAPES = re.compile(r"(?<=\)), (?=\()")  # between "(None, 2), (None, 3)"


def fit_table(headers: list[str], rows: list[list[str]], width: int):
    """Headers and rows with the text columns wrapped (a cell's lines joined by newlines) so that the
    simple_outline table is at most `width` wide; unchanged when it already fits."""
    natural = _widths(headers, rows)
    overhead = 3 * len(headers) + 1  # "│ " before each cell, " " after it, then a closing "│"
    if sum(natural) + overhead <= width:
        return headers, rows
    text = [i for i, h in enumerate(headers) if h not in NUMERIC]
    room = width - overhead - sum(natural[i] for i in range(len(headers)) if i not in text)
    widths = dict(zip(text, _share(room, [natural[i] for i in text])))
    best = _fitted(headers, rows, widths)
    for _ in range(3):  # a wrapped column may come out narrower than its share: hand the slack on
        used = _widths(*best)
        slack = room - sum(used[i] for i in text)
        cramped = [i for i in text if used[i] < natural[i]]
        if slack <= 0 or not cramped:
            break
        widths = {i: used[i] + (slack // len(cramped) if i in cramped else 0) for i in text}
        trial = _fitted(headers, rows, widths)
        if sum(_widths(*trial)[i] for i in text) > room:
            break
        best = trial
    return best


def _fitted(headers, rows, widths: dict):
    fitted = [[_fit_cell(cell, headers[i], widths[i]) if i in widths else cell for i, cell in enumerate(row)]
              for row in rows]
    heads = [_wrap_cell(h, widths[i] - HEADER_PADDING) if i in widths else h for i, h in enumerate(headers)]
    return heads, fitted


def _widths(headers, rows) -> list[int]:
    """Each column's width as tabulate lays it out: its longest line, a header's padded by 2."""
    return [max([len(line) + HEADER_PADDING for line in h.split("\n")]
                + [len(line) for r in rows for line in r[i].split("\n")]) for i, h in enumerate(headers)]


def _share(room: int, wants: list[int]) -> list[int]:
    """Column widths summing to at most `room`: the narrow columns get all they want, the wide ones
    an equal share of the rest (max-min fair), none below MIN_COLUMN."""
    out = [0] * len(wants)
    left, todo = room, sorted(range(len(wants)), key=lambda i: wants[i])
    for n, i in enumerate(todo):
        out[i] = max(MIN_COLUMN, min(wants[i], left // (len(todo) - n)))
        left -= out[i]
    return out


def _fit_cell(cell: str, header: str, width: int) -> str:
    if len(cell) <= width:
        return cell
    if header == CONNECTED:
        return _fit_connections(cell.split(", "), width)
    if header == "Output Shape":  # a multi-output layer: one shape after the other
        shapes = [abbreviate(s, width) if " " not in s else s for s in SHAPES.split(cell)]
        return "\n".join(line for shape in _fill(shapes, width) for line in _wrap_cell(shape, width).split("\n"))
    if header == "Layer (type)":  # `  └ name (Class)`: continuation lines keep the nesting indent
        body = cell.lstrip(" └")
        indent = " " * (len(cell) - len(body))
        return _wrap_cell(body, width - len(indent), first=cell[: len(indent)], rest=indent)
    return _wrap_cell(cell, width)


def _wrap_cell(text: str, width: int, first: str = "", rest: str = "") -> str:
    """Word-wrapped to `width`; a word longer than the cell is shortened in the middle with "…"."""
    words = [w if len(w) <= width else abbreviate(w, width) for w in text.split(" ")]
    return "\n".join(wrap(words, width + len(rest), first, rest))


def _fit_connections(entries: list[str], width: int) -> str:
    """The entries filled into at most MAX_CONNECTION_LINES lines; what does not fit is counted at
    the end ("… +12 more"). An entry longer than a line is shortened in the middle."""
    hidden = 0
    more = MORE.fullmatch(entries[-1])
    if more:  # _connections_cell already left some out
        hidden = int(more.group(1).replace(",", ""))
        entries = entries[:-1]
    entries = [_abbreviate_entry(e, width - 1) for e in entries]  # room for the comma after it
    for shown in range(len(entries), 0, -1):
        left = len(entries) - shown + hidden
        note = [_more(left, width)] if left else []
        lines = _fill(entries[:shown] + note, width)
        if len(lines) <= MAX_CONNECTION_LINES:
            return "\n".join(lines)
    return abbreviate(f"… {len(entries) + hidden:,} inputs", width)


def _abbreviate_entry(entry: str, width: int) -> str:
    """`conv2…_bn[0][0]`: the layer name shortened, its `[call][tensor]` kept whole while it fits."""
    match = ENTRY.fullmatch(entry)
    if match is None or len(entry) <= width or width - len(match.group(2)) < 4:
        return abbreviate(entry, width)
    return abbreviate(match.group(1), width - len(match.group(2))) + match.group(2)


def _more(hidden: int, width: int) -> str:
    for note in (f"… +{hidden:,} more", f"+{hidden:,} more", f"+{hidden:,}"):
        if len(note) <= width:
            return note
    return abbreviate(f"+{hidden:,}", width)


def _fill(items: list[str], width: int) -> list[str]:
    """`a, b,` / `c`: items joined by ", " into lines of at most `width`, a line break after a comma."""
    lines: list[str] = []
    for k, item in enumerate(items):
        last = k == len(items) - 1
        piece = item if last else item + ","
        if lines and len(lines[-1]) + 1 + len(piece) <= width:
            lines[-1] += " " + piece
        else:
            lines.append(piece)
    return lines


def abbreviate(word: str, width: int) -> str:
    """`conv2_block1…_bn[0][0]`: the start and the end of a word too long for `width` columns."""
    if len(word) <= width:
        return word
    tail = (width - 1) // 2
    return word[: width - 1 - tail] + "…" + (word[-tail:] if tail else "")


def _legend(width: int) -> list[str]:
    if all(len(line) <= width for line in FORMULA_LEGEND):
        return list(FORMULA_LEGEND)
    words = " ".join(line.strip() for line in FORMULA_LEGEND).split(" ")
    return wrap(words, width, "", " " * len("How: "))


# The words of the README's "How the counts are computed", so the two read alike.
FORMULA_LEGEND = [
    "How: Dense = (inputs + 1 bias)·units; Conv = (kernel height·width·input channels + 1 bias)·filters",
    "     (input channels / groups when grouped); valid padding: floor((n - k) / s) + 1, same: ceil(n / s)",
]


def _opaque_lines(graph) -> list[str]:
    """What stands in for the table of a model with no layer graph: for a SavedModel without a Keras
    config, its serving signatures (formats/savedmodel.py)."""
    if graph.format != "savedmodel" or graph.config:
        return ["A subclassed model: the file saves no layer graph, only its weights."]
    lines = ["A SavedModel with no Keras config (Keras 3 export() or tf.saved_model.save()): only its variables "
             "and signatures are read."]
    for sig in graph.source.signatures:
        inputs = ", ".join(f"{key}: {dtype} {fmt_shape(shape)}" for key, dtype, shape in sig.inputs)
        outputs = ", ".join(f"{key}: {dtype} {fmt_shape(shape)}" for key, dtype, shape in sig.outputs)
        lines.append(visible(f"Signature {sig.name}({inputs}) -> {outputs}"))
    return lines


def render_markdown(path: str, fmt: str, inferred, formulas: bool = False) -> str:
    from tabulate import tabulate

    graph = inferred.graph
    title = visible(f"{path} — {graph.name} ({graph.class_name})").replace("`", "")
    out = [f"### `{title}`", ""]
    if not graph.opaque:
        headers, rows = _table_rows(inferred, formulas, markdown=True)
        out.append(tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True))
        out.append("")
    out.extend(f"- {line}" for line in _footer(inferred))
    return "\n".join(out) + "\n"
