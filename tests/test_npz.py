"""Keras 3 `.keras` archives whose weights are `model.weights.npz` (keras/src/saving/saving_lib.py
`save_model(model, path, weights_format="npz")`), against the Keras model that wrote them.

Keras 3.15's NpzIOStore writes each layer's variables as one member, `layers/<key>.npy`, holding a
0-d object array: a pickle of the dict {"0": Variable, "1": Variable, ...}. The reader takes the
shapes from the pickle's opcodes as data and never unpickles: a pickle here that would create a
marker file if it were ever loaded proves it.
"""

from __future__ import annotations

import io
import struct
import zipfile

import numpy as np
import pytest

from modelaudit import formats
from modelaudit.api import audit
from modelaudit.errors import ModelReadError
from modelaudit.formats import npz

INTEGRITY = {"MA101", "MA102", "MA103"}


def build(keras):
    L = keras.layers
    inner = keras.Sequential([keras.Input((6,)), L.Dense(5, activation="relu"), L.BatchNormalization(), L.Dense(3)],
                             name="inner")
    image, vector = keras.Input((10, 10, 2), name="image"), keras.Input((6,), name="vector")
    x = L.Conv2D(4, 3, activation="relu")(image)
    x = L.BatchNormalization()(x)
    x = L.GlobalAveragePooling2D()(x)
    joined = L.Concatenate()([x, inner(vector)])
    model = keras.Model([image, vector], L.Dense(2, activation="softmax")(joined), name="npz_model")
    model.get_layer("inner").layers[0].trainable = False
    model.compile(loss="categorical_crossentropy", optimizer="adam")
    # one step, so that the optimizer's variables are saved too (optimizer.npy: never the model's)
    model.fit([np.zeros((2, 10, 10, 2)), np.zeros((2, 6))], np.eye(2), epochs=1, verbose=0)
    return model


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    import keras
    from keras.src.saving import saving_lib

    model = build(keras)
    path = str(tmp_path_factory.mktemp("npz") / "model.keras")
    saving_lib.save_model(model, path, weights_format="npz")
    return model, path


def _size(shape) -> int:
    return int(np.prod([int(d) for d in shape], dtype=np.int64))


def npz_members(path) -> dict:
    with zipfile.ZipFile(path) as zf, zipfile.ZipFile(io.BytesIO(zf.read("model.weights.npz"))) as inner:
        return {name: inner.read(name) for name in inner.namelist()}


def rewrite(path, out, members: dict, compression=zipfile.ZIP_STORED) -> str:
    """The .keras at `path` with model.weights.npz's members replaced by `members`, all else as it was
    (`compression`: of the npz's members and of the npz itself; Keras stores both)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data in members.items():
            z.writestr(name, data)
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            if info.filename == "model.weights.npz":
                dst.writestr(info, buf.getvalue(), compress_type=compression)
            else:
                dst.writestr(info, src.read(info))
    return str(out)


def test_keras_writes_pickles(saved):
    """The premise, from numpy's own header reader: every member Keras writes is an object array."""
    _, path = saved
    for name, data in npz_members(path).items():
        stream = io.BytesIO(data)
        version = np.lib.format.read_magic(stream)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        _, _, dtype = read(stream)
        assert dtype.hasobject, name


def test_real_npz_agrees_with_keras(saved):
    model, path = saved
    (report,) = audit(path).files
    assert report.error is None, report.error
    inf = report.inferred
    trainable = sum(_size(w.shape) for w in model.trainable_weights)
    assert (inf.total_params, inf.trainable_params, inf.non_trainable_params) == (
        model.count_params(), trainable, model.count_params() - trainable)
    assert inf.stored_params == model.count_params()
    assert not {f.code for f in report.findings} & INTEGRITY, [f.message for f in report.findings]
    graph = inf.graph
    for klayer in model.layers:
        layers = [(klayer.name, klayer)] if not hasattr(klayer, "layers") else [
            (f"{klayer.name}/{k.name}", k) for k in klayer.layers]
        for where, k in layers:
            ours = inf.row(where).layer
            assert sorted((w.shape, w.trainable) for w in ours.weights) == sorted(
                (tuple(v.shape), v.trainable) for v in k.weights), where
            assert {w.dtype for w in ours.weights} <= {"float32"}
    assert graph.unassigned_weights == ()
    members = dict(graph.source.pickled_members)
    assert set(members) == set(npz_members(path))
    assert "keras.src.backend.Variable" in members["layers/dense.npy"]


class _Marker:
    """Unpickling this would create the marker file (open(path, "w"), pickled as io.open)."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return open, (self.path, "w")


def _with_marker_pickle(path, tmp_path, marker) -> str:
    """The real file with its Dense member replaced by a pickle that would create `marker` if loaded."""
    evil = np.empty((), dtype=object)
    evil[()] = _Marker(str(marker))
    buf = io.BytesIO()
    np.save(buf, evil, allow_pickle=True)
    members = npz_members(path)
    members["layers/dense.npy"] = buf.getvalue()
    return rewrite(path, tmp_path / "edited.keras", members)


def test_object_array_is_never_unpickled(saved, tmp_path):
    model, path = saved
    marker = tmp_path / "unpickled.marker"
    edited = _with_marker_pickle(path, tmp_path, marker)
    for config in (None, {"scan-weights": True}):
        (report,) = audit(edited, config).files
        assert report.error is None, report.error
        assert not marker.exists()
    graph = report.inferred.graph
    assert [(w.path, w.shape, w.dtype) for w in graph.unassigned_weights] == [("layers/dense", (), "object")]
    assert "io.open" in dict(graph.source.pickled_members)["layers/dense.npy"]  # what the pickle would call
    # its Dense (the first, Keras's generic key `dense`) lost its variables; every other layer kept its own
    conv_dense = [k for k in model.layers if type(k).__name__ == "Dense"][0]
    missing = {f.layer for f in report.findings if f.code == "MA102"}
    assert missing == {conv_dense.name}
    assert {f.code for f in report.findings} & {"MA101"} == set()
    assert not marker.exists()


def test_plain_arrays_are_read_from_their_headers(saved, tmp_path):
    """An npz of plain arrays keyed like the .h5 paths: each member's header alone gives its shape. The
    members here hold a header and no data at all."""
    model, path = saved
    import h5py

    h5_path = tmp_path / "same.keras"
    model.save(h5_path)
    with zipfile.ZipFile(h5_path) as zf:
        zf.extract("model.weights.h5", tmp_path)
    members = {}
    with h5py.File(tmp_path / "model.weights.h5", "r") as h5:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                buf = io.BytesIO()
                np.lib.format.write_array_header_1_0(buf, {"descr": np.lib.format.dtype_to_descr(obj.dtype),
                                                            "fortran_order": False, "shape": obj.shape})
                members[name + ".npy"] = buf.getvalue()
        h5.visititems(visit)
    edited = rewrite(path, tmp_path / "flat.keras", members)
    (report,) = audit(edited).files
    assert report.error is None, report.error
    assert report.inferred.stored_params == model.count_params()
    assert not {f.code for f in report.findings} & INTEGRITY
    assert report.inferred.graph.source.pickled_members == ()


@pytest.mark.parametrize("array", [
    np.zeros((3, 4), "float32"), np.zeros((2,), "float16"), np.zeros((5, 1, 2), "int8"), np.zeros((), "uint16"),
    np.zeros((2, 2), "bool"), np.zeros((3,), "complex64"), np.zeros((2, 3), ">f8"), np.asfortranarray(np.zeros((2, 3))),
    np.zeros((4,), [("a", "<f4"), ("b", "<i2")]), np.array([1, None], dtype=object),
], ids=lambda a: str(a.dtype))
@pytest.mark.parametrize("version", [(1, 0), (2, 0), (3, 0)])
def test_header_agrees_with_numpy(array, version):
    buf = io.BytesIO()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.lib.format.write_array(buf, array, version=version, allow_pickle=True)
    data = buf.getvalue()
    header = npz.read_header(io.BytesIO(data))
    expected = "structured" if array.dtype.names else array.dtype.name
    fortran = bool(array.flags.f_contiguous and not array.flags.c_contiguous)
    assert (header.shape, header.dtype, header.fortran_order) == (array.shape, expected, fortran)
    assert np.load(io.BytesIO(data), allow_pickle=False).shape == header.shape if not array.dtype.hasobject else True


def _npy(header: bytes, version=(1, 0), length=None) -> bytes:
    fmt = "<H" if version == (1, 0) else "<I"
    return b"\x93NUMPY" + bytes(version) + struct.pack(fmt, len(header) if length is None else length) + header


@pytest.mark.parametrize("member,reason", [
    (_npy(b"{'descr': '<f4', 'fortran_order': False, 'shape': __import__('os').system('false'), }"), "not a Python literal"),
    (_npy(b"x" * 20_000, (2, 0)), "20,000 bytes"),
    (_npy(b"", (2, 0), length=0xFFFFFFF0), "4,294,967,280 bytes"),
    (_npy(b"{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }"), "non-negative"),
    (_npy(b"{'descr': '<f4', 'fortran_order': False, 'shape': (" + b"2, " * 65 + b"), }"), "at most 64"),
    (_npy(b"{'descr': '<f4'}"), "lacks descr"),
    (b"\x93NUMPY\x09\x09", "version 9.9"),
    (b"PK\x03\x04", "magic string"),
], ids=["code-in-header", "long-header", "4GiB-header", "negative-dim", "rank-65", "missing-keys", "version", "magic"])
def test_bad_headers_are_one_line(saved, tmp_path, member, reason):
    _, path = saved
    members = npz_members(path)
    members["layers/dense.npy"] = member
    edited = rewrite(path, tmp_path / "bad.keras", members)
    with pytest.raises(ModelReadError, match=reason) as info:
        formats.read(edited)
    assert "\n" not in str(info.value) and "layers/dense.npy" in str(info.value)


def _object_npy(pickle_bytes: bytes) -> bytes:
    header = b"{'descr': '|O', 'fortran_order': False, 'shape': (), }"
    return _npy(header.ljust(117) + b"\n") + pickle_bytes


@pytest.mark.parametrize("body", [
    b"\x80\x04" + b"(" * 300_000 + b".",  # past the opcode budget
    b"\x80\x02cos\nsystem\n(S'true'\ntR.",  # a text opcode (STRING) it does not interpret
    b"\x80\x04\x8e" + struct.pack("<Q", 1 << 40) + b".",  # bytes running past the member
    b"\x80\x04}(K\x01K\x02u.",  # a dict, not an ndarray
    b"",
], ids=["opcode-budget", "text-opcodes", "bytes-past-end", "not-an-ndarray", "empty"])
def test_unknown_pickles_are_object_arrays(saved, tmp_path, body):
    _, path = saved
    members = npz_members(path)
    members["layers/dense.npy"] = _object_npy(body)
    graph = formats.read(rewrite(path, tmp_path / "odd.keras", members))
    assert [(w.path, w.dtype) for w in graph.unassigned_weights] == [("layers/dense", "object")]


def test_too_many_members(saved, tmp_path):
    _, path = saved
    members = {f"m{i}.npy": b"" for i in range(npz.MAX_MEMBERS + 1)}
    with pytest.raises(ModelReadError, match="arrays, more than"):
        formats.read(rewrite(path, tmp_path / "many.keras", members))


def test_opcode_budget_for_the_whole_file(saved, monkeypatch):
    """Past the file's opcode budget the archive is unreadable (one line), not slow."""
    _, path = saved
    monkeypatch.setattr(npz, "MAX_OPS_TOTAL", 1000)
    with pytest.raises(ModelReadError, match="more than 1,000 opcodes"):
        formats.read(path)


def test_compressed_members_read_the_same(saved, tmp_path):
    """Deflated (not what Keras writes): the pickles' byte strings are skipped by inflating them."""
    model, path = saved
    edited = rewrite(path, tmp_path / "deflated.keras", npz_members(path), zipfile.ZIP_DEFLATED)
    graph = formats.read(edited)
    stored = sum(w.size for _, layer, _ in graph.walk() for w in layer.weights or ())
    assert stored == model.count_params() and graph.unassigned_weights == ()


def test_subclassed_model_totals_from_the_pickles(tmp_path):
    """A subclassed model saves no layer graph: its totals are the stored variables', and each one's
    trainability is the Variable's own `_trainable` (BatchNormalization's moving statistics: False)."""
    import keras
    from keras.src.saving import saving_lib

    @keras.saving.register_keras_serializable(package="test_npz")
    class Net(keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.dense = keras.layers.Dense(4)
            self.norm = keras.layers.BatchNormalization()

        def call(self, x):
            return self.norm(self.dense(x))

    model = Net()
    model(np.zeros((1, 3)))
    path = str(tmp_path / "net.keras")
    saving_lib.save_model(model, path, weights_format="npz")
    (report,) = audit(path).files
    assert report.error is None, report.error
    inf = report.inferred
    assert inf.graph.opaque
    trainable = sum(_size(w.shape) for w in model.trainable_weights)
    assert (inf.total_params, inf.trainable_params, inf.non_trainable_params) == (
        model.count_params(), trainable, model.count_params() - trainable)


# ---- the security rules on npz weights (MA410, MA408) -------------------------------------------------


def _findings(path, code):
    (report,) = audit(path).files
    assert report.error is None, report.error
    return [f for f in report.findings if f.code == code]


def test_keras_own_pickles_are_one_warning(saved):
    _, path = saved
    (warning,) = _findings(path, "MA410")
    members = npz_members(path)
    assert warning.severity.value == "warning"
    assert warning.message.startswith(f"{len(members)} npz members are pickles (object arrays) of Keras variables")


def test_a_pickle_calling_anything_else_is_an_error(saved, tmp_path):
    _, path = saved
    marker = tmp_path / "unpickled.marker"
    found = _findings(_with_marker_pickle(path, tmp_path, marker), "MA410")
    errors = [f for f in found if f.severity.value == "error"]
    assert [f.message.split(":")[0] for f in errors] == [
        "npz member `layers/dense.npy` is a pickle (an object array) calling `io.open`"]
    assert len(found) == 2  # and the other members, Keras's own, one warning
    assert not marker.exists()


@pytest.mark.parametrize("member", ["layers/dense.npy", "layers/dense/vars/0.npy"])
def test_a_header_declaring_terabytes_is_ma408(saved, tmp_path, member):
    """A plain header declaring 2**20 x 2**20 float32 and holding no data, where Keras reads a layer's
    member (NpzIOStore allocates it from the header) or a variable's path."""
    _, path = saved
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (1 << 20, 1 << 20)})
    members = npz_members(path)
    members[member] = header.getvalue()
    (oversized,) = _findings(rewrite(path, tmp_path / "huge.keras", members), "MA408")
    declared = np.dtype("<f4").itemsize * (1 << 40)
    assert f"declares {declared:,} bytes" in oversized.message
