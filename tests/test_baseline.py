"""`check --write-baseline FILE` / `--baseline FILE` / the `baseline` config key, on real Keras models in
a git repository: the round trip, a new finding failing, a fixed one listed as resolved, a retrained
model (same architecture, other bytes) still matching, paths relative to the repository's root."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from typer.testing import CliRunner

from modelaudit.cli import app
from tests.review_models import review  # noqa: F401  (the session fixture)


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture
def repo(review, tmp_path, monkeypatch):
    """A git work tree with models/bad.keras (MA201 on `out`) and models/good.keras; the working
    directory is its root."""
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "models").mkdir()
    shutil.copy(review["bce"].path, tmp_path / "models" / "bad.keras")
    shutil.copy(review["base"].path, tmp_path / "models" / "good.keras")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def check_json(*args):
    result = run("check", *args, "--format", "json")
    return json.loads(result.stdout), result.exit_code


def test_round_trip_and_a_new_finding(repo):
    assert run("check", "models").exit_code == 1
    written = run("check", "models", "--write-baseline", "baseline.json")
    assert written.exit_code == 0 and "wrote 1 finding to baseline baseline.json" in written.stderr
    doc = json.loads((repo / "baseline.json").read_text())
    assert doc["schema_version"] == 1
    assert doc["findings"] == [{"code": "MA201", "name": "softmax-with-binary-crossentropy",
                                "path": "models/bad.keras", "layer": "out"}]

    report, code = check_json("models", "--baseline", "baseline.json")
    assert code == 0
    assert report["counts"] == {"error": 0, "warning": 0, "info": 0}
    assert report["baseline"] == {"path": "baseline.json", "matched": 1, "resolved": []}
    text = run("check", "models", "--baseline", "baseline.json")
    assert text.exit_code == 0 and "baseline baseline.json: 1 known finding not shown" in text.stderr

    shutil.copy(repo / "models" / "bad.keras", repo / "models" / "new.keras")  # not in the baseline
    report, code = check_json("models", "--baseline", "baseline.json")
    assert code == 1
    failing = [(fr["path"], f["code"], f["layer"]) for fr in report["files"] for f in fr["findings"]]
    assert failing == [("models/new.keras", "MA201", "out")]


def test_paths_are_relative_to_the_repository_root(repo, monkeypatch):
    run("check", "models", "--write-baseline", "baseline.json")
    monkeypatch.chdir(repo / "models")  # run from a subfolder: the same entries match
    report, code = check_json("bad.keras", "--baseline", "../baseline.json")
    assert code == 0 and report["baseline"]["matched"] == 1


def test_a_fixed_finding_is_resolved(repo, review):
    run("check", "models", "--write-baseline", "baseline.json")
    shutil.copy(review["base"].path, repo / "models" / "bad.keras")  # the loss fixed
    report, code = check_json("models", "--baseline", "baseline.json")
    assert code == 0
    assert report["baseline"]["resolved"] == [{"code": "MA201", "path": "models/bad.keras", "layer": "out"}]
    # a file not checked in this run is not "resolved": its findings were not looked for
    report, _ = check_json("models/good.keras", "--baseline", "baseline.json")
    assert report["baseline"]["resolved"] == []


def test_a_retrained_model_matches_its_baseline(repo, review):
    run("check", "models", "--write-baseline", "baseline.json")
    before = (repo / "models" / "bad.keras").read_bytes()
    shutil.copy(review["bce_retrained"].path, repo / "models" / "bad.keras")
    assert (repo / "models" / "bad.keras").read_bytes() != before
    report, code = check_json("models", "--baseline", "baseline.json")
    assert code == 0 and report["baseline"] == {"path": "baseline.json", "matched": 1, "resolved": []}
    # and writing it again gives the same file: nothing to review after retraining
    first = (repo / "baseline.json").read_text()
    run("check", "models", "--write-baseline", "baseline.json")
    assert (repo / "baseline.json").read_text() == first


def test_the_baseline_config_key(repo):
    (repo / "ci").mkdir()
    run("check", "models", "--write-baseline", "ci/baseline.json")
    (repo / "pyproject.toml").write_text('[tool.modelaudit]\nbaseline = "ci/baseline.json"\n')
    report, code = check_json("models")
    assert code == 0 and report["baseline"]["matched"] == 1
    assert report["baseline"]["path"] == str(repo / "ci" / "baseline.json")  # relative to the config's folder

    (repo / "pyproject.toml").write_text('[tool.modelaudit]\nbaseline-file = "ci/baseline.json"\n')
    result = run("check", "models")
    assert result.exit_code == 2 and "unknown key 'baseline-file'" in result.stderr
    assert "did you mean 'baseline'?" in result.stderr
    (repo / "pyproject.toml").write_text('[tool.modelaudit]\nbaseline = 3\n')
    result = run("check", "models")
    assert result.exit_code == 2 and "baseline must be the path of a baseline file" in result.stderr


def test_a_bad_baseline_file_is_a_one_line_error(repo):
    (repo / "broken.json").write_text("{not json")
    for name in ("broken.json", "absent.json"):
        result = run("check", "models", "--baseline", name)
        assert result.exit_code == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"modelaudit: error: baseline {name}: ")
    (repo / "other.json").write_text('{"files": []}')
    result = run("check", "models", "--baseline", "other.json")
    assert result.exit_code == 2 and "not a modelaudit baseline" in result.stderr
