"""TensorFlow.js Layers models (model.json + weightsManifest) against the tf_keras models they hold.

The files are written here the way tensorflowjs 4.22's Python converter writes them
(tensorflowjs/converters/keras_h5_conversion.py `save_keras_model`: the model saved to .h5, its
`model_config`/`training_config` attributes as `modelTopology`, every `model_weights/<layer>` group's
`weight_names` without `:0` as the weight names, in the file's order; write_weights.py: one group,
shard `group1-shard1of1.bin`, each entry {name, shape, dtype} and, when quantized,
`quantization: {dtype, min, scale, original_dtype}` with the shard holding the quantized bytes).
tests/data/tfjs/ holds one model made by the converter itself (see tests/data/README.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from modelaudit import formats
from modelaudit.api import audit
from modelaudit.errors import ModelReadError

HERE = os.path.dirname(__file__)
FIXTURE = os.path.join(HERE, "data", "tfjs", "two_inputs_nested", "model.json")
INTEGRITY = {"MA101", "MA102", "MA103"}


def converter_layout(model, folder: str, quantize: str | None = None, js: bool = False) -> str:
    """model.json and its shard for a tf_keras `model`, as the converter writes them. `js`: the layout
    of TF.js's own `model.save()` instead (io/io_utils.ts getModelJSONForModelArtifacts): the config
    itself as modelTopology, the training config beside it as trainingConfig."""
    import h5py

    os.makedirs(folder, exist_ok=True)
    h5_path = os.path.join(folder, "source.h5")
    model.save(h5_path)
    with h5py.File(h5_path, "r") as h5:
        attrs = h5.attrs
        config = json.loads(attrs["model_config"])
        training = json.loads(attrs["training_config"]) if "training_config" in attrs else None
        entries, chunks = [], []
        for layer_name in h5["model_weights"]:
            group = h5["model_weights"][layer_name]
            for raw in group.attrs.get("weight_names", []):
                wname = raw.decode() if isinstance(raw, bytes) else str(raw)
                data = np.array(group[wname])
                entry = {"name": wname[:-2] if wname.endswith(":0") else wname, "shape": list(data.shape),
                         "dtype": data.dtype.name}
                if quantize == "uint8":  # affine, as quantization.quantize_weights (without the zero nudge)
                    lo, hi = float(data.min()), float(data.max())
                    scale = (hi - lo) / 255 if hi > lo else 1.0
                    data = np.round((data - lo) / scale).astype(np.uint8)
                    entry["quantization"] = {"dtype": "uint8", "min": lo, "scale": scale, "original_dtype": entry["dtype"]}
                entries.append(entry)
                chunks.append(data.tobytes())
        version, backend = attrs["keras_version"], attrs["backend"]
    os.remove(h5_path)
    with open(os.path.join(folder, "group1-shard1of1.bin"), "wb") as f:
        f.write(b"".join(chunks))
    if js:
        topology = {"class_name": config["class_name"], "config": config["config"], "keras_version": version,
                    "backend": backend}
    else:
        topology = {"keras_version": version, "backend": backend, "model_config": config}
        if training is not None:
            topology["training_config"] = training
    doc = {"format": "layers-model", "generatedBy": f"keras v{version}", "convertedBy": "TensorFlow.js Converter v4.22.0",
           "modelTopology": topology, "weightsManifest": [{"paths": ["group1-shard1of1.bin"], "weights": entries}]}
    if js and training is not None:
        doc["trainingConfig"] = training
    path = os.path.join(folder, "model.json")
    with open(path, "w") as f:
        json.dump(doc, f)
    return path


def cnn(K):
    L = K.layers
    model = K.Sequential([
        L.Conv2D(6, 3, activation="relu", input_shape=(16, 16, 2)), L.BatchNormalization(), L.MaxPooling2D(),
        L.Conv2D(4, 3, padding="same", use_bias=False), L.Flatten(), L.Dropout(0.2), L.Dense(3, activation="softmax"),
    ], name="cnn")
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model


def two_inputs_nested(K):
    L = K.layers
    inner = K.Sequential([L.Dense(5, activation="relu", input_shape=(6,)), L.BatchNormalization(), L.Dense(2)],
                         name="inner")
    a, b = K.Input((6,), name="a"), K.Input((4,), name="b")
    branch = L.Dense(3, activation="relu", name="branch")(b)
    joined = L.Concatenate()([inner(a), branch])
    model = K.Model([a, b], L.Dense(1, activation="sigmoid", name="head")(joined), name="two_inputs")
    model.layers[2].layers[0].trainable = False  # a frozen inner layer: the trainable split must follow it
    model.compile(loss="binary_crossentropy", optimizer="sgd")
    return model


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """{case: (tf_keras model, model.json path)}, each model built once."""
    import tf_keras

    root = tmp_path_factory.mktemp("tfjs")
    models = {"cnn": cnn(tf_keras), "two_inputs_nested": two_inputs_nested(tf_keras)}
    # 1.4 MB of kernel in the shard, past MA408's 1 MiB floor: held against the shard's bytes, not model.json's
    wide = tf_keras.Sequential([tf_keras.Input((600,)), tf_keras.layers.Dense(600, name="wide")], name="wide")
    return {
        "cnn": (models["cnn"], converter_layout(models["cnn"], str(root / "cnn"))),
        "cnn_uint8": (models["cnn"], converter_layout(models["cnn"], str(root / "cnn_uint8"), quantize="uint8")),
        "two_inputs_nested": (models["two_inputs_nested"],
                              converter_layout(models["two_inputs_nested"], str(root / "two"))),
        "two_inputs_nested_js": (models["two_inputs_nested"],
                                 converter_layout(models["two_inputs_nested"], str(root / "two_js"), js=True)),
        "wide": (wide, converter_layout(wide, str(root / "wide"))),
    }


def _size(shape) -> int:
    return int(np.prod([int(d) for d in shape], dtype=np.int64))


def assert_agrees(model, path):
    """Totals, trainable split, stored shapes and output shapes as tf_keras reports them; no MA101-103."""
    (report,) = audit(path).files
    assert report.error is None, report.error
    inf = report.inferred
    assert inf.graph.format == "tfjs-layers"
    trainable = sum(_size(w.shape) for w in model.trainable_weights)
    assert (inf.total_params, inf.trainable_params, inf.non_trainable_params) == (
        model.count_params(), trainable, model.count_params() - trainable)
    assert inf.stored_params == model.count_params()
    assert not {f.code for f in report.findings} & INTEGRITY, [f.message for f in report.findings]
    _compare_layers(model, inf, "")
    return inf


def _compare_layers(model, inf, prefix):
    for klayer in model.layers:
        path = prefix + klayer.name
        row = inf.row(path)
        assert row.output_shapes[0] == [tuple(klayer.output.shape)], path
        if hasattr(klayer, "layers"):
            _compare_layers(klayer, inf, path + "/")
            continue
        stored = sorted(tuple(w.shape) for w in row.layer.weights)
        assert stored == sorted(tuple(int(d) for d in w.shape) for w in klayer.weights), path


@pytest.mark.parametrize("case", ["cnn", "cnn_uint8", "two_inputs_nested", "two_inputs_nested_js"])
def test_agrees_with_tf_keras(written, case):
    model, path = written[case]
    inf = assert_agrees(model, path)
    objective = inf.graph.objective
    assert objective is not None and objective.loss == model.loss  # the training config is read in both layouts


@pytest.mark.parametrize("case", ["cnn", "cnn_uint8", "two_inputs_nested", "two_inputs_nested_js", "wide"])
def test_converted_models_raise_no_security_finding(written, case):
    model, path = written[case]
    (report,) = audit(path).files
    assert report.error is None and report.inferred.stored_params == model.count_params()
    assert not [f.message for f in report.findings if f.code.startswith("MA4")]


def test_quantized_weights_keep_shape_and_original_dtype(written):
    _, path = written["cnn_uint8"]
    with open(path) as f:
        manifest = json.load(f)["weightsManifest"][0]["weights"]
    assert all(e["quantization"]["dtype"] == "uint8" for e in manifest)
    graph = formats.read(path)
    stored = {w.path: w for _, layer, _ in graph.walk() for w in layer.weights or ()}
    assert {name: (w.shape, w.dtype) for name, w in stored.items()} == {
        e["name"]: (tuple(e["shape"]), "float32") for e in manifest}
    # the shard holds one byte per value: the manifest, not the .bin, gives the shapes
    assert os.path.getsize(os.path.join(os.path.dirname(path), "group1-shard1of1.bin")) == sum(
        _size(e["shape"]) for e in manifest)


def test_nested_model_weights_attach_to_the_inner_layers(written):
    model, path = written["two_inputs_nested"]
    graph = formats.read(path)
    inner = graph.layer("inner")
    assert inner.weights == ()
    for klayer in model.get_layer("inner").layers:
        assert sorted(w.shape for w in inner.submodel.layer(klayer.name).weights) == sorted(
            tuple(w.shape) for w in klayer.weights)
    assert graph.unassigned_weights == ()


def test_converter_made_fixture():
    """A model.json written by tensorflowjs 4.22's converter itself; the truth is tf_keras rebuilding its
    config."""
    import tf_keras

    with open(FIXTURE) as f:
        topology = json.load(f)["modelTopology"]
    model = tf_keras.models.model_from_json(json.dumps(topology["model_config"]))
    assert_agrees(model, FIXTURE)


def test_keras3_generic_names(tmp_path):
    """A Keras 3 .keras converted with --input_format=keras_keras keeps the .keras weight paths as names
    (`layers/sequential/layers/dense/vars/0`: converters/keras_h5_conversion.py
    h5_v3_merged_saved_model_to_tfjs_format)."""
    import zipfile

    import h5py
    import keras

    inner = keras.Sequential([keras.Input((6,)), keras.layers.Dense(5), keras.layers.Dense(2)], name="inner")
    a = keras.Input((6,))
    model = keras.Model(a, keras.layers.Dense(1)(inner(a)))
    model.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as zf:
        config = json.loads(zf.read("config.json"))
        zf.extract("model.weights.h5", tmp_path)
    entries = []
    with h5py.File(tmp_path / "model.weights.h5", "r") as h5:
        h5.visititems(lambda name, obj: entries.append(
            {"name": name, "shape": list(obj.shape), "dtype": "float32"}) if isinstance(obj, h5py.Dataset) else None)
    path = tmp_path / "model.json"
    path.write_text(json.dumps({"format": "layers-model", "modelTopology": {"keras_version": "3.15.1", "model_config": config},
                                "weightsManifest": [{"paths": [], "weights": entries}]}))
    (report,) = audit(str(path)).files
    assert report.error is None
    assert report.inferred.stored_params == report.inferred.total_params == model.count_params()
    assert not {f.code for f in report.findings} & INTEGRITY


def test_missing_shard_is_a_fact_not_a_failure(written, tmp_path):
    model, path = written["cnn"]
    doc = json.load(open(path))
    doc["weightsManifest"][0]["paths"] = ["group1-shard1of2.bin", "../outside.bin"]
    copy = tmp_path / "model.json"
    copy.write_text(json.dumps(doc))
    (tmp_path / "group1-shard1of2.bin").write_bytes(b"")
    (tmp_path.parent / "outside.bin").write_bytes(b"")  # there, but not beside model.json
    graph = formats.read(str(copy))
    assert graph.source.missing_weight_files == ("../outside.bin",)
    os.remove(tmp_path / "group1-shard1of2.bin")
    graph = formats.read(str(copy))
    assert graph.source.missing_weight_files == ("group1-shard1of2.bin", "../outside.bin")
    # the manifest still gives every stored shape
    assert_agrees(model, str(copy))
    # ... and the missing shards are an MA111 error, which a complete model does not have
    (ma111,) = [f for f in audit(str(copy)).findings if f.code == "MA111"]
    assert "2 weight files" in ma111.message and "'group1-shard1of2.bin', '../outside.bin'" in ma111.message
    assert "MA111" not in [f.code for f in audit(path).findings]


def _entry(**extra):
    return {"name": "dense/kernel", "shape": [3, 2], "dtype": "float32", **extra}


MALFORMED = {
    "not-a-list": ({"w": 1}, "weightsManifest is not a list"),
    "group-not-object": ([7], "group #0 is not an object"),
    "weights-not-list": ([{"paths": [], "weights": {}}], "weights is not a list"),
    "entry-without-shape": ([{"paths": [], "weights": [{"name": "dense/kernel", "dtype": "float32"}]}], "has no shape"),
    "entry-without-name": ([{"paths": [], "weights": [{"shape": [1], "dtype": "float32"}]}], "has no name"),
    "negative-dim": ([{"paths": [], "weights": [_entry(shape=[3, -2])]}], "non-negative integers"),
    "huge-rank": ([{"paths": [], "weights": [_entry(shape=[1] * 1000)]}], "at most 32"),
    "bad-dtype": ([{"paths": [], "weights": [_entry(dtype="object")]}], "dtype 'object'"),
    "bad-quantization": ([{"paths": [], "weights": [_entry(quantization={"dtype": "int4"})]}], "quantization dtype"),
    "long-name": ([{"paths": [], "weights": [_entry(name="a/" * 3000)]}], "characters"),
    "too-many-groups": ([{"paths": [], "weights": []}] * 10_001, "10,001 groups"),
    "too-many-paths": ([{"paths": ["x.bin"] * 100_001, "weights": []}], "weight files"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_manifest_is_one_line(tmp_path, case):
    manifest, reason = MALFORMED[case]
    path = tmp_path / "model.json"
    path.write_text(json.dumps({"format": "layers-model", "modelTopology": json.loads(FIXTURE_TOPOLOGY()),
                                "weightsManifest": manifest}))
    with pytest.raises(ModelReadError, match=reason) as info:
        formats.read(str(path))
    assert "\n" not in str(info.value)


def FIXTURE_TOPOLOGY() -> str:
    with open(FIXTURE) as f:
        return json.dumps(json.load(f)["modelTopology"])


def test_too_many_weights_through_the_command_line(tmp_path):
    path = tmp_path / "model.json"
    weights = [{"name": f"w{i}", "shape": [], "dtype": "float32"} for i in range(200_001)]
    path.write_text(json.dumps({"format": "layers-model", "modelTopology": json.loads(FIXTURE_TOPOLOGY()),
                                "weightsManifest": [{"paths": [], "weights": weights}]}))
    out = subprocess.run([sys.executable, "-m", "modelaudit.cli", "check", str(path)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 2
    lines = [line for line in (out.stdout + out.stderr).splitlines() if "cannot read" in line]
    assert lines == [f"{path}: cannot read: weightsManifest lists more than 200,000 weights"], out.stdout + out.stderr


@pytest.mark.parametrize("doc,reason", [
    ({"format": "graph-model", "modelTopology": {"node": []}}, "graph model"),
    ({"format": "layers-model", "modelTopology": None, "weightsManifest": []}, "weights only"),
    ({"format": "layers-model", "modelTopology": [1]}, "not a JSON object"),
    ({"format": "layers-model", "modelTopology": {"model_config": {"class_name": "Sequential", "config": {"layers": []}},
                                                  "training_config": 3}}, "training_config is not"),
])
def test_not_a_layers_model(tmp_path, doc, reason):
    path = tmp_path / "model.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ModelReadError, match=reason):
        formats.read(str(path))


def test_optimizer_weights_are_not_the_models(written, tmp_path):
    """`model.save(url, {includeOptimizer: true})` appends the optimizer's variables marked group
    "optimizer" (tfjs-layers engine/training.ts, io.encodeWeights(weights, 'optimizer'))."""
    model, path = written["cnn"]
    doc = json.load(open(path))
    doc["weightsManifest"][0]["weights"].append(
        {"name": "dense/kernel/m", "shape": [9, 9], "dtype": "float32", "group": "optimizer"})
    copy = tmp_path / "model.json"
    copy.write_text(json.dumps(doc))
    (tmp_path / "group1-shard1of1.bin").write_bytes(b"")
    assert_agrees(model, str(copy))


@pytest.mark.parametrize("how", ["truncated", "garbage"])
def test_truncated_or_garbage_model_json_is_one_line(written, tmp_path, how):
    _, path = written["cnn"]
    data = open(path, "rb").read()
    bad = tmp_path / "model.json"
    bad.write_bytes(data[: len(data) // 2] if how == "truncated" else b"{" + bytes(range(1, 256)) * 8)
    out = subprocess.run([sys.executable, "-m", "modelaudit.cli", "check", str(bad)], capture_output=True, text=True)
    assert out.returncode == 2
    (line,) = out.stderr.splitlines()
    assert line.startswith(f"{bad}: cannot read: ") and "Traceback" not in out.stderr
