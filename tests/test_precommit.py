"""The pre-commit hook, run by the real pre-commit: `pre-commit run` with a `.pre-commit-config.yaml`
naming a git repository at a commit (as a user's config names this one) installs this package from it
into its own virtualenv and runs the hook on a repository holding models.

The hook repository is a copy of the working tree committed into a temporary git repository (never
this checkout's own git); PRE_COMMIT_HOME is a temporary folder, so nothing outside tmp is touched.
Both runs share it, as a user's repeated commits do, so the package is installed once (`try-repo`
would install it afresh for every run: 20 s each). Installing needs the package index (pip's cache
makes it quick).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests import integration_models as im

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ("pyproject.toml", "README.md", ".pre-commit-hooks.yaml", "modelaudit", "rules")

# git and pre-commit are required (the test extra brings pre-commit): a missing one fails, never skips.
assert shutil.which("git"), "the pre-commit test needs git"
assert importlib.util.find_spec("pre_commit"), "the pre-commit test needs pre-commit (the test extra)"


def git(cwd, *args):
    subprocess.run(["git", "-c", "user.name=modelaudit-test", "-c", "user.email=test@example.invalid",
                    "-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main", *args],
                   cwd=cwd, check=True, capture_output=True, env=_env(cwd))


def _env(tmp) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}  # not a surrounding hook's repo
    env.update(PRE_COMMIT_HOME=str(Path(tmp) / "pre-commit-home"), PIP_DISABLE_PIP_VERSION_CHECK="1",
               PRE_COMMIT_COLOR="never", NO_COLOR="1")
    return env


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory):
    """The working tree's package files, committed into a repository of their own."""
    repo = tmp_path_factory.mktemp("hook-repo")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in SHIPPED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, repo / name, ignore=ignore)
        else:
            shutil.copy2(src, repo / name)
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "modelaudit under test")
    return repo


def target_repo(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    git(folder, "init", "-q")
    git(folder, "add", "-A")
    return folder


@pytest.fixture(scope="module")
def hook_config(hook_repo, tmp_path_factory) -> Path:
    """A .pre-commit-config.yaml naming the hook repository at its commit (outside the target repos, so
    that the hook is handed only their own files)."""
    rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=hook_repo, check=True, capture_output=True,
                         text=True, env=_env(hook_repo)).stdout.strip()
    config = tmp_path_factory.mktemp("hook-config") / ".pre-commit-config.yaml"
    config.write_text(f"repos:\n  - repo: {hook_repo}\n    rev: {rev}\n    hooks:\n      - id: modelaudit\n")
    return config


def run_hook(config: Path, target: Path, home: Path):
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", "run", "--all-files", "--config", str(config)],
        cwd=target, capture_output=True, text=True, timeout=540, env=_env(home),
    )


def _checkpoints(tmp_path) -> dict[str, bytes]:
    import keras
    import tf_keras

    folder = tmp_path / "checkpoints"
    folder.mkdir()
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]).save_weights(folder / "k3.weights.h5")
    tf_keras.Sequential([tf_keras.Input((4,)), tf_keras.layers.Dense(2)]).save_weights(folder / "legacy.h5")
    return {name: (folder / name).read_bytes() for name in ("k3.weights.h5", "legacy.h5")}


def test_hook_passes_a_correct_model_and_fails_a_broken_one(hook_config, tmp_path):
    good = Path(im.save_classifier(tmp_path / "good.keras")).read_bytes()
    broken = Path(im.broken_copy(tmp_path / "good.keras", tmp_path / "broken.keras")).read_bytes()
    # Files the hook must leave alone: a note, and a JSON file (not every JSON file is a model).
    others = {"notes.txt": b"not a model\n", "data.json": b"{\"rows\": 3}\n"}
    # Checkpoints hold no model: committing one never blocks a commit (Keras 3 and tf_keras layouts)
    checkpoints = _checkpoints(tmp_path)

    clean = run_hook(hook_config, target_repo(tmp_path / "clean", {"model.keras": good, **others, **checkpoints}),
                     tmp_path)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "modelaudit" in clean.stdout and "Passed" in clean.stdout

    dirty = run_hook(hook_config, target_repo(tmp_path / "dirty", {"model.keras": good, "broken.keras": broken,
                                                                 **others}), tmp_path)
    assert dirty.returncode == 1, dirty.stdout + dirty.stderr
    assert "Failed" in dirty.stdout and "exit code: 1" in dirty.stdout
    assert "broken.keras:probs: MA101 [error] Dense 'probs'" in dirty.stdout
    assert "model.keras:" not in dirty.stdout.replace("broken.keras:", "")  # the good model has no finding
    assert "2 files checked" in dirty.stdout  # only the two models were handed to the hook
