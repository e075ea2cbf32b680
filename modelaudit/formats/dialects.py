"""Keras 2 vs Keras 3 config differences, normalized once, here.

Everything downstream (infer/, checks/) reads the Keras 3 dialect only.
"""

from __future__ import annotations


def normalize_dtype(dtype):
    """A dtype as written by either dialect -> (variable dtype, compute dtype) as strings or None.

    Keras 3 writes a DTypePolicy object ({"class_name": "DTypePolicy", "config": {"name": ...}}),
    Keras 2 a string or a Policy object ({"class_name": "Policy", "config": {"name": ...}}).
    """
    if isinstance(dtype, dict):
        name = (dtype.get("config") or {}).get("name")
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
