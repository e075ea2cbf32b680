"""`modelaudit summary`: the per-layer table, laid out like Keras's own model.summary()."""

from __future__ import annotations

import json

from modelaudit.infer.registry import fmt_shape
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
        label = ("  " * (row.depth - 1) + "└ " if row.depth else "") + visible(f"{name} ({row.layer.class_name})")
        shapes = row.first_output_shapes
        shape_text = ", ".join(fmt_shape(s) for s in shapes) if shapes else "?"
        params = _count(row.params)
        if not row.recomputed and row.layer.submodel is None:
            params += " *"
        cells = [label, shape_text, params]
        if functional:
            cells.append(visible(", ".join(_connections(row))) or "-")
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


def _connections(row):
    out = []
    for call in row.layer.calls:
        for ref in call.inputs:
            out.append(f"{ref.layer}[{ref.call}][{ref.index}]")
    return out


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


def render_text(path: str, fmt: str, inferred, formulas: bool = False) -> str:
    import tabulate as tabulate_module
    from tabulate import tabulate

    tabulate_module.PRESERVE_WHITESPACE = True  # keep the nesting indent

    graph = inferred.graph
    out = [visible(f'Model: "{graph.name}" ({graph.class_name}, {fmt}) — {path}')]
    if graph.opaque:
        out.extend(_opaque_lines(graph))
    else:
        headers, rows = _table_rows(inferred, formulas, markdown=False)
        align = tuple("right" if h in ("Param #", "MACs") else "left" for h in headers)
        out.append(tabulate(rows, headers=headers, tablefmt="simple_outline", colalign=align,
                            disable_numparse=True))
    out.extend(_footer(inferred))
    if formulas:
        out.extend(FORMULA_LEGEND)
    return "\n".join(out) + "\n"


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
