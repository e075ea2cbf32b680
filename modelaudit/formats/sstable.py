"""TensorFlow's table files (the LevelDB SSTable layout), as `variables/variables.index` holds them.

Layout (tensorflow/core/lib/io/format.h, table_format.txt): data blocks of prefix-compressed
key/value entries, an index block whose values are the handles of the data blocks, and a 48-byte
footer (metaindex and index handles, padding, the magic number). Every block is followed by a
5-byte trailer: its compression type and a masked CRC32C. TensorFlow writes checkpoint indexes
uncompressed (tensor_bundle.cc sets kNoCompression); a compressed block is refused, not guessed at.
The CRCs are not verified (no CRC32C in the standard library, and a pure-Python one costs more than
the rest of the read); every offset, length and count is bounded instead, so a damaged table gives
a TableError with one line, never a read outside the file or an endless loop.
"""

from __future__ import annotations

import struct

from modelaudit.formats.protowire import ProtoError, varint

MAGIC = 0xDB4775248B80FB57
FOOTER = 48
TRAILER = 5
# Entries in one table: a checkpoint holds one per variable (and per optimizer slot).
MAX_ENTRIES = 1 << 20


class TableError(ValueError):
    """Not a readable table file."""


def read_table(data: bytes) -> list[tuple[bytes, bytes]]:
    """Every (key, value) of the table, in key order."""
    try:
        return _read(data)
    except ProtoError as exc:  # a truncated varint inside a block
        raise TableError(str(exc)) from None


def _read(data: bytes) -> list[tuple[bytes, bytes]]:
    if len(data) < FOOTER:
        raise TableError(f"{len(data)} bytes: shorter than a table footer ({FOOTER} bytes)")
    footer = len(data) - FOOTER
    if struct.unpack_from("<Q", data, len(data) - 8)[0] != MAGIC:
        raise TableError("no table magic number at the end: truncated or not a table file")
    _, pos = _handle(data, footer, len(data) - 8)  # the metaindex: TensorFlow writes it empty
    index_handle, _ = _handle(data, pos, len(data) - 8)
    out: list[tuple[bytes, bytes]] = []
    for _, value in _block(data, index_handle, footer, MAX_ENTRIES):
        handle, _ = _handle(value, 0, len(value))
        for entry in _block(data, handle, footer, MAX_ENTRIES - len(out)):
            if out and entry[0] <= out[-1][0]:
                raise TableError("keys out of order: the table is damaged")
            out.append(entry)
    return out


def _handle(buf, pos: int, end: int) -> tuple[tuple[int, int], int]:
    offset, pos = varint(buf, pos, end)
    size, pos = varint(buf, pos, end)
    return (offset, size), pos


def _block(data: bytes, handle: tuple[int, int], limit: int, max_entries: int) -> list[tuple[bytes, bytes]]:
    """The entries of the block at `handle`, which must end (with its trailer) before `limit`."""
    offset, size = handle
    if offset + size + TRAILER > limit or size < 4:
        raise TableError(f"a block at byte {offset} of {size} bytes lies outside the table")
    kind = data[offset + size]
    if kind != 0:
        raise TableError(f"a block is compressed (type {kind}); TensorFlow writes checkpoint indexes uncompressed")
    block = data[offset:offset + size]
    restarts = struct.unpack_from("<I", block, size - 4)[0]
    entries_end = size - 4 - 4 * restarts
    if restarts == 0 or entries_end < 0:
        raise TableError(f"a block at byte {offset} has {restarts} restart points, which do not fit it")
    out: list[tuple[bytes, bytes]] = []
    key = b""
    pos = 0
    while pos < entries_end:
        shared, pos = varint(block, pos, entries_end)
        own, pos = varint(block, pos, entries_end)
        n, pos = varint(block, pos, entries_end)
        if shared > len(key) or pos + own + n > entries_end:
            raise TableError(f"an entry of the block at byte {offset} runs past its end")
        key = key[:shared] + block[pos:pos + own]
        pos += own
        out.append((key, block[pos:pos + n]))
        pos += n
        if len(out) > max_entries:
            raise TableError(f"more than {MAX_ENTRIES} entries")
    return out
