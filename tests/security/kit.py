"""The kit every security case is built with: real files saved once by real Keras, and the edits an
attacker makes to them (config.json rewritten, a zip member added, an HDF5 tree changed with h5py).

tests/test_security.py holds the table of cases; tests/security/<topic>.py modules add their own
cases (CASES) and the base files they edit (BASES: name -> builder(out_dir) -> path) to it.
"""

from __future__ import annotations

import base64
import json
import marshal
import os
import shutil
import types
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

def double(x):
    return x * 2


# ---- real files, saved once by real Keras --------------------------------------------------------


def build_real(out: Path) -> dict:
    """The base files every case edits, each saved once by real Keras into `out`: name -> path."""
    import keras
    import tf_keras

    files = {}

    def save3(name, model):
        files[name] = str(out / f"{name}.keras")
        keras.saving.save_model(model, files[name])

    def save2(name, model):
        files[name] = str(out / f"{name}.h5")
        model.save(files[name], save_format="h5")

    dense = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="dense"), keras.layers.Dense(2, name="out")])
    dense.compile(optimizer="adam", loss="mse")
    save3("k3_dense", dense)
    save3("k3_lambda", keras.Sequential(
        [keras.Input((4,)), keras.layers.Lambda(lambda x: x * 2, name="lam"), keras.layers.Dense(2, name="out")]))
    save3("k3_named_lambda", keras.Sequential(
        [keras.Input((4,)), keras.layers.Lambda(double, name="lam"), keras.layers.Dense(2, name="out")]))
    inner = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(lambda x: x + 1, name="lam")], name="inner")
    inp = keras.Input((4,), name="x")
    save3("k3_nested_lambda", keras.Model(inp, keras.layers.Dense(2, name="out")(inner(inp)), name="outer"))
    words = keras.Input((1,), dtype="string", name="words")
    save3("k3_lookup", keras.Model(words, keras.layers.StringLookup(vocabulary=["a", "b"], name="lookup")(words)))

    @keras.saving.register_keras_serializable(package="Acme")
    class Scale(keras.layers.Layer):
        def call(self, x):
            return x * 2

    save3("k3_custom", keras.Sequential([keras.Input((4,)), Scale(name="scale"), keras.layers.Dense(2, name="out")]))

    d2 = tf_keras.Sequential([tf_keras.layers.Dense(3, input_shape=(4,), name="dense"), tf_keras.layers.Dense(2, name="out")])
    d2.compile(optimizer="adam", loss="mse")
    save2("k2_dense", d2)
    save2("k2_lambda", tf_keras.Sequential(
        [tf_keras.layers.Lambda(lambda x: x * 2, input_shape=(4,), name="lam"), tf_keras.layers.Dense(2, name="out")]))
    return files


# ---- editing a saved file the way an attacker does -----------------------------------------------


def rezip(src: str, dst: str, config: Optional[Callable] = None, weights: Optional[Callable] = None,
          extra: tuple = ()) -> str:
    """Copy a .keras zip, optionally editing config.json (a function of the dict) or the weights (a
    function of an h5py.File opened r+), then appending extra (name, bytes, compress_type) members."""
    import h5py

    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == "config.json" and config is not None:
                cfg = json.loads(data)
                config(cfg)
                data = json.dumps(cfg).encode()
            if info.filename == "model.weights.h5" and weights is not None:
                tmp = dst + ".weights.h5"
                Path(tmp).write_bytes(data)
                with h5py.File(tmp, "r+") as h5:
                    weights(h5)
                data = Path(tmp).read_bytes()
                os.remove(tmp)
            zout.writestr(info.filename, data)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Duplicate name", UserWarning)  # an attack's duplicate, on purpose
            for name, data, method in extra:
                zout.writestr(zipfile.ZipInfo(name), data, compress_type=method)
    return dst


def edit_h5(src: str, dst: str, change: Callable = None, config: Callable = None, training: Callable = None) -> str:
    """Copy a legacy .h5 and edit it with h5py: its tree, its model_config or its training_config."""
    import h5py

    shutil.copyfile(src, dst)
    with h5py.File(dst, "r+") as h5:
        for attr, edit in (("model_config", config), ("training_config", training)):
            if edit is not None:
                cfg = json.loads(h5.attrs[attr])
                edit(cfg)
                h5.attrs[attr] = json.dumps(cfg)
        if change is not None:
            change(h5, os.path.dirname(dst))
    return dst


def layer_cfg(cfg: dict, index: int) -> dict:
    return cfg["config"]["layers"][index]["config"]


def payload_code(marker: str) -> types.CodeType:
    """The code object of `lambda x: (open(marker, "w").close(), x)[1]`: compiled, never called."""
    module = compile(f"lambda x: (open({marker!r}, 'w').close(), x)[1]", "<payload>", "eval")
    return next(c for c in module.co_consts if isinstance(c, types.CodeType))


def b64_code(marker: str = "/tmp/never-created") -> str:
    return base64.encodebytes(marshal.dumps(payload_code(marker))).decode("ascii")


def fn_ref(module, name, registered=None) -> dict:
    return {"module": module, "class_name": "function", "config": name, "registered_name": registered}


# ---- the attack table --------------------------------------------------------------------------


@dataclass
class Case:
    id: str
    base: str
    make: Optional[Callable]  # (src, dst, tmp_dir) -> path; None: the real file as saved
    code: str
    layer: Optional[str]
    where: str  # a substring of the finding's message: the JSON location, member or HDF5 path
    # the same trick made harmless (a benign spelling, a member with nothing in it): must be read, not
    # refused, and raise no MA4xx at all
    twin: Optional[Callable] = None


def k3(edit):
    return lambda src, dst, tmp: rezip(src, dst + ".keras", config=edit)


def k3_weights(edit):
    return lambda src, dst, tmp: rezip(src, dst + ".keras", weights=lambda h5: edit(h5, tmp))


def k3_members(*extra):
    return lambda src, dst, tmp: rezip(src, dst + ".keras", extra=extra)


def h5_tree(edit):
    return lambda src, dst, tmp: edit_h5(src, dst + ".h5", change=edit)


def h5_config(edit):
    return lambda src, dst, tmp: edit_h5(src, dst + ".h5", config=edit)


def h5_training(edit):
    return lambda src, dst, tmp: edit_h5(src, dst + ".h5", training=edit)


def set_at(path: list, value):
    def edit(cfg):
        node = cfg
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return edit


def lambda_function(fn, arguments=None):
    def edit(cfg):
        layer_cfg(cfg, 1)["function"] = fn
        if arguments is not None:
            layer_cfg(cfg, 1)["arguments"] = arguments
    return edit


def external_link(h5, tmp):
    import h5py

    h5["model_weights/dense/leak"] = h5py.ExternalLink("/etc/passwd", "/")


def external_storage(path):
    def edit(h5, tmp):
        raw = os.path.join(tmp, "secret.bin")
        Path(raw).write_bytes(b"\0" * 48)
        del h5[path]
        h5.create_dataset(path, shape=(4, 3), dtype="f4", external=[(raw, 0, 48)])
    return edit


def virtual(path):
    def edit(h5, tmp):
        import h5py

        src = os.path.join(tmp, "source.h5")
        with h5py.File(src, "w") as f:
            f["data"] = [[0.0] * 3] * 4
        layout = h5py.VirtualLayout(shape=(4, 3), dtype="f4")
        layout[:] = h5py.VirtualSource(src, "data", shape=(4, 3))
        del h5[path]
        h5.create_virtual_dataset(path, layout)
    return edit


def huge(path):
    def edit(h5, tmp):
        del h5[path]
        h5.create_dataset(path, shape=(1 << 20, 1 << 20), dtype="f4")  # 4 TiB declared, nothing written
    return edit


def raw_marshal_in_training(cfg):
    cfg["loss_weights"] = {"out": marshal.dumps(payload_code("/tmp/never-created")).decode("latin-1")}


K2_KERNEL = "model_weights/dense/dense/kernel:0"
K3_KERNEL = "layers/dense/vars/0"
ZEROS = b"\0" * (16 << 20)
