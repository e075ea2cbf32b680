"""What a CI run and a terminal need from the command line (issue 15), each through the real command
in a subprocess; where it is about a repository, in a real git repository."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

GIT = shutil.which("git")


def run(*args, cwd=None, stdin=None):
    return subprocess.run([sys.executable, "-m", "modelaudit.cli", *args], capture_output=True, text=True,
                          cwd=cwd, input=stdin)


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """A git repository with models/: a clean model, a broken-objective one, and an LFS pointer."""
    import keras

    assert GIT, "git is needed for these tests (the hook's users have it)"
    root = tmp_path_factory.mktemp("repo")
    subprocess.run([GIT, "init", "-q", str(root)], check=True)
    models = root / "models"
    models.mkdir()
    good = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    good.compile(loss="categorical_crossentropy")
    good.save(models / "good.keras")
    bad = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    bad.compile(loss="binary_crossentropy")  # MA201
    bad.save(models / "bad.keras")
    (models / "lfs.keras").write_text(
        "version https://git-lfs.github.com/spec/v1\n"
        "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n")
    return root


# --- 5. paths relative to the repository -----------------------------------------------------

def test_machine_formats_name_files_from_the_repository_root_when_run_in_a_subfolder(repo):
    sub = repo / "models"
    sarif = json.loads(run("check", "bad.keras", "--format", "sarif", cwd=sub).stdout)
    run_ = sarif["runs"][0]
    (result,) = [r for r in run_["results"] if r["ruleId"] == "MA201"]
    location = result["locations"][0]["physicalLocation"]["artifactLocation"]
    assert location == {"uri": "models/bad.keras", "uriBaseId": "%SRCROOT%"}
    assert run_["originalUriBaseIds"]["%SRCROOT%"]["uri"] == repo.resolve().as_uri() + "/"
    gitlab = json.loads(run("check", "bad.keras", "--format", "gitlab", cwd=sub).stdout)
    assert {i["location"]["path"] for i in gitlab} == {"models/bad.keras"}
    github = run("check", "bad.keras", "--format", "github", cwd=sub).stdout
    assert "file=models/bad.keras," in github and "file=bad.keras" not in github


# --- 6. unreadable files are findings ---------------------------------------------------------

def test_lfs_pointer_is_named_with_the_fix(repo):
    out = run("check", "models/lfs.keras", cwd=repo)
    assert out.returncode == 2
    line = out.stderr.strip()
    assert line.startswith("models/lfs.keras: cannot read: a Git LFS pointer") and "git lfs pull" in line
    assert "lfs: true" in line and len(out.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("fmt", ["json", "sarif", "gitlab", "github"])
def test_unreadable_file_is_an_ma100_finding_in_every_format(repo, fmt):
    out = run("check", "models/lfs.keras", "models/good.keras", "--format", fmt, cwd=repo)
    assert out.returncode == 2
    if fmt == "json":
        (lfs,) = [f for f in json.loads(out.stdout)["files"] if f["path"] == "models/lfs.keras"]
        assert lfs["error"].startswith("a Git LFS pointer") and [f["code"] for f in lfs["findings"]] == ["MA100"]
    elif fmt == "sarif":
        results = json.loads(out.stdout)["runs"][0]["results"]
        assert [r["ruleId"] for r in results] == ["MA100"]
    elif fmt == "gitlab":
        issues = json.loads(out.stdout)
        assert [i["check_name"] for i in issues] == ["MA100 unreadable-file"]
        assert issues[0]["severity"] == "critical"
    else:
        assert out.stdout.startswith("::error file=models/lfs.keras,line=1,title=MA100 unreadable-file::cannot read: ")


def test_exit_zero_turns_unreadable_into_zero_but_not_usage_errors(repo):
    assert run("check", "models/lfs.keras", "--exit-zero", cwd=repo).returncode == 0
    assert run("check", "models/bad.keras", "--exit-zero", cwd=repo).returncode == 0
    assert run("check", "models/good.keras", "--exit-zero", "--select", "MA999", cwd=repo).returncode == 2
    assert run("check", "models/good.keras", "--exit-zero", "--fail-on", "never", cwd=repo).returncode == 2


def test_ma100_is_reported_whatever_select_says_unless_ignored(repo):
    selected = json.loads(run("check", "models/lfs.keras", "--select", "MA2", "--format", "json", cwd=repo).stdout)
    assert [f["code"] for f in selected["files"][0]["findings"]] == ["MA100"]
    ignored = run("check", "models/lfs.keras", "--ignore", "MA100", "--format", "json", cwd=repo)
    assert ignored.returncode == 2  # still unreadable
    assert json.loads(ignored.stdout)["files"][0]["findings"] == []


# --- 10. markdown fits a pull-request comment -------------------------------------------------

def test_markdown_stays_within_a_pull_request_comment(repo, tmp_path):
    import keras

    # 400 one-unit softmax layers: an MA203 error on each, far more text than one comment holds
    layers = [keras.Input((4,))] + [keras.layers.Dense(1, activation="softmax") for _ in range(400)]
    many = tmp_path / "many.keras"
    keras.Sequential(layers).save(many)
    args = ("check", str(many), str(repo / "models" / "good.keras"))
    findings = sum(len(f["findings"]) for f in json.loads(run(*args, "--format", "json").stdout)["files"])
    assert findings >= 400
    text = run(*args, "--format", "markdown").stdout
    assert len(text) <= 65_536
    lines = text.splitlines()
    assert lines[2] == "| File | Status | Params | Errors | Warnings | Info |"  # the summary table first
    rows = [line for line in lines if line.startswith("| error |") or line.startswith("| warning |")
            or line.startswith("| info |")]
    tail = lines[-1]
    assert tail.endswith("more findings: see the SARIF/JSON artifact (a pull-request comment holds at most "
                         "65,536 characters)")
    assert int(tail.split()[0].replace(",", "")) == findings - len(rows)


# --- 8. what ruff users reach for -------------------------------------------------------------

def test_version_and_python_dash_m():
    from modelaudit import __version__

    assert run("--version").stdout == f"modelaudit {__version__}\n"
    module = subprocess.run([sys.executable, "-m", "modelaudit", "--version"], capture_output=True, text=True)
    assert module.returncode == 0 and module.stdout == f"modelaudit {__version__}\n"


def test_statistics_count_findings_per_rule(repo):
    out = run("check", "--statistics", "models/bad.keras", "models/good.keras", "models/lfs.keras", cwd=repo)
    assert out.returncode == 2
    lines = out.stdout.splitlines()
    assert "1  MA100  unreadable-file [error]" in lines and "1  MA201  softmax-with-binary-crossentropy [error]" in lines
    assert lines[-1].startswith("2 files checked, 1 unreadable: 2 errors")
    assert run("check", "--statistics", "--format", "json", "models/bad.keras", cwd=repo).returncode == 2


def test_output_format_is_an_alias_of_format(repo):
    a = run("check", "models/bad.keras", "--format", "json", cwd=repo).stdout
    b = run("check", "models/bad.keras", "--output-format", "json", cwd=repo).stdout
    assert a == b and json.loads(a)["files"][0]["findings"][0]["code"] == "MA201"


def test_shell_completion_is_offered(monkeypatch):
    # typer detects the user's shell from the parent processes (none is a shell under nohup or some CI
    # runners); its own test switch makes `--show-completion` take the shell's name instead
    monkeypatch.setenv("_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION", "1")
    out = run("--show-completion", "bash")
    assert out.returncode == 0 and "complete" in out.stdout and "modelaudit" in out.stdout.lower()


@pytest.mark.parametrize("args, suggestion", [
    (["check", "--select", "MA2O1", "x.keras"], "did you mean 'MA201'"),
    (["check", "--ignore", "softmax-with-binary-crossentropi", "x.keras"], "did you mean 'softmax-with-binary-crossentropy'"),
    (["explain", "MA2O3"], "did you mean 'MA203'"),
])
def test_mistyped_rule_gets_a_suggestion(args, suggestion):
    out = run(*args)
    assert out.returncode == 2 and suggestion in out.stderr and len(out.stderr.splitlines()) == 1


def test_dash_reads_one_model_from_standard_input(repo):
    subprocess.run([GIT, "-C", str(repo), "add", "models/bad.keras"], check=True)
    subprocess.run([GIT, "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com",
                    "commit", "-q", "-m", "a model"], check=True)
    blob = subprocess.run([GIT, "-C", str(repo), "show", "HEAD:models/bad.keras"], capture_output=True, check=True).stdout
    out = subprocess.run([sys.executable, "-m", "modelaudit.cli", "check", "-", "--format", "json"],
                         input=blob, capture_output=True)
    assert out.returncode == 1, out.stderr
    (fr,) = json.loads(out.stdout)["files"]
    assert fr["path"] == "-" and [f["code"] for f in fr["findings"]] == ["MA201"]
    empty = subprocess.run([sys.executable, "-m", "modelaudit.cli", "check", "-"], input=b"", capture_output=True)
    assert empty.returncode == 2 and empty.stderr.decode().startswith("-: cannot read: empty file")


def test_jobs_give_the_serial_output_in_the_same_order(tmp_path):
    # 24 real models (the samples, twice): enough that the default is parallel too
    samples = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "samples")
    models = sorted(f for f in os.listdir(samples) if f.endswith((".keras", ".h5")))
    for copy in ("a", "b"):
        for name in models:
            shutil.copy(os.path.join(samples, name), tmp_path / f"{copy}_{name}")
    assert len(models) * 2 >= 16
    serial = run("check", str(tmp_path), "--format", "json", "--jobs", "1")
    for extra in (["--jobs", "2"], []):
        parallel = run("check", str(tmp_path), "--format", "json", *extra)
        assert parallel.returncode == serial.returncode == 1
        assert parallel.stdout == serial.stdout
    assert run("check", str(tmp_path), "--jobs", "0").returncode == 2


# --- 3. weights checkpoints are skipped with a note -------------------------------------------

@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    import h5py
    import keras
    import tf_keras

    folder = tmp_path_factory.mktemp("checkpoints")
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]).save_weights(folder / "k3.weights.h5")
    k2 = tf_keras.Sequential([tf_keras.Input((4,)), tf_keras.layers.Dense(2)])
    k2.save_weights(folder / "legacy.h5")  # save_weights' legacy layout: layer_names, no model_config
    k2.save_weights(folder / "k2.weights.h5")  # tf_keras writes Keras 3's layout under this name
    with h5py.File(folder / "table.h5", "w") as f:  # HDF5, but neither a model nor a checkpoint
        f["rows"] = [1, 2, 3]
    return folder


NOTE = "weights only, no model config: skipped"


@pytest.mark.parametrize("name", ["k3.weights.h5", "legacy.h5", "k2.weights.h5"])
def test_checkpoint_named_on_the_command_line_is_skipped_with_one_note(checkpoints, name):
    out = run("check", name, cwd=checkpoints)
    assert out.returncode == 0
    assert out.stderr == f"{name}: {NOTE}\n"
    assert out.stdout == "0 files checked, 1 skipped: 0 errors, 0 warnings, 0 info\n"
    doc = json.loads(run("check", name, "--format", "json", cwd=checkpoints).stdout)
    assert doc["files"][0]["skipped"] == NOTE and doc["files"][0]["error"] is None


def test_folder_scan_skips_checkpoints_and_still_refuses_other_hdf5(checkpoints, repo):
    out = run("check", str(checkpoints), str(repo / "models" / "good.keras"))
    assert out.returncode == 2  # table.h5 is not a Keras file at all
    notes = [line for line in out.stderr.splitlines() if line.endswith(NOTE)]
    assert len(notes) == 3
    assert [line for line in out.stderr.splitlines() if "cannot read" in line] == [
        f"{checkpoints / 'table.h5'}: cannot read: HDF5 file has no model_config: not a Keras model"]
    assert out.stdout.splitlines()[-1].startswith("1 file checked, 1 unreadable, 3 skipped:")


# --- 2. folder scans of a real repository -----------------------------------------------------

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def busy_repo(tmp_path_factory, repo):
    """A repository as people have them: models beside JSON that is not Keras, and folders no scan
    should enter (a virtualenv, node_modules, build output) each holding a broken model."""
    root = tmp_path_factory.mktemp("busy")
    shutil.copy(repo / "models" / "good.keras", root / "good.keras")
    (root / "package.json").write_text('{"name": "web", "version": "1.0.0", "dependencies": {}}\n')
    (root / "schema.json").write_text('{"$schema": "http://json-schema.org/draft-07/schema#", "type": "object"}\n')
    (root / "Manifest.json").write_text('{"fileFormatVersion": "1.0.0", "itemInfoEntries": {}}\n')  # CoreML
    (root / "web").mkdir()
    (root / "web" / "model.json").write_text(  # a TF.js graph model: a TensorFlow graph, not Keras layers
        '{"format": "graph-model", "modelTopology": {"node": []}, "weightsManifest": []}\n')
    (root / "web" / "weights_manifest.json").write_text('[{"paths": ["group1-shard1of1.bin"], "weights": []}]\n')
    for folder in (".venv/lib", "venv", "node_modules/pkg", "build", "dist", "__pycache__", "site-packages"):
        (root / folder).mkdir(parents=True)
        (root / folder / "broken.keras").write_bytes(b"PK\x03\x04 not a zip")
    (root / "generated").mkdir()
    (root / "generated" / "broken.keras").write_bytes(b"PK\x03\x04 not a zip")
    return root


def test_folder_scan_passes_over_non_keras_json_and_default_excludes(busy_repo):
    out = run("check", "generated", "--format", "json", cwd=busy_repo)  # (sanity: a broken model is seen)
    assert out.returncode == 2
    out = run("check", ".", "--extend-exclude", "generated", "--format", "json", cwd=busy_repo)
    assert out.returncode == 0, out.stderr
    assert [f["path"] for f in json.loads(out.stdout)["files"]] == ["good.keras"]


def test_a_non_keras_json_named_explicitly_is_still_an_error(busy_repo):
    for name in ("package.json", "web/model.json"):
        out = run("check", name, cwd=busy_repo)
        assert out.returncode == 2 and out.stderr.startswith(f"{name}: cannot read: ")


def test_exclude_replaces_the_defaults_and_extend_exclude_adds(busy_repo):
    everything = run("check", ".", "--exclude", "generated", "--format", "json", cwd=busy_repo)
    paths = sorted(f["path"] for f in json.loads(everything.stdout)["files"])
    # hidden folders stay unwalked; every other default exclude is now entered
    assert paths == sorted(["good.keras", "venv/broken.keras", "node_modules/pkg/broken.keras", "build/broken.keras",
                            "dist/broken.keras", "__pycache__/broken.keras", "site-packages/broken.keras"])
    globbed = run("check", ".", "--extend-exclude", "gen*,*.keras", cwd=busy_repo)
    assert globbed.returncode == 2 and "no model files" in globbed.stderr


def test_exclude_keys_in_pyproject(busy_repo, tmp_path):
    project = tmp_path / "project"
    shutil.copytree(busy_repo, project)
    (project / "pyproject.toml").write_text('[tool.modelaudit]\nextend-exclude = ["generated"]\n')
    out = run("check", ".", cwd=project)
    assert out.returncode == 0, out.stderr
    (project / "pyproject.toml").write_text('[tool.modelaudit]\nexclude = "generated"\nextend-exclude = [3]\n')
    bad = run("check", ".", cwd=project)
    assert bad.returncode == 2 and "extend-exclude must be a list of glob patterns" in bad.stderr


def test_check_dot_in_this_repository_never_exits_2():
    out = run("check", ".", cwd=ROOT)
    assert out.returncode in (0, 1), out.stderr
    assert "cannot read" not in out.stderr


# --- 11. --factory without Keras says what to install -----------------------------------------

NO_KERAS = """
import importlib.abc, sys
class NoKeras(importlib.abc.MetaPathFinder):  # this interpreter as if keras were not installed
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("keras", "tf_keras", "tensorflow"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, NoKeras())
sys.argv = ["modelaudit", "check", "--factory", "mypkg.models:build"]
from modelaudit.cli import main
main()
"""


def test_factory_without_keras_says_what_to_install(tmp_path):
    out = subprocess.run([sys.executable, "-c", NO_KERAS], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.startswith("modelaudit: error: --factory builds the model with Keras, which is not installed")
    assert 'pip install ".[keras]"' in out.stderr and len(out.stderr.splitlines()) == 1
