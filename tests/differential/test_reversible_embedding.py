"""keras.layers.ReversibleEmbedding (keras/src/layers/core/reversible_embedding.py), float and quantized.

Real Keras 3 models use it tied and untied, called forward (a lookup) and with `reverse=True` (a
projection back to vocabulary logits), float and quantized by `model.quantize` to int8 and int4 (per
channel and in blocks). Each is saved as `.keras` and compared layer by layer with Keras (params,
trainable split, output shapes), the variables we expect are the ones Keras builds when it loads the
file, and `modelaudit.audit` finds no error or warning. keras_hub's subclass is read by its own
registered name, Keras's by its class name, and both agree.
"""

from __future__ import annotations

import os
import warnings

import pytest

import keras
import keras_hub

from modelaudit import formats  # noqa: E402
from modelaudit.formats import live  # noqa: E402
from modelaudit.infer import registry  # noqa: E402
from modelaudit.infer.propagate import propagate  # noqa: E402
from tests.differential.keras_check import check_layer  # noqa: E402
from tests.differential.test_quantized import _errors_and_warnings  # noqa: E402
from tests.differential.test_zoo import K3, Built, compare  # noqa: E402

L = keras.layers


def build_lm(tie_weights: bool, embedding_class=None):
    """A small LM: tokens -> embedding -> Dense -> the same embedding reversed to logits; a second,
    untied embedding is only ever called in reverse (its first call is a projection). Odd sizes, so
    int4 packing rounds up and blocks of 4 leave a partial group."""
    embedding_class = embedding_class or L.ReversibleEmbedding
    inp = keras.Input((6,), dtype="int32", name="tokens")
    emb = embedding_class(31, 9, tie_weights=tie_weights, name="emb")
    x = emb(inp)  # (6, 9)
    x = L.Dense(9, activation="relu", name="hidden")(x)
    logits = emb(x, reverse=True)  # (6, 31)
    side = L.ReversibleEmbedding(17, 9, tie_weights=False, name="side")(x, reverse=True)  # (6, 17)
    model = keras.Model(inp, [logits, side], name=f"lm_{'tied' if tie_weights else 'untied'}")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def _quantize(model, mode, block_size=None):
    config = None if block_size is None else keras.quantizers.Int4QuantizationConfig(block_size=block_size)
    with warnings.catch_warnings():  # Keras warns for each layer it cannot quantize (InputLayer)
        warnings.simplefilter("ignore", UserWarning)
        model.quantize(mode, config=config)
    return model


# id -> builder
MODELS = {
    "tied": lambda: build_lm(True),
    "untied": lambda: build_lm(False),
    "untied-int8": lambda: _quantize(build_lm(False), "int8"),
    "tied-int8": lambda: _quantize(build_lm(True), "int8"),
    "untied-int4": lambda: _quantize(build_lm(False), "int4"),  # Keras's default: blocks of 128
    "untied-int4-per-channel": lambda: _quantize(build_lm(False), "int4", -1),
    "untied-int4-block4": lambda: _quantize(build_lm(False), "int4", 4),
    "hub-untied": lambda: build_lm(False, keras_hub.layers.ReversibleEmbedding),
}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("reversible"))
    out = {}
    for id_, build in MODELS.items():
        model = build()
        path = os.path.join(folder, f"{id_}.keras")
        keras.saving.save_model(model, path)
        out[id_] = Built(id_, K3, model, {"keras-v3": path})
    yield out
    keras.backend.clear_session()


@pytest.mark.parametrize("id_", list(MODELS))
def test_model_matches_keras_and_is_silent(models, id_):
    built = models[id_]
    problems = compare(built, live.read(built.model), "live")
    graph = formats.read(built.files["keras-v3"])
    problems += compare(built, graph, "keras-v3")
    problems += [f"keras-v3: {p}" for p in _errors_and_warnings(built.files["keras-v3"])]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("id_", list(MODELS))
def test_reverse_call_shapes_and_spec_lookup(models, id_):
    """The reverse call (call 1 of the shared embedding) has Keras's logits shape, and each class is
    read by its own spec: keras_hub's by its registered name, Keras's by its class name."""
    built = models[id_]
    graph = formats.read(built.files["keras-v3"])
    rows = {r.path: r for r in propagate(graph).rows}
    logits, side = (tuple(t.shape) for t in built.model.outputs)
    assert [tuple(s) for s in rows["emb"].output_shapes[1]] == [logits]
    assert [tuple(s) for s in rows["side"].output_shapes[0]] == [side]
    hub = id_.startswith("hub")
    assert rows["emb"].layer.registered_name == ("keras_hub>ReversibleEmbedding" if hub else None)
    name = "keras_hub>ReversibleEmbedding" if hub else "ReversibleEmbedding"
    assert registry.spec_for(rows["emb"].layer) is registry.get(name)
    assert registry.spec_for(rows["side"].layer) is registry.get("ReversibleEmbedding")


@pytest.mark.parametrize("id_", [i for i in MODELS if "int" in i])
def test_expected_variables_are_the_ones_keras_builds_on_load(models, id_):
    """Names, order, shapes and trainability, against the model Keras loads from the same file."""
    path = models[id_].files["keras-v3"]
    loaded = keras.saving.load_model(path)
    rows = {r.path: r for r in propagate(formats.read(path)).rows}
    quantized = [layer for layer in loaded.layers if getattr(layer, "quantization_mode", None)]
    assert {"emb", "side"} <= {layer.name for layer in quantized}
    for layer in quantized:
        theirs = [(w.name, tuple(w.shape), bool(w.trainable)) for w in layer.weights]
        ours = [(w.name, tuple(w.shape), w.trainable) for w in rows[layer.name].expected_weights]
        assert ours == theirs, f"{id_} {layer.name}"


@pytest.mark.parametrize("tie_weights", [True, False])
def test_check_layer(tie_weights):
    _, weights = check_layer(L.ReversibleEmbedding(23, 5, tie_weights=tie_weights), [(2, 7)])
    assert ("reverse_embeddings" in [w.name for w in weights]) is not tie_weights
