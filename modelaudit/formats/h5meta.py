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

`read` also gives the attributes of chosen groups, as h5py gives them (a legacy `.h5` model keeps its
config and its weight manifest there): text, fixed-length or variable-length (kept in global heap
collections), scalar or one-dimensional, and empty numeric arrays (Keras's `weight_names` of a layer
without weights). Any other attribute of such a group declines the file.
"""

from __future__ import annotations

import os
import struct

from dataclasses import dataclass, field
from typing import Callable, Optional

from modelaudit.formats import h5guard
from modelaudit.formats.hdf5 import MAX_DEPTH, MAX_OBJECTS, OVERSIZE_FACTOR, Tree, natural_key
from modelaudit.graph import Weight

SIGNATURE = b"\x89HDF\r\n\x1a\n"
UNDEF = 0xFFFFFFFFFFFFFFFF
MAX_HEAP = 64 << 20  # a group's name heap
MAX_HEADER = 1 << 20  # one object header chunk
MAX_CHUNKS = 256  # continuation blocks of one object header
MAX_BTREE_NODES = 1 << 20
# Object header messages of the files h5py writes: nil, dataspace, link info, datatype, fill value
# (old, new), link, layout, group info, filter pipeline, attribute, modification time (old), header
# continuation, symbol table, modification time, attribute info, reference count.
KNOWN_MESSAGES = frozenset({0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x08, 0x0A, 0x0B, 0x0C, 0x0E, 0x10, 0x11,
                            0x12, 0x15, 0x16})
MAX_ATTR_ELEMENTS = 1 << 20  # values in one attribute (Keras's longest: one name per layer)

_FLOATS = {  # (size, precision, exponent location, exponent size, mantissa location, mantissa size, bias)
    (2, 16, 10, 5, 0, 10, 15): "float16",
    (4, 32, 23, 8, 0, 23, 127): "float32",
    (8, 64, 52, 11, 0, 52, 1023): "float64",
}


@dataclass
class Contents:
    """What `read` found: the datasets (as `walk`), and for the groups asked for, their attributes
    (name -> value, as h5py returns it: str for variable-length text, bytes for fixed-length, a list
    for a one-dimensional array) and the names of their members in HDF5's name order (h5py's keys())."""

    tree: Tree
    attrs: dict = field(default_factory=dict)  # group path ("" for the root) -> {name: value}
    members: dict = field(default_factory=dict)  # group path -> [member name]


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
    contents = read(fd, base, size, file_size)
    return contents.tree if contents is not None else None


def read(fd: int, base: int, size: int, file_size: int,
         attrs_of: Optional[Callable[[str], bool]] = None) -> Optional[Contents]:
    """`walk`, plus the attributes and member names of every group whose path `attrs_of` accepts;
    None when the file uses anything this reader does not interpret."""
    if not hasattr(os, "pread"):
        return None
    try:
        walker = _Walker(Reader(fd, base, size), file_size, attrs_of)
        tree = walker.run()
        return Contents(tree, walker.attrs, walker.members)
    except (Unsupported, struct.error, IndexError, ValueError, OverflowError, UnicodeDecodeError, OSError):
        return None
    except RecursionError:  # pragma: no cover - the walk is iterative
        return None


class _Walker:
    def __init__(self, r: Reader, file_size: int, attrs_of=None):
        self.r, self.file_size = r, file_size
        self.tree = Tree()
        self.budget = MAX_OBJECTS
        self.heaps: dict = {}
        self.attrs_of = attrs_of
        self.attrs: dict = {}
        self.members: dict = {}
        self.collections: dict = {}  # global heap collection address -> {object index: bytes}
        self.collection_bytes = 0

    # ---- superblock ---------------------------------------------------------------------------

    def run(self) -> Tree:
        r = self.r
        self.user_block = self._skip_user_block()
        head = r.read_upto(0, 256)
        root_addr = self._superblock(head)
        kind, info = self.object(root_addr)
        if kind != "group":
            raise Unsupported("root is not a group")
        stack = [(info, "", 0)]
        seen = {root_addr}  # a second link to a group (a cycle, say): h5py's walk says why
        while stack:
            info, path, depth = stack.pop()
            if depth > MAX_DEPTH:
                raise Unsupported("deep")  # h5py says why
            links = self.links(info)
            self.budget -= len(links)
            if self.budget < 0:
                raise Unsupported("too many objects")  # h5py says why
            if len({name for name, _ in links}) != len(links):
                raise Unsupported("two links of one name")
            if self.attrs_of is not None and self.attrs_of(path):
                self.attrs[path] = self.attributes(info)
                self.members[path] = sorted((name for name, _ in links), key=lambda n: n.encode("utf-8"))
            if len(links) > 1:
                links.sort(key=lambda e: natural_key(e[0]))
            children = []
            for name, child in links:
                child_path = f"{path}/{name}" if path else name
                ckind, cinfo = self.object(child)
                if ckind == "group":
                    if child in seen:
                        raise Unsupported("a second link to a group")
                    seen.add(child)
                    children.append((cinfo, child_path, depth + 1))
                elif ckind == "dataset":
                    self.tree.datasets[child_path] = self.weight(child_path, cinfo)
            stack.extend(reversed(children))
        return self.tree

    def _skip_user_block(self) -> int:
        """The superblock where the HDF5 library finds it (0, 512, 1024, ...); the image is then read
        from there, its addresses being relative to it."""
        from modelaudit.formats.detect import hdf5_superblock

        r = self.r
        at = hdf5_superblock(lambda pos, n: r.read_upto(pos, n), r.size)
        if at is None:
            raise Unsupported("no signature")
        r.base, r.size = r.base + at, r.size - at
        return at

    def _superblock(self, head: bytes) -> int:
        """The root group's address, from a superblock the HDF5 library would open as it is."""
        r = self.r
        version = head[8]
        if version in (0, 1):
            self.so, self.sl = head[13], head[14]
            if (self.so, self.sl) != (8, 8):
                raise Unsupported("offsets or lengths not 8 bytes")
            if head[9] or head[10] or head[12] or 0 in struct.unpack_from("<HH", head, 16) or head[20:24] != bytes(4):
                raise Unsupported("superblock field versions or status flags")  # the library refuses them
            pos = 24 if version == 0 else 28
            base, ext, eof, driver = struct.unpack_from("<4Q", head, pos)
            if driver != UNDEF or ext != UNDEF:
                raise Unsupported("driver information block or superblock extension")
            _name, root_addr, cache, _ = struct.unpack_from("<QQII", head, pos + 32)
            if cache not in (0, 1):
                raise Unsupported("root symbol table entry cache type")
        elif version in (2, 3):
            self.so, self.sl = head[9], head[10]
            if (self.so, self.sl) != (8, 8):
                raise Unsupported("offsets or lengths not 8 bytes")
            if head[11]:
                raise Unsupported("superblock status flags")
            base, ext, eof, root_addr = struct.unpack_from("<4Q", head, 12)
            if ext != UNDEF:
                raise Unsupported("superblock extension")
        else:
            raise Unsupported(f"superblock version {version}")
        # the base address is the superblock's own offset (the user block's size); the end-of-file
        # address counts from the start of the file
        if base != self.user_block or eof < base:
            raise Unsupported("base address not the superblock's")
        eof -= base
        if eof > r.size:
            raise Unsupported("truncated file")  # the library refuses it: h5py says so
        r.size = eof  # the library reads nothing past the end it records
        return root_addr

    # ---- object headers -------------------------------------------------------------------------

    def object(self, addr: int):
        """("group", messages) | ("dataset", messages) | ("other", messages) for the header at addr."""
        msgs = self.messages(addr)
        types = {t for t, _, _ in msgs}
        if 0x0007 in types:
            raise Unsupported("external storage")
        if not types <= KNOWN_MESSAGES:
            raise Unsupported("a message type h5py does not write")  # the library decides what it means
        if any(mflags & ~0x01 for _, mflags, _ in msgs):
            raise Unsupported("message flags other than constant")  # shared, unknown-type handling...
        if 0x0011 in types or 0x0002 in types or 0x0006 in types:
            return "group", msgs
        if 0x0008 in types:
            return "dataset", msgs
        if 0x0003 in types:
            return "other", msgs  # a named datatype, which the h5py walk opens and passes over
        raise Unsupported("an object of no type")  # the library refuses to open it

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
            while pos < len(data):  # every block is messages end to end, as the library reads it
                mtype, msize, mflags = struct.unpack_from("<HHB", data, pos)
                body = data[pos + 8:pos + 8 + msize]
                if len(body) != msize or msize % 8:
                    raise Unsupported("truncated or unaligned message")  # the library refuses both
                if mtype == 0x0010:
                    blocks.append(struct.unpack_from("<QQ", body, 0))
                out.append((mtype, mflags, body))
                pos += 8 + msize
        if len(out) != count:
            raise Unsupported("fewer messages than the header counts")
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
        size, pos = _flag_sized(first, pos, flags)
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
        n, pos = _flag_sized(body, pos, flags)
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
            size, free, data_addr = struct.unpack_from("<QQQ", head, 8)
            if size > MAX_HEAP:
                raise Unsupported("local heap too large")
            if data_addr == addr + 32 and 32 + size <= len(head):
                data = head[32:32 + size]
            else:
                data = self.r.read(data_addr, size)
            _check_free_list(data, free)
            self.heaps[addr] = data
        return data

    def _symbol_table(self, btree: int, heap_addr: int) -> list:
        """The links of a group stored as a symbol table, checked the way the HDF5 library looks a
        name up (a binary search over the B-tree's keys, then over a node's sorted entries): a name
        h5py could not find by name again, the library's walk refuses."""
        heap = self._heap(heap_addr)
        out = []
        stack = [(btree, None, None)]  # node, the names below it lie in (low, high]
        visited = set()
        while stack:
            node, low, high = stack.pop()
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
            keys = [_heap_name(heap, struct.unpack_from("<Q", body, 16 * i)[0]) for i in range(used + 1)]
            if any(a > b for a, b in zip(keys, keys[1:])) or (low is not None and keys[0] < low) or (
                    high is not None and keys[-1] > high):
                raise Unsupported("group B-tree keys out of order")
            children = [(struct.unpack_from("<Q", body, 8 + 16 * i)[0], keys[i], keys[i + 1]) for i in range(used)]
            if level > 0:
                stack.extend(reversed(children))
                continue
            for snod, low_key, high_key in children:
                if snod in visited:
                    raise Unsupported("B-tree cycle")
                visited.add(snod)
                out.extend(self._symbol_node(snod, heap, low_key, high_key))
        return out

    def _symbol_node(self, snod: int, heap: bytes, low: bytes, high: bytes) -> list:
        sh = self.r.read_upto(snod, 8 + 8 * 40)  # a node of h5py's default K = 4, whole
        if len(sh) < 8 or sh[:4] != b"SNOD" or sh[4] != 1:
            raise Unsupported("bad symbol table node")
        count = struct.unpack_from("<H", sh, 6)[0]
        entries = sh[8:8 + 40 * count] if 8 + 40 * count <= len(sh) else self.r.read(snod + 8, 40 * count)
        out = []
        previous = low
        for i in range(count):
            name_off, obj, cache = struct.unpack_from("<QQI", entries, 40 * i)
            if cache == 2:
                raise Unsupported("soft link")
            if cache not in (0, 1):
                raise Unsupported("symbol table entry cache type")
            raw = _heap_name(heap, name_off)
            if not raw or b"/" in raw or raw <= previous or raw > high:
                raise Unsupported("bad link name, or names out of order")
            previous = raw
            out.append((raw.decode("utf-8"), obj))
        return out

    # ---- attributes -------------------------------------------------------------------------------

    def attributes(self, msgs: list) -> dict:
        """{name: value} of a group's attributes, as h5py reads them (see `_attribute`)."""
        out: dict = {}
        for mtype, mflags, body in msgs:
            if mtype == 0x0015:  # attribute info: compact attributes unless a fractal heap holds them
                pos = 2 + (2 if body[1] & 0x01 else 0)
                if body[0] != 0 or struct.unpack_from("<Q", body, pos)[0] != UNDEF:
                    raise Unsupported("dense attribute storage")
            elif mtype == 0x000C:
                name, value = self._attribute(body)
                if name in out:
                    raise Unsupported("two attributes of one name")
                out[name] = value
        return out

    def _attribute(self, body: bytes):
        """(name, value) of an attribute message: text as h5py gives it (str if variable-length,
        bytes if fixed-length), a scalar or a list; an empty numeric array as []."""
        version, flags = body[0], body[1]
        if version not in (1, 2, 3) or flags:
            raise Unsupported("attribute version or shared parts")
        name_size, type_size, space_size = struct.unpack_from("<HHH", body, 2)
        pos = 8 if version < 3 else 9
        if version == 3 and body[8] not in (0, 1):
            raise Unsupported("attribute name encoding")
        pad = (lambda n: (n + 7) & ~7) if version == 1 else (lambda n: n)
        raw_name = body[pos:pos + name_size]
        if name_size < 2 or len(raw_name) != name_size or raw_name[-1] != 0 or b"\0" in raw_name[:-1]:
            raise Unsupported("bad attribute name")
        name = raw_name[:-1].decode("utf-8")
        pos += pad(name_size)
        dtype = body[pos:pos + type_size]
        pos += pad(type_size)
        space = body[pos:pos + space_size]
        pos += pad(space_size)
        if len(dtype) != type_size or len(space) != space_size or space_size < 4:
            raise Unsupported("truncated attribute")
        if space[0] == 2 and space[3] == 2:
            raise Unsupported("null dataspace")  # h5py's Empty: the h5py path says what it is
        shape = _dataspace(space)
        if len(shape) > 1:
            raise Unsupported("attribute of more than one dimension")
        count = shape[0] if shape else 1
        if count > MAX_ATTR_ELEMENTS:
            raise Unsupported("attribute too long")
        kind, size = _attribute_type(dtype)
        data = body[pos:pos + count * size]
        if len(data) != count * size:
            raise Unsupported("attribute data cut short")
        if kind == "number":
            if count != 0 or not shape:
                raise Unsupported("numeric attribute")  # h5py gives numbers; Keras writes only empty ones
            return name, []
        values = [self._text(kind, data[i * size:(i + 1) * size]) for i in range(count)]
        return name, values if shape else values[0]

    def _text(self, kind: str, raw: bytes):
        if kind == "fixed":
            return raw.rstrip(b"\0")  # as numpy's bytes_: trailing NULs dropped, h5py gives these bytes
        length, collection, index = struct.unpack_from("<IQI", raw, 0)
        if length == 0:
            raise Unsupported("empty variable-length string")  # Keras never writes one
        data = self._heap_object(collection, index)
        if len(data) != length or b"\0" in data:
            raise Unsupported("variable-length string of another length, or holding NUL")
        return data.decode("utf-8")  # h5py would decode bad UTF-8 with escapes: declined instead

    def _heap_object(self, addr: int, index: int) -> bytes:
        objects = self.collections.get(addr)
        if objects is None:
            objects = self.collections[addr] = self._collection(addr)
        data = objects.get(index)
        if data is None:
            raise Unsupported("no such global heap object")
        return data

    def _collection(self, addr: int) -> dict:
        """A global heap collection's objects, walked as the HDF5 library walks it; whatever h5guard
        refuses (or the library would) is declined, and h5py's read then fails closed on it."""
        head = self.r.read(addr, h5guard.HEADER)
        if head[:4] != h5guard.SIGNATURE or head[4] != 1:
            raise Unsupported("bad global heap collection")
        length = struct.unpack_from("<Q", head, 8)[0]
        self.collection_bytes += length
        if not h5guard.HEADER <= length <= h5guard.MAX_COLLECTION or self.collection_bytes > self.r.size:
            raise Unsupported("global heap collection size")
        data = self.r.read(addr, length)
        objects: dict = {}
        p = h5guard.HEADER
        while p + h5guard.OBJECT_HEADER <= length:
            index, _refs, _, obj_size = struct.unpack_from("<HHIQ", data, p)
            if index:
                if obj_size > length - p - h5guard.OBJECT_HEADER or index in objects:
                    raise Unsupported("bad global heap object")
                start = p + h5guard.OBJECT_HEADER
                objects[index] = data[start:start + obj_size]
                p = start + ((obj_size + 7) & ~7)
            else:  # the free space: its size includes its own header
                if not h5guard.OBJECT_HEADER <= obj_size <= length - p:
                    raise Unsupported("bad global heap free space")
                p += obj_size
            if len(objects) > h5guard.MAX_OBJECTS:
                raise Unsupported("too many global heap objects")
        return objects

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


def _check_free_list(heap: bytes, free: int) -> None:
    """A local heap's free list, checked as the HDF5 library checks it on loading the heap."""
    seen = set()
    while free != 1:  # H5HL_FREE_NULL
        if free in seen or free + 16 > len(heap):
            raise Unsupported("bad local heap free list")
        seen.add(free)
        following, size = struct.unpack_from("<QQ", heap, free)
        if following == 0 or free + size > len(heap):
            raise Unsupported("bad local heap free list")
        free = following


def _flag_sized(data: bytes, pos: int, flags: int) -> tuple:
    """The little-endian length at pos whose width (1, 2, 4 or 8 bytes) the low two bits of `flags`
    give, as a version 2 object header sizes its first chunk and a link message its name; (value,
    position after it)."""
    width = 1 << (flags & 3)
    return int.from_bytes(data[pos:pos + width], "little"), pos + width


def _heap_name(heap: bytes, offset: int) -> bytes:
    end = heap.find(b"\0", offset)
    if offset >= len(heap) or end < 0:
        raise Unsupported("bad name offset in a local heap")
    return heap[offset:end]


def _datatype_head(body: bytes) -> tuple:
    """(class, class bit field, size in bytes) of a datatype message, of a version the library reads."""
    cls, version = body[0] & 0x0F, body[0] >> 4
    bits = body[1] | (body[2] << 8) | (body[3] << 16)
    size = struct.unpack_from("<I", body, 4)[0]
    if version not in (1, 2, 3):
        raise Unsupported("datatype version")
    return cls, bits, size


def _attribute_type(body: bytes) -> tuple:
    """("fixed" | "vlen" | "number", bytes per element) of an attribute's datatype message."""
    cls, bits, size = _datatype_head(body)
    if cls == 3:  # fixed-length text, null-padded as numpy writes it (others convert on reading)
        if bits & 0x0F != 1 or (bits >> 4) & 0x0F not in (0, 1) or not 0 < size <= 1 << 20:
            raise Unsupported("fixed-length string padding or character set")
        return "fixed", size
    if cls == 9:  # variable-length: text only, a byte sequence in a global heap
        if bits & 0x0F != 1 or (bits >> 4) & 0x0F != 0 or (bits >> 8) & 0x0F not in (0, 1):
            raise Unsupported("variable-length type other than a null-terminated string")
        base = struct.unpack_from("<BBHIHH", body, 8)  # class and version, bits, size, offset, precision
        if size != 16 or base[0] not in (0x10, 0x20, 0x30) or base[1:] != (0, 0, 1, 0, 8):
            raise Unsupported("variable-length string of wide characters")
        return "vlen", 16  # length (4), collection address (8), object index (4)
    return "number", _datatype(body)[1]


def _datatype(body: bytes) -> tuple:
    cls, bits, size = _datatype_head(body)
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
