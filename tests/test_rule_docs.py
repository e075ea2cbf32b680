"""Every registered rule has its page in rules/, with the same sections every time, and the page's
own Example builds a real model that triggers the rule while its Use instead does not.

A page's code blocks run here (in the test, never in the tool) with `keras`, `tf_keras`, `np`,
`h5py`, `json`, `zipfile`, `shutil`, `os` and `tmp_dir` in scope. A block defines `model` (saved as
.keras, or as .h5 for a tf_keras model) or writes a file and sets `path`; it may set `config`
(a dict like [tool.modelaudit]) for the audit.
"""

from __future__ import annotations

import os
import re

import pytest

from modelaudit import rule_docs
from modelaudit.engine import all_rules

RULES = all_rules()
TITLE = re.compile(r"^# (MA\d{3}) ([a-z0-9-]+) \((error|warning|info)\)$")


def _page(code):
    path = rule_docs.page_path(code)
    assert path.is_file(), f"{code} has no page at rules/{code}.md"
    return path.read_text(encoding="utf-8")


def _section(text: str, heading: str) -> str:
    start = text.index(heading) + len(heading)
    nxt = text.find("\n## ", start)
    return text[start: nxt if nxt != -1 else len(text)]


def _code(section: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    return "\n".join(blocks)


@pytest.mark.parametrize("code", list(RULES))
def test_page_has_every_section(code):
    text = _page(code)
    first = text.splitlines()[0]
    match = TITLE.match(first)
    assert match, f"rules/{code}.md: first line must be '# {code} <name> (<severity>)', not {first!r}"
    rule = RULES[code]
    assert match.groups() == (code, rule.name, rule.severity.value)
    positions = [text.find(s) for s in rule_docs.SECTIONS]
    assert all(p >= 0 for p in positions), f"rules/{code}.md lacks {[s for s, p in zip(rule_docs.SECTIONS, positions) if p < 0]}"
    assert positions == sorted(positions), f"rules/{code}.md: sections out of order"
    for heading in rule_docs.SECTIONS:
        assert _section(text, heading).strip(), f"rules/{code}.md: {heading} is empty"


def _run_block(source: str, tmp_path, tag: str):
    import h5py
    import json
    import shutil
    import zipfile

    import keras
    import numpy as np
    import tf_keras

    folder = tmp_path / tag
    folder.mkdir()
    scope = {"keras": keras, "tf_keras": tf_keras, "np": np, "h5py": h5py, "json": json,
             "zipfile": zipfile, "shutil": shutil, "os": os, "tmp_dir": str(folder)}
    exec(compile(source, f"<rules page {tag}>", "exec"), scope)  # the page's example, run by the test
    config = scope.get("config")
    if "path" in scope:
        return scope["path"], config
    model = scope["model"]
    if type(model).__module__.startswith("tf_keras"):
        path = str(folder / "model.h5")
        model.save(path, save_format="h5")
    else:
        path = str(folder / "model.keras")
        keras.saving.save_model(model, path)
    return path, config


@pytest.mark.parametrize("code", list(RULES))
def test_example_triggers_and_fix_does_not(code, tmp_path):
    import modelaudit

    text = _page(code)
    bad = _code(_section(text, "## Example"))
    good = _code(_section(text, "## Use instead"))
    assert bad, f"rules/{code}.md: Example has no ```python block"
    assert good, f"rules/{code}.md: Use instead has no ```python block"
    path, config = _run_block(bad, tmp_path, "bad")
    codes = [f.code for f in modelaudit.audit(path, config).findings]
    assert code in codes, f"rules/{code}.md: the Example does not trigger {code} (found {codes})"
    path, config = _run_block(good, tmp_path, "good")
    report = modelaudit.audit(path, config)
    assert not report.files[0].error, report.files[0].error
    codes = [f.code for f in report.findings]
    assert code not in codes, f"rules/{code}.md: the Use instead still triggers {code}"


def test_explain_prints_the_page():
    from typer.testing import CliRunner

    from modelaudit.cli import app

    result = CliRunner().invoke(app, ["explain", "MA101"])
    assert result.exit_code == 0
    assert result.output.startswith("# MA101 weight-shape-mismatch (error)")
    by_name = CliRunner().invoke(app, ["explain", "weight-shape-mismatch"])
    assert by_name.output == result.output
    unknown = CliRunner().invoke(app, ["explain", "MA999"])
    assert unknown.exit_code == 2
