"""Every reader, on real files: the graph lists every layer, call and stored weight Keras reports."""

from __future__ import annotations

import pytest

from modelaudit import formats
from modelaudit.formats import live
from tests import zoo as zoo_module

CASES = [(name, fmt) for name in list(zoo_module.KERAS3) + list(zoo_module.KERAS2)
         for fmt in (["keras-v3", "keras-h5", "json-config"] if name.startswith("k3") else ["keras-h5", "json-config"])]
CASES += [(name, "live") for name in list(zoo_module.KERAS3) + ["k2_sequential", "k2_functional"]]


def _read(zoo, name, fmt):
    model, paths = zoo[name]
    if fmt == "live":
        # A fresh model: saving to legacy h5 drops the optimizer from the saved model's compile config.
        if name in zoo_module.KERAS3:
            import keras

            model = zoo_module.KERAS3[name](keras)
        else:
            import tf_keras

            model = zoo_module.KERAS2[name](tf_keras)
        return model, live.read(model)
    graph = formats.read(paths[fmt])
    assert graph.format == fmt
    return model, graph


def _is_model(layer) -> bool:
    return hasattr(layer, "layers") and hasattr(layer, "count_params") and hasattr(layer, "inputs")


def _inbound_names(layer) -> list[list[str]]:
    """The layers feeding each call of `layer`, as Keras itself records them."""
    out = []
    for node in layer._inbound_nodes:
        if hasattr(node, "arguments"):  # Keras 3
            tensors = node.arguments.keras_tensors
            out.append([t._keras_history.operation.name for t in tensors])
        else:  # Keras 2
            inbound = node.inbound_layers
            inbound = inbound if isinstance(inbound, list) else [inbound]
            out.append([lyr.name for lyr in inbound])
    return [names for names in out if names]


def _compare(model, graph, fmt, where=""):
    keras_layers = {lyr.name: lyr for lyr in model.layers}
    ours = {lyr.name: lyr for lyr in graph.layers if not lyr.synthetic}
    keras_names = {n for n, lyr in keras_layers.items() if type(lyr).__name__ != "InputLayer"}
    our_names = {n for n, lyr in ours.items() if lyr.class_name != "InputLayer"}
    assert our_names == keras_names, f"{where}: layers ours {sorted(our_names)} != keras {sorted(keras_names)}"
    for name in keras_names:
        klayer, layer = keras_layers[name], ours[name]
        assert layer.class_name == type(klayer).__name__ or _is_model(klayer), f"{where}{name}: class"
        if _is_model(klayer):
            assert layer.submodel is not None, f"{where}{name}: nested model not parsed"
            _compare(klayer, layer.submodel, fmt, f"{where}{name}/")
            continue
        if not graph.sequential:
            keras_calls = _inbound_names(klayer)
            our_calls = [[ref.layer for ref in call.inputs] for call in layer.calls]
            assert our_calls == keras_calls, f"{where}{name}: calls ours {our_calls} != keras {keras_calls}"
        if fmt != "json-config":
            keras_shapes = sorted(tuple(int(d) for d in w.shape) for w in klayer.weights)
            our_shapes = sorted(tuple(w.shape) for w in layer.weights or ())
            assert our_shapes == keras_shapes, f"{where}{name}: weights ours {our_shapes} != keras {keras_shapes}"
        else:
            assert layer.weights is None


@pytest.mark.parametrize("name,fmt", CASES, ids=[f"{n}-{f}" for n, f in CASES])
def test_graph_matches_keras(zoo, name, fmt):
    model, graph = _read(zoo, name, fmt)
    _compare(model, graph, fmt)
    if fmt != "json-config":
        stored = [w for _, layer, _ in graph.walk() for w in (layer.weights or ())]
        assert len(stored) == len(model.weights)
        assert graph.unassigned_weights == ()


@pytest.mark.parametrize("name,fmt", [c for c in CASES if c[0] in ("k3_functional", "k2_functional")],
                         ids=lambda v: str(v))
def test_inputs_outputs_and_objective(zoo, name, fmt):
    model, graph = _read(zoo, name, fmt)
    assert [ref.layer for ref in graph.inputs] == ["a", "b"]
    assert sorted(graph.output_names) == ["o1", "o2"]
    if name == "k2_functional" and fmt == "json-config":
        assert graph.objective is None  # Keras 2's to_json() leaves the training config out
        return
    assert graph.objective is not None
    loss = graph.objective.loss
    if name == "k3_functional":
        assert loss["o1"] == "binary_crossentropy"
        assert loss["o2"]["class_name"] == "CategoricalCrossentropy"
        assert graph.objective.optimizer == "SGD"
        assert graph.objective.learning_rate == pytest.approx(0.05)
    else:
        assert loss[0] == "binary_crossentropy"
        assert loss[1]["config"]["from_logits"] is True
        assert graph.objective.optimizer == "Adam"


def test_recorded_shapes_kept(zoo):
    """Keras 3 records every call's input shapes; the reader keeps them for MA104."""
    _, graph = _read(zoo, "k3_functional", "keras-v3")
    mha = graph.layer("mha")
    assert mha.calls[0].input_shapes == ((None, 5, 1),) * 3
    assert mha.calls[0].tensor_kwargs == ("key",)


def test_split_layer_names_attribute(zoo):
    """Legacy h5 splits long layer_names into layer_names0, layer_names1...: all are read."""
    import h5py

    model, paths = zoo["k2_long_names"]
    with h5py.File(paths["keras-h5"], "r") as h5:
        assert "layer_names" not in h5["model_weights"].attrs
        assert "layer_names0" in h5["model_weights"].attrs
    graph = formats.read(paths["keras-h5"])
    head = graph.layer("head")
    assert sorted(w.shape for w in head.weights) == [(2,), (4, 2)]
    assert len([lyr for lyr in graph.layers if lyr.class_name == "Activation"]) == 700


def test_keras3_weights_keyed_by_generic_names(zoo):
    """Keras 3 keys variables by class-based names with counters, not by layer name."""
    _, graph = _read(zoo, "k3_functional", "keras-v3")
    assert graph.layer("o1").weights[0].path.startswith("layers/dense_")
    seq = graph.layer("inner_seq").submodel
    assert seq.layer("seq_dense").weights[0].path.startswith("layers/sequential/layers/dense/")


def test_detection_ignores_extension(zoo, tmp_path):
    """A .keras file renamed .h5 (and an h5 renamed .json) is still read by its content."""
    import shutil

    _, paths = zoo["k3_sequential"]
    renamed = tmp_path / "really_a_zip.h5"
    shutil.copy(paths["keras-v3"], renamed)
    assert formats.read(str(renamed)).format == "keras-v3"
    renamed = tmp_path / "really_h5.json"
    shutil.copy(paths["keras-h5"], renamed)
    assert formats.read(str(renamed)).format == "keras-h5"


def test_weights_read_in_place(zoo, monkeypatch):
    """The .keras weights member is never read whole: no zipfile read() of it, no extraction."""
    import zipfile

    from modelaudit.formats import keras_v3

    _, paths = zoo["k3_sequential"]
    real_read = zipfile.ZipFile.read
    real_open = zipfile.ZipFile.open
    touched = []

    def spy_read(self, name, *a, **k):
        touched.append(getattr(name, "filename", name))
        return real_read(self, name, *a, **k)

    def spy_open(self, name, *a, **k):
        touched.append(getattr(name, "filename", name))
        return real_open(self, name, *a, **k)

    monkeypatch.setattr(zipfile.ZipFile, "read", spy_read)
    monkeypatch.setattr(zipfile.ZipFile, "open", spy_open)
    monkeypatch.setattr(zipfile.ZipFile, "extract", lambda *a, **k: pytest.fail("extracted"))
    graph = keras_v3.read(paths["keras-v3"])
    assert keras_v3.WEIGHTS_H5 not in touched
    conv = next(lyr for lyr in graph.layers if lyr.class_name == "Conv2D")
    assert [w.shape for w in conv.weights] == [(3, 3, 1, 8), (8,)]


def test_subclassed_model_is_opaque_with_weight_totals(tmp_path):
    """A subclassed model saves its constructor arguments only: no graph, but its weights are read."""
    import keras
    import numpy as np

    from modelaudit.infer.propagate import propagate

    class TwoLayers(keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.hidden = keras.layers.Dense(8, activation="relu")
            self.out = keras.layers.Dense(2)

        def call(self, x):
            return self.out(self.hidden(x))

    model = TwoLayers()
    model(np.zeros((1, 4)))
    path = str(tmp_path / "subclassed.keras")
    keras.saving.save_model(model, path)
    graph = formats.read(path)
    assert graph.opaque and graph.layers == ()
    assert sorted(w.shape for w in graph.unassigned_weights) == sorted(tuple(w.shape) for w in model.weights)
    inferred = propagate(graph)
    assert inferred.total_params == model.count_params() == (4 + 1) * 8 + (8 + 1) * 2
