"""Compare one LayerSpec with real Keras, layer by layer: the ground truth for the formulas.

`check_layer(layer, input_shapes)` builds the Keras layer on symbolic inputs of those shapes, reads
Keras's own answers (`count_params()`, output shapes, `layer.weights` shapes and trainability) and
asserts that our spec, given only the layer's JSON config (as a saved file holds it), agrees.
"""

from __future__ import annotations

import json

from modelaudit.infer import registry


def json_config(layer) -> dict:
    """The layer's config exactly as a saved file holds it (through JSON)."""
    import keras

    return json.loads(json.dumps(keras.saving.serialize_keras_object(layer)))["config"]


def _shape(s):
    return tuple(None if d is None else int(d) for d in s)


def check_layer(layer, input_shapes, *, call_kwargs=None):
    """Build `layer` on inputs of `input_shapes` (batch dim included) and assert agreement.

    Returns (spec output shapes, spec weights) for further asserts.
    """
    import keras

    inputs = [keras.Input(batch_shape=s) for s in input_shapes]
    if call_kwargs:
        out = layer(*inputs, **call_kwargs)
    else:
        out = layer(inputs[0] if len(inputs) == 1 else inputs)
    outs = out if isinstance(out, (list, tuple)) else [out]
    keras_shapes = [_shape(t.shape) for t in outs]
    keras_weights = [(_shape(w.shape), bool(w.trainable)) for w in layer.weights]

    name = type(layer).__name__
    spec = registry.get(name)
    assert spec is not None, f"no spec for {name}"
    config = json_config(layer)
    shapes = [tuple(s) for s in input_shapes]
    ours_shapes = [tuple(s) for s in spec.output_shapes(config, shapes)]
    ours_weights = spec.weights(config, shapes)
    ctx = f"{name} on {input_shapes} with {config}"
    assert ours_shapes == keras_shapes, f"{ctx}: output shapes ours {ours_shapes} != keras {keras_shapes}"
    assert sum(w.size for w in ours_weights) == layer.count_params(), (
        f"{ctx}: params ours {sum(w.size for w in ours_weights)} != keras {layer.count_params()}"
    )
    assert [(tuple(w.shape), w.trainable) for w in ours_weights] == keras_weights, (
        f"{ctx}: weights ours {[(w.shape, w.trainable) for w in ours_weights]} != keras {keras_weights}"
    )
    return ours_shapes, ours_weights


def check_layer_keras2(layer, input_shapes, *, dtype=None):
    """The same comparison for a Keras 2 layer (tf_keras), whose config uses the Keras 2 dialect.

    Keras 2 configs pass through `formats.dialects.normalize_layer_config` first, as the readers do.
    tf_keras runs the layer on its symbolic inputs: `dtype` gives them the one it computes on
    ("string" for a StringLookup).
    """
    import tf_keras

    from modelaudit.formats.dialects import normalize_layer_config

    inputs = [tf_keras.Input(batch_shape=s, dtype=dtype) for s in input_shapes]
    out = layer(inputs[0] if len(inputs) == 1 else inputs)
    outs = out if isinstance(out, (list, tuple)) else [out]
    keras_shapes = [_shape(t.shape) for t in outs]
    keras_weights = [(_shape(w.shape), bool(w.trainable)) for w in layer.weights]
    name = type(layer).__name__
    spec = registry.get(name)
    assert spec is not None, f"no spec for {name}"
    raw = json.loads(json.dumps(tf_keras.layers.serialize(layer)))
    config = normalize_layer_config(raw["class_name"], raw["config"])
    shapes = [tuple(s) for s in input_shapes]
    ours_shapes = [tuple(s) for s in spec.output_shapes(config, shapes)]
    ours_weights = spec.weights(config, shapes)
    ctx = f"Keras 2 {name} on {input_shapes} with {config}"
    assert ours_shapes == keras_shapes, f"{ctx}: output shapes ours {ours_shapes} != keras {keras_shapes}"
    assert sum(w.size for w in ours_weights) == layer.count_params(), f"{ctx}: params differ"
    assert sorted((tuple(w.shape), w.trainable) for w in ours_weights) == sorted(keras_weights), (
        f"{ctx}: weights ours {[(w.shape, w.trainable) for w in ours_weights]} != keras {keras_weights}"
    )
    return ours_shapes, ours_weights
