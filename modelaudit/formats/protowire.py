"""The Protocol Buffers wire format, decoded from a schema of field numbers; no generated code.

Why our own decoder and not the `protobuf` package: modelaudit reads a handful of fields from five
TensorFlow messages (about 40 field numbers, in `savedmodel.py`), and a runtime dependency on
protobuf — whose generated `_pb2` modules are tied to one runtime version, and whose C++ parser
allocates the whole SavedModel graph (every op of every traced function) before we could look at a
field — buys nothing here. This decoder is ~150 lines, skips what the schema does not name without
decoding it (a SavedModel's `graph_def`, often 90% of the file, is stepped over in one move, or
walked one node at a time with `spans`), and
bounds everything a file says:

- a varint is at most 10 bytes; a length never reaches past the message that holds it;
- a repeated field holds at most `Field.max_items` values, a string at most `Field.max_len` bytes,
  and one decode at most `MAX_VALUES` values in all;
- nesting is the schema's, never the file's: a submessage is decoded only where the schema declares
  one, so a hostile file cannot nest deeper than the schema does;
- groups (wire types 3 and 4, never written by proto3), unknown wire types and field number 0 are
  errors.

Every problem is a ProtoError with a one-line reason; the reader turns it into a ModelReadError.
"""

from __future__ import annotations

from typing import Any, Iterator, NamedTuple, Optional

VARINT, INT64, BOOL, STRING, BYTES, MESSAGE = "varint", "int64", "bool", "string", "bytes", "message"
# Values of a repeated field; real SavedModels hold at most tens of thousands (object graph nodes).
MAX_ITEMS = 1 << 20
MAX_STRING = 64 << 20
# Values in one decoded message, all fields at all depths: ResNet50's SavedModel holds about 40,000.
MAX_VALUES = 4_000_000


class ProtoError(ValueError):
    """The bytes are not the message the schema describes (truncated, damaged, or over a bound)."""


class Field(NamedTuple):
    name: str
    kind: str
    repeated: bool = False
    message: Optional["Message"] = None
    max_items: int = MAX_ITEMS
    max_len: int = MAX_STRING


class Message:
    """A message's schema: field number -> Field. Fields it does not list are skipped."""

    def __init__(self, name: str, fields: dict):
        self.name = name
        self.fields = fields


def message(name: str, **numbered: Field) -> Message:
    """`message("TensorInfo", f1=Field("name", STRING), ...)`: field numbers as `f<N>` keywords."""
    return Message(name, {int(k[1:]): f for k, f in numbered.items()})


def varint(buf, pos: int, end: int) -> tuple[int, int]:
    """(value, position after it)."""
    result = shift = 0
    while True:
        if pos >= end:
            raise ProtoError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise ProtoError("varint longer than 10 bytes")


def decode(buf, schema: Message, start: int = 0, end: Optional[int] = None, max_values: int = MAX_VALUES) -> dict:
    """The fields of `schema` found in buf[start:end]: {name: value}, a list for a repeated field.

    `buf` is bytes or an mmap; nothing outside [start, end) is read. A submessage is a dict, a
    STRING a str (strict UTF-8), BYTES bytes; absent fields are absent from the dict. At most
    `max_values` values are decoded in all (each costs memory; the bytes alone do not bound it)."""
    return _decode(buf, schema, start, len(buf) if end is None else end, [max_values])


def _decode(buf, schema: Message, start: int, end: int, budget: list) -> dict:
    out: dict[str, Any] = {}
    fields = schema.fields
    pos = start
    while pos < end:
        key = buf[pos]
        if key < 0x80:  # one-byte keys and lengths are nearly all of them: no call for those
            pos += 1
        else:
            key, pos = varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        field = fields.get(number)
        if field is None:
            if number == 0:
                raise ProtoError(f"{schema.name}: a field numbered 0, which no message has")
            pos = _skip(buf, pos, end, wire, number, schema)
            continue
        budget[0] -= 1
        if budget[0] < 0:
            raise ProtoError(f"{schema.name}: more values than the bound of the whole message")
        if wire == 2:
            n = buf[pos] if pos < end else 0x80
            if n < 0x80:
                pos += 1
            else:
                n, pos = varint(buf, pos, end)
            stop = pos + n
            if stop > end:
                raise ProtoError(f"{schema.name}.{field.name}: length {n} runs past the end of its message")
            kind = field.kind
            if kind == MESSAGE:
                value = _decode(buf, field.message, pos, stop, budget)
            elif kind in (STRING, BYTES):
                if n > field.max_len:
                    raise ProtoError(f"{schema.name}.{field.name}: {n} bytes, more than the {field.max_len}-byte bound")
                value = bytes(buf[pos:stop])
                if kind == STRING:
                    try:
                        value = value.decode("utf-8")
                    except UnicodeDecodeError:
                        raise ProtoError(f"{schema.name}.{field.name} is not UTF-8 text") from None
            elif field.repeated:  # a packed repeated varint
                pos = _packed(buf, pos, stop, out.setdefault(field.name, []), field, schema, budget)
                continue
            else:
                raise ProtoError(f"{schema.name}.{field.name}: a length-delimited value where a number belongs")
            pos = stop
        elif wire == 0 and field.kind in (VARINT, INT64, BOOL):
            raw = buf[pos] if pos < end else 0x80
            if raw < 0x80:
                pos += 1
            else:
                raw, pos = varint(buf, pos, end)
            value = raw if field.kind == VARINT else _scalar(field.kind, raw)
        else:
            raise ProtoError(f"{schema.name}.{field.name}: unexpected wire type {wire}")
        if field.repeated:
            values = out.setdefault(field.name, [])
            if len(values) >= field.max_items:
                raise ProtoError(f"{schema.name}.{field.name}: more than {field.max_items} values")
            values.append(value)
        else:
            out[field.name] = value  # the last one wins, as in every protobuf runtime
    if pos != end:
        raise ProtoError(f"{schema.name}: a field runs past the end of the message")
    return out


def _packed(buf, pos: int, stop: int, values: list, field: Field, schema: Message, budget: list) -> int:
    while pos < stop:
        raw, pos = varint(buf, pos, stop)
        values.append(_scalar(field.kind, raw))
        budget[0] -= 1
        if len(values) > field.max_items or budget[0] < 0:
            raise ProtoError(f"{schema.name}.{field.name}: more than {field.max_items} values")
    return pos


def _scalar(kind: str, raw: int):
    if kind == INT64:
        return raw - (1 << 64) if raw >= 1 << 63 else raw
    if kind == BOOL:
        return raw != 0
    return raw


def _skip(buf, pos: int, end: int, wire: int, number: int, schema: Message) -> int:
    """Step over a field the schema does not name, without decoding it."""
    if wire == 0:
        return varint(buf, pos, end)[1]
    if wire == 2:
        n, pos = varint(buf, pos, end)
        stop = pos + n
    elif wire == 1:
        stop = pos + 8
    elif wire == 5:
        stop = pos + 4
    elif wire in (3, 4):
        raise ProtoError(f"{schema.name}: field {number} uses the group encoding, which no TensorFlow file writes")
    else:
        raise ProtoError(f"{schema.name}: field {number} has an invalid wire type {wire}")
    if stop > end:
        raise ProtoError(f"{schema.name}: field {number} runs past the end of its message")
    return stop


def spans(buf, start: int, end: int, wanted: frozenset, what: str) -> Iterator[tuple[int, int, int]]:
    """(field number, start, stop) of each length-delimited field of buf[start:end] numbered in
    `wanted`, in file order; every other field is stepped over undecoded. For messages too large to
    decode whole (a graph's nodes): the caller decodes one span at a time."""
    pos = start
    while pos < end:
        key, pos = varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ProtoError(f"{what}: a field numbered 0, which no message has")
        if number in wanted and wire == 2:
            n, pos = varint(buf, pos, end)
            if pos + n > end:
                raise ProtoError(f"{what}: field {number} runs past the end of its message")
            yield number, pos, pos + n
            pos += n
        elif number in wanted:
            raise ProtoError(f"{what}: field {number}: unexpected wire type {wire}")
        else:
            pos = _skip(buf, pos, end, wire, number, Message(what, {}))
    if pos != end:
        raise ProtoError(f"{what}: a field runs past the end of the message")


def entries(items: Optional[list], what: str) -> dict:
    """A map field (repeated {key: 1, value: 2} entries) as a dict; a repeated key is an error."""
    out: dict = {}
    for item in items or ():
        key = item.get("key", "")
        if key in out:
            raise ProtoError(f"{what}: the key {key!r} appears twice")
        out[key] = item.get("value", {})
    return out
