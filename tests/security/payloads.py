"""Security cases: npz object arrays, declared sizes in total, memory bounds of a config, and TF graph file ops (issue 14 items 6, 8, 9).

Each Case (tests/security/kit.py) is an attack made from a real file, with its benign twin; BASES are
the extra real files these cases start from (name -> builder(out_dir) -> path), saved once per run.

- MA409: SavedModels written by TensorFlow's own tf.saved_model.save from a tf.Module whose
  tf.function calls tf.io.write_file, tf.py_function or raw SaveV2 (twin: the same module without
  the op); a real tf_keras SavedModel whose restore function an attacker extends with WriteFile
  (twin: a harmless StringJoin there); tf_keras models with a TFOpLambda (tf.strings.strip on a
  string scalar) whose `function` is edited to a file op, in .h5 and .keras (twin: strings.lower).
- MA410: a Keras 3 `.keras` with npz weights; a member replaced by a pickle calling os.system (twin:
  the same member as a plain array); Keras 3's own pickled variables are a warning.
- MA408: an npz header declaring 4 TiB; four HDF5 datasets of 1 MiB each (each under the per-dataset
  floor) in a ~30 kB file; a config whose Dense would create 4 TiB of weights while Keras builds it.
"""

from __future__ import annotations

import io
import os
import shutil
import zipfile

from tests.security.kit import K2_KERNEL, Case, h5_config, h5_tree, k3, layer_cfg

# ---- real files ------------------------------------------------------------------------------------


def _tf_module(out, name: str, extra) -> str:
    """A tf.Module whose serving function multiplies by a variable, and calls `extra(x, v)` first."""
    import tensorflow as tf

    class Module(tf.Module):
        def __init__(self):
            super().__init__()
            self.v = tf.Variable(tf.ones((3,)))

        @tf.function(input_signature=[tf.TensorSpec((None, 3), tf.float32)])
        def __call__(self, x):
            if extra is not None:
                x = extra(x, self.v)
            return x * self.v

    folder = os.path.join(str(out), name)
    tf.saved_model.save(Module(), folder)
    return os.path.join(folder, "saved_model.pb")


def _write_file(x, v):
    import tensorflow as tf

    tf.io.write_file("/tmp/modelaudit-never-written", tf.strings.as_string(tf.reduce_sum(x)))
    return x


def _py_function(x, v):
    import tensorflow as tf

    return tf.py_function(lambda t: t, [x], tf.float32)


def _save_v2(x, v):
    import tensorflow as tf

    tf.raw_ops.SaveV2(prefix="/tmp/modelaudit-never-written", tensor_names=["v"], shape_and_slices=[""], tensors=[v])
    return x


def _tf_keras_savedmodel(out) -> str:
    import tf_keras

    model = tf_keras.Sequential([tf_keras.Input((4,)), tf_keras.layers.Dense(3, name="dense"),
                                 tf_keras.layers.Dense(2, name="out")])
    folder = os.path.join(str(out), "tfk_savedmodel")
    model.save(folder, save_format="tf")
    return os.path.join(folder, "saved_model.pb")


def _strings_model():
    """tf_keras: a string scalar through tf.strings.strip, recorded as a TFOpLambda."""
    import tensorflow as tf
    import tf_keras

    inp = tf_keras.Input(batch_shape=(), dtype="string", name="path")
    return tf_keras.Model(inp, tf.strings.strip(inp), name="strings")


def _strings(out, suffix: str) -> str:
    """One model saved as both .h5 and .keras (a second model would be named tf.strings.strip_1)."""
    paths = {ext: os.path.join(str(out), f"k2_strings{ext}") for ext in (".h5", ".keras")}
    if not os.path.exists(paths[suffix]):
        model = _strings_model()
        model.save(paths[".h5"], save_format="h5")
        model.save(paths[".keras"])
    return paths[suffix]


def _npz_plain(out) -> str:
    """Keras 3's npz writer (saving_lib, weights_format="npz"), its members then rewritten as plain
    arrays at the variables' paths (`layers/dense/vars/0`), the layout the auditor reads from headers."""
    import keras
    import numpy as np
    from keras.src.saving import saving_lib

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="dense"), keras.layers.Dense(2, name="out")])
    path = os.path.join(str(out), "k3_npz_source.keras")
    saving_lib.save_model(model, path, weights_format="npz")
    members = {}
    for key, layer in (("dense", model.get_layer("dense")), ("dense_1", model.get_layer("out"))):
        for i, var in enumerate(layer.weights):
            members[f"layers/{key}/vars/{i}.npy"] = _npy(np.asarray(var))
    plain = os.path.join(str(out), "k3_npz_plain.keras")
    return _replace_npz(path, plain, members, keep=False)


def _npz_pickled(out) -> str:
    import keras
    from keras.src.saving import saving_lib

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="dense"), keras.layers.Dense(2, name="out")])
    path = os.path.join(str(out), "k3_npz_pickled.keras")
    saving_lib.save_model(model, path, weights_format="npz")
    return path


BASES = {
    "sm_plain": lambda out: _tf_module(out, "sm_plain", None),
    "sm_write_file": lambda out: _tf_module(out, "sm_write_file", _write_file),
    "sm_py_function": lambda out: _tf_module(out, "sm_py_function", _py_function),
    "sm_save_v2": lambda out: _tf_module(out, "sm_save_v2", _save_v2),
    "tfk_savedmodel": _tf_keras_savedmodel,
    "k2_strings_h5": lambda out: _strings(out, ".h5"),
    "k2_strings_keras": lambda out: _strings(out, ".keras"),
    "k3_npz_plain": _npz_plain,
    "k3_npz_pickled": _npz_pickled,
}


# ---- edits -----------------------------------------------------------------------------------------


def _npy(array) -> bytes:
    import numpy as np

    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=array.dtype.hasobject)
    return buf.getvalue()


def _header_only(shape, descr="<f4") -> bytes:
    import numpy as np

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def _replace_npz(src: str, dst: str, members: dict, keep: bool = True) -> str:
    """The .keras at `src` with model.weights.npz's members replaced (`keep`: the others kept)."""
    with zipfile.ZipFile(src) as outer:
        inner = zipfile.ZipFile(io.BytesIO(outer.read("model.weights.npz")))
        merged = {n: inner.read(n) for n in inner.namelist()} if keep else {}
        merged.update(members)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            for name, data in merged.items():
                z.writestr(name, data)
        with zipfile.ZipFile(dst, "w") as out:
            for info in outer.infolist():
                data = buf.getvalue() if info.filename == "model.weights.npz" else outer.read(info)
                out.writestr(info.filename, data)
    return dst


class _System:
    """Pickled as os.system("true"): what an attacker's npz member calls when unpickled (never here)."""

    def __reduce__(self):
        return os.system, ("true",)


def _pickled_member():
    import numpy as np

    evil = np.empty((), dtype=object)
    evil[()] = _System()
    return _npy(evil)


def npz_member(name: str, make):
    return lambda src, dst, tmp: _replace_npz(src, dst + ".keras", {name: make()})


def _real_kernel():
    import numpy as np

    return _npy(np.zeros((4, 3), "float32"))


def sibling(name: str):
    """A twin that is another real base file, built beside this one by BASES (a SavedModel folder)."""
    return lambda src, dst, tmp: os.path.join(os.path.dirname(os.path.dirname(src)), name, "saved_model.pb")


def _edit_saved_model(op: str):
    """A copy of the SavedModel whose restore function (the one saver_def's restore op calls, which
    the loader runs) also runs `op` on a literal path."""
    def make(src, dst, tmp):
        import tensorflow as tf
        from tensorflow.core.protobuf import saved_model_pb2

        folder = dst + "_savedmodel"
        shutil.copytree(os.path.dirname(src), folder)
        pb = os.path.join(folder, "saved_model.pb")
        saved = saved_model_pb2.SavedModel()
        with open(pb, "rb") as f:
            saved.ParseFromString(f.read())
        meta = saved.meta_graphs[0]
        restore = next(n for n in meta.graph_def.node if n.name == meta.saver_def.restore_op_name)
        function = next(f for f in meta.graph_def.library.function if f.signature.name == restore.attr["f"].func.name)
        const = function.node_def.add(name="leak_path", op="Const")
        const.attr["dtype"].type = tf.string.as_datatype_enum
        const.attr["value"].tensor.CopyFrom(tf.make_tensor_proto("/tmp/modelaudit-never-written"))
        node = function.node_def.add(name="leak", op=op)
        node.input.extend(["leak_path:output:0", "leak_path:output:0"])
        if op == "StringJoin":
            node.attr["N"].i = 2
        with open(pb, "wb") as f:
            f.write(saved.SerializeToString())
        return pb
    return make


def tf_function(fn: str, kwargs=None, keras_v3: bool = False):
    """The TFOpLambda's `function` (and its call's keyword arguments) rewritten in the config."""
    def edit(cfg):
        layer = cfg["config"]["layers"][1]
        layer["config"]["function"] = fn
        if kwargs is not None:
            node = layer["inbound_nodes"][0]
            call = node["kwargs"] if isinstance(node, dict) else (node[0] if isinstance(node[0], list) else node)[3]
            call.update(kwargs)
    return k3(edit) if keras_v3 else h5_config(edit)


def _declare_each(shape):
    """Each of k2_dense's four variables re-created (no data written) with `shape`."""
    def edit(h5, tmp):
        for path in (K2_KERNEL, "model_weights/dense/dense/bias:0", "model_weights/out/out/kernel:0",
                     "model_weights/out/out/bias:0"):
            old = h5[path].shape
            del h5[path]
            h5.create_dataset(path, shape=shape or old, dtype="f4")
    return edit


def _input_and_units(n: int):
    def edit(cfg):
        layer_cfg(cfg, 0)["batch_shape"] = [None, n]
        layer_cfg(cfg, 1)["units"] = n
        cfg["config"]["layers"][1].get("build_config", {}).update(input_shape=[None, n])
    return k3(edit)


# ---- the cases --------------------------------------------------------------------------------------

GIB4K = "4,398,046,511,104 bytes"  # 2**20 x 2**20 float32

CASES = [
    # MA409: TensorFlow ops on files and processes
    Case("savedmodel-write-file", "sm_write_file", None, "MA409", None, "`WriteFile` in function",
         twin=sibling("sm_plain")),
    Case("savedmodel-py-function", "sm_py_function", None, "MA409", None, "`EagerPyFunc`", twin=sibling("sm_plain")),
    Case("savedmodel-checkpoint-written-when-called", "sm_save_v2", None, "MA409", None,
         "`SaveV2` in function", twin=sibling("sm_plain")),
    Case("savedmodel-write-file-in-restore", "tfk_savedmodel", _edit_saved_model("WriteFile"), "MA409", None,
         "given '/tmp/modelaudit-never-written': writes files; in the saver's functions",
         twin=_edit_saved_model("StringJoin")),
    Case("tfoplambda-read-file-h5", "k2_strings_h5", tf_function("io.read_file"), "MA409", "tf.strings.strip",
         "`tf.io.read_file`", twin=tf_function("strings.lower")),
    Case("tfoplambda-gfile-keras", "k2_strings_keras", tf_function("io.gfile.rmtree", keras_v3=True), "MA409",
         "tf.strings.strip", "`tf.io.gfile.rmtree`", twin=tf_function("strings.lower", keras_v3=True)),
    Case("tfoplambda-print-to-file", "k2_strings_h5", tf_function("print", {"output_stream": "file:///tmp/leak"}),
         "MA409", "tf.strings.strip", "prints to the file '/tmp/leak'",
         twin=tf_function("print", {"output_stream": "stderr"})),
    # MA410: pickled npz arrays
    Case("npz-pickle-calls-os-system", "k3_npz_plain", npz_member("layers/dense/vars/0.npy", _pickled_member),
         "MA410", None, "`layers/dense/vars/0.npy` is a pickle (an object array) calling `posix.system`",
         twin=npz_member("layers/dense/vars/0.npy", _real_kernel)),
    Case("npz-keras-own-pickles", "k3_npz_pickled", None, "MA410", None, "pickles (object arrays) of Keras variables"),
    # MA408: declared sizes beyond the file, alone or together, and a config's weights beyond a bound
    Case("npz-header-declares-4tib", "k3_npz_plain",
         npz_member("layers/dense/vars/0.npy", lambda: _header_only((1 << 20, 1 << 20))), "MA408", "dense", GIB4K,
         twin=npz_member("layers/dense/vars/0.npy", _real_kernel)),
    Case("npz-layer-member-declares-4tib", "k3_npz_pickled",
         npz_member("layers/dense.npy", lambda: _header_only((1 << 20, 1 << 20))), "MA408", None, GIB4K),
    Case("h5-datasets-oversized-together", "k2_dense", h5_tree(_declare_each((4, 1 << 16))), "MA408", None,
         "stored variables declare 4,194,304 bytes together", twin=h5_tree(_declare_each(None))),
    Case("config-builds-4tib-of-weights", "k3_dense", _input_and_units(1 << 20), "MA408", "dense",
         "in `dense`), more than the 68,719,476,736-byte bound", twin=_input_and_units(1 << 10)),
]

