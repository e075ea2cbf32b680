"""Text output readable at 80-120 columns, as ruff lays it out: `check` prints a headline
`path:layer: CODE [severity] what is wrong` and a `help:` line with the fix, both wrapped to the width;
`summary` fits its table to the width; `--format concise` keeps the one-line layout.

Everything runs through the real command line in a subprocess with COLUMNS set, on the committed
samples, a Keras 3 ResNet50 and a model built to be wide (an Add and a Concatenate of 13 inputs, a
multi-output LSTM, a nested model, a 150-character layer name). The truths: Keras's own count_params()
and layer inputs/outputs, and the MA201 sentence as the rule wrote it before the split (also asserted
in tests/test_objective.py).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WIDTHS = (80, 100, 120)
BCE = "samples/softmax_bce.keras"
MA201_PROBLEM = ("output 'dense_1' applies softmax (set by Dense 'dense_1', 10 units) but is trained with "
                 "binary_crossentropy, which scores each unit as an independent yes/no")
MA201_FIX = ("use categorical_crossentropy (one-hot labels) or sparse_categorical_crossentropy (integer labels), "
             "or sigmoid for multi-label")
LONG_NAME = "a_layer_whose_name_is_much_longer_than_any_terminal_" * 3  # 156 characters


def cli(*args, columns=None):
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    if columns is not None:
        env["COLUMNS"] = str(columns)
    done = subprocess.run([sys.executable, "-m", "modelaudit", *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT, env=env, encoding="utf-8")
    assert done.returncode in (0, 1), done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def resnet(tmp_path_factory):
    import keras

    # Its config is what the summary reads: saved as JSON from a model built without variable values
    # (a .keras file would hold 100 MB of them, in this process while saving)
    with keras.StatelessScope(initialize_variables=False):
        model = keras.applications.ResNet50(weights=None)
    path = tmp_path_factory.mktemp("resnet") / "resnet50.json"
    path.write_text(model.to_json())
    return model, path


@pytest.fixture(scope="module")
def wide(tmp_path_factory):
    """A functional model whose natural summary is far wider than 120 columns, compiled with
    softmax + binary_crossentropy on an output named LONG_NAME (an MA201 with a long location)."""
    import keras
    from keras import layers

    x = keras.Input((6, 8), name="sequence")
    seq, h, c = layers.LSTM(4, return_sequences=True, return_state=True, name="encoder_with_states")(x)
    flat = layers.Flatten(name="flat")(seq)
    branches = [layers.Dense(4, name=f"branch_with_a_rather_long_name_{i}")(flat) for i in range(13)]
    total = layers.Add(name="sum_of_all_branches")(branches)
    joined = layers.Concatenate(name="every_branch")(branches + [h, c])
    head = keras.Sequential([keras.Input((4,)), layers.Dense(4, name="inner_dense")], name="nested_head")
    out = layers.Dense(3, activation="softmax", name=LONG_NAME)(layers.Concatenate(name="j")([head(total), joined]))
    model = keras.Model(x, out, name="wide")
    model.compile(optimizer="adam", loss="binary_crossentropy")
    path = tmp_path_factory.mktemp("wide") / "wide.keras"
    model.save(path)
    return model, path


# ---- check -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("width", WIDTHS)
def test_check_lines_fit_the_width(width, wide):
    out = cli("check", "samples", wide[1], "--show-info", columns=width)
    lines = out.splitlines()
    assert len(lines) > 10 and max(len(line) for line in lines) <= width, out
    assert all(line.startswith(("  ", "samples/", str(wide[1]))) for line in lines[:-1]), out
    # the 156-character layer name is cut inside its location, not dropped: its pieces add back up
    ma201 = next(i for i, line in enumerate(lines) if line.startswith(str(wide[1])[:width - 2]))
    assert LONG_NAME in "".join(lines[ma201:ma201 + 4]).replace("  ", "")


@pytest.mark.parametrize("width", WIDTHS)
def test_headline_then_help_with_the_fix(width):
    lines = cli("check", BCE, columns=width).splitlines()
    assert lines[0].startswith("samples/softmax_bce.keras:dense_1: MA201 [error] ")
    help_at = next(i for i, line in enumerate(lines) if line.startswith("  help: "))
    head = [lines[0]] + lines[1:help_at]
    assert all(line.startswith("  ") and not line.startswith("   ") for line in head[1:])
    assert " ".join(line.strip() for line in head) == f"{BCE}:dense_1: MA201 [error] {MA201_PROBLEM}"
    help_lines = [lines[help_at]] + [line for line in lines[help_at + 1:-1]]
    assert all(line.startswith(" " * 8) for line in help_lines[1:])  # aligned under the fix
    assert " ".join(line.strip() for line in help_lines) == f"help: {MA201_FIX}"
    assert lines[-1] == "1 file checked: 1 error, 0 warnings, 0 info"
    assert width == 120 or len(help_lines) > 1  # the fix alone is 111 columns: it wraps below 120


def test_concise_is_the_one_line_layout():
    concise = cli("check", "samples", "--format", "concise", "--show-info", columns=80).splitlines()
    doc = json.loads(cli("check", "samples", "--format", "json"))
    expected = [f"{fr['path']}: {f['layer'] or '-'}: {f['code']} [{f['severity']}] {f['message']}"
                for fr in doc["files"] for f in fr["findings"]]
    assert concise[:-1] == expected and len(expected) >= 5
    assert f"{BCE}: dense_1: MA201 [error] {MA201_PROBLEM}; {MA201_FIX}" in concise
    assert concise[-1] == cli("check", "samples", "--show-info", columns=80).splitlines()[-1]
    quiet = cli("check", BCE, "--format", "concise", "-q").splitlines()
    assert quiet == [f"{BCE}: dense_1: MA201 [error] {MA201_PROBLEM}; {MA201_FIX}"]


def test_json_message_unchanged_and_fix_present():
    doc = json.loads(cli("check", "samples", "--format", "json"))
    findings = [f for fr in doc["files"] for f in fr["findings"]]
    assert findings and all("fix" in f for f in findings)
    for f in findings:
        assert f["fix"] is None or f["message"].endswith("; " + f["fix"]), f
    ma201 = next(f for f in findings if f["code"] == "MA201")
    assert ma201["message"] == f"{MA201_PROBLEM}; {MA201_FIX}" and ma201["fix"] == MA201_FIX
    assert list(ma201) == ["code", "name", "severity", "layer", "message", "fix", "url"]


def test_colour_takes_no_columns(monkeypatch):
    import modelaudit
    from modelaudit.report import render

    monkeypatch.setenv("COLUMNS", "80")
    report = modelaudit.audit(os.path.join(ROOT, BCE))
    coloured = render(report, "text", color=True)
    assert "\033[31m[error]\033[0m" in coloured.splitlines()[0]
    plain = re.sub(r"\033\[\d+m", "", coloured)
    assert plain == render(report, "text") and max(len(line) for line in plain.splitlines()) <= 80


@pytest.mark.parametrize("columns, width", [("90", 90), ("abc", 100), ("0", 100), ("", 100), ("30", 60),
                                            (None, 100)])
def test_width_from_columns_else_100_at_least_60(columns, width, monkeypatch):
    from modelaudit.report.text import terminal_width

    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)

    class Pipe:
        def isatty(self):
            return False

    assert terminal_width(Pipe()) == width


# ---- summary ---------------------------------------------------------------------------------------


def table_rows(out: str) -> list[list[str]]:
    """The summary table's body lines split into cells (the box characters dropped)."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("├"))
    end = next(i for i, line in enumerate(lines) if line.startswith("└─"))
    return [[cell.strip() for cell in line.strip("│").split("│")] for line in lines[start + 1:end]]


def rows_by_layer(rows: list[list[str]]) -> list[list[list[str]]]:
    """Each table row's lines: a row starts where its Param # cell is filled."""
    out: list = []
    for cells in rows:
        if cells[2]:
            out.append([])
        out[-1].append(cells)
    return out


def keras_rows(model) -> list[str]:
    """`name(Class)` of every row the summary shows, in its order: a nested model's layers after it."""
    out = []
    for layer in model.layers:
        out.append(f"{layer.name}({type(layer).__name__})")
        if hasattr(layer, "layers"):
            out.extend(f"{inner.name}({type(inner).__name__})" for inner in layer.layers)
    return out


def shows(label_lines: list[str], full: str) -> bool:
    """The wrapped, maybe abbreviated label is `full`: its pieces between "…" appear in order, the
    first at the start and the last at the end."""
    label = "".join(label_lines).replace(" ", "").lstrip("└")
    parts = label.split("…")
    if len(parts) == 1:
        return label == full
    at = 0
    for part in parts:
        found = full.find(part, at)
        if found < 0:
            return False
        at = found + len(part)
    return full.startswith(parts[0]) and full.endswith(parts[-1])


@pytest.mark.parametrize("width", WIDTHS)
def test_resnet50_summary_fits_and_loses_no_row(width, resnet):
    model, path = resnet
    out = cli("summary", path, columns=width)
    assert max(len(line) for line in out.splitlines()) <= width
    layers = rows_by_layer(table_rows(out))
    names = keras_rows(model)
    assert len(layers) == len(names) == 177
    assert all(shows([c[0] for c in lines], name) for lines, name in zip(layers, names))
    assert sum(int(lines[0][2].replace(",", "")) for lines in layers) == model.count_params()
    adds = [lines for lines, name in zip(layers, names) if name.endswith("(Add)")]
    assert len(adds) == 16 and all(sum(c[3].count("[0][0]") for c in lines) == 2 for lines in adds)


def test_resnet50_summary_unchanged_where_it_fits(resnet):
    out = cli("summary", resnet[1], columns=200)
    assert "│ conv2_block1_add (Add)" in out and "│ conv2_block1_0_bn[0][0], conv2_block1_3_bn[0][0] │" in out
    assert max(len(line) for line in out.splitlines()) < 200


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("formulas", [(), ("--formulas",)], ids=["plain", "formulas"])
def test_wide_summary_fits_with_every_layer(width, formulas, wide):
    model, path = wide
    out = cli("summary", path, *formulas, columns=width)
    assert max(len(line) for line in out.splitlines()) <= width, out
    layers = rows_by_layer(table_rows(out))
    names = keras_rows(model)
    assert len(layers) == len(names)
    assert all(shows([c[0] for c in lines], name) for lines, name in zip(layers, names)), out
    rows = dict(zip([n.split("(")[0] for n in names], layers))
    assert sum(int(lines[0][2].replace(",", "")) for name, lines in rows.items()
               if name != "inner_dense") == model.count_params()
    for name in ("sum_of_all_branches", "every_branch"):
        cell = " ".join(c[3] for c in rows[name])
        shown = len([entry for entry in cell.split(", ") if not entry.startswith(("…", "+"))])
        more = re.search(r"\+(\d+)", cell)
        assert shown + (int(more.group(1)) if more else 0) == len(model.get_layer(name).input), cell
        assert width == 120 or more  # 13 or 15 inputs never fit in three lines below 120
    shapes = "".join(c[1] for c in rows["encoder_with_states"]).replace(" ", "")
    for tensor in model.get_layer("encoder_with_states").output:
        assert str(tuple(tensor.shape)).replace(" ", "") in shapes
    assert "…" in "".join(c[0] for c in rows[LONG_NAME])  # shortened in the middle, the class kept
    assert rows["inner_dense"][0][0].startswith("└ ")


def test_past_the_per_rule_cap_the_count_finding_has_no_fix(tmp_path):
    """1,001 Dropout(0) layers: MA310 lists 1,000 (each with its fix), then one finding that counts
    the rest; that one says no fix of its own, and the text output shows it as a headline alone.
    The layers sit side by side, not in a chain: Keras builds a 1,001-deep graph recursively, past
    Python's default recursion limit."""
    import keras

    import modelaudit
    from modelaudit.engine import MAX_FINDINGS_PER_RULE
    from modelaudit.report import render

    n = MAX_FINDINGS_PER_RULE + 1
    inputs = keras.Input((4,))
    dropped = [keras.layers.Dropout(0.0)(inputs) for _ in range(n)]
    model = keras.Model(inputs, keras.layers.Concatenate()(dropped))
    path = tmp_path / "dropouts.json"
    path.write_text(model.to_json(), encoding="utf-8")
    report = modelaudit.audit(str(path), {"select": ["MA310"]})
    found = report.findings
    assert sum(type(layer).__name__ == "Dropout" for layer in model.layers) == n
    assert len(found) == MAX_FINDINGS_PER_RULE + 1
    assert all(f.fix == "remove it, or set the rate you meant" for f in found[:-1] if f.layer)
    counted = next(f for f in found if f.layer is None)
    assert counted.fix is None and counted.message.startswith("and 1 more MA310 findings in this file")
    text = render(report, "text", show_info=True).splitlines()
    assert sum(1 for line in text if line.startswith("  help: ")) == MAX_FINDINGS_PER_RULE


@pytest.mark.parametrize("width, first, rest", [(6, "", "      "), (6, "", "        "), (4, "  └ ", "    "), (1, "", "")])
def test_wrap_ends_and_keeps_every_character_when_the_indent_fills_the_line(width, first, rest):
    """An indent as wide as the line (a layer nested deeper than its column is wide) once made wrap()
    cut nothing per pass and loop forever (found by the fuzzer)."""
    from modelaudit.report.text import wrap

    words = ["conv2d_transpose_17", "(Conv2DTranspose)", "x"]
    lines = wrap(words, width, first, rest)
    assert "".join(lines).replace(" ", "").replace("└", "") == "".join(words)
    assert len(lines) <= len("".join(words)) + len(words) + 1
