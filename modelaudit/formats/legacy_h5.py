"""Legacy HDF5 models (.h5/.hdf5) as written by Keras 2 (tf.keras, tf_keras) and by Keras 3.

Root attributes: `model_config` (JSON), `training_config` (JSON), `keras_version`, `backend`.
Weights: `model_weights/<layer name>` groups whose `weight_names` attribute lists the layer's
variables in `layer.weights` order; a nested model's group holds all of its inner layers' variables.

Read without h5py first (formats/h5meta.py: attributes, groups and dataset shapes straight from the
file's metadata); a file holding anything h5meta does not interpret, and --scan-weights, go through
h5py. Both give `_read` the same values, so both give the same graph and the same source facts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from modelaudit.errors import WEIGHTS_ONLY, ModelReadError, NotAModel, exception_text
from modelaudit.formats import dialects, hdf5, json_config
from modelaudit.formats.manifest import attach, name_keys
from modelaudit.graph import ModelGraph, SourceFacts, Weight


@dataclass(frozen=True)
class LayerGroups:
    """The `model_weights` group as plain data, from either reader: its `layer_names` attribute
    (None if absent), its members in HDF5's name order (the layer names when `layer_names` is
    absent; h5py lists them only then), and the `weight_names` attribute of the layer groups that
    have one, by the group's path below model_weights (tf_keras keeps a layer `a/b` at `a/b`)."""

    layer_names: list | None
    members: list
    weight_names: dict


@dataclass(frozen=True)
class _Metadata:
    """A legacy file as h5meta read it: what `_read` takes from an h5py File, in the values h5py gives."""

    attrs: dict
    tree: hdf5.Tree
    layer_groups: LayerGroups | None
    root_members: tuple = ()


def read(path: str, scan=None) -> ModelGraph:
    """`scan`: a formats.scan.WeightScan to run on the weights while the file is open (--scan-weights)."""
    file_size = os.path.getsize(path)
    prefix = _user_block(path, file_size)
    if prefix:
        graph = _read_file(path, file_size, scan)
        return replace(graph, source=replace(graph.source, **prefix))
    return _read_file(path, file_size, scan)


def _user_block(path: str, file_size: int) -> dict:
    """The bytes before the superblock (a user block: the HDF5 library skips them) and after the end
    of file the superblock records (the library reads nothing there), for the rules."""
    from modelaudit.formats.detect import HIDDEN_HEAD, hdf5_end, hdf5_superblock, pickle_globals

    with open(path, "rb") as f:
        def read_at(pos: int, n: int) -> bytes:
            f.seek(pos)
            return f.read(n)

        at = hdf5_superblock(read_at, file_size)
        if at is None:
            return {}
        end = hdf5_end(read_at, at)
        head = read_at(0, min(at, HIDDEN_HEAD)) if at else b""
        after = file_size - end if end is not None and at < end < file_size else 0
        tail = read_at(end, min(after, HIDDEN_HEAD)) if after else b""
    hidden = tuple((where, found) for where, data in (("prefix", head), ("suffix", tail))
                   for found in [pickle_globals(data)] if found is not None)
    if not at and not after:
        return {}
    return {"prefix_size": at, "prefix_head": head, "suffix_size": after, "suffix_head": tail, "hidden_pickles": hidden}


def _read_file(path: str, file_size: int, scan=None) -> ModelGraph:
    if scan is None:
        metadata = _read_metadata(path, file_size)
        if metadata is not None:
            return _read(metadata, file_size)
    import h5py

    from modelaudit.formats.h5guard import DamagedHDF5
    from modelaudit.formats.keras_v3 import MemberFile

    # h5py reads through a file object, not the path: every read passes h5guard, which refuses the
    # damaged global heaps the HDF5 library would loop on forever (a legacy file's model_config
    # lives in one).
    with open(path, "rb") as f:
        try:
            h5 = h5py.File(MemberFile(f, 0, file_size), "r")
        except DamagedHDF5 as exc:
            raise ModelReadError(str(exc)) from None
        except Exception as exc:  # truncated or damaged: h5py raises OSError and friends
            raise ModelReadError(f"not a readable HDF5 file ({exception_text(exc)})") from None
        try:
            with h5:
                return _read(h5, file_size, scan)
        except ModelReadError:
            raise
        except DamagedHDF5 as exc:
            raise ModelReadError(str(exc)) from None
        except (OSError, KeyError, RuntimeError, ValueError, TypeError) as exc:
            raise ModelReadError(f"damaged HDF5 file ({exception_text(exc)})") from None


# What Keras 3's save_weights() (`*.weights.h5`) writes at the root: the model's own variables
# (`vars`), its layers' (`layers`), and the optimizer's when it has one; nothing else, no attributes.
KERAS3_WEIGHTS_ROOT = frozenset({"layers", "vars", "optimizer"})


def _keras3_weights(root_members) -> bool:
    members = set(root_members)
    return bool(members) and members <= KERAS3_WEIGHTS_ROOT and bool(members & {"layers", "vars"})


def _read_metadata(path: str, file_size: int) -> _Metadata | None:
    """The file read by h5meta, without h5py or numpy; None when h5py has to read it."""
    from modelaudit.formats import h5meta

    def wanted(group: str) -> bool:  # the root, model_weights and its layer groups carry attributes
        return group in ("", "model_weights") or group.startswith("model_weights/")

    with open(path, "rb") as f:
        contents = h5meta.read(f.fileno(), 0, file_size, file_size, wanted)
    if contents is None:
        return None
    groups = None
    if "model_weights" in contents.members[""]:
        weights_attrs = contents.attrs.get("model_weights")
        if weights_attrs is None:
            return None  # not a group: h5py says what it is
        try:  # a manifest entry that is not text: h5py reads the file, and fails only if it is needed
            weight_names = {
                group[len("model_weights/"):]: names
                for group, attrs in contents.attrs.items() if group.startswith("model_weights/")
                for names in [hdf5.names_in(attrs, "weight_names")] if names is not None
            }
            groups = LayerGroups(hdf5.names_in(weights_attrs, "layer_names"), contents.members["model_weights"],
                                 weight_names)
        except ModelReadError:
            return None
    return _Metadata(contents.attrs[""], contents.tree, groups, tuple(contents.members[""]))


def _read(h5, file_size: int, scan=None) -> ModelGraph:
    """`h5`: an open h5py File, or the _Metadata h5meta read (then `scan` is None)."""
    attrs = h5.attrs
    if "model_config" not in attrs:
        root = h5.root_members if isinstance(h5, _Metadata) else tuple(h5.keys())
        if "layer_names" in attrs or "layer_names0" in attrs or _keras3_weights(root):
            raise NotAModel(WEIGHTS_ONLY)  # a checkpoint, skipped with a note: never blocks a commit
        raise ModelReadError("HDF5 file has no model_config: not a Keras model")
    text = hdf5.attr_text(attrs["model_config"])
    if text is None:
        raise ModelReadError("model_config is not text")
    config = json_config.loads(text, "model_config")
    training = None
    if "training_config" in attrs:
        training_text = hdf5.attr_text(attrs["training_config"])
        if training_text is not None:
            training = json_config.loads(training_text, "training_config")
    graph = json_config.graph_from_config(config, format="keras-h5", compile_config=training or {})
    tree = h5.tree if isinstance(h5, _Metadata) else hdf5.walk(h5, "", file_size)
    source = SourceFacts(
        file_size=file_size,
        keras_version=hdf5.attr_text(attrs.get("keras_version")),
        backend=hdf5.attr_text(attrs.get("backend")),
        hdf5_links=tuple(tree.links),
        oversized=tuple(tree.oversized),
        training_config=training,
    )
    groups = h5.layer_groups if isinstance(h5, _Metadata) else _h5py_layer_groups(h5, tree, graph)
    if groups is not None:
        graph = attach_by_name(graph, groups, tree.datasets)
    if scan is not None:
        from modelaudit.formats.scan import model_weights

        scan.run_h5(h5, model_weights(graph), hdf5.never_read(tree))
    graph = dialects.legacy_weights(graph, source.keras_version, source.backend)  # after the scan: it reads stored paths
    return replace(graph, source=source)


def _h5py_layer_groups(h5, tree: hdf5.Tree, graph: ModelGraph) -> LayerGroups | None:
    """LayerGroups through h5py, reading only the groups a layer of the graph or `layer_names` names.
    A name is a group's path only through hard links: the walk recorded the others and never follows
    them (no dataset lies beyond one, so the layer would get nothing from it either way)."""
    import h5py

    links = {path for path, _ in tree.links}
    if "model_weights" in links or "model_weights" not in h5:
        return None
    group = h5["model_weights"]
    if not isinstance(group, h5py.Group):
        raise ModelReadError("HDF5 model_weights is not a group")
    layer_names = hdf5.attr_names(group, "layer_names")
    members = list(group.keys()) if layer_names is None else []
    weight_names = {}
    for name in dict.fromkeys((layer_names if layer_names is not None else members) + list(name_keys(graph))):
        parts = name.split("/")
        if not all(p and p != "." and "\0" not in p for p in parts):
            continue  # not a plain path below model_weights: no dataset of the walk is there
        if any("/".join(["model_weights"] + parts[:i]) in links for i in range(1, len(parts) + 1)):
            continue
        if name in group:
            child = group[name]
            names = hdf5.attr_names(child, "weight_names") if isinstance(child, h5py.Group) else None
            if names is not None:
                weight_names[name] = names
    return LayerGroups(layer_names, members, weight_names)


def attach_by_name(graph: ModelGraph, groups: LayerGroups, datasets: dict) -> ModelGraph:
    prefix = "model_weights"
    layer_names = groups.layer_names if groups.layer_names is not None else groups.members
    # Variables of a nested model's inner layers, waiting for the inner layers to claim them:
    # container path -> [(name components, Weight)]
    pending: dict[tuple, list] = {}

    def layer_weights(layer_name: str) -> list[tuple[list[str], Weight]]:
        names = groups.weight_names.get(layer_name)
        out = []
        if names is None:  # no manifest (or no such group): whatever datasets the group holds
            base = f"{prefix}/{layer_name}/"
            for path, weight in datasets.items():
                if path.startswith(base):
                    out.append((path[len(base):].split("/"), weight))
            return out
        for name in names:
            path = f"{prefix}/{layer_name}/{name}"
            weight = datasets.get(path)
            if weight is None:
                continue  # listed but absent: the comparison reports it as missing
            out.append((name.split("/"), weight))
        return out

    claimed = set()

    def lookup(container, layer, key, is_model):
        if not container:
            entries = layer_weights(key)
            claimed.add(key)
        else:
            pool = pending.get(container, [])
            entries = [e for e in pool if key in e[0][:-1]]
            if is_model and not entries and layer.submodel is not None:
                # Keras 2 names a variable by the layer that made it (`seq_dense/kernel:0`), not by
                # the models around it: a model nested in a nested model owns what its layers name.
                inner = _layer_names(layer.submodel)
                entries = [e for e in pool if inner.intersection(e[0][:-1])]
            pending[container] = [e for e in pool if not any(e is x for x in entries)]
        if is_model:
            pending[container + (key,)] = entries
            return ()
        return tuple(weight for _, weight in entries)

    graph = attach(graph, lookup, name_keys)
    leftover = [w for entries in pending.values() for _, w in entries]
    for name in layer_names:
        if name not in claimed:
            leftover.extend(w for _, w in layer_weights(name))
    return replace(graph, unassigned_weights=tuple(leftover)) if leftover else graph


def _layer_names(graph: ModelGraph) -> set:
    """Every layer name at every depth (iterative: models nest as deep as json_config allows)."""
    names = set()
    stack = [graph]
    while stack:
        for layer in stack.pop().layers:
            names.add(layer.name)
            if layer.submodel is not None:
                stack.append(layer.submodel)
    return names
