"""`modelaudit textconv PATH`: stable text for git's diff driver, and a real `git diff` through it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from modelaudit.cli import app
from tests.review_models import review  # noqa: F401  (the session fixture)


def textconv(path):
    result = CliRunner().invoke(app, ["textconv", str(path)])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_the_text_names_every_layer_with_keras_own_counts(review):
    base = review["base"]
    text = textconv(base.path)
    for path in ("conv", "flat", "drop", "out"):
        line = next(line for line in text.splitlines() if line.startswith(f"{path} ("))
        shape = "(" + ", ".join(str(d) for d in base.shapes[path][0]) + ")"
        assert f" -> {shape}, {base.params[path]:,} params" in line
    assert "    units: 10" in text and "    activation: softmax" in text and "    kernel_size: [3, 3]" in text
    assert f"    total params: {base.total:,}" in text
    assert "    loss: categorical_crossentropy" in text and "    optimizer: Adam" in text
    assert "findings: 0" in text


def test_the_text_is_stable_no_path_no_colour_no_size(review, tmp_path):
    """The same architecture retrained (other weights, other bytes) and copied elsewhere reads the same."""
    bce, retrained = review["bce"], review["bce_retrained"]
    with open(bce.path, "rb") as a, open(retrained.path, "rb") as b:
        assert a.read() != b.read()
    elsewhere = tmp_path / "x" / "copy.keras"
    elsewhere.parent.mkdir()
    shutil.copy(retrained.path, elsewhere)
    text = textconv(bce.path)
    assert textconv(elsewhere) == text == textconv(retrained.path)
    assert "MA201 [error] out: " in text
    for absent in (str(tmp_path), os.path.dirname(bce.path), "bce.keras", "\x1b", str(os.path.getsize(bce.path))):
        assert absent not in text


def test_an_unreadable_file_prints_why_and_exits_0(tmp_path):
    junk = tmp_path / "junk.keras"
    junk.write_bytes(b"\x00" * 64)
    assert textconv(junk).startswith("modelaudit: cannot read: ")


GIT_ID = ["-c", "user.name=modelaudit tests", "-c", "user.email=tests@example.invalid"]


def git(repo, *args):
    return subprocess.run(["git", *GIT_ID, *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def test_git_diff_through_the_textconv_driver(review, tmp_path):
    """The README's two lines, then a real `git diff` of a model changed in the work tree."""
    git(tmp_path, "init", "-q")
    (tmp_path / ".gitattributes").write_text("*.keras diff=modelaudit\n")
    git(tmp_path, "config", "diff.modelaudit.textconv", f'"{sys.executable}" -m modelaudit textconv')
    shutil.copy(review["base"].path, tmp_path / "net.keras")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "net")
    shutil.copy(review["changed"].path, tmp_path / "net.keras")
    out = git(tmp_path, "diff", "--no-color", "net.keras")
    changed = review["changed"]
    assert "Binary files" not in out
    assert "-    units: 10\n" in out and "+    units: 1\n" in out
    assert "-    activation: softmax\n" in out and "+    activation: sigmoid\n" in out
    assert "-    kernel_size: [3, 3]\n" in out and "+    kernel_size: [5, 5]\n" in out
    assert f"+hidden (Dense) -> (None, 16), {changed.params['hidden']:,} params" in out
    assert "\n-drop (Dropout) -> " in out
    assert "-    loss: categorical_crossentropy\n" in out and "+    loss: binary_crossentropy\n" in out
    assert str(tmp_path) not in out and "/tmp" not in out
    # a hunk's header names the layer the change is in (git's default: the last line in column 0)
    assert any(line.startswith("@@ ") and (" out (Dense) -> " in line or " conv (Conv2D) -> " in line)
               for line in out.splitlines())
    # and the committed side, as `git show` renders it
    shown = git(tmp_path, "show", "--no-color", "HEAD")
    assert "+    units: 10\n" in shown and "Binary files" not in shown
