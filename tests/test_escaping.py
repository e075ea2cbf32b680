"""Names from a file cannot steer the terminal or CI (issue 15, item 4): a real Keras model whose layer
name holds a newline and a workflow command, an ANSI escape, a right-to-left override, a table pipe
and a backtick, checked through the real command line in every human-read format."""

from __future__ import annotations

import subprocess
import sys

import pytest

HOSTILE = "x\n::error::pwn\x1b[31m\u202e|`"
RAW = ("\x1b", "\u202e", "\n::error::pwn", "\r")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    import keras

    path = tmp_path_factory.mktemp("escaping") / "hostile_name.keras"
    m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax", name=HOSTILE)])
    m.compile(loss="binary_crossentropy")  # MA201 on that layer: its name is quoted in the message
    m.save(path)
    return str(path)


def _run(*args):
    return subprocess.run([sys.executable, "-m", "modelaudit.cli", *args], capture_output=True, text=True)


@pytest.mark.parametrize("fmt", ["text", "markdown", "github"])
def test_control_and_bidi_characters_are_shown_escaped(model, fmt):
    out = _run("check", model, "--format", fmt)
    assert out.returncode == 1, out.stderr
    assert "MA201" in out.stdout
    for raw in RAW:
        assert raw not in out.stdout, f"{raw!r} reached the {fmt} output"
    assert "\\x1b[31m" in out.stdout and "\\u202e" in out.stdout
    assert ("%0A::error::pwn" if fmt == "github" else "\\n::error::pwn") in out.stdout
    if fmt == "github":
        # every line is one workflow command: no line of the output starts one of the file's making
        assert all(line.startswith(("::error ", "::warning ", "::notice ")) for line in out.stdout.splitlines())


def test_markdown_escapes_pipes_and_backticks(model):
    out = _run("check", model, "--format", "markdown").stdout
    rows = [line for line in out.splitlines() if "MA201" in line]
    assert len(rows) == 1
    # four cells: severity, rule, layer, message; the name's pipe is escaped wherever it appears
    assert rows[0].replace("\\|", "").count("|") == 5
    message = rows[0].split(" | ")[-1]
    assert "\\`" in message and "`" not in message.replace("\\`", "")


def test_summary_shows_names_escaped(model):
    for fmt in ("text", "markdown"):
        out = _run("summary", model, "--format", fmt)
        assert out.returncode == 0, out.stderr
        for raw in RAW:
            assert raw not in out.stdout
        assert "\\u202e" in out.stdout


def test_unreadable_file_name_is_shown_escaped(tmp_path):
    bad = tmp_path / "bad\x1b[2Jname.keras"
    bad.write_bytes(b"not a model")
    out = _run("check", str(bad))
    assert out.returncode == 2
    assert "\x1b" not in out.stderr and "bad\\x1b[2Jname.keras: cannot read:" in out.stderr
