"""The Python API — modelaudit.audit(path or keras.Model, config=...) -> Report, and assert_clean for
test suites — and `check --factory`, which audits a model built by the user's own code."""

from __future__ import annotations

import sys
import textwrap

import pytest
from typer.testing import CliRunner

import modelaudit
from modelaudit.cli import app
from modelaudit.engine import Settings
from tests import integration_models as im

TOO_BIG = {"select": ["MA1", "MA5"], "policy": {"max-params": 10}}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("api")
    good = im.save_classifier(folder / "good.keras")
    return {"folder": folder, "good": good, "broken": im.broken_copy(good, folder / "broken.keras")}


def test_audit_a_file(files):
    report = modelaudit.audit(files["good"])
    assert isinstance(report, modelaudit.Report)
    assert report.ok and report.exit_code() == 0
    assert report.stats == {"files": 1, "layers": 2, "total_params": 51, "trainable_params": 51,
                            "non_trainable_params": 0}
    broken = modelaudit.audit(files["broken"])
    assert not broken.ok and broken.exit_code() == 1
    finding = next(f for f in broken.findings if f.code == "MA101")
    assert isinstance(finding, modelaudit.Finding)
    assert (finding.name, finding.severity, finding.layer) == ("weight-shape-mismatch", modelaudit.Severity.ERROR, "probs")
    assert finding.path == files["broken"] and finding.url.endswith("/rules/MA101.md")


def test_audit_a_folder_or_a_list(files):
    by_folder = modelaudit.audit(files["folder"])
    by_list = modelaudit.audit([files["good"], files["broken"]])
    assert sorted(fr.path for fr in by_folder.files) == sorted(fr.path for fr in by_list.files)
    assert by_list.stats["files"] == 2 and by_list.stats["total_params"] == 51 + (8 + 1) * 4 + (4 + 1) * 5  # the broken one, recounted
    assert not by_list.ok


def test_nothing_or_unreadable_is_not_ok(tmp_path):
    assert not modelaudit.audit([]).ok
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"\x89HDF\r\n\x1a\n broken")
    report = modelaudit.audit(junk)
    assert not report.ok and report.files[0].error and report.exit_code() == 2


def test_audit_an_in_memory_model():
    report = modelaudit.audit(im.classifier(), TOO_BIG)
    assert [f.code for f in report.findings] == ["MA501"]
    assert report.stats["total_params"] == 51 and not report.ok
    assert report.files[0].format == "live"


def test_config_as_dict_path_or_settings(files, tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text("[tool.modelaudit]\nselect = ['MA5']\n[tool.modelaudit.policy]\nmax-params = 10\n")
    by_dict = modelaudit.audit(files["good"], {"select": ["MA5"], "policy": {"max-params": 10}})
    by_path = modelaudit.audit(files["good"], str(pyproject))
    by_settings = modelaudit.audit(files["good"], Settings(select=["MA5"], policy={"max-params": 10}))
    assert [f.code for f in by_dict.findings] == [f.code for f in by_path.findings] == \
        [f.code for f in by_settings.findings] == ["MA501"]
    with pytest.raises(TypeError):
        modelaudit.audit(files["good"], 42)


def test_assert_clean_passes_a_clean_model_and_returns_the_report():
    report = modelaudit.assert_clean(im.classifier(), {"select": ["MA1", "MA5"], "policy": {"max-params": 100}})
    assert report.ok


def test_assert_clean_fails_a_test_with_a_readable_message(files):
    with pytest.raises(AssertionError) as excinfo:
        modelaudit.assert_clean(files["broken"], {"select": ["MA101"]})
    assert isinstance(excinfo.value, modelaudit.ModelAuditError)
    lines = str(excinfo.value).splitlines()
    assert lines[0] == "modelaudit found 2 problems (fail-on: warning):"
    assert lines[1].startswith(f"  {files['broken']}: probs: MA101 weight-shape-mismatch [error] Dense 'probs': ")
    assert lines[-1].startswith("`modelaudit explain CODE`")


def test_assert_clean_fail_on_leaves_the_callers_settings_alone():
    settings = Settings(select=["MA5"], policy={"max-params": 10}, severity={"MA501": "warning"})
    model = im.classifier()
    with pytest.raises(AssertionError, match=r"MA501 max-params \[warning\]"):
        modelaudit.assert_clean(model, settings)
    modelaudit.assert_clean(model, settings, fail_on="error")  # a warning does not fail at error
    assert settings.fail_on == modelaudit.Severity.WARNING


# --- check --factory ---------------------------------------------------------------------------

FACTORY = '''
    import keras

    def build_classifier():
        return keras.Sequential([keras.Input((8,)), keras.layers.Dense(3, activation="softmax", name="probs")])

    def not_a_model():
        return "a string"

    def crashes():
        raise RuntimeError("no GPU here")
'''


@pytest.fixture
def factory_module(tmp_path, monkeypatch):
    name = f"ma_factory_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(FACTORY), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    yield name
    sys.modules.pop(name, None)
    while str(tmp_path) in sys.path:
        sys.path.remove(str(tmp_path))


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_factory_builds_and_audits_the_model(factory_module, tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.modelaudit.policy]\nmax-params = 10\n", encoding="utf-8")
    result = run("check", "--factory", f"{factory_module}:build_classifier", "--select", "MA5", "--format", "concise")
    assert result.exit_code == 1, result.output
    # reported under the file that defines the model
    assert result.stdout.startswith(f"{factory_module}.py: -: MA501 [error] the model has 27 params")
    ok = run("check", "--factory", f"{factory_module}:build_classifier", "--select", "MA1")
    assert ok.exit_code == 0 and ok.stdout.strip() == "1 file checked: 0 errors, 0 warnings, 0 info"


@pytest.mark.parametrize("spec,message", [
    ("{m}:not_a_model", "returned a str, not a keras.Model"),
    ("{m}:crashes", "RuntimeError: no GPU here"),
    ("{m}:missing", "AttributeError"),
    ("{m}", "takes package.module:function"),
])
def test_factory_failures_exit_2(spec, message, factory_module):
    result = run("check", "--factory", spec.format(m=factory_module))
    assert result.exit_code == 2 and message in result.stderr


def test_factory_help_says_it_runs_your_code():
    result = run("check", "--help")
    assert "--factory" in result.stdout and "IMPORTS AND CALLS" in " ".join(result.stdout.split())
