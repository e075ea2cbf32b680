"""Keras 2 vs Keras 3 config differences, normalized once, here.

Everything downstream (infer/, checks/) reads the Keras 3 dialect only.
"""

from __future__ import annotations

from dataclasses import replace


def normalize_dtype(dtype):
    """A dtype as written by either dialect -> (variable dtype, compute dtype) as strings or None.

    Keras 3 writes a DTypePolicy object ({"class_name": "DTypePolicy", "config": {"name": ...}}),
    Keras 2 a string or a Policy object ({"class_name": "Policy", "config": {"name": ...}}).
    """
    if isinstance(dtype, dict):
        config = dtype.get("config")
        name = config.get("name") if isinstance(config, dict) else None
    else:
        name = dtype
    if not isinstance(name, str):
        return None, None
    if name.startswith("mixed_"):
        return "float32", name[len("mixed_"):]
    return name, name


def normalize_layer_config(class_name: str, config: dict) -> dict:
    """One layer's config in the Keras 3 dialect. Returns a new dict; the input is not changed."""
    if not isinstance(config, dict):
        return config
    out = dict(config)
    # Keras 2 InputLayer / first layer: batch_input_shape; Keras 3: batch_shape
    if "batch_input_shape" in out and "batch_shape" not in out:
        out["batch_shape"] = out["batch_input_shape"]
    # Keras 2 BatchNormalization may write its axis as a one-element list
    if class_name in ("BatchNormalization", "LayerNormalization") and isinstance(out.get("axis"), list):
        if len(out["axis"]) == 1:
            out["axis"] = out["axis"][0]
    # Wrapped layers (TimeDistributed, Bidirectional) normalize their inner layer too
    for key in ("layer", "backward_layer"):
        inner = out.get(key)
        if isinstance(inner, dict) and isinstance(inner.get("config"), dict):
            out[key] = dict(inner, config=normalize_layer_config(inner.get("class_name", ""), inner["config"]))
    return out


def renumber_keras2_calls(layers: list, outputs: tuple):
    """Keras 2 numbers the calls of a nested model from 1 when the model was built on an Input:
    its call 0 is the one that built it, which the config leaves out (tf_keras
    functional._should_skip_first_node). Shift those references to count from 0, as Keras 3 does."""
    skip = {
        layer.name
        for layer in layers
        if layer.submodel is not None and layer.submodel.layers and layer.submodel.layers[0].class_name == "InputLayer"
        and not layer.submodel.layers[0].synthetic
    }
    if not skip:
        return layers, outputs

    def fix(ref):
        return replace(ref, call=ref.call - 1) if ref.layer in skip and ref.call > 0 else ref

    new_layers = []
    for layer in layers:
        calls = tuple(replace(call, inputs=tuple(fix(r) for r in call.inputs)) for call in layer.calls)
        new_layers.append(replace(layer, calls=calls))
    return new_layers, tuple(fix(r) for r in outputs)
