"""model.weights.npz: the dtype and shape of every stored variable, never its data.

A plain numeric `.npy` member is read from its header alone. Keras 3.15's `NpzIOStore` does not
write plain arrays: each layer's member (`layers/dense.npy`) is a 0-d object array, a pickle of the
dict of the layer's `keras.Variable` objects (`np.savez` of {"0": kernel, "1": bias}), which Keras
itself then refuses to load (`allow_pickle=False`). Such a pickle is read here as a stream of opcodes,
as data: nothing it names is imported, nothing is called or built, its byte strings are skipped
unread. When it has that exact layout (an object ndarray holding a dict of variables, each carrying
its `_shape` and `_dtype`, or numpy arrays), the variables' shapes and dtypes are taken from it;
otherwise the member stays an object array of unknown content (dtype "object").
"""

from __future__ import annotations

import ast
import struct
import zipfile
from dataclasses import dataclass
from typing import Any, Optional

from modelaudit.errors import ModelReadError, exception_text
from modelaudit.formats.archive import open_zip
from modelaudit.graph import Weight

MAGIC = b"\x93NUMPY"
MAX_HEADER_BYTES = 10_000  # numpy's own bound (format._MAX_HEADER_SIZE)
MAX_RANK = 64  # numpy's NPY_MAXDIMS
MAX_MEMBERS = 50_000  # one member per layer with weights, and __root__
MAX_NAME_CHARS = 1024
# A layer's pickle is about 150 opcodes per variable and 50 more (a BatchNormalization: 610), read at
# about a million a second. A member past its bound is of unknown content; a file past the total is
# unreadable: 8 million is a 15,000-layer model, and keeps a hostile archive under 10 s.
MAX_OPS_PER_MEMBER = 200_000
MAX_OPS_TOTAL = 8_000_000
MAX_MEMO = 100_000
MAX_STACK = 100_000
MAX_TEXT = 64 * 1024  # a longer string in a pickle is skipped, not read
MAX_SKIP_BY_READING = 16 << 20  # a compressed member's bytes can only be skipped by inflating them


@dataclass(frozen=True)
class NpyHeader:
    shape: tuple
    dtype: str  # numpy's name: float32, int64, bool, object, ... ("structured" for a record dtype)
    descr: Any  # as in the header: '<f4', '|O', or a list of fields
    fortran_order: bool


def read_header(stream) -> NpyHeader:
    """An .npy stream's header; the stream is left at the first byte of the data. ValueError if it is
    not an .npy header numpy would read."""
    magic = _exactly(stream, 8, "magic string")
    if magic[:6] != MAGIC:
        raise ValueError("not an .npy array (bad magic string)")
    version = (magic[6], magic[7])
    if version == (1, 0):
        (length,) = struct.unpack("<H", _exactly(stream, 2, "header length"))
    elif version in ((2, 0), (3, 0)):
        (length,) = struct.unpack("<I", _exactly(stream, 4, "header length"))
    else:
        raise ValueError(f".npy format version {version[0]}.{version[1]} is unknown")
    if length > MAX_HEADER_BYTES:
        raise ValueError(f".npy header of {length:,} bytes, more than {MAX_HEADER_BYTES:,}")
    raw = _exactly(stream, length, "header")
    try:
        text = raw.decode("utf-8" if version == (3, 0) else "latin1")
        # a literal, as numpy reads it (ast.literal_eval evaluates no names and calls nothing)
        fields = ast.literal_eval(text)
    except (ValueError, SyntaxError, UnicodeDecodeError, MemoryError, RecursionError):
        raise ValueError(".npy header is not a Python literal") from None
    if not isinstance(fields, dict) or set(fields) != {"descr", "fortran_order", "shape"}:
        raise ValueError(".npy header lacks descr, fortran_order and shape")
    shape, fortran, descr = fields["shape"], fields["fortran_order"], fields["descr"]
    if not _is_shape(shape):
        raise ValueError(f".npy header: shape is not a tuple of at most {MAX_RANK} non-negative integers")
    if not isinstance(fortran, bool):
        raise ValueError(".npy header: fortran_order is not a bool")
    if not isinstance(descr, (str, list)):
        raise ValueError(".npy header: descr is not a dtype descriptor")
    return NpyHeader(tuple(shape), dtype_name(descr), descr, fortran)


def _exactly(stream, n: int, what: str) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise ValueError(f".npy {what} is truncated")
    return data


def _is_shape(shape: Any) -> bool:
    return isinstance(shape, tuple) and len(shape) <= MAX_RANK and all(
        type(d) is int and d >= 0 for d in shape)


_KINDS = {"f": "float", "i": "int", "u": "uint", "c": "complex"}


def dtype_name(descr: Any) -> str:
    """numpy's name for a simple descriptor ('<f4' -> float32, '|O' -> object), without numpy."""
    if isinstance(descr, list):
        return "structured"
    code = descr.lstrip("<>|=")
    kind, size = code[:1], code[1:]
    if kind == "O":
        return "object"
    if kind in ("b", "?") and size in ("", "1"):
        return "bool"
    if kind in _KINDS and size.isdigit():
        return f"{_KINDS[kind]}{int(size) * 8}"
    return descr


# ---- the archive -------------------------------------------------------------------------------


@dataclass
class NpzWeights:
    datasets: dict  # path as in model.weights.h5 (layers/dense/vars/0) -> Weight
    pickled: list  # (member, globals the pickle names) for every object-array member
    unknown: list  # Weights of members whose layout is not Keras's (object arrays, or plain arrays at a layer's key)


def read_npz(view) -> NpzWeights:
    """Every member of the npz held in the file object `view` (seekable), headers and pickle opcodes
    only."""
    out = NpzWeights({}, [], [])
    budget = [MAX_OPS_TOTAL]
    archive, infos = open_zip(
        view, MAX_MEMBERS, lambda exc: f"model.weights.npz is not a readable npz archive ({exception_text(exc)})",
        lambda count: f"model.weights.npz holds {count:,} arrays, more than {MAX_MEMBERS:,}",
    )
    with archive:
        for info in infos:
            if len(info.filename) > MAX_NAME_CHARS:
                raise ModelReadError(f"model.weights.npz names an array with {len(info.filename):,} characters")
            key = member_key(info.filename)
            try:
                stream, direct = _open(archive, view, info)
                with stream:
                    header = read_header(stream)
                    _add(out, key, info.filename, header, stream, direct, budget)
            except (ValueError, OSError, EOFError, zipfile.BadZipFile, NotImplementedError, RuntimeError) as exc:
                raise ModelReadError(f"model.weights.npz: {info.filename}: {exception_text(exc)}") from None
    return out


def member_key(filename: str) -> str:
    key = filename[:-4] if filename.endswith(".npy") else filename
    return key.replace("\\", "/")


def _add(out: NpzWeights, key: str, member: str, header: NpyHeader, stream, direct: bool, budget: list) -> None:
    if header.dtype != "object":
        weight = Weight(path=key, shape=header.shape, dtype=header.dtype)
        # a plain array where Keras 3.15 keeps a layer's pickled variables (`layers/dense`): what it
        # holds is the model's, though no variable path names it
        if "/vars/" in f"/{key}":
            out.datasets[key] = weight
        else:
            out.unknown.append(weight)
        return
    reader = _Pickle(stream, direct, min(MAX_OPS_PER_MEMBER, budget[0]))
    try:
        value = reader.run()
    except _Unreadable:
        value = None
    budget[0] -= reader.ops
    if budget[0] <= 0:
        raise ModelReadError(f"model.weights.npz: its pickles hold more than {MAX_OPS_TOTAL:,} opcodes")
    out.pickled.append((member, tuple(sorted(reader.globals))))
    variables = keras_variables(value) if value is not None and header.shape == () else None
    if variables is None:
        out.unknown.append(Weight(path=key, shape=header.shape, dtype="object"))
        return
    base = "" if key == "__root__" else f"{key}/"
    for name, (shape, dtype, trainable) in variables.items():
        path = f"{base}vars/{name}"
        out.datasets[path] = Weight(path=path, shape=shape, dtype=dtype, trainable=trainable)


def _open(archive: zipfile.ZipFile, view, info: zipfile.ZipInfo):
    """(stream, seekable in O(1)): a stored member as a byte range of `view`, else inflated."""
    if info.compress_type == zipfile.ZIP_STORED and not info.flag_bits & 0x1:
        local = _Range(view, info.header_offset, 30).read(30)
        if len(local) == 30 and local[:4] == b"PK\x03\x04":
            name_len, extra_len = struct.unpack("<HH", local[26:30])
            return _Range(view, info.header_offset + 30 + name_len + extra_len, info.file_size), True
    return archive.open(info), False


class _Range:
    """Bytes [start, start + size) of a seekable file object, read on demand through a buffer (a
    pickle is read an opcode at a time); skipping moves the position and reads nothing."""

    BUFFER = 64 * 1024

    def __init__(self, f, start: int, size: int):
        self._f, self._start, self._size, self._pos = f, start, size, 0
        self._buf, self._buf_at = b"", 0
        # keras_v3.MemberFile reads at an offset without moving (and without its HDF5 heap guard)
        self._read_at = getattr(f, "read_at", None)

    def read(self, n: int = -1) -> bytes:
        n = self._size - self._pos if n is None or n < 0 else min(n, self._size - self._pos)
        if n <= 0:
            return b""
        offset = self._pos - self._buf_at
        if not (0 <= offset and offset + n <= len(self._buf)):
            self._buf = self._fetch(self._pos, min(max(n, self.BUFFER), self._size - self._pos))
            self._buf_at, offset = self._pos, 0
        data = self._buf[offset:offset + n]
        self._pos += len(data)
        return data

    def _fetch(self, pos: int, n: int) -> bytes:
        if self._read_at is not None:
            return self._read_at(self._start + pos, n)
        self._f.seek(self._start + pos)
        return self._f.read(n)

    def skip(self, n: int) -> bool:
        if self._pos + n > self._size:
            return False
        self._pos += n
        return True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# ---- pickles, as data --------------------------------------------------------------------------


class _Unreadable(Exception):
    """An opcode or a structure the reader does not interpret: the member's content stays unknown."""


@dataclass(frozen=True)
class Global:
    module: str
    name: str


class Obj:
    """What REDUCE / NEWOBJ would build: a callable, its arguments and the state BUILD would give it."""

    __slots__ = ("func", "args", "state")

    def __init__(self, func, args):
        self.func, self.args, self.state = func, args, None


class Dict:
    __slots__ = ("items",)

    def __init__(self):
        self.items: list = []

    def get(self, key):
        for k, v in self.items:
            if k == key:
                return v
        return None


_MARK = object()
_SKIPPED = object()  # a byte string or an over-long text, skipped unread


class _Pickle:
    """A stack machine over the opcodes of pickle protocols 2 to 5 that builds inert placeholders."""

    def __init__(self, stream, direct: bool, max_ops: int):
        self.stream, self.direct, self.max_ops = stream, direct, max_ops
        self.stack: list = []
        self.memo: dict = {}
        self.globals: set = set()
        self.ops = 0
        self.buf, self.off = b"", 0  # read ahead: most opcodes are a few bytes

    def read(self, n: int) -> bytes:
        off = self.off
        if off + n > len(self.buf):
            self.buf = self.buf[off:] + self.stream.read(max(n - (len(self.buf) - off), 64 * 1024))
            self.off = off = 0
            if n > len(self.buf):
                raise _Unreadable()
        self.off = off + n
        return self.buf[off:off + n]

    def skip(self, n: int) -> None:
        held = len(self.buf) - self.off
        if n <= held:
            self.off += n
            return
        n -= held
        self.buf, self.off = b"", 0
        if self.direct:
            if not self.stream.skip(n):
                raise _Unreadable()
            return
        if n > MAX_SKIP_BY_READING:
            raise _Unreadable()
        while n > 0:
            got = len(self.stream.read(min(n, 1 << 20)))
            if got == 0:
                raise _Unreadable()
            n -= got

    def text(self, n: int, encoding: str = "utf-8"):
        if n > MAX_TEXT:
            self.skip(n)
            return _SKIPPED
        try:
            return self.read(n).decode(encoding)
        except UnicodeDecodeError:
            raise _Unreadable() from None

    def push(self, value) -> None:
        if len(self.stack) >= MAX_STACK:
            raise _Unreadable()
        self.stack.append(value)

    def pop(self):
        if not self.stack:
            raise _Unreadable()
        return self.stack.pop()

    def pop_mark(self) -> list:
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i] is _MARK:
                items = self.stack[i + 1:]
                del self.stack[i:]
                return items
        raise _Unreadable()

    def run(self):
        handlers = _HANDLERS
        read = self.read
        for self.ops in range(1, self.max_ops + 1):
            op = read(1)
            if op == b".":
                return self.pop()
            handler = handlers.get(op)
            if handler is None:
                raise _Unreadable()
            handler(self)
        raise _Unreadable()


def _u(fmt: str):
    size = struct.calcsize(fmt)
    return lambda m: struct.unpack(fmt, m.read(size))[0]


_U1, _U2, _U4, _U8, _I4, _F8 = _u("<B"), _u("<H"), _u("<I"), _u("<Q"), _u("<i"), _u(">d")


MAX_GLOBALS = 64  # names kept per member, for the security rules: a real one names 7


def _named(m: _Pickle, module: str, name: str) -> None:
    if len(m.globals) < MAX_GLOBALS:
        m.globals.add(f"{module}.{name}"[:200])
    m.push(Global(module, name))


def _global_text(m: _Pickle) -> None:
    _named(m, _line(m), _line(m))


def _line(m: _Pickle) -> str:
    out = bytearray()
    while True:
        ch = m.read(1)
        if ch == b"\n":
            return out.decode("utf-8", "replace")
        out += ch
        if len(out) > 256:
            raise _Unreadable()


def _stack_global(m: _Pickle) -> None:
    name, module = m.pop(), m.pop()
    if not isinstance(module, str) or not isinstance(name, str):
        raise _Unreadable()
    _named(m, module, name)


def _reduce(m: _Pickle) -> None:
    args = m.pop()
    m.push(Obj(m.pop(), args))


def _newobj_ex(m: _Pickle) -> None:
    m.pop()  # keyword arguments
    args = m.pop()
    m.push(Obj(m.pop(), args))


def _build(m: _Pickle) -> None:
    state = m.pop()
    if not m.stack:
        raise _Unreadable()
    if isinstance(m.stack[-1], Obj):
        m.stack[-1].state = state


def _append(m: _Pickle) -> None:
    value = m.pop()
    if m.stack and isinstance(m.stack[-1], list):
        m.stack[-1].append(value)


def _appends(m: _Pickle) -> None:
    items = m.pop_mark()
    if m.stack and isinstance(m.stack[-1], list):
        m.stack[-1].extend(items)


def _setitem(m: _Pickle) -> None:
    value, key = m.pop(), m.pop()
    if m.stack and isinstance(m.stack[-1], Dict):
        m.stack[-1].items.append((key, value))


def _setitems(m: _Pickle) -> None:
    items = m.pop_mark()
    if len(items) % 2:
        raise _Unreadable()
    if m.stack and isinstance(m.stack[-1], Dict):
        m.stack[-1].items.extend(zip(items[::2], items[1::2]))


def _dict_from_mark(m: _Pickle) -> None:
    items = m.pop_mark()
    d = Dict()
    d.items = list(zip(items[::2], items[1::2]))
    m.push(d)


def _memoize(m: _Pickle, index: Optional[int] = None) -> None:
    if not m.stack or len(m.memo) >= MAX_MEMO:
        raise _Unreadable()
    m.memo[len(m.memo) if index is None else index] = m.stack[-1]


def _get(m: _Pickle, index: int) -> None:
    if index not in m.memo:
        raise _Unreadable()
    m.push(m.memo[index])


def _skip_bytes(m: _Pickle, n: int) -> None:
    m.skip(n)
    m.push(_SKIPPED)


def _tuple_n(n: int):
    def handler(m: _Pickle) -> None:
        if len(m.stack) < n or any(v is _MARK for v in m.stack[len(m.stack) - n:]):
            raise _Unreadable()
        items = tuple(m.stack[len(m.stack) - n:]) if n else ()
        del m.stack[len(m.stack) - n:]
        m.push(items)
    return handler


def _long1(m: _Pickle) -> None:
    n = _U1(m)
    m.push(int.from_bytes(m.read(n), "little", signed=True))


_HANDLERS = {
    b"\x80": lambda m: m.read(1),  # PROTO
    b"\x95": lambda m: m.read(8),  # FRAME: only a length hint
    b"(": lambda m: m.push(_MARK),
    b"0": lambda m: m.pop(),
    b"1": lambda m: m.pop_mark(),
    b"2": lambda m: m.push(m.stack[-1] if m.stack else m.pop()),
    b"N": lambda m: m.push(None),
    b"\x88": lambda m: m.push(True),
    b"\x89": lambda m: m.push(False),
    b"J": lambda m: m.push(_I4(m)),
    b"K": lambda m: m.push(_U1(m)),
    b"M": lambda m: m.push(_U2(m)),
    b"\x8a": _long1,
    b"G": lambda m: m.push(_F8(m)),
    b"X": lambda m: m.push(m.text(_U4(m))),
    b"\x8c": lambda m: m.push(m.text(_U1(m))),
    b"\x8d": lambda m: m.push(m.text(_U8(m))),
    b"U": lambda m: m.push(m.text(_U1(m), "latin1")),
    b"T": lambda m: m.push(m.text(_U4(m), "latin1")),
    b"C": lambda m: _skip_bytes(m, _U1(m)),
    b"B": lambda m: _skip_bytes(m, _U4(m)),
    b"\x8e": lambda m: _skip_bytes(m, _U8(m)),
    b"\x96": lambda m: _skip_bytes(m, _U8(m)),
    b")": lambda m: m.push(()),
    b"t": lambda m: m.push(tuple(m.pop_mark())),
    b"\x85": _tuple_n(1),
    b"\x86": _tuple_n(2),
    b"\x87": _tuple_n(3),
    b"]": lambda m: m.push([]),
    b"l": lambda m: m.push(m.pop_mark()),
    b"a": _append,
    b"e": _appends,
    b"}": lambda m: m.push(Dict()),
    b"d": _dict_from_mark,
    b"s": _setitem,
    b"u": _setitems,
    b"\x8f": lambda m: m.push([]),  # EMPTY_SET: kept as a list
    b"\x90": lambda m: m.pop_mark(),  # ADDITEMS: the items are not needed
    b"\x91": lambda m: m.push(m.pop_mark()),  # FROZENSET
    b"c": _global_text,
    b"\x93": _stack_global,
    b"R": _reduce,
    b"\x81": _reduce,  # NEWOBJ: cls, args
    b"\x92": _newobj_ex,
    b"b": _build,
    b"\x94": _memoize,
    b"q": lambda m: _memoize(m, _U1(m)),
    b"r": lambda m: _memoize(m, _U4(m)),
    b"h": lambda m: _get(m, _U1(m)),
    b"j": lambda m: _get(m, _U4(m)),
}


# ---- what Keras wrote --------------------------------------------------------------------------


_RECONSTRUCT = {Global("numpy.core.multiarray", "_reconstruct"), Global("numpy._core.multiarray", "_reconstruct")}
_SCALAR = {Global("numpy.core.multiarray", "scalar"), Global("numpy._core.multiarray", "scalar")}
_DTYPE = {Global("numpy", "dtype")}


def keras_variables(value) -> Optional[dict]:
    """{name: (shape, dtype, trainable or None)} when `value` is a 0-d object ndarray holding a dict of
    variables (Keras Variables carrying `_shape`, `_dtype` and `_trainable`, or numpy arrays); None for
    anything else."""
    array = _ndarray(value)
    if array is None or array[1] != "object" or not isinstance(array[2], list) or len(array[2]) != 1:
        return None
    variables = array[2][0]
    if not isinstance(variables, Dict):
        return None
    out = {}
    for name, var in variables.items:
        found = _variable(var)
        if not isinstance(name, str) or found is None or len(name) > MAX_NAME_CHARS:
            return None
        out[name] = found
    return out


def _ndarray(value) -> Optional[tuple]:
    """(shape, dtype name, data) of a pickled numpy array: _reconstruct, then BUILD (version, shape,
    dtype, fortran, data)."""
    if not isinstance(value, Obj) or value.func not in _RECONSTRUCT:
        return None
    state = value.state
    if not (isinstance(state, tuple) and len(state) == 5 and _is_shape(state[1])):
        return None
    dtype = _dtype(state[2])
    return None if dtype is None else (tuple(state[1]), dtype, state[4])


def _dtype(value) -> Optional[str]:
    if not isinstance(value, Obj) or value.func not in _DTYPE:
        return None
    args = value.args
    if not (isinstance(args, tuple) and args and isinstance(args[0], str) and len(args[0]) <= 16):
        return None
    return dtype_name(args[0])


def _variable(value) -> Optional[tuple]:
    """(shape, dtype, trainable) of a numpy array or scalar (the optimizer's iteration count: trainable
    unknown) or a Keras Variable (its state's `_shape`, `_dtype` and `_trainable`)."""
    array = _ndarray(value)
    if array is not None:
        return (array[0], array[1], None) if array[1] != "object" else None
    if not isinstance(value, Obj):
        return None
    if value.func in _SCALAR:
        dtype = _dtype(value.args[0]) if isinstance(value.args, tuple) and value.args else None
        return ((), dtype, None) if dtype is not None and dtype != "object" else None
    state = value.state
    if isinstance(state, tuple) and state and isinstance(state[0], Dict):  # (dict, slot state)
        state = state[0]
    if not isinstance(state, Dict):
        return None
    shape, dtype = state.get("_shape"), state.get("_dtype")
    if not _is_shape(shape) or not isinstance(dtype, str) or len(dtype) > 32:
        return None
    trainable = state.get("_trainable")
    return tuple(shape), dtype, trainable if isinstance(trainable, bool) else None
