"""Real Keras models for the review commands' tests (diff, baseline, textconv), built once per session.

`review` maps a name to a Saved: the .keras path and what Keras itself says of the model (each
layer's count_params() and output shape, the model's count_params() and trainable weights), the
independent truth the tests compare modelaudit's output with.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import pytest


@dataclass
class Saved:
    path: str
    params: dict = field(default_factory=dict)  # layer path -> count_params()
    shapes: dict = field(default_factory=dict)  # layer path -> [output shape as a list]
    total: int = 0
    trainable: int = 0


def _sequential(keras, kernel=3, hidden=False, dropout=True, units=10, activation="softmax",
                loss="categorical_crossentropy"):
    layers = [keras.Input((8, 8, 1), name="inp"), keras.layers.Conv2D(4, kernel, name="conv"),
              keras.layers.Flatten(name="flat")]
    if hidden:
        layers.append(keras.layers.Dense(16, activation="relu", name="hidden"))
    if dropout:
        layers.append(keras.layers.Dropout(0.1, name="drop"))
    layers.append(keras.layers.Dense(units, activation=activation, name="out"))
    model = keras.Sequential(layers, name="net")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss, metrics=["accuracy"])
    return model


def _nested(keras, units=8, activation="relu"):
    block = keras.Sequential([keras.Input((6,)), keras.layers.Dense(units, activation=activation, name="inner")],
                             name="block")
    x = keras.Input((6,), name="x")
    y = keras.layers.Dense(3, activation="softmax", name="head")(block(x))
    model = keras.Model(x, y, name="nested")
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    return model


BUILDERS = {
    "base": lambda k: _sequential(k),
    # the conv's kernel size, the output's units and activation changed, a layer added, one removed
    "changed": lambda k: _sequential(k, kernel=5, hidden=True, dropout=False, units=1, activation="sigmoid",
                                     loss="binary_crossentropy"),
    "bce": lambda k: _sequential(k, loss="binary_crossentropy"),  # softmax + binary cross-entropy: MA201
    "nested_a": lambda k: _nested(k),
    "nested_b": lambda k: _nested(k, units=12, activation="tanh"),
}


def _facts(model, path: str, prefix: str = "", saved: Saved = None) -> Saved:
    saved = saved or Saved(path, total=model.count_params(),
                           trainable=sum(int(np.prod(w.shape)) for w in model.trainable_weights))
    for layer in model.layers:
        name = f"{prefix}{layer.name}"
        saved.params[name] = layer.count_params()
        saved.shapes[name] = [list(layer.output.shape)]
        if hasattr(layer, "layers"):
            _facts(layer, path, f"{name}/", saved)
    return saved


def save(keras, model, path: str) -> Saved:
    model.save(path)
    return _facts(model, path)


def retrain(keras, model, path: str) -> Saved:
    """One step of training on random data, saved again to `path`: other weights, other bytes."""
    shape = (4,) + tuple(model.inputs[0].shape[1:])
    y = np.zeros((4,) + tuple(model.outputs[0].shape[1:]), dtype="float32")
    y[:, 0] = 1
    model.fit(np.random.default_rng(0).random(shape, dtype="float32"), y, epochs=1, verbose=0)
    return save(keras, model, path)


_BUILT: dict = {}  # the fixture is imported into each test module, which makes one fixture each: built once here


@pytest.fixture(scope="session")
def review(tmp_path_factory):
    if _BUILT:
        return _BUILT
    import keras

    folder = str(tmp_path_factory.mktemp("review"))
    out = {}
    for name, build in BUILDERS.items():
        model = build(keras)
        out[name] = save(keras, model, os.path.join(folder, f"{name}.keras"))
        if name == "bce":  # the same model after a step of training: same architecture, other bytes
            out["bce_retrained"] = retrain(keras, model, os.path.join(folder, "bce_retrained.keras"))
    keras.backend.clear_session()
    _BUILT.update(out)  # only once every model is built: a failed build fails each module alike
    return _BUILT
