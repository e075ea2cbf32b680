"""Legacy HDF5 models (.h5/.hdf5) as written by Keras 2 (tf.keras, tf_keras) and by Keras 3.

Root attributes: `model_config` (JSON), `training_config` (JSON), `keras_version`, `backend`.
Weights: `model_weights/<layer name>` groups whose `weight_names` attribute lists the layer's
variables in `layer.weights` order; a nested model's group holds all of its inner layers' variables.
"""

from __future__ import annotations

import os
from dataclasses import replace

from modelaudit.errors import ModelReadError
from modelaudit.formats import dialects, hdf5, json_config
from modelaudit.formats.manifest import attach, name_keys
from modelaudit.graph import ModelGraph, SourceFacts, Weight


def read(path: str, scan=None) -> ModelGraph:
    """`scan`: a formats.scan.WeightScan to run on the weights while the file is open (--scan-weights)."""
    import h5py

    from modelaudit.formats.h5guard import DamagedHDF5
    from modelaudit.formats.keras_v3 import MemberFile

    file_size = os.path.getsize(path)
    # h5py reads through a file object, not the path: every read passes h5guard, which refuses the
    # damaged global heaps the HDF5 library would loop on forever (a legacy file's model_config
    # lives in one).
    with open(path, "rb") as f:
        try:
            h5 = h5py.File(MemberFile(f, 0, file_size), "r")
        except DamagedHDF5 as exc:
            raise ModelReadError(str(exc)) from None
        except Exception as exc:  # truncated or damaged: h5py raises OSError and friends
            raise ModelReadError(f"not a readable HDF5 file ({_one_line(exc)})") from None
        try:
            with h5:
                return _read(h5, file_size, scan)
        except ModelReadError:
            raise
        except DamagedHDF5 as exc:
            raise ModelReadError(str(exc)) from None
        except (OSError, KeyError, RuntimeError, ValueError, TypeError) as exc:
            raise ModelReadError(f"damaged HDF5 file ({_one_line(exc)})") from None


def _read(h5, file_size: int, scan=None) -> ModelGraph:
    attrs = h5.attrs
    if "model_config" not in attrs:
        if "layer_names" in attrs or "layer_names0" in attrs:
            raise ModelReadError("HDF5 file has no model_config: it holds weights only (save_weights), no model")
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
    tree = hdf5.walk(h5, "", file_size)
    source = SourceFacts(
        file_size=file_size,
        keras_version=hdf5.attr_text(attrs.get("keras_version")),
        backend=hdf5.attr_text(attrs.get("backend")),
        hdf5_links=tuple(tree.links),
        oversized=tuple(tree.oversized),
        training_config=training,
    )
    if "model_weights" in h5:
        graph = attach_by_name(graph, h5["model_weights"], tree.datasets)
    if scan is not None:
        from modelaudit.formats.scan import model_weights

        scan.run_h5(h5, model_weights(graph), hdf5.never_read(tree))
    graph = dialects.legacy_weights(graph, source.keras_version, source.backend)  # after the scan: it reads stored paths
    return replace(graph, source=source)


def attach_by_name(graph: ModelGraph, weights_group, datasets: dict) -> ModelGraph:
    prefix = "model_weights"
    layer_names = hdf5.attr_names(weights_group, "layer_names")
    if layer_names is None:
        layer_names = [k for k in weights_group.keys()]
    # Variables of a nested model's inner layers, waiting for the inner layers to claim them:
    # container path -> [(name components, Weight)]
    pending: dict[tuple, list] = {}

    def layer_weights(layer_name: str) -> list[tuple[list[str], Weight]]:
        if layer_name not in weights_group:
            return []
        group = weights_group[layer_name]
        names = hdf5.attr_names(group, "weight_names")
        out = []
        if names is None:  # no manifest: whatever datasets the group holds
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
    names = set()
    for layer in graph.layers:
        names.add(layer.name)
        if layer.submodel is not None:
            names |= _layer_names(layer.submodel)
    return names


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__
