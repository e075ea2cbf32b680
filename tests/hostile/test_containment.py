"""Containment: a bug that still escapes a rule is reported as `PATH: internal error in RULE: ...
(please report)` on stderr, the run exits 2, and every other rule and every other file is still
checked and reported — one broken rule never hides the other findings.

The rule is forced to raise: a temporary rule registered for the test, and a real rule whose check
is replaced by one that raises.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelaudit import engine
from modelaudit.api import audit
from modelaudit.cli import app

ROOT = Path(__file__).resolve().parents[2]
BCE = ROOT / "samples" / "softmax_bce.keras"  # MA201: a softmax output trained with binary cross-entropy
CLEAN = ROOT / "samples" / "mnist_classifier.keras"
H5 = ROOT / "samples" / "mnist_classifier_keras2.h5"
JUNK_REASON = "not a Keras model"


class Boom(engine.Rule):
    """Yields a finding, then raises: nothing it produced may reach the report."""

    code = "MA999"
    name = "boom-rule"
    severity = engine.Severity.ERROR
    summary = "A rule with a bug (tests only)"
    message = "the bug\nspans lines"
    only = None  # the model name it raises on; None: every model

    def check(self, model):
        yield self.finding(None, "half-way")
        if self.only is None or model.graph.name == self.only:
            raise RuntimeError(self.message)


@pytest.fixture
def boom(monkeypatch):
    engine.all_rules()  # load the real rules first: Boom joins them, it does not replace them
    monkeypatch.setitem(engine.RULES, Boom.code, Boom)
    monkeypatch.setattr(Boom, "only", None)
    return Boom


def _internal_lines(stderr: str, path) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith(f"{path}: internal error in ")]


def test_a_raising_rule_is_reported_and_the_others_still_run(boom, tmp_path):
    junk = tmp_path / "junk.keras"
    junk.write_bytes(b"\x07" * 64)
    runner = CliRunner()
    result = runner.invoke(app, ["check", "--show-info", str(BCE), str(junk), str(CLEAN)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    assert "Traceback" not in result.output
    assert result.exit_code == 2, (result.stdout, result.stderr)

    # one line per file the rule broke on, in the contract's shape, the message kept on one line
    lines = result.stderr.splitlines()
    for path in (BCE, CLEAN):
        found = _internal_lines(result.stderr, path)
        assert len(found) == 1, result.stderr
        assert found[0] == (f"{path}: internal error in MA999 boom-rule: RuntimeError: the bug\\nspans lines "
                            "(please report)")
    # the unreadable file in between: its one line, and nothing else on stderr
    assert [ln for ln in lines if ln.startswith(f"{junk}: ")] == [
        next(ln for ln in lines if ln.startswith(f"{junk}: cannot read: "))
    ]
    assert len(lines) == 3, result.stderr

    # the other rules' findings are all there; nothing the broken rule yielded is
    assert "MA201" in result.stdout
    assert "MA999" not in result.stdout and "half-way" not in result.stdout


def test_every_format_reports_the_internal_error(boom):
    runner = CliRunner()
    result = runner.invoke(app, ["check", "--format", "json", str(BCE), str(CLEAN)])
    assert result.exit_code == 2
    doc = json.loads(result.stdout)
    by_path = {f["path"]: f for f in doc["files"]}
    entry = by_path[str(BCE)]
    # the file was read: stats and the other rules' findings are there ...
    assert entry["stats"]["total_params"] > 0
    assert [f["code"] for f in entry["findings"]] == ["MA201"]
    # ... and the audit is not complete: `error` (one line) says why, `internal_errors` lists it
    assert entry["error"].startswith("internal error in MA999 boom-rule: RuntimeError:")
    assert "\n" not in entry["error"]
    assert entry["internal_errors"] == [entry["error"]]
    assert doc["counts"]["error"] == 1

    result = runner.invoke(app, ["check", "--format", "sarif", str(BCE)])
    assert result.exit_code == 2
    run = json.loads(result.stdout)["runs"][0]
    assert run["invocations"][0]["executionSuccessful"] is False
    notes = [n["message"]["text"] for n in run["invocations"][0]["toolExecutionNotifications"]]
    assert any("internal error in MA999 boom-rule" in n for n in notes), notes
    assert [r["ruleId"] for r in run["results"]] == ["MA201"]

    for fmt, marker in (("github", "internal error in MA999"), ("gitlab", "internal error in MA999"),
                        ("markdown", "internal error in MA999")):
        result = runner.invoke(app, ["check", "--format", fmt, str(BCE)])
        assert result.exit_code == 2, fmt
        assert marker in result.stdout, (fmt, result.stdout)
        assert "Traceback" not in result.output


def test_exit_zero_does_not_hide_a_broken_rule(boom):
    result = CliRunner().invoke(app, ["check", "--exit-zero", str(CLEAN)])
    assert result.exit_code == 2
    assert len(_internal_lines(result.stderr, CLEAN)) == 1


def test_only_the_file_it_breaks_on_is_affected(boom):
    boom.only = "softmax_bce"  # the model's name inside the file
    result = CliRunner().invoke(app, ["check", "--format", "json", str(BCE), str(CLEAN), str(H5)])
    assert result.exit_code == 2
    assert len(_internal_lines(result.stderr, BCE)) == 1
    assert not _internal_lines(result.stderr, CLEAN) and not _internal_lines(result.stderr, H5)
    by_path = {f["path"]: f for f in json.loads(result.stdout)["files"]}
    for clean in (CLEAN, H5):
        assert by_path[str(clean)]["error"] is None and by_path[str(clean)]["internal_errors"] == []
        assert by_path[str(clean)]["stats"]["total_params"] > 0


@pytest.mark.parametrize("exc", [KeyError("layer"), RecursionError("deep"), MemoryError(), ZeroDivisionError(),
                                 AttributeError("NoneType has no attribute shape"), ValueError("")])
def test_any_exception_from_a_real_rule_is_contained(exc, monkeypatch):
    """A real registered rule (MA201, which fires on this sample) made to raise: contained, and the
    rest of the report is the same as without it."""
    rules = engine.all_rules()
    cls = rules["MA201"]
    baseline = audit(str(BCE))
    assert [f.code for f in baseline.findings] == ["MA201"]
    other = [c for c in rules if c != "MA201"]

    def broken(self, model):
        raise exc

    monkeypatch.setattr(cls, "check", broken)
    report = audit(str(BCE))
    fr = report.files[0]
    assert fr.error is None
    assert len(fr.internal_errors) == 1
    text = fr.internal_errors[0]
    assert text.startswith(f"internal error in MA201 {cls.name}: {type(exc).__name__}") and text.endswith("(please report)")
    assert "\n" not in text
    assert report.exit_code() == 2 and report.unreadable and not report.ok
    assert fr.stats == baseline.files[0].stats
    assert [f.code for f in fr.findings] == [f.code for f in baseline.findings if f.code in other]

    result = CliRunner().invoke(app, ["check", str(BCE)])
    assert result.exit_code == 2
    assert _internal_lines(result.stderr, BCE) == [f"{BCE}: {text}"]


def test_every_rule_raising_still_gives_one_report(monkeypatch):
    """Every rule broken at once: each is one line, the files are still listed with their stats."""
    rules = engine.all_rules()

    def broken(self, model):
        raise RuntimeError(f"{self.code} broke")

    for cls in {cls for cls in rules.values()}:
        monkeypatch.setattr(cls, "check", broken)
    result = CliRunner().invoke(app, ["check", "--format", "json", str(BCE), str(H5)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    enabled = engine.Settings().enabled_codes()
    for path in (BCE, H5):
        lines = _internal_lines(result.stderr, path)
        assert len(lines) == len(enabled), result.stderr
    doc = json.loads(result.stdout)
    for entry in doc["files"]:
        assert entry["findings"] == [] and entry["stats"]["total_params"] > 0
        assert len(entry["internal_errors"]) == len(enabled)
        assert entry["error"].endswith(f"(and {len(enabled) - 1} more internal errors)")
