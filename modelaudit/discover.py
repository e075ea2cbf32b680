"""Which files a run checks: the paths as given, and what walking a folder finds.

Walking a real repository meets far more than models: `.git`, virtualenvs, `node_modules`, build
output, and JSON files that are no Keras config (package.json, schemas, a TF.js graph model). As ruff
does, folders matching the exclude globs are not entered (`exclude` replaces the defaults,
`extend-exclude` adds to them), and a `*.json` found by walking is a candidate only when it looks like a
Keras config; one that turns out not to be one is passed over (api.audit_paths). A path named
explicitly is always checked. A SavedModel folder (one holding saved_model.pb) is one model, named or
found, and is not searched further: its variables/ and assets/ are parts of it.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from pathlib import PurePath
from typing import Iterable, Optional

MODEL_SUFFIXES = (".keras", ".h5", ".hdf5", ".json")

# ruff's default excludes, and the caches and installs a Python repository holds besides
DEFAULT_EXCLUDES = (
    ".bzr", ".direnv", ".eggs", ".git", ".git-rewrite", ".hg", ".ipynb_checkpoints", ".mypy_cache", ".nox",
    ".pants.d", ".pyenv", ".pytest_cache", ".pytype", ".ruff_cache", ".svn", ".tox", ".venv", ".vscode",
    "__pycache__", "__pypackages__", "_build", "buck-out", "build", "dist", "node_modules", "site-packages",
    "venv",
)

# Every Keras config names its classes (`"class_name"`, escaped as `\"class_name\"` in a config saved
# as a JSON string); a TF.js layers model says so in its `format`.
KERAS_JSON_MARKERS = (b"class_name", b"layers-model")
JSON_HEAD_BYTES = 64 * 1024


@dataclass(frozen=True)
class Item:
    path: str
    error: Optional[str] = None  # a path that cannot be checked at all (a folder with no model)
    found: bool = False  # found by walking a folder, not named


def is_excluded(path: str, patterns: Iterable[str], root: Optional[str] = None) -> bool:
    """A glob matches the file or folder name, or its path relative to `root` (the configuration's
    folder, else the working directory), with `/` separators."""
    name = os.path.basename(os.path.normpath(path))
    try:
        rel = PurePath(os.path.relpath(os.path.abspath(path), root or os.getcwd())).as_posix()
    except ValueError:  # another drive on Windows
        rel = PurePath(path).as_posix()
    return any(fnmatch.fnmatchcase(name, p) or fnmatch.fnmatchcase(rel, p.rstrip("/")) for p in patterns)


def looks_like_keras_json(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(JSON_HEAD_BYTES)
    except OSError:
        return True  # named by the walk, unreadable: the reader says why
    return any(marker in head for marker in KERAS_JSON_MARKERS)


def expand(paths: Iterable, excludes: Iterable[str] = DEFAULT_EXCLUDES, root: Optional[str] = None) -> list[Item]:
    """The files to check, in order: each path as given, each folder walked (sorted)."""
    from modelaudit.formats.detect import is_savedmodel

    excludes = tuple(excludes)
    out: list[Item] = []
    for p in paths:
        p = os.fspath(p)
        if not os.path.isdir(p) or is_savedmodel(p):
            out.append(Item(p))
            continue
        found = []
        for folder, dirs, files in os.walk(p):
            dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                             and not is_excluded(os.path.join(folder, d), excludes, root))
            models = [d for d in dirs if is_savedmodel(os.path.join(folder, d))]
            dirs[:] = [d for d in dirs if d not in models]
            names = [f for f in files if f.lower().endswith(MODEL_SUFFIXES)
                     and not is_excluded(os.path.join(folder, f), excludes, root)]
            for name in sorted(names + models):
                path = os.path.normpath(os.path.join(folder, name))  # `models/x.keras`, not `./models/x.keras`
                if not name.lower().endswith(".json") or looks_like_keras_json(path):
                    found.append(Item(path, found=True))
        out.extend(found)
        if not found:
            out.append(Item(p, "no model files (*.keras, *.h5, *.hdf5, Keras *.json) or SavedModel folders in "
                               "this folder"))
    return out
