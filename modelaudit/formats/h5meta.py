"""A fast path for the weights tree of the HDF5 files Keras writes: names, shapes and dtypes read
straight from the file's metadata in pure Python, without importing h5py or numpy.

Why: through the HDF5 library every object costs 30-50 µs to open, and h5py with numpy costs about
80 ms to import; on a 10,000-layer model the walk was most of `modelaudit check` (bench/README.md).
This module reads only what h5py writes by default (superblock 0-3; version 1 and 2 object headers;
groups as symbol tables or compact link messages; contiguous, compact or chunked datasets of
little-endian IEEE floats and integers) and declines everything else: `walk` returns None and the
caller walks the file with h5py (hdf5.walk), which then decides as before. In particular anything a
security rule looks at — soft, external or user-defined links, external storage, virtual datasets —
is never interpreted here: its presence alone sends the file to h5py. Every read is bounded; a
damaged or hostile file either is declined or raises ModelReadError through the h5py path, never here.
"""

from __future__ import annotations

import os
import struct

from modelaudit.formats.hdf5 import MAX_DEPTH, MAX_OBJECTS, OVERSIZE_FACTOR, Tree, natural_key
from modelaudit.graph import Weight

SIGNATURE = b"\x89HDF\r\n\x1a\n"
UNDEF = 0xFFFFFFFFFFFFFFFF
MAX_HEAP = 64 << 20  # a group's name heap
MAX_HEADER = 1 << 20  # one object header chunk
MAX_CHUNKS = 256  # continuation blocks of one object header
MAX_BTREE_NODES = 1 << 20

_FLOATS = {  # (size, precision, exponent location, exponent size, mantissa location, mantissa size, bias)
    (2, 16, 10, 5, 0, 10, 15): "float16",
    (4, 32, 23, 8, 0, 23, 127): "float32",
    (8, 64, 52, 11, 0, 52, 1023): "float64",
}


class Unsupported(Exception):
    """Something this reader does not interpret: the caller uses h5py instead."""


class Reader:
    """Bytes of an HDF5 image that starts at `base` in an open file."""

    def __init__(self, fd: int, base: int, size: int):
        self.fd, self.base, self.size = fd, base, size

    def read(self, addr: int, n: int) -> bytes:
        if addr < 0 or n < 0 or addr + n > self.size:
            raise Unsupported("address out of range")
        data = os.pread(self.fd, n, self.base + addr)
        if len(data) != n:
            raise Unsupported("short read")
        return data

    def read_upto(self, addr: int, n: int) -> bytes:
        if addr < 0 or addr >= self.size:
            raise Unsupported("address out of range")
        return self.read(addr, min(n, self.size - addr))


def walk(fd: int, base: int, size: int, file_size: int):
    """The Tree of every dataset in the HDF5 image [base, base + size) of `fd`, or None when the file
    uses anything this reader does not interpret."""
    if not hasattr(os, "pread"):
        return None
    try:
        return _Walker(Reader(fd, base, size), file_size).run()
    except (Unsupported, struct.error, IndexError, ValueError, OverflowError, UnicodeDecodeError, OSError):
        return None
    except RecursionError:  # pragma: no cover - the walk is iterative
        return None


class _Walker:
    def __init__(self, r: Reader, file_size: int):
        self.r, self.file_size = r, file_size
        self.tree = Tree()
        self.budget = MAX_OBJECTS
        self.heaps: dict = {}

    # ---- superblock ---------------------------------------------------------------------------

    def run(self) -> Tree:
        r = self.r
        head = r.read_upto(0, 256)
        if head[:8] != SIGNATURE:
            raise Unsupported("no signature at offset 0")
        version = head[8]
        if version in (0, 1):
            self.so, self.sl = head[13], head[14]
            if (self.so, self.sl) != (8, 8):
                raise Unsupported("offsets or lengths not 8 bytes")
            pos = 24 if version == 0 else 28
            base, _, _, _ = struct.unpack_from("<4Q", head, pos)
            entry = pos + 32
            _name, root_addr, cache, _ = struct.unpack_from("<QQII", head, entry)
        elif version in (2, 3):
            self.so, self.sl = head[9], head[10]
            if (self.so, self.sl) != (8, 8):
                raise Unsupported("offsets or lengths not 8 bytes")
            base, ext, _eof, root_addr = struct.unpack_from("<4Q", head, 12)
            if ext != UNDEF:
                raise Unsupported("superblock extension")
        else:
            raise Unsupported(f"superblock version {version}")
        if base != 0:
            raise Unsupported("base address not 0")
        kind, info = self.object(root_addr)
        if kind != "group":
            raise Unsupported("root is not a group")
        stack = [(info, "", 0)]
        while stack:
            info, path, depth = stack.pop()
            if depth > MAX_DEPTH:
                raise Unsupported("deep")  # h5py says why
            links = self.links(info)
            self.budget -= len(links)
            if self.budget < 0:
                raise Unsupported("too many objects")  # h5py says why
            if len(links) > 1:
                links.sort(key=lambda e: natural_key(e[0]))
            children = []
            for name, child in links:
                child_path = f"{path}/{name}" if path else name
                ckind, cinfo = self.object(child)
                if ckind == "group":
                    children.append((cinfo, child_path, depth + 1))
                elif ckind == "dataset":
                    self.tree.datasets[child_path] = self.weight(child_path, cinfo)
            stack.extend(reversed(children))
        return self.tree

    # ---- object headers -------------------------------------------------------------------------

    def object(self, addr: int):
        """("group", messages) | ("dataset", messages) | ("other", messages) for the header at addr."""
        msgs = self.messages(addr)
        types = {t for t, _, _ in msgs}
        if 0x0007 in types:
            raise Unsupported("external storage")
        if 0x0011 in types or 0x0002 in types or 0x0006 in types:
            return "group", msgs
        if 0x0008 in types:
            return "dataset", msgs
        return "other", msgs

    def messages(self, addr: int) -> list:
        """[(type, flags, data)] of an object header, continuations followed."""
        r = self.r
        first = r.read_upto(addr, 512)
        out: list = []
        if first[:4] == b"OHDR":
            self._v2(addr, first, out)
            return out
        if first[0] != 1:
            raise Unsupported("object header version")
        count, _refs, size = struct.unpack_from("<HII", first, 2)
        blocks = [(addr + 16, size)]
        seen = 0
        while blocks:
            if seen > MAX_CHUNKS:
                raise Unsupported("too many header blocks")
            seen += 1
            start, size = blocks.pop(0)
            if size > MAX_HEADER:
                raise Unsupported("header block too large")
            data = first[start - addr:start - addr + size] if start - addr + size <= len(first) and start >= addr else r.read(start, size)
            pos = 0
            while pos + 8 <= len(data) and len(out) < count:
                mtype, msize, mflags = struct.unpack_from("<HHB", data, pos)
                body = data[pos + 8:pos + 8 + msize]
                if len(body) != msize:
                    raise Unsupported("truncated message")
                if mtype == 0x0010:
                    blocks.append(struct.unpack_from("<QQ", body, 0))
                out.append((mtype, mflags, body))
                pos += 8 + msize
        return out

    def _v2(self, addr: int, first: bytes, out: list) -> None:
        r = self.r
        if first[4] != 2:
            raise Unsupported("object header version")
        flags = first[5]
        pos = 6
        if flags & 0x20:
            pos += 16
        if flags & 0x10:
            pos += 4
        width = 1 << (flags & 3)
        size = int.from_bytes(first[pos:pos + width], "little")
        pos += width
        creation = bool(flags & 0x04)
        blocks = [(addr + pos, size, False)]
        seen = 0
        while blocks:
            if seen > MAX_CHUNKS:
                raise Unsupported("too many header blocks")
            seen += 1
            start, size, continued = blocks.pop(0)
            if size > MAX_HEADER:
                raise Unsupported("header block too large")
            data = r.read(start, size)
            p = 4 if continued else 0
            if continued and data[:4] != b"OCHK":
                raise Unsupported("bad continuation block")
            end = len(data) - 4 if continued else len(data)
            hdr = 6 if creation else 4
            while p + hdr <= end:
                mtype = data[p]
                msize = struct.unpack_from("<H", data, p + 1)[0]
                mflags = data[p + 3]
                body = data[p + hdr:p + hdr + msize]
                if len(body) != msize:
                    raise Unsupported("truncated message")
                if mtype == 0x10:
                    caddr, clen = struct.unpack_from("<QQ", body, 0)
                    blocks.append((caddr, clen, True))
                out.append((mtype, mflags, body))
                p += hdr + msize
        # the first chunk's checksum sits after `size` bytes and is not needed for reading

    # ---- groups -------------------------------------------------------------------------------------

    def links(self, msgs: list) -> list:
        out = []
        for mtype, mflags, body in msgs:
            if mflags & 0x02:
                raise Unsupported("shared message in a group")
            if mtype == 0x0011:
                btree, heap = struct.unpack_from("<QQ", body, 0)
                out.extend(self._symbol_table(btree, heap))
            elif mtype == 0x0002:
                flags = body[1]
                pos = 2 + (8 if flags & 1 else 0)
                fheap = struct.unpack_from("<Q", body, pos)[0]
                if fheap != UNDEF:
                    raise Unsupported("dense link storage")
            elif mtype == 0x0006:
                out.append(self._link(body))
        return out

    def _link(self, body: bytes):
        if body[0] != 1:
            raise Unsupported("link message version")
        flags = body[1]
        pos = 2
        kind = 0
        if flags & 0x08:
            kind = body[pos]
            pos += 1
        if kind != 0:
            raise Unsupported("soft, external or user-defined link")
        if flags & 0x04:
            pos += 8
        if flags & 0x10:
            pos += 1
        width = 1 << (flags & 3)
        n = int.from_bytes(body[pos:pos + width], "little")
        pos += width
        name = body[pos:pos + n].decode("utf-8")
        if len(name.encode("utf-8")) != n or "/" in name or not name:
            raise Unsupported("bad link name")
        return name, struct.unpack_from("<Q", body, pos + n)[0]

    def _heap(self, addr: int) -> bytes:
        data = self.heaps.get(addr)
        if data is None:
            head = self.r.read_upto(addr, 32 + 480)  # h5py puts a small group's names right after
            if len(head) < 32 or head[:4] != b"HEAP" or head[4] != 0:
                raise Unsupported("bad local heap")
            size, _free, data_addr = struct.unpack_from("<QQQ", head, 8)
            if size > MAX_HEAP:
                raise Unsupported("local heap too large")
            if data_addr == addr + 32 and 32 + size <= len(head):
                data = head[32:32 + size]
            else:
                data = self.r.read(data_addr, size)
            self.heaps[addr] = data
        return data

    def _symbol_table(self, btree: int, heap_addr: int) -> list:
        heap = self._heap(heap_addr)
        out = []
        stack = [btree]
        visited = set()
        while stack:
            node = stack.pop()
            if node in visited or len(visited) > MAX_BTREE_NODES:
                raise Unsupported("B-tree cycle")
            visited.add(node)
            head = self.r.read_upto(node, 24 + 32 * 16 + 8)  # a node of h5py's default K = 16, whole
            if len(head) < 24 or head[:4] != b"TREE" or head[4] != 0:
                raise Unsupported("bad group B-tree node")
            level, used = head[5], struct.unpack_from("<H", head, 6)[0]
            if 24 + used * 16 + 8 <= len(head):
                body = head[24:24 + used * 16 + 8]
            else:
                body = self.r.read(node + 24, used * 16 + 8)
            children = [struct.unpack_from("<Q", body, 8 + 16 * i)[0] for i in range(used)]
            if level > 0:
                stack.extend(reversed(children))
                continue
            for snod in children:
                if snod in visited:
                    raise Unsupported("B-tree cycle")
                visited.add(snod)
                sh = self.r.read_upto(snod, 8 + 8 * 40)  # a node of h5py's default K = 4, whole
                if len(sh) < 8 or sh[:4] != b"SNOD" or sh[4] != 1:
                    raise Unsupported("bad symbol table node")
                count = struct.unpack_from("<H", sh, 6)[0]
                entries = sh[8:8 + 40 * count] if 8 + 40 * count <= len(sh) else self.r.read(snod + 8, 40 * count)
                for i in range(count):
                    name_off, obj, cache = struct.unpack_from("<QQI", entries, 40 * i)
                    if cache == 2:
                        raise Unsupported("soft link")
                    end = heap.find(b"\0", name_off)
                    if name_off >= len(heap) or end < 0:
                        raise Unsupported("bad link name offset")
                    name = heap[name_off:end].decode("utf-8")
                    if not name or "/" in name:
                        raise Unsupported("bad link name")
                    out.append((name, obj))
        return out

    # ---- datasets -----------------------------------------------------------------------------------

    def weight(self, path: str, msgs: list) -> Weight:
        shape = dtype = layout = None
        for mtype, mflags, body in msgs:
            if mtype in (0x0001, 0x0003, 0x0008) and mflags & 0x02:
                raise Unsupported("shared message")
            if mtype == 0x0001:
                shape = _dataspace(body)
            elif mtype == 0x0003:
                dtype = _datatype(body)
            elif mtype == 0x0008:
                layout = body
        if shape is None or dtype is None or layout is None:
            raise Unsupported("dataset without dataspace, datatype or layout")
        if layout[0] not in (3, 4) or layout[1] not in (0, 1, 2):
            raise Unsupported("layout")  # a virtual dataset (class 3) among others: h5py reports it
        name, itemsize = dtype
        declared = itemsize
        for d in shape:
            declared *= d
        if declared > max(self.file_size, 1) * OVERSIZE_FACTOR and declared > 1 << 20:
            self.tree.oversized.append((path, declared))
        return Weight(path=path, shape=shape, dtype=name)


def _dataspace(body: bytes) -> tuple:
    version, rank, flags = body[0], body[1], body[2]
    if version == 1:
        pos = 8
    elif version == 2:
        if body[3] == 2:  # null dataspace: h5py's shape None, which hdf5.walk records as ()
            return ()
        pos = 4
    else:
        raise Unsupported("dataspace version")
    dims = struct.unpack_from(f"<{rank}Q", body, pos)
    return tuple(int(d) for d in dims)


def _datatype(body: bytes) -> tuple:
    cls, version = body[0] & 0x0F, body[0] >> 4
    bits = body[1] | (body[2] << 8) | (body[3] << 16)
    size = struct.unpack_from("<I", body, 4)[0]
    if version not in (1, 2, 3):
        raise Unsupported("datatype version")
    if cls == 0:  # fixed point
        offset, precision = struct.unpack_from("<HH", body, 8)
        if bits & 0x07 or offset != 0 or precision != 8 * size or size not in (1, 2, 4, 8):
            raise Unsupported("integer type")
        return ("int" if bits & 0x08 else "uint") + str(8 * size), size
    if cls == 1:  # floating point
        offset, precision, eloc, esize, mloc, msize, bias = struct.unpack_from("<HHBBBBI", body, 8)
        if bits & 0x41 or offset != 0:  # big-endian or VAX order
            raise Unsupported("float byte order")
        name = _FLOATS.get((size, precision, eloc, esize, mloc, msize, bias))
        if name is None or (bits >> 8) & 0xFF != 8 * size - 1 or (bits >> 4) & 3 != 2 or bits & 0x0E:
            raise Unsupported("non-IEEE float")
        return name, size
    raise Unsupported(f"datatype class {cls}")
