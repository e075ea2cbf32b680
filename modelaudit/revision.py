"""`REV:PATH`: a model as a git revision holds it (`HEAD:models/net.keras`, `main~3:models/sm`,
`:models/net.keras` for the index), read with git's object plumbing into memory, never into the work
tree. A file becomes an anonymous in-memory file (memfd) the readers open by its /proc path; a
SavedModel folder, which the readers walk, is written into a private temporary folder and removed.

PATH is git's: relative to the repository's top level, or to the working directory when it starts
with `./` or `../`. The blob goes through `git cat-file --filters`, so a Git LFS pointer is smudged
into the model when git-lfs is installed (as a checkout would), and no textconv driver ever runs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from typing import Iterator, Optional

from modelaudit.errors import ModelReadError, one_line

MAX_BLOB_BYTES = 2 << 30  # as `check -` bounds standard input
MAX_TREE_ENTRIES = 10_000  # a SavedModel folder holds a few files; its variables a few shards
GIT_TIMEOUT = 120  # seconds; a blob of 2 GiB reads in far less


def split(spec: str) -> Optional[tuple[str, str]]:
    """(revision, path) when `spec` names a revision's file, else None (a path on disk). A path that
    exists on disk is always that path, so a file named `a:b` stays a file."""
    if os.path.exists(spec) or ":" not in spec:
        return None
    rev, _, path = spec.partition(":")
    if len(rev) == 1 and rev.isalpha() and path[:1] in ("\\", "/"):  # a Windows drive, not a revision
        return None
    if not path:
        return None
    return rev, path


def _git(args: list[str], spec: str, limit: int = 1 << 20) -> bytes:
    """git's standard output (at most `limit` bytes), or ModelReadError with git's own first line."""
    with tempfile.TemporaryFile() as out:
        _git_into(args, spec, out.fileno(), limit)
        out.seek(0)
        return out.read()


def _git_into(args: list[str], spec: str, fd: int, limit: int) -> None:
    """git writing its standard output straight into `fd` (no copy in this process), killed past
    `limit` bytes or GIT_TIMEOUT seconds; ModelReadError with git's own first line when it fails."""
    import time

    # stderr to a file, not a pipe: git-lfs's progress lines could otherwise fill it and stall git
    with tempfile.TemporaryFile() as errors:
        try:
            proc = subprocess.Popen(["git", *args], stdout=fd, stderr=errors, stdin=subprocess.DEVNULL)
        except OSError as exc:
            raise ModelReadError(f"cannot run git ({exc.strerror or exc})") from None
        deadline = time.monotonic() + GIT_TIMEOUT
        try:
            while True:
                try:
                    proc.wait(0.05)
                    break
                except subprocess.TimeoutExpired:
                    pass
                if os.fstat(fd).st_size > limit:
                    raise ModelReadError(f"{spec}: git gave more than {limit:,} bytes")
                if time.monotonic() > deadline:
                    raise ModelReadError(f"{spec}: git took more than {GIT_TIMEOUT} s")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if proc.returncode:
            errors.seek(0)
            lines = errors.read(4096).decode("utf-8", "replace").strip().splitlines()
            reason = lines[0] if lines else f"git exited {proc.returncode}"
            raise ModelReadError(one_line(reason.removeprefix("fatal: ")))
    if os.fstat(fd).st_size > limit:
        raise ModelReadError(f"{spec}: git gave more than {limit:,} bytes")


def _kind(spec: str) -> str:
    return _git(["cat-file", "-t", spec], spec).decode().strip()


def _blob_into(spec: str, fd: int) -> None:
    _git_into(["cat-file", "--filters", spec], spec, fd, MAX_BLOB_BYTES)


@contextlib.contextmanager
def checked_out(spec: str) -> Iterator[str]:
    """A path the readers can open holding `spec`'s content (REV:PATH), for the `with` block only."""
    kind = _kind(spec)
    if kind == "blob":
        with _in_memory(spec, os.path.basename(spec.partition(":")[2])) as path:
            yield path
    elif kind == "tree":
        with _tree(spec) as path:
            yield path
    else:
        raise ModelReadError(f"{spec} is a git {kind}, not a file or a folder")


@contextlib.contextmanager
def _in_memory(spec: str, name: str) -> Iterator[str]:
    """The blob in an anonymous in-memory file (Linux's memfd), git writing into it directly; where
    there is none, a private temporary file."""
    create = getattr(os, "memfd_create", None)
    if create is not None and os.path.isdir("/proc/self/fd"):
        fd = create(name or "model", getattr(os, "MFD_CLOEXEC", 0))
        try:
            _blob_into(spec, fd)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    folder = tempfile.mkdtemp(prefix="modelaudit-rev-")
    try:
        path = os.path.join(folder, name or "model")
        with open(path, "wb") as f:
            _blob_into(spec, f.fileno())
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def _tree(spec: str) -> Iterator[str]:
    """A folder (a SavedModel) written, file by file, into a private temporary folder."""
    listing = _git(["ls-tree", "-r", "-z", spec], spec, 16 << 20)
    entries = [e for e in listing.split(b"\0") if e]
    if len(entries) > MAX_TREE_ENTRIES:
        raise ModelReadError(f"{spec} holds more than {MAX_TREE_ENTRIES:,} files")
    folder = tempfile.mkdtemp(prefix="modelaudit-rev-")
    try:
        root = os.path.join(folder, os.path.basename(spec.rstrip("/").partition(":")[2]) or "model")
        os.makedirs(root)
        for entry in entries:
            meta, _, name = entry.partition(b"\t")
            if meta.split()[1] != b"blob":
                continue  # a submodule: nothing a reader needs
            rel = name.decode("utf-8", "surrogateescape")
            target = os.path.normpath(os.path.join(root, rel))
            if not target.startswith(root + os.sep):  # git trees hold no `..`; a bound all the same
                raise ModelReadError(f"{spec}: a file outside the folder ({one_line(rel)})")
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "wb") as f:
                _blob_into(f"{spec.rstrip('/')}/{rel}", f.fileno())
        yield root
    finally:
        shutil.rmtree(folder, ignore_errors=True)
