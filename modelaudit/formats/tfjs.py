"""A TensorFlow.js Layers model: model.json holding a Keras config and a manifest of its weights.

`modelTopology` is the Keras model config. The Python converter (tensorflowjs.converters,
keras_h5_conversion.py) wraps it: {keras_version, backend, model_config, training_config}; the
JavaScript `model.save()` writes the config itself ({class_name, config, keras_version, backend})
and the training config beside it, as `trainingConfig`. `weightsManifest` lists groups of
{paths: [shard files], weights: [{name, shape, dtype, quantization?}]}: the stored shapes and dtypes
are read from it, the .bin shards are never opened (only whether they exist beside the file).

Weight names: a Keras 2 model (tf_keras, TF.js itself) names each variable by the layer that made it,
`dense/kernel` (the h5 weight name without `:0`), a nested model's layers by their own names, with no
prefix for the model around them; a Keras 3 `.keras` converted by `dispatch_keras_keras_to_tfjs...`
keeps the .keras generic paths, `layers/sequential/layers/dense/vars/0`.
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from typing import Any, Optional

from modelaudit.errors import WEIGHTS_ONLY, ModelReadError, NotAModel, NotKerasJSON
from modelaudit.formats import json_config
from modelaudit.formats.manifest import attach, name_keys
from modelaudit.graph import ModelGraph, SourceFacts, Weight

FORMAT = "tfjs-layers"
# Bounds against hostile manifests. The converter writes one group (or one per layer with
# --split_weights_by_layer) of 4 MB shards: a 2 GB model has a few hundred shards and a few thousand
# weights.
MAX_GROUPS = 10_000
MAX_WEIGHTS = 200_000
MAX_PATHS = 100_000
MAX_NAME_CHARS = 1024
MAX_RANK = 32
# What tfjs-core's io/types.ts allows: the weight dtypes, and the dtypes a weight may be stored in.
DTYPES = {"float32", "int32", "bool", "string", "complex64"}
QUANTIZED_DTYPES = {"uint8", "uint16", "float16"}
_GENERIC = re.compile(r"(^|/)vars/\d+$")


def is_layers_model(data: Any) -> bool:
    """A parsed model.json written by the TensorFlow.js converter or `tfjs.layers.save`."""
    return isinstance(data, dict) and ("modelTopology" in data or data.get("format") == "layers-model")


def read(path: str, data: dict, file_size: int) -> ModelGraph:
    fmt = data.get("format")
    if fmt == "graph-model":
        raise NotKerasJSON("a TensorFlow.js graph model (format graph-model) holds a TensorFlow graph, not Keras layers")
    if fmt is not None and fmt != "layers-model":
        raise ModelReadError(f"model.json format is {_show(fmt)}, not layers-model")
    config, training, keras_version, backend = _topology(data.get("modelTopology"))
    if training is None:
        training = _object_or_none(data.get("trainingConfig"), "trainingConfig")
    graph = json_config.graph_from_config(config, format=FORMAT, compile_config=training or {})
    missing: tuple = ()
    if data.get("weightsManifest") is not None:
        weights, paths = read_manifest(data["weightsManifest"])
        graph = attach_weights(graph, weights)
        folder = os.path.dirname(os.path.abspath(path))
        missing = missing_files(folder, paths)
        # the variables are in the shards beside model.json: their bytes are what the model holds
        file_size += sum(os.path.getsize(os.path.join(folder, os.path.normpath(p)))
                         for p in dict.fromkeys(paths) if p not in missing)
    source = SourceFacts(
        file_size=file_size, keras_version=keras_version, backend=backend, training_config=training,
        missing_weight_files=missing,
    )
    return replace(graph, source=source)


def _topology(topology: Any) -> tuple[dict, Optional[dict], Optional[str], Optional[str]]:
    """(model config, training config, keras version, backend) from either layout of modelTopology."""
    if topology is None:
        raise NotAModel(WEIGHTS_ONLY)  # a weights manifest alone: a checkpoint, skipped with a note
    if isinstance(topology, str):  # a config saved as JSON text inside the JSON
        topology = json_config.loads(topology, "modelTopology (a JSON string)")
    if not isinstance(topology, dict):
        raise ModelReadError("modelTopology is not a JSON object")
    keras_version, backend = _text(topology.get("keras_version")), _text(topology.get("backend"))
    if "model_config" not in topology:
        return topology, None, keras_version, backend
    config = topology["model_config"]
    if isinstance(config, str):
        config = json_config.loads(config, "model_config")
    training = topology.get("training_config")
    if isinstance(training, str):
        training = json_config.loads(training, "training_config")
    return config, _object_or_none(training, "training_config"), keras_version, backend


def _object_or_none(value: Any, what: str) -> Optional[dict]:
    if value is None or isinstance(value, dict):
        return value
    raise ModelReadError(f"{what} is not a JSON object")


def _text(value: Any) -> Optional[str]:
    return value if isinstance(value, str) else None


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# ---- the manifest ------------------------------------------------------------------------------


def read_manifest(manifest: Any) -> tuple[list[Weight], list[str]]:
    """The model's stored weights (optimizer state left out) and every shard path, in file order."""
    if not isinstance(manifest, list):
        raise ModelReadError("weightsManifest is not a list of weight groups")
    if len(manifest) > MAX_GROUPS:
        raise ModelReadError(f"weightsManifest holds {len(manifest):,} groups, more than {MAX_GROUPS:,}")
    weights: list[Weight] = []
    paths: list[str] = []
    for g, group in enumerate(manifest):
        if not isinstance(group, dict):
            raise ModelReadError(f"weightsManifest group #{g} is not an object")
        group_paths, entries = group.get("paths", []), group.get("weights")
        if not isinstance(group_paths, list) or not all(isinstance(p, str) for p in group_paths):
            raise ModelReadError(f"weightsManifest group #{g}: paths is not a list of file names")
        if not isinstance(entries, list):
            raise ModelReadError(f"weightsManifest group #{g}: weights is not a list")
        paths.extend(group_paths)
        if len(paths) > MAX_PATHS:
            raise ModelReadError(f"weightsManifest names more than {MAX_PATHS:,} weight files")
        if len(weights) + len(entries) > MAX_WEIGHTS:
            raise ModelReadError(f"weightsManifest lists more than {MAX_WEIGHTS:,} weights")
        for i, entry in enumerate(entries):
            weight = _entry(entry, f"weightsManifest group #{g} weight #{i}")
            if weight is not None:
                weights.append(weight)
    for p in paths:
        if len(p) > MAX_NAME_CHARS:
            raise ModelReadError(f"weightsManifest names a weight file of {len(p):,} characters")
    return weights, paths


def _entry(entry: Any, where: str) -> Optional[Weight]:
    """One manifest entry -> its Weight (dtype: the weight's own, not the one it is stored in), or None
    for the optimizer's state (`model.save({includeOptimizer: true})` marks it group "optimizer")."""
    if not isinstance(entry, dict):
        raise ModelReadError(f"{where} is not an object")
    name, shape, dtype = entry.get("name"), entry.get("shape"), entry.get("dtype")
    if not isinstance(name, str) or not name:
        raise ModelReadError(f"{where} has no name")
    if len(name) > MAX_NAME_CHARS:
        raise ModelReadError(f"{where} has a name of {len(name):,} characters, more than {MAX_NAME_CHARS}")
    if not isinstance(shape, list):
        raise ModelReadError(f"{where} ('{name}') has no shape")
    if len(shape) > MAX_RANK or not all(type(d) is int and d >= 0 for d in shape):
        raise ModelReadError(f"{where} ('{name}'): shape is not a list of at most {MAX_RANK} non-negative integers")
    if dtype not in DTYPES:
        raise ModelReadError(f"{where} ('{name}'): dtype {_show(dtype)} is not one of {', '.join(sorted(DTYPES))}")
    quantization = entry.get("quantization")
    if quantization is not None:
        _check_quantization(quantization, f"{where} ('{name}')")
    if entry.get("group") == "optimizer":
        return None
    return Weight(path=name, shape=tuple(shape), dtype=dtype)


def _check_quantization(quantization: Any, where: str) -> None:
    # The weight keeps its shape and dtype (the converter writes the original dtype as `dtype`); only
    # the bytes in the shard are of the quantized dtype.
    if not isinstance(quantization, dict):
        raise ModelReadError(f"{where}: quantization is not an object")
    dtype = quantization.get("dtype")
    if dtype not in QUANTIZED_DTYPES:
        raise ModelReadError(f"{where}: quantization dtype {_show(dtype)} is not uint8, uint16 or float16")
    if dtype != "float16":
        for key in ("scale", "min"):
            value = quantization.get(key)
            if key in quantization and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise ModelReadError(f"{where}: quantization {key} is not a number")


def missing_files(folder: str, paths: list[str]) -> tuple[str, ...]:
    """Shard paths that are not files beside model.json. A path leading out of the folder (absolute,
    `..`) is not followed: TF.js resolves shards relative to model.json, so it is not beside it."""
    missing = []
    for p in dict.fromkeys(paths):
        rel = os.path.normpath(p)
        if os.path.isabs(rel) or rel == ".." or rel.startswith(".." + os.sep) or "\x00" in rel or "://" in p:
            missing.append(p)
        elif not os.path.isfile(os.path.join(folder, rel)):
            missing.append(p)
    return tuple(missing)


# ---- weights -> layers -------------------------------------------------------------------------


def attach_weights(graph: ModelGraph, weights: list[Weight]) -> ModelGraph:
    if any(_GENERIC.search(w.path) for w in weights):
        from modelaudit.formats.keras_v3 import attach_generic

        return attach_generic(graph, {w.path: w for w in weights})
    owned: dict[tuple, list[Weight]] = {}
    leftover = []
    indexes: dict = {}
    for w in weights:
        owner = _owner(graph, w.path.split("/")[:-1], indexes)
        if owner is None:
            leftover.append(w)
        else:
            owned.setdefault(owner, []).append(w)

    def lookup(container: tuple, layer, key: str, is_model: bool) -> tuple:
        return tuple(owned.pop(container + (key,), ()))

    graph = attach(graph, lookup, name_keys)
    leftover.extend(w for ws in owned.values() for w in ws)
    return replace(graph, unassigned_weights=tuple(leftover)) if leftover else graph


def _owner(graph: ModelGraph, scopes: list[str], indexes: dict) -> Optional[tuple]:
    """The path of layer names that owns a variable named under `scopes`: its first scope that names
    a layer (at any depth: Keras 2 names a nested model's layers without the model's name); inside a
    nested model, the rest of the scopes name its layer, else the variable is the model's own."""
    index = _index(graph, indexes)
    for i, scope in enumerate(scopes):
        found = index.get(scope)
        if found is None:
            continue
        path, layer = found
        if layer.submodel is not None:
            inner = _owner(layer.submodel, scopes[i + 1:], indexes)
            return path + inner if inner is not None else path
        return path
    return None


def _index(graph: ModelGraph, indexes: dict) -> dict:
    """Layer name -> (path of names from `graph`, layer), the graph's own layers before those of the
    models it nests; built once per graph."""
    index = indexes.get(id(graph))
    if index is not None:
        return index
    index = {}
    for layer in graph.layers:
        if not layer.synthetic:
            index.setdefault(layer.name, ((layer.name,), layer))
    for layer in graph.layers:
        if layer.submodel is not None:
            for name, (path, inner) in _index(layer.submodel, indexes).items():
                index.setdefault(name, ((layer.name,) + path, inner))
    indexes[id(graph)] = index
    return index
