"""Keras 3 `.keras` files: a zip of config.json, metadata.json and model.weights.h5 (or .npz).

The weights member is read in place: Keras stores it uncompressed, so it is a byte range of the
file, and h5py is handed a file object over that range. Nothing is extracted, copied or decoded
beyond HDF5 metadata.
"""

from __future__ import annotations

import io
import os
import stat
import struct
import zipfile
from dataclasses import replace

from modelaudit.errors import ModelReadError, exception_text
from modelaudit.formats import h5guard, json_config
from modelaudit.formats.archive import open_zip
from modelaudit.formats.manifest import attach, generic_keys
from modelaudit.formats.tfmot_aliases import drop_aliases
from modelaudit.graph import Layer, ModelGraph, SourceFacts, Weight

CONFIG = "config.json"
METADATA = "metadata.json"
WEIGHTS_H5 = "model.weights.h5"
WEIGHTS_NPZ = "model.weights.npz"
MAX_METADATA_BYTES = 1024 * 1024
# Keras writes three members and an asset or two per preprocessing layer; tens of thousands of
# members is a hostile archive, and every rule that looks at members would pay for each.
MAX_MEMBERS = 4096


class MemberFile(io.RawIOBase):
    """A read-only, seekable view of bytes [start, start + size) of an open file."""

    def __init__(self, f, start: int, size: int):
        self._f, self._start, self._size, self._pos = f, start, size, 0
        self._checked: set = set()  # global heap collections found sound (h5guard)
        # HDF5 reads through this object in many small pieces (10,000 layers: about 100,000 reads):
        # one pread straight into HDF5's buffer is a third cheaper than seek + read + copy.
        try:
            self._fd = f.fileno() if hasattr(os, "preadv") else None
        except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
            self._fd = None

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
        view = memoryview(buf).cast("B")
        n = min(len(view), self._size - self._pos)
        if n <= 0:
            return 0
        pos = self._pos
        if self._fd is not None:
            got = 0
            while got < n:
                k = os.preadv(self._fd, [view[got:n]], self._start + self._pos + got)
                if k <= 0:
                    break
                got += k
            self._pos += got
        else:
            self._f.seek(self._start + self._pos)
            data = self._f.read(n)
            buf[: len(data)] = data
            self._pos += len(data)
            got = len(data)
        if got >= 4 and view[:4] == h5guard.SIGNATURE:  # a global heap collection: see h5guard
            h5guard.check_read(self.read_at, pos, bytes(view[:4]), self._size, self._checked)
        return got

    def read_at(self, pos: int, n: int) -> bytes:
        """Up to n bytes at pos of the view (fewer at its end); the position is left alone."""
        n = max(0, min(n, self._size - pos))
        if n == 0 or pos < 0:
            return b""
        if self._fd is not None:
            return os.pread(self._fd, n, self._start + pos)
        here = self._f.tell()
        try:
            self._f.seek(self._start + pos)
            return self._f.read(n)
        finally:
            self._f.seek(here)


def read(path: str, scan=None) -> ModelGraph:
    """`scan`: a formats.scan.WeightScan to run on the weights while they are open (--scan-weights)."""
    file_size = os.path.getsize(path)
    with open(path, "rb") as f:
        zf, infos = open_zip(
            f, MAX_MEMBERS, lambda exc: f"not a readable zip ({exc})",
            lambda count: f"the archive holds {count} members, more than the {MAX_MEMBERS}-member bound: Keras "
            "writes config.json, metadata.json, the weights and a few assets",
        )
        with zf:
            names = [i.filename for i in infos]
            members = tuple((i.filename, i.compress_size, i.file_size, i.compress_type) for i in infos)
            if CONFIG not in names:
                raise ModelReadError(f"no {CONFIG} in the archive: not a Keras 3 .keras file")
            data = json_config.loads(_read_member(zf, CONFIG, json_config.MAX_CONFIG_BYTES), CONFIG)
            metadata, problem = _metadata(zf, names)
            version = metadata.get("keras_version") if isinstance(metadata, dict) else None
            graph = json_config.graph_from_config(data, format="keras-v3")
            source = SourceFacts(
                members=members, file_size=file_size,
                keras_version=version if isinstance(version, str) else None,
                metadata=metadata, metadata_problem=problem,
                **_container_facts(zf, infos, f),
            )
            if WEIGHTS_H5 in names:
                graph, source = _attach_h5(graph, zf, f, source, scan)
            elif WEIGHTS_NPZ in names:
                graph, source = _attach_npz(graph, zf, f, source, scan)
            return replace(graph, source=source)


def _metadata(zf: zipfile.ZipFile, names: list):
    """(metadata.json as parsed or None, why it could not be): Keras writes it and never reads it, so
    a broken one is a fact for the rules, not a reason to refuse the model."""
    if METADATA not in names:
        return None, None
    try:
        return json_config.loads(_read_member(zf, METADATA, MAX_METADATA_BYTES), METADATA), None
    except ModelReadError as exc:
        return None, str(exc)


def _container_facts(zf: zipfile.ZipFile, infos: list, f) -> dict:
    """What the archive holds beside its members' contents: the bytes before its first member, its
    comment, members with a Unix file type other than a file's or a folder's (a symbolic link), and
    local headers that disagree with the central directory. Bounded: one read per member."""
    from modelaudit.formats.detect import HIDDEN_HEAD, ZIP_END_SIZE, pickle_globals, zip_end

    start = min((i.header_offset for i in infos), default=zf.start_dir)
    prefix = _read_at(f, 0, min(start, HIDDEN_HEAD)) if start > 0 else b""
    comment = zf.comment or b""
    size = os.fstat(f.fileno()).st_size
    end = zip_end(lambda pos, n: _read_at(f, pos, n), size)
    end = end + ZIP_END_SIZE + len(comment) if end is not None else size
    suffix = _read_at(f, end, min(size - end, HIDDEN_HEAD)) if end < size else b""
    hidden = [(where, found) for where, data in (("prefix", prefix), ("comment", comment), ("suffix", suffix))
              for found in [pickle_globals(data)] if found is not None]
    modes = []
    for i in infos:
        mode = i.external_attr >> 16
        if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
            modes.append((i.filename, mode))
    return {"prefix_size": max(start, 0), "prefix_head": prefix, "suffix_size": max(size - end, 0), "suffix_head": suffix,
            "archive_comment": comment,
            "hidden_pickles": tuple(hidden), "member_modes": tuple(modes),
            "header_mismatches": tuple(_header_mismatches(infos, f))}


def _read_at(f, pos: int, n: int) -> bytes:
    f.seek(pos)
    return f.read(n)


ZIP_DATA_DESCRIPTOR = 0x08  # sizes and CRC follow the data; the local header holds zeros
ZIP64_MARK = 0xFFFFFFFF


def _header_mismatches(infos: list, f) -> list:
    """(name, how) for each member whose local header names it, sizes it, compresses it or checksums
    it otherwise than the central directory: readers that walk local headers (streaming unzip) and
    readers that trust the directory (Python's zipfile, Keras) then see different archives."""
    out = []
    for i in infos:
        header = _read_at(f, i.header_offset, 30) if i.header_offset >= 0 else b""
        if len(header) != 30 or header[:4] != b"PK\x03\x04":
            out.append((i.filename, "no local header where the central directory points"))
            continue
        flags, method, _t, _d, crc, csize, usize, nlen = struct.unpack_from("<HHHHIIIH", header, 6)
        raw = _read_at(f, i.header_offset + 30, nlen)
        name = raw.decode("utf-8" if flags & 0x800 else "cp437", "replace")
        differs = []
        if name != i.orig_filename:
            differs.append(f"names it {name!r}")
        if method != i.compress_type:
            differs.append(f"compression method {method} (directory: {i.compress_type})")
        if not (flags & ZIP_DATA_DESCRIPTOR and csize == usize == crc == 0):
            for what, local, central in (("compressed size", csize, i.compress_size),
                                         ("size", usize, i.file_size), ("CRC", crc, i.CRC)):
                if local != central and not (what != "CRC" and local == ZIP64_MARK):
                    differs.append(f"{what} {local:,} (directory: {central:,})")
        if differs:
            out.append((i.filename, "its local header gives " + ", ".join(differs)))
    return out


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


def _attach_h5(graph: ModelGraph, zf, f, source: SourceFacts, scan=None):
    from modelaudit.formats import hdf5

    view = _member_view(zf, f, WEIGHTS_H5)
    size = zf.getinfo(WEIGHTS_H5).file_size
    source = _member_user_block(view, size, source)
    tree = None
    if scan is None and isinstance(view, MemberFile):
        # the metadata read directly (formats/h5meta.py): no h5py, no numpy; None when the file holds
        # anything it does not interpret, and then h5py walks it as always
        from modelaudit.formats import h5meta

        tree = h5meta.walk(f.fileno(), view._start, view._size, size)
    if tree is not None:
        graph = attach_generic(graph, tree.datasets)
    else:
        import h5py

        try:
            with h5py.File(view, "r") as h5:
                tree = hdf5.walk(h5, "", size)
                graph = attach_generic(graph, tree.datasets)
                if scan is not None:
                    from modelaudit.formats.scan import model_weights

                    scan.run_h5(h5, model_weights(graph), hdf5.never_read(tree))
        except ModelReadError:
            raise
        except Exception as exc:  # h5py raises OSError, KeyError, RuntimeError... on damaged files
            raise ModelReadError(f"{WEIGHTS_H5} is not a readable HDF5 file ({exception_text(exc)})") from None
    source = replace(source, hdf5_links=tuple(tree.links), oversized=tuple(tree.oversized))
    return graph, source


def _member_user_block(view, size: int, source: SourceFacts) -> SourceFacts:
    """The weights' own user block (bytes before their superblock, which h5py skips), for the rules."""
    from modelaudit.formats.detect import HIDDEN_HEAD, hdf5_superblock, pickle_globals

    def read_at(pos: int, n: int) -> bytes:
        view.seek(pos)
        return view.read(n)

    at = hdf5_superblock(read_at, size)
    if not at:
        view.seek(0)
        return source
    head = read_at(0, min(at, HIDDEN_HEAD))
    view.seek(0)
    found = pickle_globals(head)
    return replace(source, member_prefixes=((WEIGHTS_H5, at, head),),
                   hidden_pickles=source.hidden_pickles + (((WEIGHTS_H5, found),) if found is not None else ()))


def attach_generic(graph: ModelGraph, datasets: dict) -> ModelGraph:
    """Keras 3 keys variables by generic class-based names: layers/dense_1/vars/0. Map them back."""
    by_prefix: dict[str, list[Weight]] = {}
    for path, weight in datasets.items():
        by_prefix.setdefault(_owner_prefix(path), []).append(weight)
    # Every group path -> the prefixes at or below it, in walk order: a layer's lookup is then one
    # dict access, not a scan of every prefix (quadratic in layers: 1.4 s of 10,000 layers' check).
    below: dict[str, list[str]] = {}
    for prefix in by_prefix:
        parts = prefix.split("/")
        for i in range(1, len(parts) + 1):
            below.setdefault("/".join(parts[:i]), []).append(prefix)

    def lookup(container: tuple[str, ...], layer: Layer, key: str, is_model: bool) -> tuple[Weight, ...]:
        base = "/".join(f"layers/{k}" for k in container + (key,))
        if is_model:
            return tuple(by_prefix.pop(f"{base}/vars", ()))
        # a tfmot wrapper's copies of its wrapped layer's variables (formats/tfmot_aliases.py)
        own, inner = by_prefix.get(f"{base}/vars", []), by_prefix.get(f"{base}/layer/vars", [])
        once = drop_aliases(layer.class_name, _by_position(own), _by_position(inner)) if own else None
        found = []
        for prefix in below.get(base, ()):
            found.extend(by_prefix.pop(prefix, ()))
        return tuple(found) if once is None else tuple(once)

    graph = attach(graph, lookup, generic_keys)
    # A subclassed (opaque) model keeps its variables under its own attribute names; the optimizer's
    # state is never the model's.
    owned = (lambda p: not p.startswith("optimizer")) if graph.opaque else (lambda p: p.startswith("layers/"))
    leftover = [w for prefix, ws in by_prefix.items() if owned(prefix) for w in ws]
    return replace(graph, unassigned_weights=tuple(leftover)) if leftover else graph


def _by_position(weights: list[Weight]) -> list[Weight]:
    """A group's variables in the order Keras listed them (vars/10 sorts before vars/2 in the file)."""

    def position(w: Weight) -> int:
        last = w.path.rpartition("/")[2]
        return int(last) if last.isdigit() else -1

    return sorted(weights, key=position)


def _model_owned(graph: ModelGraph, path: str) -> bool:
    return not path.startswith("optimizer") if graph.opaque else path.startswith("layers/")


def _owner_prefix(path: str) -> str:
    """The group that owns a variable: everything before its vars/N (or the dataset's group)."""
    head, _, _ = path.rpartition("/")
    return head


def _attach_npz(graph: ModelGraph, zf, f, source: SourceFacts, scan=None):
    """model.weights.npz: variables keyed like the .h5 paths (layers/dense/vars/0), from the arrays'
    headers and, for the pickled members Keras 3 writes, from their opcodes read as data
    (formats/npz.py). A pickled member of any other layout is an object array no layer claims."""
    from modelaudit.formats import npz

    view = _member_view(zf, f, WEIGHTS_NPZ)
    raw = _raw_pickle(view)
    if raw is not None:  # no npz at all: what np.load(allow_pickle=True) unpickles (older Keras 3)
        return graph, replace(source, pickled_members=((WEIGHTS_NPZ, raw),))
    view.seek(0)
    found = npz.read_npz(view)
    graph = attach_generic(graph, found.datasets)
    # an object array of unknown content where a layer's variables belong is the model's; the
    # optimizer's is not (as attach_generic decides for the .h5 paths)
    unknown = tuple(w for w in found.unknown if _model_owned(graph, w.path))
    if unknown:
        graph = replace(graph, unassigned_weights=graph.unassigned_weights + unknown)
    source = replace(source, pickled_members=tuple(found.pickled))
    if scan is not None:
        _scan_npz(graph, zf, f, scan)
    return graph, source


RAW_PICKLE_HEAD = 1 << 20  # the globals of a raw pickle are looked for in its first MiB


def _raw_pickle(view):
    """The globals of a weights member that is a pickle, not an npz or .npy (np.load falls back to
    unpickling anything else when allowed to), or None."""
    from modelaudit.formats.detect import ZIP_SIGNATURES, pickle_globals
    from modelaudit.formats.npz import MAGIC

    head = view.read(RAW_PICKLE_HEAD)
    if not head or head[:4] in ZIP_SIGNATURES or head.startswith(MAGIC):
        return None
    return pickle_globals(head)


def _scan_npz(graph: ModelGraph, zf, f, scan) -> None:
    """--scan-weights on the plain arrays; a variable inside a pickle is recorded as never read."""
    from modelaudit.formats import npz
    from modelaudit.formats.scan import WeightFacts, model_weights, npy_chunks

    wanted = {w.path: w for w in model_weights(graph)}
    try:
        with zipfile.ZipFile(_member_view(zf, f, WEIGHTS_NPZ)) as archive:
            for info in archive.infolist():
                weight = wanted.get(npz.member_key(info.filename))
                if weight is not None and weight.dtype != "object":
                    with archive.open(info) as arr:
                        scan.run_arrays([(weight, npy_chunks(arr))])
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise ModelReadError(f"{WEIGHTS_NPZ} is not a readable npz archive ({exception_text(exc)})") from None
    for path, weight in wanted.items():
        if path not in scan.facts:
            facts = scan.facts[path] = WeightFacts(path, tuple(weight.shape), weight.dtype)
            facts.skipped = "stored inside a pickle (an object array), which is never read"
