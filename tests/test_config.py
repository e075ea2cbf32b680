"""[tool.modelaudit]: where it is found, what overrides what, and that every unknown key or bad value
is refused with exit 2 and a message naming it."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelaudit import config as config_mod
from modelaudit import engine
from modelaudit.cli import app
from modelaudit.errors import ConfigError
from tests import integration_models as im

README = Path(__file__).resolve().parents[1] / "README.md"


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("config_models")
    good = im.save_classifier(folder / "good.keras")
    return {"good": good, "broken": im.broken_copy(good, folder / "broken.keras")}


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def codes(result) -> list[str]:
    return re.findall(r": (MA\d{3}) \[", result.stdout)


# --- finding the file -------------------------------------------------------------------------

def test_nearest_pyproject_with_the_table_wins(tmp_path, monkeypatch):
    write(tmp_path / "pyproject.toml", """
        [tool.modelaudit]
        ignore = ["MA101"]
    """)
    write(tmp_path / "sub" / "pyproject.toml", "[project]\nname = 'sub'\n")  # no table: does not hide the parent
    (tmp_path / "sub" / "deeper").mkdir()
    monkeypatch.chdir(tmp_path / "sub" / "deeper")
    settings, path = config_mod.load()
    assert path == str(tmp_path / "pyproject.toml")
    assert settings.ignore == ["MA101"] and settings.root == str(tmp_path)


def test_no_config_anywhere_gives_the_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(config_mod, "find_pyproject", lambda start=".": None)
    settings, path = config_mod.load()
    assert path is None and settings == engine.Settings()


def test_config_flag_overrides_discovery(tmp_path, monkeypatch, models):
    write(tmp_path / "pyproject.toml", "[tool.modelaudit]\nignore = ['MA101']\n")
    other = write(tmp_path / "ci" / "modelaudit.toml", "select = ['MA101']\nfail-on = 'error'\n")  # keys at top level
    monkeypatch.chdir(tmp_path)
    assert run("check", models["broken"]).exit_code == 0  # the pyproject ignores MA101
    result = run("check", models["broken"], "--config", other)
    assert result.exit_code == 1 and set(codes(result)) == {"MA101"}


# --- precedence -------------------------------------------------------------------------------

def test_command_line_flags_override_the_file(tmp_path, monkeypatch, models):
    write(tmp_path / "pyproject.toml", """
        [tool.modelaudit]
        select = ["MA5"]
        fail-on = "error"
        [tool.modelaudit.severity]
        MA101 = "warning"
    """)
    monkeypatch.chdir(tmp_path)
    broken = models["broken"]
    assert run("check", broken).exit_code == 0  # the file selects only the policy rules
    flagged = run("check", broken, "--select", "MA101")
    assert set(codes(flagged)) == {"MA101"} and "[warning]" in flagged.stdout
    assert flagged.exit_code == 0  # the file's severity (warning) is below its fail-on (error)
    assert run("check", broken, "--select", "MA101", "--fail-on", "warning").exit_code == 1
    assert run("check", broken, "--select", "MA101", "--ignore", "MA1").exit_code == 0


def test_extend_select_and_ignore_add_up(tmp_path, monkeypatch, models):
    write(tmp_path / "pyproject.toml", """
        [tool.modelaudit]
        select = ["MA107"]
        extend-select = ["weight-shape-mismatch"]
    """)
    monkeypatch.chdir(tmp_path)
    assert set(codes(run("check", models["broken"]))) == {"MA101"}
    assert codes(run("check", models["broken"], "--ignore", "MA101")) == []


def test_per_file_ignores_globs_relative_to_the_config(tmp_path, monkeypatch, models):
    import shutil

    legacy = tmp_path / "models" / "legacy" / "old.keras"
    legacy.parent.mkdir(parents=True)
    shutil.copy(models["broken"], legacy)
    shutil.copy(models["broken"], tmp_path / "models" / "new.keras")
    write(tmp_path / "pyproject.toml", """
        [tool.modelaudit]
        select = ["MA1"]
        [tool.modelaudit.per-file-ignores]
        "models/legacy/*" = ["MA101"]
    """)
    monkeypatch.chdir(tmp_path / "models")  # run from below the config: globs still hold
    result = run("check", ".")
    assert "new.keras:probs: MA101" in result.stdout and "old.keras" not in result.stdout


def test_severity_prefix_and_code(tmp_path):
    settings = config_mod.settings_from_table({"severity": {"MA101": "info", "MA1": "warning"}})
    assert settings.severity["MA101"] == "info"  # the code wins over the prefix, whatever the order
    assert settings.severity["MA102"] == "warning"


def test_rule_options_are_typed(monkeypatch):
    class Tunable(engine.Rule):
        code, name, severity = "MA199", "tunable", engine.Severity.WARNING
        options = {"threshold": 0.5, "enabled_for": ["Dense"]}

    monkeypatch.setitem(engine.RULES, "MA199", Tunable)
    settings = config_mod.settings_from_table({"rules": {"tunable": {"threshold": 1, "enabled-for": ["Conv2D"]}}})
    assert settings.instantiate("MA199").opts == {"threshold": 1, "enabled_for": ["Conv2D"]}
    with pytest.raises(ConfigError, match=r"rules\.tunable\.threshold must be a float"):
        config_mod.settings_from_table({"rules": {"tunable": {"threshold": "high"}}})
    with pytest.raises(ConfigError, match=r"has no option 'treshold' \(its options: threshold, enabled-for\)"):
        config_mod.settings_from_table({"rules": {"MA199": {"treshold": 1}}})


# --- refusal ----------------------------------------------------------------------------------

REFUSED = [
    ("selct = ['MA1']", "unknown key 'selct' in [tool.modelaudit] (did you mean 'select'?)"),
    ("select = ['MA999']", "select: unknown rule code or name: 'MA999'"),
    ("ignore = 'not-a-rule'", "ignore: unknown rule code or name: 'not-a-rule'"),
    ("select = 3", "select must be a list of rule codes"),
    ("fail-on = 'sometimes'", "fail-on must be error, warning or info, not 'sometimes'"),
    ("[tool.modelaudit.severity]\nMA101 = 'fatal'", "severity.MA101 must be error, warning or info, not 'fatal'"),
    ("[tool.modelaudit.per-file-ignores]\n'*.h5' = ['MA9']", "unknown rule code or name: 'MA9'"),
    ("[tool.modelaudit.rules.weight-shape-mismatch]\nstrict = true", "rule MA101 (weight-shape-mismatch) has no option 'strict'"),
    ("[tool.modelaudit.rules.MA1]\nx = 1", "rules.MA1 must name one rule"),
    ("[tool.modelaudit.policy]\nmax-param = 10", "unknown key 'max-param' in [tool.modelaudit.policy] (did you mean 'max-params'?)"),
    ("[tool.modelaudit.policy]\nmax-params = '1M'", "policy.max-params: must be a whole number of params"),
    ("[tool.modelaudit.policy]\nmax-file-mb = 0", "policy.max-file-mb: must be a positive number"),
    ("[tool.modelaudit.policy]\nrequire-compiled = 'yes'", "policy.require-compiled: must be true or false"),
    ("[tool.modelaudit.policy]\nforbid-layers = [1]", "policy.forbid-layers: must be a list of layer class names"),
    ("[tool.modelaudit.policy]\ninputs = [{shape = [28, 'x']}]", "inputs[0].shape: a dimension is a size"),
    ("[tool.modelaudit.policy]\noutputs = [{activation = 'softmx'}]", "unknown activation 'softmx'"),
    ("[tool.modelaudit.policy]\noutputs = [{units = 3}]", "outputs[0]: unknown key 'units'"),
    ("[tool.modelaudit.policy.inputs.image]\nshape = [1]\nbatch-shape = [1, 1]", "give shape (per sample) or batch-shape, not both"),
    ("[tool.modelaudit\n", "invalid TOML"),
]


@pytest.mark.parametrize("body,message", REFUSED, ids=[m[:40] for _, m in REFUSED])
def test_bad_configuration_is_refused_with_exit_2(body, message, tmp_path, monkeypatch, models):
    if not body.startswith("[tool.modelaudit"):
        body = "[tool.modelaudit]\n" + body
    path = write(tmp_path / "pyproject.toml", body + "\n")
    monkeypatch.chdir(tmp_path)
    result = run("check", models["good"])
    assert result.exit_code == 2
    assert message in result.stderr
    assert str(path) in result.stderr  # which file
    assert result.stdout == ""  # nothing was checked
    assert run("check", models["good"], "--config", path).exit_code == 2


def test_bad_flags_are_refused_with_exit_2(models):
    for args in (["--select", "MA999"], ["--ignore", "nope"], ["--fail-on", "never"], ["--config", "/nonexistent.toml"]):
        result = run("check", models["good"], *args)
        assert result.exit_code == 2 and "modelaudit: error:" in result.stderr, args


def test_python_api_refuses_the_same_way(models):
    import modelaudit

    with pytest.raises(ConfigError, match="unknown key 'fail_on'"):
        modelaudit.audit(models["good"], {"fail_on": "error"})


# --- the README's configuration reference is a configuration that loads -----------------------

def test_readme_configuration_reference_loads(tmp_path):
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Integrations"):]
    blocks = re.findall(r"```toml\n(.*?)```", section, flags=re.S)
    assert blocks, "README's Integrations section has no ```toml example"
    for block in blocks:
        path = write(tmp_path / "pyproject.toml", block)
        settings, _ = config_mod.load(str(path))
        settings.enabled_codes()
    reference = max(blocks, key=len)
    for key in config_mod.KEYS:
        assert key in reference, f"the README's configuration reference does not show {key}"
    from modelaudit.checks.policy import POLICY_KEYS

    for key in POLICY_KEYS:
        assert key in reference, f"the README's configuration reference does not show policy key {key}"
