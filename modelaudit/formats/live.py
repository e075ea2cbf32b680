"""An in-memory keras.Model (Python API only): serialized the way Keras saves it, then read by the
same config parser as the files. The only module that imports keras, and only when called."""

from __future__ import annotations

import json

from modelaudit.formats import json_config
from modelaudit.graph import ModelGraph, SourceFacts, Weight


def is_keras_model(obj) -> bool:
    # Duck-typed so that checking needs no keras import: any Keras 2 or 3 model has these.
    return hasattr(obj, "get_config") and hasattr(obj, "layers") and hasattr(obj, "count_params")


def read(model) -> ModelGraph:
    from dataclasses import replace

    if type(model).__module__.startswith("tf_keras"):
        serialized, compile_config, version = _keras2(model)
    else:
        import keras

        serialized = keras.saving.serialize_keras_object(model)
        compile_config = serialized.pop("compile_config", None)
        version = keras.__version__
    # Through JSON, so the parser sees exactly what a saved file would hold.
    data = json.loads(json.dumps(serialized, default=_jsonable))
    compile_config = json.loads(json.dumps(compile_config, default=_jsonable)) if compile_config else None
    graph = json_config.graph_from_config(data, format="live", compile_config=compile_config or {})
    graph = _attach(graph, model)
    return replace(graph, source=SourceFacts(keras_version=version))


def _keras2(model):
    """A tf_keras model: its config, and its training config as legacy h5 would save it."""
    import tf_keras

    serialized = {"class_name": type(model).__name__, "config": model.get_config()}
    compile_config = None
    try:
        from tf_keras.src.saving.legacy import saving_utils

        compile_config = saving_utils.model_metadata(model, include_optimizer=True).get("training_config")
    except Exception:  # uncompiled, or a tf_keras without that helper
        compile_config = None
    return serialized, compile_config, tf_keras.__version__


def _attach(graph: ModelGraph, model) -> ModelGraph:
    from dataclasses import replace

    by_name = {layer.name: layer for layer in getattr(model, "layers", [])}
    layers = []
    for layer in graph.layers:
        obj = by_name.get(layer.name)
        if obj is None:
            layers.append(replace(layer, weights=()))
            continue
        if layer.submodel is not None:
            layers.append(replace(layer, weights=(), submodel=_attach(layer.submodel, obj)))
        else:
            layers.append(replace(layer, weights=tuple(_weight(v) for v in obj.weights)))
    return replace(graph, layers=tuple(layers))


def _weight(variable) -> Weight:
    path = getattr(variable, "path", None) or getattr(variable, "name", "")
    dtype = getattr(variable, "dtype", "float32")
    shape = tuple(variable.shape)
    if None in shape:  # tf_keras's TF-IDF weights are a tf.Variable of shape (None,): its value has one
        shape = tuple(variable.numpy().shape)
    return Weight(path=str(path), shape=tuple(int(d) for d in shape), dtype=str(getattr(dtype, "name", dtype)))


def _jsonable(obj):
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    return str(obj)
