"""Keras 3 `.keras` files: a zip of config.json, metadata.json and model.weights.h5 (or .npz).

The weights member is read in place: Keras stores it uncompressed, so it is a byte range of the
file, and h5py is handed a file object over that range. Nothing is extracted, copied or decoded
beyond HDF5 metadata.
"""

from __future__ import annotations

import io
import os
import struct
import zipfile
from dataclasses import replace

from modelaudit.errors import ModelReadError
from modelaudit.formats import json_config
from modelaudit.formats.manifest import attach, generic_keys
from modelaudit.graph import Layer, ModelGraph, SourceFacts, Weight

CONFIG = "config.json"
METADATA = "metadata.json"
WEIGHTS_H5 = "model.weights.h5"
WEIGHTS_NPZ = "model.weights.npz"
MAX_METADATA_BYTES = 1024 * 1024


class MemberFile(io.RawIOBase):
    """A read-only, seekable view of bytes [start, start + size) of an open file."""

    def __init__(self, f, start: int, size: int):
        self._f, self._start, self._size, self._pos = f, start, size, 0

    def readable(self):
        return True

    def seekable(self):
        return True

    def tell(self):
        return self._pos

    def seek(self, offset, whence=io.SEEK_SET):
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self._pos + offset
        else:
            pos = self._size + offset
        self._pos = max(0, pos)
        return self._pos

    def readinto(self, buf):
        n = min(len(buf), self._size - self._pos)
        if n <= 0:
            return 0
        self._f.seek(self._start + self._pos)
        data = self._f.read(n)
        buf[: len(data)] = data
        self._pos += len(data)
        return len(data)


def read(path: str) -> ModelGraph:
    file_size = os.path.getsize(path)
    with open(path, "rb") as f:
        try:
            zf = zipfile.ZipFile(f)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            raise ModelReadError(f"not a readable zip ({exc})") from None
        with zf:
            infos = zf.infolist()
            names = [i.filename for i in infos]
            members = tuple((i.filename, i.compress_size, i.file_size, i.compress_type) for i in infos)
            if CONFIG not in names:
                raise ModelReadError(f"no {CONFIG} in the archive: not a Keras 3 .keras file")
            data = json_config.loads(_read_member(zf, CONFIG, json_config.MAX_CONFIG_BYTES), CONFIG)
            metadata = {}
            if METADATA in names:
                metadata = json_config.loads(_read_member(zf, METADATA, MAX_METADATA_BYTES), METADATA)
                if not isinstance(metadata, dict):
                    metadata = {}
            version = metadata.get("keras_version")
            graph = json_config.graph_from_config(data, format="keras-v3")
            source = SourceFacts(
                members=members, file_size=file_size,
                keras_version=version if isinstance(version, str) else None,
            )
            if WEIGHTS_H5 in names:
                graph, source = _attach_h5(graph, zf, f, source)
            elif WEIGHTS_NPZ in names:
                graph = _attach_npz(graph, zf, f)
            return replace(graph, source=source)


def _read_member(zf: zipfile.ZipFile, name: str, limit: int) -> bytes:
    """Read a member, trusting neither its declared size nor its compression ratio."""
    info = zf.getinfo(name)
    if info.file_size > limit:
        raise ModelReadError(f"{name} declares {info.file_size} bytes, more than the {limit}-byte bound")
    try:
        with zf.open(info) as member:
            data = member.read(limit + 1)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
        raise ModelReadError(f"{name} in the archive is damaged ({exc})") from None
    except RuntimeError as exc:  # encrypted member
        raise ModelReadError(f"{name} in the archive cannot be read ({exc})") from None
    if len(data) > limit:
        raise ModelReadError(f"{name} inflates past the {limit}-byte bound")
    return data


def _member_view(zf: zipfile.ZipFile, f, name: str):
    """A file object over a member: the raw byte range if stored, else a decompressing stream."""
    info = zf.getinfo(name)
    if info.compress_type == zipfile.ZIP_STORED:
        f.seek(info.header_offset)
        header = f.read(30)
        if len(header) != 30 or header[:4] != b"PK\x03\x04":
            raise ModelReadError(f"{name}: bad local header in the archive")
        name_len, extra_len = struct.unpack("<HH", header[26:30])
        start = info.header_offset + 30 + name_len + extra_len
        if start + info.file_size > os.fstat(f.fileno()).st_size:
            raise ModelReadError(f"{name} is truncated in the archive")
        return MemberFile(f, start, info.file_size)
    # Compressed (not written by Keras): h5py seeks, which a deflate stream supports slowly.
    try:
        return zf.open(info)
    except (zipfile.BadZipFile, OSError, NotImplementedError, RuntimeError) as exc:
        raise ModelReadError(f"{name} in the archive cannot be read ({exc})") from None


def _attach_h5(graph: ModelGraph, zf, f, source: SourceFacts):
    import h5py

    from modelaudit.formats import hdf5

    view = _member_view(zf, f, WEIGHTS_H5)
    size = zf.getinfo(WEIGHTS_H5).file_size
    try:
        with h5py.File(view, "r") as h5:
            tree = hdf5.walk(h5, "", size)
    except ModelReadError:
        raise
    except Exception as exc:  # h5py raises OSError, KeyError, RuntimeError... on damaged files
        raise ModelReadError(f"{WEIGHTS_H5} is not a readable HDF5 file ({_one_line(exc)})") from None
    graph = attach_generic(graph, tree.datasets)
    source = replace(source, hdf5_links=tuple(tree.links), oversized=tuple(tree.oversized))
    return graph, source


def attach_generic(graph: ModelGraph, datasets: dict) -> ModelGraph:
    """Keras 3 keys variables by generic class-based names: layers/dense_1/vars/0. Map them back."""
    by_prefix: dict[str, list[Weight]] = {}
    for path, weight in datasets.items():
        by_prefix.setdefault(_owner_prefix(path), []).append(weight)

    def lookup(container: tuple[str, ...], layer: Layer, key: str, is_model: bool) -> tuple[Weight, ...]:
        base = "/".join(f"layers/{k}" for k in container + (key,))
        if is_model:
            return tuple(by_prefix.pop(f"{base}/vars", ()))
        found = []
        for prefix in [p for p in by_prefix if p == base or p.startswith(base + "/")]:
            found.extend(by_prefix.pop(prefix))
        return tuple(found)

    graph = attach(graph, lookup, generic_keys)
    # A subclassed (opaque) model keeps its variables under its own attribute names; the optimizer's
    # state is never the model's.
    owned = (lambda p: not p.startswith("optimizer")) if graph.opaque else (lambda p: p.startswith("layers/"))
    leftover = [w for prefix, ws in by_prefix.items() if owned(prefix) for w in ws]
    return replace(graph, unassigned_weights=tuple(leftover)) if leftover else graph


def _owner_prefix(path: str) -> str:
    """The group that owns a variable: everything before its vars/N (or the dataset's group)."""
    head, _, _ = path.rpartition("/")
    return head


def _attach_npz(graph: ModelGraph, zf, f) -> ModelGraph:
    """model.weights.npz: a zip of .npy arrays keyed like the .h5 paths; read only their headers."""
    import numpy as np

    datasets = {}
    try:
        with zipfile.ZipFile(_member_view(zf, f, WEIGHTS_NPZ)) as npz:
            for info in npz.infolist():
                key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                with npz.open(info) as arr:
                    version = np.lib.format.read_magic(arr)
                    shape, _, dtype = np.lib.format._read_array_header(arr, version)
                path = key.replace("\\", "/")
                datasets[path] = Weight(path=path, shape=tuple(int(d) for d in shape), dtype=str(dtype))
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise ModelReadError(f"{WEIGHTS_NPZ} is not a readable npz archive ({_one_line(exc)})") from None
    return attach_generic(graph, datasets)


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__
