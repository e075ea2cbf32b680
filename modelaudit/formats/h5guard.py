"""A guard against an HDF5 library bug that a damaged file triggers: an endless loop in C.

HDF5 (1.14.6 included) decodes a global heap collection by walking its objects, each starting where
the previous one ends (H5HG__cache_heap_deserialize). An object of index 0 and size 0 starts the next
one where it started itself, and the walk never ends; the process spins at full CPU, holding h5py's
lock, and no signal can stop it. One byte flipped or cut out of a legacy `.h5` file is enough: its
`model_config` is a variable-length string, which lives in a global heap, and a collection that runs
past the end of the file reads as zeros, which is exactly such an object.

The library loads a collection (its address comes from the file) with one read that starts at it.
The file objects handed to h5py call `check_read` on every read: one that begins with a collection's
signature has the collection decoded here first, the way the library will, and refused (an exception,
which h5py passes on to its caller) when the decoding would not end or would read past the collection.
Files Keras writes hold one small collection; checking it costs microseconds.
"""

from __future__ import annotations

import struct
from typing import Callable, Optional

SIGNATURE = b"GCOL"
HEADER = 16  # signature, version, 3 reserved bytes, collection size (8 bytes)
OBJECT_HEADER = 16  # index (2), reference count (2), reserved (4), size (8)
MAX_COLLECTION = 80 << 20  # room for a model_config at json_config.MAX_CONFIG_BYTES
MAX_OBJECTS = 1 << 16  # indices are 16 bits


class DamagedHDF5(Exception):
    """A structure the HDF5 library would not survive. `str(exc)` is one line for the user."""


def check_read(read_at: Callable[[int, int], bytes], pos: int, head: bytes, size: int, checked: set) -> None:
    """Called with the first bytes of a read at `pos` of an HDF5 image of `size` bytes; raises
    DamagedHDF5 if they begin a global heap collection the library would loop on or overrun."""
    if head[:4] != SIGNATURE or pos in checked:
        return
    reason = collection_problem(read_at, pos, size)
    if reason is not None:
        raise DamagedHDF5(f"damaged HDF5 global heap at offset {pos}: {reason}")
    checked.add(pos)


def collection_problem(read_at: Callable[[int, int], bytes], addr: int, size: int) -> Optional[str]:
    """Why the collection at `addr` would hang or overrun the HDF5 library, or None if it is sound
    (or if the library refuses it by itself: another signature or version)."""
    head = read_at(addr, HEADER)
    if len(head) < HEADER or head[:4] != SIGNATURE or head[4] != 1:
        return None  # the library checks these two itself and fails cleanly
    length = struct.unpack_from("<Q", head, 8)[0]
    if length < HEADER:
        return f"a collection of {length} bytes"
    if addr + length > size:
        return f"a collection of {length} bytes runs past the end of the file"
    if length > MAX_COLLECTION:
        return f"a collection of {length} bytes"
    data = read_at(addr, length)
    if len(data) < length:
        return "a collection cut short"
    p, objects = HEADER, 0
    while p < length:
        if p + OBJECT_HEADER > length:
            break  # the library takes a tail too small for an object header as free space
        index = struct.unpack_from("<H", data, p)[0]
        obj_size = struct.unpack_from("<Q", data, p + 8)[0]
        if index:
            if obj_size > length - p - OBJECT_HEADER:
                return f"object {index} claims {obj_size} bytes, past the end of its collection"
            need = OBJECT_HEADER + ((obj_size + 7) & ~7)
        else:  # the free space: its size includes its own header
            if obj_size == 0:
                return "an object of size 0, on which the HDF5 library loops forever"
            need = obj_size
        objects += 1
        if objects > MAX_OBJECTS:
            return f"more than {MAX_OBJECTS} objects in one collection"
        p += need
    return None
