"""Walking an HDF5 weights tree safely: metadata only, links recorded but never followed.

h5py is imported by the callers' first use of this module, never at start-up.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from modelaudit.errors import ModelReadError
from modelaudit.graph import Weight

MAX_OBJECTS = 1_000_000
# Group nesting. A .keras weights file nests two groups per nested model (layers/<name>/layers/...):
# room for formats/json_config.MAX_MODEL_DEPTH (1,024) levels of models.
MAX_DEPTH = 2 * 1024 + 16
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
    """Every dataset below `group` (iteratively, in name order with numeric parts sorted as numbers).

    Through h5py's low-level API: one link iteration per group and one open per object. The
    high-level Group API costs three lookups per child (`get(getlink=True)`, `get`, and the
    `isinstance` that opens it); on 10,000 layers that was most of a check's time (bench/README.md).
    """
    from h5py import h5d, h5g, h5l, h5o

    tree = tree if tree is not None else Tree()
    budget = budget if budget is not None else [MAX_OBJECTS]
    stack = [(group.id, prefix, 0)]
    # Every group walked: a hard link back to one (a cycle, or two links to one group, which Keras
    # never writes) would otherwise make the walk exponential in the links, bounded only by the
    # object budget after minutes.
    seen = {group.id}
    while stack:
        gid, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ModelReadError(f"HDF5 groups nested deeper than {MAX_DEPTH} levels")
        links: list = []

        def collect(name, info, links=links):
            budget[0] -= 1
            if budget[0] < 0:
                return 1  # stop the iteration; reported below
            links.append((name, info.type))
            return None

        gid.links.iterate(collect, info=True)
        if budget[0] < 0:
            raise ModelReadError(f"HDF5 file holds more than {MAX_OBJECTS} objects")
        named = sorted(((_text(raw), raw, kind) for raw, kind in links), key=lambda e: natural_key(e[0]))
        children = []
        for name, raw, kind in named:
            child_path = f"{path}/{name}" if path else name
            if kind == h5l.TYPE_EXTERNAL:
                filename, target = gid.links.get_val(raw)
                tree.links.append((child_path, f"external link to {_text(filename)}:{_text(target)}"))
                continue
            if kind == h5l.TYPE_SOFT:
                tree.links.append((child_path, f"soft link to {_text(gid.links.get_val(raw))}"))
                continue
            if kind != h5l.TYPE_HARD:
                raise ModelReadError(f"HDF5 link `{child_path}` is of a user-defined type, which Keras never writes")
            obj = h5o.open(gid, raw)
            if isinstance(obj, h5g.GroupID):
                if obj in seen:
                    raise ModelReadError(f"HDF5 group `{child_path}` is a second link to a group already read "
                                         "(a cycle), which Keras never writes")
                seen.add(obj)
                children.append((obj, child_path, depth + 1))
            elif isinstance(obj, h5d.DatasetID):
                tree.datasets[child_path] = _dataset_weight(obj, child_path, file_size, tree, h5d)
        stack.extend(reversed(children))
    return tree


def _text(raw) -> str:
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ModelReadError(f"an HDF5 name is not UTF-8 text ({raw[:60]!r})") from None


def _dataset_weight(did, path: str, file_size: int, tree: Tree, h5d) -> Weight:
    shape = tuple(int(d) for d in did.shape) if did.shape is not None else ()
    dtype = did.dtype
    dcpl = did.get_create_plist()
    if dcpl.get_layout() == h5d.VIRTUAL:
        try:  # the mapping's source files, from the dataset's property list (nothing is opened)
            names = (dcpl.get_virtual_filename(j) for j in range(dcpl.get_virtual_count()))
            sources = sorted({n if isinstance(n, str) else n.decode("utf-8", "backslashreplace") for n in names})
        except Exception:
            sources = []
        tree.links.append((path, "virtual dataset" + (f" mapping {', '.join(sources)}" if sources else "")))
    external = dcpl.get_external_count()
    if external > 0:
        names = (dcpl.get_external(j)[0] for j in range(external))
        tree.links.append((path, "external storage in " + ", ".join(
            n if isinstance(n, str) else n.decode("utf-8", "backslashreplace") for n in names)))
    declared = dtype.itemsize
    for d in shape:
        declared *= d
    if declared > max(file_size, 1) * OVERSIZE_FACTOR and declared > 1 << 20:
        tree.oversized.append((path, declared))
    return Weight(path=path, shape=shape, dtype=str(dtype))


def never_read(tree: Tree) -> dict:
    """Datasets whose data --scan-weights must not read -> why: their data lives outside the file
    (external storage, a virtual mapping), or they declare more bytes than the file can hold."""
    out = {path: f"not read: {kind}" for path, kind in tree.links}
    out.update({path: f"not read: declares {declared:,} bytes, more than the file holds" for path, declared in tree.oversized})
    return out


_DIGITS = None


def natural_key(name: str):
    """vars/2 before vars/10, as Keras numbers them."""
    global _DIGITS
    if _DIGITS is None:
        import re

        _DIGITS = re.compile(r"(\d+)")
    parts = _DIGITS.split(name)  # text, digits, text, ...: empty text where a name starts or ends with digits
    return [(0, int(p), "") if i % 2 else (1, 0, p) for i, p in enumerate(parts) if p]


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
    return names_in(group.attrs, key)


def names_in(attrs, key: str) -> list[str] | None:
    """The same, from an h5py AttributeManager or a dict of the values h5py returns (formats/h5meta)."""
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
