"""Tampered real files: each MA1xx defect made by editing a copy of a file Keras really saved.

Two sources, built by the same builder: a small Conv2D/Dense functional model saved by Keras 3 as
`.keras`, and by Keras 2 (tf_keras) as legacy `.h5`. Each case edits a copy into one defect — the
config (config.json in the zip, the `model_config` attribute of the h5), the weights (the zip's
model.weights.h5, rebuilt uncompressed as Keras stores it; the h5's `model_weights` group), or
both, kept otherwise consistent (a kernel_size edit rewrites the kernel to match, a Keras 3 file's
recorded tensor shapes follow the edit) — and asserts that `modelaudit.audit` reports exactly that
code on exactly that layer: no other warning or error, and no other finding of that code. The
message must name the layer and the expected and found values.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile

import pytest

import keras
import tf_keras
import h5py
import numpy as np

import modelaudit  # noqa: E402
from modelaudit.engine import Severity  # noqa: E402

KERAS, H5 = "keras-v3", "keras-h5"
MA1 = {"select": ["MA1"]}


def build(k):
    """Every layer named, so that the edits can find them whatever Keras numbered before."""
    L = k.layers
    inp = k.Input((8, 8, 1), name="image")
    x = L.Conv2D(4, 3, activation="relu", name="conv")(inp)  # (6, 6, 4)
    x = L.GlobalAveragePooling2D(name="pool")(x)  # (4,)
    a = L.Dense(6, name="dense")(x)
    b = L.Dense(6, name="dense_b")(x)
    x = L.Add(name="add")([a, b])
    x = L.Reshape((2, 3), name="reshape")(x)
    x = L.Flatten(name="flat")(x)
    out = L.Dense(2, activation="softmax", name="head")(x)
    model = k.Model(inp, out, name="tamper_source")
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    return model


# Where each layer's variables live. Keras 3 keys them by class-based generic names in layer order
# (the second Dense is dense_1); legacy h5 by layer name, then the variable's own name.
KERAS_KEY = {"conv": "layers/conv2d/vars", "dense": "layers/dense/vars", "dense_b": "layers/dense_1/vars",
             "head": "layers/dense_2/vars"}


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tamper_sources")
    out = {KERAS: str(folder / "source.keras"), H5: str(folder / "source.h5")}
    keras.saving.save_model(build(keras), out[KERAS])
    build(tf_keras).save(out[H5], save_format="h5")
    yield out
    keras.backend.clear_session()
    tf_keras.backend.clear_session()


# ---- editing a copy ------------------------------------------------------------------------------


def edit_keras(src: str, dst: str, config=None, weights=None) -> None:
    """Rebuild the zip: config.json through config(cfg), model.weights.h5 through weights(h5 file);
    every member in its original order and compression, the weights stored uncompressed."""
    with zipfile.ZipFile(src) as zin:
        members = [(info, zin.read(info.filename)) for info in zin.infolist()]
    with zipfile.ZipFile(dst, "w") as zout:
        for info, data in members:
            compress = info.compress_type
            if info.filename == "config.json" and config is not None:
                cfg = json.loads(data)
                config(cfg)
                data = json.dumps(cfg).encode()
            if info.filename == "model.weights.h5" and weights is not None:
                tmp = dst + ".weights.h5"
                with open(tmp, "wb") as f:
                    f.write(data)
                with h5py.File(tmp, "r+") as h5:
                    weights(h5)
                with open(tmp, "rb") as f:
                    data = f.read()
                os.remove(tmp)
                compress = zipfile.ZIP_STORED
            zout.writestr(zipfile.ZipInfo(info.filename, date_time=info.date_time), data, compress_type=compress)


def edit_h5(src: str, dst: str, config=None, weights=None) -> None:
    """A copy whose model_config goes through config(cfg) and model_weights through weights(group)."""
    shutil.copyfile(src, dst)
    with h5py.File(dst, "r+") as h5:
        if config is not None:
            cfg = json.loads(h5.attrs["model_config"])
            config(cfg)
            h5.attrs["model_config"] = json.dumps(cfg)
        if weights is not None:
            weights(h5["model_weights"])


def layer_cfg(cfg: dict, name: str) -> dict:
    return next(item for item in cfg["config"]["layers"] if item["name"] == name)


def set_recorded(cfg: dict, producer: str, shape: list) -> None:
    """Keras 3 records each tensor's shape where it is consumed: rewrite the records of `producer`'s
    output (and the consumers' build_config), as Keras would have written them."""

    def walk(obj, owner):
        if isinstance(obj, dict):
            if obj.get("class_name") == "__keras_tensor__" and obj["config"]["keras_history"][0] == producer:
                obj["config"]["shape"] = list(shape)
                if isinstance(owner.get("build_config"), dict):
                    owner["build_config"]["input_shape"] = list(shape)
            for v in obj.values():
                walk(v, owner)
        elif isinstance(obj, list):
            for v in obj:
                walk(v, owner)

    for item in cfg["config"]["layers"]:
        walk(item.get("inbound_nodes"), item)


def replace_dataset(group, path: str, shape: tuple) -> None:
    dtype = group[path].dtype
    del group[path]
    group.create_dataset(path, data=np.zeros(shape, dtype=dtype))


def h5_names(group, layer: str, change) -> None:
    """Rewrite the weight_names attribute of a legacy h5 layer group."""
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in group[layer].attrs["weight_names"]]
    group[layer].attrs["weight_names"] = [n.encode() for n in change(names)]


# ---- the defects -------------------------------------------------------------------------------------


def kernel_wrong_shape_keras(src, dst):
    edit_keras(src, dst, weights=lambda h5: replace_dataset(h5, f"{KERAS_KEY['conv']}/0", (5, 5, 1, 4)))


def kernel_wrong_shape_h5(src, dst):
    edit_h5(src, dst, weights=lambda g: replace_dataset(g, "conv/conv/kernel:0", (5, 5, 1, 4)))


def bias_removed_keras(src, dst):
    def weights(h5):
        del h5[f"{KERAS_KEY['dense']}/1"]

    edit_keras(src, dst, weights=weights)


def bias_removed_h5(src, dst):
    def weights(g):
        del g["dense/dense/bias:0"]
        h5_names(g, "dense", lambda names: [n for n in names if "bias" not in n])

    edit_h5(src, dst, weights=weights)


def extra_variable_keras(src, dst):
    edit_keras(src, dst, weights=lambda h5: h5.create_dataset(f"{KERAS_KEY['dense']}/2", data=[0.0, 0.0, 0.0]))


def extra_variable_h5(src, dst):
    def weights(g):
        g.create_dataset("dense/dense/extra:0", data=[0.0, 0.0, 0.0])
        h5_names(g, "dense", lambda names: names + ["dense/extra:0"])

    edit_h5(src, dst, weights=weights)


def recorded_shape_edited_keras(src, dst):
    # head's inbound node records flat's output (None, 6): say (None, 7)
    edit_keras(src, dst, config=lambda cfg: _record_in(layer_cfg(cfg, "head"), "flat", [None, 7]))


def _record_in(item: dict, producer: str, shape: list) -> None:
    for arg in item["inbound_nodes"][0]["args"]:
        if arg.get("class_name") == "__keras_tensor__" and arg["config"]["keras_history"][0] == producer:
            arg["config"]["shape"] = shape


def kernel_larger_than_input_keras(src, dst):
    # kernel_size 9 on an 8x8 input; the kernel and the records made consistent with it
    def config(cfg):
        layer_cfg(cfg, "conv")["config"]["kernel_size"] = [9, 9]
        set_recorded(cfg, "conv", [None, 0, 0, 4])

    def weights(h5):
        replace_dataset(h5, f"{KERAS_KEY['conv']}/0", (9, 9, 1, 4))

    edit_keras(src, dst, config=config, weights=weights)


def kernel_larger_than_input_h5(src, dst):
    def config(cfg):
        layer_cfg(cfg, "conv")["config"]["kernel_size"] = [9, 9]

    edit_h5(src, dst, config=config, weights=lambda g: replace_dataset(g, "conv/conv/kernel:0", (9, 9, 1, 4)))


def merge_unequal_keras(src, dst):
    # dense_b made 5 units wide (its weights and records too): Add gets (None, 6) and (None, 5)
    def config(cfg):
        layer_cfg(cfg, "dense_b")["config"]["units"] = 5
        set_recorded(cfg, "dense_b", [None, 5])
        layer_cfg(cfg, "add")["build_config"]["input_shape"] = [[None, 6], [None, 5]]

    def weights(h5):
        replace_dataset(h5, f"{KERAS_KEY['dense_b']}/0", (4, 5))
        replace_dataset(h5, f"{KERAS_KEY['dense_b']}/1", (5,))

    edit_keras(src, dst, config=config, weights=weights)


def merge_unequal_h5(src, dst):
    def config(cfg):
        layer_cfg(cfg, "dense_b")["config"]["units"] = 5

    def weights(g):
        replace_dataset(g, "dense_b/dense_b/kernel:0", (4, 5))
        replace_dataset(g, "dense_b/dense_b/bias:0", (5,))

    edit_h5(src, dst, config=config, weights=weights)


def reshape_count_keras(src, dst):
    edit_keras(src, dst, config=lambda cfg: layer_cfg(cfg, "reshape")["config"].update(target_shape=[2, 4]))


def reshape_count_h5(src, dst):
    edit_h5(src, dst, config=lambda cfg: layer_cfg(cfg, "reshape")["config"].update(target_shape=[2, 4]))


def unknown_class_keras(src, dst):
    # A custom class: Keras 3 would key its variables by its own class name, so move them too
    def config(cfg):
        item = layer_cfg(cfg, "head")
        item.update(class_name="MyCustomLayer", module="my_package.layers", registered_name="my_package>MyCustomLayer")

    edit_keras(src, dst, config=config, weights=lambda h5: h5.move("layers/dense_2", "layers/my_custom_layer"))


def unknown_class_h5(src, dst):
    # legacy h5 names a registered class by its registered name
    edit_h5(src, dst, config=lambda cfg: layer_cfg(cfg, "head").update(class_name="my_package>MyCustomLayer"))


def _shape(*dims) -> str:
    from modelaudit.infer.registry import fmt_shape

    return fmt_shape(dims)


KERNEL_SHAPES = ["'conv'", _shape(5, 5, 1, 4), _shape(3, 3, 1, 4)]  # the layer, found, expected
CONV_TO_NOTHING = ["'conv'", _shape(None, 8, 8, 1), _shape(None, 0, 0, 4)]

# (id, source, edit, expected code, expected layer, text the message must hold)
CASES = [
    ("kernel-wrong-shape", KERAS, kernel_wrong_shape_keras, "MA101", "conv", KERNEL_SHAPES),
    ("kernel-wrong-shape", H5, kernel_wrong_shape_h5, "MA101", "conv", KERNEL_SHAPES),
    ("bias-removed", KERAS, bias_removed_keras, "MA102", "dense", ["'dense'", "bias", _shape(6)]),
    ("bias-removed", H5, bias_removed_h5, "MA102", "dense", ["'dense'", "bias", _shape(6)]),
    ("extra-variable", KERAS, extra_variable_keras, "MA103", "dense", ["'dense'", "vars/2", _shape(3)]),
    ("extra-variable", H5, extra_variable_h5, "MA103", "dense", ["'dense'", "extra:0", _shape(3)]),
    ("recorded-shape-edited", KERAS, recorded_shape_edited_keras, "MA104", "head",
     ["'head'", _shape(None, 7), _shape(None, 6)]),
    ("kernel-larger-than-input", KERAS, kernel_larger_than_input_keras, "MA105", "conv", CONV_TO_NOTHING),
    ("kernel-larger-than-input", H5, kernel_larger_than_input_h5, "MA105", "conv", CONV_TO_NOTHING),
    ("merge-unequal", KERAS, merge_unequal_keras, "MA106", "add", ["'add'", _shape(None, 6), _shape(None, 5)]),
    ("merge-unequal", H5, merge_unequal_h5, "MA106", "add", ["'add'", _shape(None, 6), _shape(None, 5)]),
    ("reshape-element-count", KERAS, reshape_count_keras, "MA106", "reshape",
     ["'reshape'", _shape(None, 6), _shape(2, 4)]),
    ("reshape-element-count", H5, reshape_count_h5, "MA106", "reshape", ["'reshape'", _shape(None, 6), _shape(2, 4)]),
    ("unknown-class", KERAS, unknown_class_keras, "MA107", "head", ["'head'", "MyCustomLayer"]),
    ("unknown-class", H5, unknown_class_h5, "MA107", "head", ["'head'", "MyCustomLayer"]),
]


def _findings(path: str):
    report = modelaudit.audit(path, config=MA1)
    (fr,) = report.files
    assert fr.error is None and not fr.internal_errors, f"{path}: {fr.error or fr.internal_errors}"
    return fr


@pytest.mark.parametrize("source", [KERAS, H5])
def test_untouched_original_is_clean(sources, source):
    fr = _findings(sources[source])
    assert fr.format == source
    assert [(f.code, f.layer, f.message) for f in fr.findings] == []
    # and the edits below target what the file really holds
    assert fr.inferred.total_params == build(keras).count_params()


@pytest.mark.parametrize(
    "case_id, source, edit, code, layer, texts", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES]
)
def test_tampered_file_raises_exactly_the_defect(sources, tmp_path, case_id, source, edit, code, layer, texts):
    dst = str(tmp_path / ("tampered" + (".keras" if source == KERAS else ".h5")))
    edit(sources[source], dst)
    fr = _findings(dst)
    assert fr.format == source
    # exactly the expected code on the expected layer: nothing else at warning or error, and the
    # code nowhere else (info findings of other codes, e.g. layers downstream of a shape error
    # that cannot be recomputed, are not the defect)
    relevant = {(f.code, f.layer) for f in fr.findings if f.severity != Severity.INFO or f.code == code}
    listing = "\n".join(f"{f.code} [{f.severity.value}] {f.layer}: {f.message}" for f in fr.findings)
    assert relevant == {(code, layer)}, f"{case_id} ({source}): expected only {code} on {layer!r}, got:\n{listing}"
    for finding in fr.findings:
        if finding.code == code:
            for text in texts:
                assert text in finding.message, f"{case_id} ({source}): {text!r} not in {finding.message!r}"
    if code == "MA107":
        # not recomputed: the params are what the file stores (head's kernel 6x2 and bias 2)
        row = fr.inferred.row(layer)
        assert not row.recomputed
        assert row.params == row.stored_params == 6 * 2 + 2
        assert fr.inferred.total_params == build(keras).count_params()


def test_every_integrity_defect_is_made():
    assert {c[3] for c in CASES} >= {"MA101", "MA102", "MA103", "MA104", "MA105", "MA106", "MA107"}
