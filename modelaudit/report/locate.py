"""Where a finding points, the same way in every machine format: the file as a path relative to its
repository's root (the git top level of the file, else the working directory), so that a run from a
subfolder still says `models/x.keras`; the layer named in the message; and a fingerprint that stays
the same when the model is retrained (the bytes change; code, file and layer do not)."""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path
from typing import Optional


@functools.lru_cache(maxsize=256)
def _git_top(directory: str) -> Optional[str]:
    # the nearest folder holding .git (a folder, or a file in a worktree or submodule); no git process
    here = directory
    while True:
        if os.path.exists(os.path.join(here, ".git")):
            return here
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent


def root_of(path: str) -> str:
    """The folder `path` is reported relative to: its git top level, else the working directory."""
    return _git_top(os.path.dirname(os.path.abspath(path))) or os.getcwd()


def base_root() -> str:
    """The root of a whole run (SARIF's %SRCROOT%): the working directory's git top level, else itself."""
    return _git_top(os.getcwd()) or os.getcwd()


def repo_path(path: str, root: Optional[str] = None) -> Optional[str]:
    """`path` relative to `root` (default: root_of(path)), with `/`; None when it lies outside it."""
    try:
        rel = os.path.relpath(os.path.abspath(path), root or root_of(path))
    except ValueError:  # another drive on Windows
        return None
    if rel == os.pardir or rel.startswith(os.pardir + os.sep) or os.path.isabs(rel):
        return None
    return Path(rel).as_posix()


def display_path(path: str) -> str:
    """The path a report shows and fingerprints: repository-relative when it can be."""
    return repo_path(path) or Path(os.path.abspath(path)).as_posix()


def located_message(finding) -> str:
    """The finding's message, naming its layer if the message does not already."""
    if finding.layer and f"'{finding.layer}'" not in finding.message:
        return f"layer '{finding.layer}': {finding.message}"
    return finding.message


def fingerprints(file_report) -> list[str]:
    """One fingerprint per finding of a file, from code + file + layer path only. Two findings of
    the same code on the same layer are told apart by their order of occurrence."""
    path = display_path(file_report.path)
    seen: dict[tuple, int] = {}
    out = []
    for f in file_report.findings:
        key = (f.code, path, f.layer or "")
        n = seen.get(key, 0)
        seen[key] = n + 1
        parts = [*key] + ([str(n)] if n else [])
        out.append(hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest())
    return out
