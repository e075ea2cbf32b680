"""Which reader a file needs, decided by its first bytes, never by its extension."""

from __future__ import annotations

import os
import stat

from modelaudit.errors import ModelReadError

ZIP = "zip"
HDF5 = "hdf5"
JSON = "json"

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
LFS_POINTER = b"version https://git-lfs.github.com/spec/"  # what a checkout without git-lfs holds
ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")  # a member first, or an empty archive


SAVED_MODEL_PB = "saved_model.pb"


def is_savedmodel(path: str) -> bool:
    """A folder holding saved_model.pb: one SavedModel. Here, not in savedmodel.py, so that a folder
    walk asks without importing the SavedModel reader and its protobuf decoder."""
    return os.path.isfile(os.path.join(path, SAVED_MODEL_PB))


def detect(path: str) -> str:
    # Non-blocking, so that a FIFO named model.keras cannot hang the run waiting for a writer; then
    # anything but a regular file (pipe, socket, device) is refused before a byte is read.
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except IsADirectoryError:
        raise ModelReadError("is a directory") from None
    except OSError as exc:
        raise ModelReadError(exc.strerror or str(exc)) from None
    except ValueError as exc:  # an embedded NUL in the path
        raise ModelReadError(str(exc)) from None
    with os.fdopen(fd, "rb") as f:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise ModelReadError("is a directory")
        if not stat.S_ISREG(mode):
            raise ModelReadError("not a regular file (a pipe, socket or device)")
        try:
            head = f.read(1024)
        except OSError as exc:
            raise ModelReadError(exc.strerror or str(exc)) from None
    if not head:
        raise ModelReadError("empty file")
    if head.startswith(LFS_POINTER):
        raise ModelReadError(
            "a Git LFS pointer, not the model: fetch the file with `git lfs pull` (in GitHub Actions, "
            "`lfs: true` in actions/checkout)"
        )
    if head.startswith(HDF5_SIGNATURE):
        return HDF5
    if head[:4] in ZIP_SIGNATURES:
        return ZIP
    stripped = head.lstrip(b" \t\r\n\xef\xbb\xbf")  # a UTF-8 byte-order mark is allowed
    if stripped.startswith((b"{", b'"')):  # an object, or a config saved as a JSON string
        return JSON
    raise ModelReadError("not a Keras model: neither a .keras zip, an HDF5 file nor a JSON config")
