"""An in-memory keras.Model (Python API only): serialized the way Keras saves it, then read by the
same config parser as the files. The only module that imports keras, and only when called."""

from __future__ import annotations

import json

from modelaudit.formats import json_config
from modelaudit.formats.manifest import attach, name_keys
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
    graph = attach(graph, _live_weights(model), name_keys)
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


def _live_weights(model):
    """manifest's lookup over the live model: a layer's variables are those of the keras object of
    its name, in the model or nested model (`container`, a path of names) that holds it."""
    by_name = {(): _sublayers(model)}  # container -> {name: keras layer}, each built once

    def lookup(container: tuple, layer, key: str, is_container: bool) -> tuple:
        obj = by_name[container].get(key)
        if is_container:
            # attach asks for a nested model's own variables before walking into it: its layers are
            # mapped here, from its parent's map; its variables are its layers', attached there
            by_name[container + (key,)] = _sublayers(obj)
            return ()
        return () if obj is None else tuple(_weight(v) for v in obj.weights)

    return lookup


def _sublayers(obj) -> dict:
    return {layer.name: layer for layer in getattr(obj, "layers", [])}


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
