"""Walking an HDF5 weights tree safely: metadata only, links recorded but never followed.

h5py is imported by the callers' first use of this module, never at start-up.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from modelaudit.errors import ModelReadError
from modelaudit.graph import Weight

MAX_OBJECTS = 1_000_000
MAX_DEPTH = 64
# A dataset declaring more than this many times the bytes the whole file holds cannot be real
# weights; loading it would allocate the declared size (CVE-2026-1669 style memory exhaustion).
OVERSIZE_FACTOR = 16


@dataclass
class Tree:
    """What a walk found below one group: datasets by path, and the links it refused to follow."""

    datasets: dict = field(default_factory=dict)  # path -> Weight, in walk order
    links: list = field(default_factory=list)  # (path, kind)
    oversized: list = field(default_factory=list)  # (path, declared bytes)


def walk(group, prefix: str, file_size: int, tree: Tree | None = None, budget: list | None = None) -> Tree:
    """Every dataset below `group` (iteratively, in name order with numeric parts sorted as numbers)."""
    import h5py

    tree = tree if tree is not None else Tree()
    budget = budget if budget is not None else [MAX_OBJECTS]
    stack = [(group, prefix, 0)]
    while stack:
        grp, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ModelReadError(f"HDF5 groups nested deeper than {MAX_DEPTH} levels")
        children = []
        for name in sorted(grp.keys(), key=natural_key):
            budget[0] -= 1
            if budget[0] < 0:
                raise ModelReadError(f"HDF5 file holds more than {MAX_OBJECTS} objects")
            child_path = f"{path}/{name}" if path else name
            link = grp.get(name, getlink=True)
            if isinstance(link, h5py.ExternalLink):
                tree.links.append((child_path, f"external link to {link.filename}:{link.path}"))
                continue
            if isinstance(link, h5py.SoftLink):
                tree.links.append((child_path, f"soft link to {link.path}"))
                continue
            obj = grp.get(name)
            if isinstance(obj, h5py.Group):
                children.append((obj, child_path, depth + 1))
            elif isinstance(obj, h5py.Dataset):
                tree.datasets[child_path] = dataset_weight(obj, child_path, file_size, tree)
        stack.extend(reversed(children))
    return tree


def dataset_weight(dset, path: str, file_size: int, tree: Tree) -> Weight:
    shape = tuple(int(d) for d in dset.shape) if dset.shape is not None else ()
    dtype = str(dset.dtype)
    if dset.is_virtual:
        try:  # the mapping's source files, from the dataset's property list (nothing is opened)
            sources = sorted({str(m.file_name) for m in dset.virtual_sources()})
        except Exception:
            sources = []
        tree.links.append((path, "virtual dataset" + (f" mapping {', '.join(sources)}" if sources else "")))
    if dset.external:
        tree.links.append((path, "external storage in " + ", ".join(str(e[0]) for e in dset.external)))
    declared = dset.dtype.itemsize
    for d in shape:
        declared *= d
    if declared > max(file_size, 1) * OVERSIZE_FACTOR and declared > 1 << 20:
        tree.oversized.append((path, declared))
    return Weight(path=path, shape=shape, dtype=dtype)


def natural_key(name: str):
    """vars/2 before vars/10, as Keras numbers them."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in _split_digits(name)]


def _split_digits(name: str):
    out, cur, digit = [], "", None
    for ch in name:
        d = ch.isdigit()
        if cur and d != digit:
            out.append(cur)
            cur = ""
        cur += ch
        digit = d
    if cur:
        out.append(cur)
    return out


def attr_text(value) -> str | None:
    """An HDF5 attribute holding text (bytes or str) as str."""
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return value if isinstance(value, str) else None


def attr_names(group, key: str) -> list[str] | None:
    """Keras's `layer_names`/`weight_names`, including the split form (`key0`, `key1`, ...) that
    legacy h5 writes when the attribute would pass HDF5's 64 KiB header limit."""
    attrs = group.attrs
    if key in attrs:
        chunks = [attrs[key]]
    elif f"{key}0" in attrs:
        chunks, i = [], 0
        while f"{key}{i}" in attrs:
            chunks.append(attrs[f"{key}{i}"])
            i += 1
    else:
        return None
    names = []
    for chunk in chunks:
        for item in list(chunk) if hasattr(chunk, "__len__") and not isinstance(chunk, (str, bytes)) else [chunk]:
            text = attr_text(item)
            if text is None:
                raise ModelReadError(f"HDF5 attribute {key} holds something other than text")
            names.append(text)
    return names
