"""Which reader a file needs, decided by its content, never by its extension.

By its first bytes first; then as the loaders Keras calls find their formats: the HDF5 library looks
for its signature at 0, 512, 1024, 2048 ... bytes (what precedes it is the file's user block), and a
zip reader, Python's `zipfile` included, finds the archive from its end record, whatever precedes it.
"""

from __future__ import annotations

import os
import stat
import struct

from modelaudit.errors import ModelReadError

ZIP = "zip"
HDF5 = "hdf5"
JSON = "json"

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
LFS_POINTER = b"version https://git-lfs.github.com/spec/"  # what a checkout without git-lfs holds
ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")  # a member first, or an empty archive
ZIP_END = b"PK\x05\x06"
ZIP_END_SIZE = 22
MAX_ZIP_COMMENT = 0xFFFF
# bytes of a prefix (a user block, what precedes a zip) or an archive comment kept for the rules
HIDDEN_HEAD = 64 * 1024


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
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise ModelReadError("is a directory")
        if not stat.S_ISREG(st.st_mode):
            raise ModelReadError("not a regular file (a pipe, socket or device)")
        try:
            head = f.read(1024)
            kind = _by_magic(head)
            if kind == HDF5 and path.endswith(".keras") and zip_end(_reader(f), st.st_size) is not None:
                # both: Keras's load_model goes by the name, and opens a .keras name as a zip
                kind = ZIP
            if kind is None:
                # before JSON: valid JSON holds neither signature (both contain control characters)
                kind = _behind_a_prefix(f, st.st_size) or _json(head)
        except OSError as exc:
            raise ModelReadError(exc.strerror or str(exc)) from None
    if kind is None:
        raise ModelReadError("not a Keras model: neither a .keras zip, an HDF5 file nor a JSON config")
    return kind


def _by_magic(head: bytes):
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
    return None


def _json(head: bytes):
    stripped = head.lstrip(b" \t\r\n\xef\xbb\xbf")  # a UTF-8 byte-order mark is allowed
    if stripped.startswith((b"{", b'"')):  # an object, or a config saved as a JSON string
        return JSON
    return None


def _behind_a_prefix(f, size: int):
    """HDF5 behind a user block, or a zip behind any prefix: the formats Keras's loaders open so."""
    read_at = _reader(f)
    if hdf5_superblock(read_at, size) is not None:
        return HDF5
    if zip_end(read_at, size) is not None:
        return ZIP
    return None


def _reader(f):
    def read_at(pos: int, n: int) -> bytes:
        f.seek(pos)
        return f.read(n)
    return read_at


def hdf5_superblock(read_at, size: int):
    """The offset of the HDF5 superblock (0, 512, 1024, ... as the HDF5 library searches), or None.
    `read_at(pos, n)` reads n bytes at pos; at most about 50 reads for any file size."""
    at = 0
    while at + len(HDF5_SIGNATURE) <= size:
        if read_at(at, len(HDF5_SIGNATURE)) == HDF5_SIGNATURE:
            return at
        at = 512 if at == 0 else at * 2
    return None


def hdf5_end(read_at, at: int):
    """The end-of-file address the superblock at `at` records (it counts the user block), or None."""
    head = read_at(at, 48)
    if len(head) < 48 or head[:8] != HDF5_SIGNATURE:
        return None
    where = {0: 40, 1: 44, 2: 28, 3: 28}.get(head[8])
    if where is None or head[13 if head[8] < 2 else 9] != 8:  # 8-byte offsets, as h5py writes
        return None
    return struct.unpack_from("<Q", head, where)[0]


def zip_end(read_at, size: int):
    """The offset of the zip end-of-central-directory record, searched from the end of the file as
    zip readers do (it is last, followed only by the archive comment), or None."""
    if size < ZIP_END_SIZE:
        return None
    start = max(0, size - ZIP_END_SIZE - MAX_ZIP_COMMENT)
    tail = read_at(start, size - start)
    at = tail.rfind(ZIP_END)
    while at >= 0:
        if at + ZIP_END_SIZE <= len(tail):
            cd_size, cd_offset, comment = struct.unpack_from("<IIH", tail, at + 12)
            # a record whose central directory fits before it: not four bytes of a member's data
            if start + at + ZIP_END_SIZE + comment <= size and cd_size <= start + at:
                return start + at
        at = tail.rfind(ZIP_END, 0, at)
    return None


def pickle_globals(data: bytes):
    """The globals a pickle at the start of `data` names (module.name, sorted), when `data` starts as
    a pickle does: protocol 2+ (PROTO) or a text protocol that names a global and ends (STOP). None
    otherwise. Read as opcodes by formats/npz.py: nothing is imported, called or built."""
    import io

    from modelaudit.formats import npz

    if not data or not (data[:1] == b"\x80" and data[1:2] in b"\x02\x03\x04\x05" or data[:1] in b"c\x93("):
        return None
    reader = npz._Pickle(io.BytesIO(data), False, npz.MAX_OPS_PER_MEMBER)
    try:
        reader.run()
        ended = True
    except npz._Unreadable:
        ended = False
    except RecursionError:  # pragma: no cover - the reader is iterative
        ended = False
    if data[:1] == b"\x80" and (ended or reader.globals):
        return tuple(sorted(reader.globals))
    return tuple(sorted(reader.globals)) if ended and reader.globals else None
