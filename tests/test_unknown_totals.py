"""Unknown is not zero: what no spec recomputes and no file stores is unknown; what the file does store
is split into trainable and non-trainable as Keras splits it, on every path (issue 12, part 6)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from modelaudit import formats
from modelaudit.api import audit
from modelaudit.infer.propagate import propagate


def _keras_split(model) -> tuple[int, int, int]:
    trainable = sum(int(w.shape.num_elements()) if hasattr(w.shape, "num_elements") else int(w.numpy().size)
                    for w in model.trainable_weights)
    total = int(model.count_params())
    return total, trainable, total - trainable


def _scale_layer(keras, package: str):
    """A custom layer with a weight of its own and a BatchNormalization inside (moving stats)."""

    class Scale(keras.layers.Layer):
        def build(self, shape):
            self.w = self.add_weight(name="w", shape=(shape[-1],))
            self.bn = keras.layers.BatchNormalization()
            self.bn.build(shape)

        def call(self, x):
            return self.bn(x * self.w)

    Scale.__name__ = Scale.__qualname__ = "Scale"
    register = getattr(keras.saving, "register_keras_serializable", None) or keras.utils.register_keras_serializable
    return register(package)(Scale)


def _functional(keras, scale):
    inp = keras.Input((8,))
    x = keras.layers.Dense(4)(inp)
    x = scale()(x)
    out = keras.layers.Dense(2)(x)
    return keras.Model(inp, out)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    import keras
    import tf_keras

    folder = tmp_path_factory.mktemp("unknown")
    out = {}
    k3 = _functional(keras, _scale_layer(keras, "unknown_k3"))
    out["k3_json"] = folder / "k3.json"
    out["k3_json"].write_text(k3.to_json())
    out["k3_keras"] = folder / "k3.keras"
    k3.save(out["k3_keras"])
    k2 = _functional(tf_keras, _scale_layer(tf_keras, "unknown_k2"))
    out["k2_keras"] = folder / "k2.keras"
    k2.save(out["k2_keras"])
    out["k2_h5"] = folder / "k2.h5"
    k2.save(out["k2_h5"])

    class Sub(keras.Model):  # subclassed: saves no layer graph, only its weights
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.d = keras.layers.Dense(4)
            self.bn = keras.layers.BatchNormalization()
            self.blocks = [keras.layers.Dense(3), keras.layers.BatchNormalization()]

        def call(self, x):
            x = self.bn(self.d(x))
            for block in self.blocks:
                x = block(x)
            return x

    sub = Sub()
    sub(keras.ops.zeros((1, 5)))
    out["sub_keras"] = folder / "sub.keras"
    sub.save(out["sub_keras"])
    out["sub_json"] = folder / "sub.json"
    out["sub_json"].write_text(sub.to_json())
    models = {"k3": _keras_split(k3), "k2": _keras_split(k2), "sub": _keras_split(sub),
              "k3_dense_1": k3.layers[-1].count_params(), "k2_dense_1": k2.layers[-1].count_params()}
    return out, models


def test_json_config_of_custom_layer_has_unknown_totals(files):
    paths, keras_counts = files
    inferred = propagate(formats.read(str(paths["k3_json"])))
    assert (inferred.total_params, inferred.trainable_params, inferred.non_trainable_params) == (None, None, None)
    scale = next(r for r in inferred.rows if r.layer.class_name == "Scale")
    assert scale.params is None and not scale.recomputed
    # the layer after it is still recomputed, from the shape the config records for its input
    dense_1 = inferred.rows[-1]
    assert dense_1.recomputed and dense_1.params == keras_counts["k3_dense_1"]


def test_unknown_totals_are_null_in_json_and_unknown_in_text(files):
    paths, _ = files
    run = [sys.executable, "-m", "modelaudit.cli"]
    out = subprocess.run(run + ["check", str(paths["k3_json"]), "--format", "json"], capture_output=True, text=True)
    stats = json.loads(out.stdout)["files"][0]["stats"]
    assert stats["total_params"] is None and stats["trainable_params"] is None
    summary = subprocess.run(run + ["summary", str(paths["k3_json"])], capture_output=True, text=True)
    assert summary.returncode == 0, summary.stderr
    assert "Total params: unknown" in summary.stdout
    assert "Trainable params: unknown" in summary.stdout
    data = json.loads(subprocess.run(run + ["summary", str(paths["k3_json"]), "--format", "json"],
                                     capture_output=True, text=True).stdout)
    assert data["total_params"] is None


@pytest.mark.parametrize("name, model", [("k3_keras", "k3"), ("k2_keras", "k2"), ("k2_h5", "k2")])
def test_custom_layer_weights_split_as_keras_splits_them(files, name, model):
    paths, keras_counts = files
    inferred = propagate(formats.read(str(paths[name])))
    assert (inferred.total_params, inferred.trainable_params, inferred.non_trainable_params) == keras_counts[model]


def test_build_config_of_the_next_layer_gives_the_custom_layers_shape(files):
    # tf_keras's .keras records no tensor shapes in its inbound nodes, only each layer's build_config
    paths, keras_counts = files
    inferred = propagate(formats.read(str(paths["k2_keras"])))
    scale = next(r for r in inferred.rows if r.layer.class_name == "Scale")
    assert scale.first_output_shapes == [(None, 4)]
    dense_1 = inferred.rows[-1]
    assert dense_1.recomputed and dense_1.params == keras_counts["k2_dense_1"]
    assert dense_1.first_output_shapes == [(None, 2)]


def test_subclassed_model_weights_split_moving_statistics(files):
    paths, keras_counts = files
    inferred = propagate(formats.read(str(paths["sub_keras"])))
    assert inferred.graph.opaque
    assert (inferred.total_params, inferred.trainable_params, inferred.non_trainable_params) == keras_counts["sub"]


def test_subclassed_model_config_alone_has_unknown_totals(files):
    paths, _ = files
    report = audit(str(paths["sub_json"]))
    fr = report.files[0]
    assert fr.error is None
    assert fr.stats["total_params"] is None
    ma109 = [f for f in fr.findings if f.code == "MA109"]
    assert len(ma109) == 1 and "an unknown number of params" in ma109[0].message
    assert report.stats["total_params"] is None
