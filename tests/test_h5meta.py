"""formats/h5meta.py, the h5py-free walk of a weights file's metadata: it agrees with the h5py walk
(hdf5.walk) exactly wherever it answers, and declines (None) everything it does not interpret, above
all what the security rules look at (links, external storage, virtual datasets)."""

from __future__ import annotations

import os
import random
import zipfile

import h5py
import numpy as np
import pytest

from modelaudit.formats import h5meta, hdf5, keras_v3


def fast(path):
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        return h5meta.walk(f.fileno(), 0, size, size)


def slow(path):
    size = os.path.getsize(path)
    with h5py.File(path, "r") as h5:
        return hdf5.walk(h5, "", size)


def same(a, b):
    return list(a.datasets.items()) == list(b.datasets.items()) and a.links == b.links and a.oversized == b.oversized


def fill(h5, few=False):
    """Keras-like variables; `few` keeps every group within 8 links, which libver="latest" stores
    compactly (more become dense storage, which h5meta declines)."""
    for i in ((0, 1) if few else (0, 1, 2, 10, 11)):
        h5[f"layers/dense_{i}/vars/0"] = np.zeros((3, 2), "float32")
        h5[f"layers/dense_{i}/vars/1"] = np.zeros((2,), "float32")
    h5["layers/norm/vars/0"] = np.ones((5,), "float16")
    h5["layers/emb/vars/0"] = np.ones((4, 3), "float64")
    h5["layers/count/vars/0"] = np.int64(3)
    if not few:
        h5["layers/u8/vars/0"] = np.zeros((2, 2), "uint8")
        h5["layers/i32/vars/0"] = np.zeros((0, 2), "int32")
        h5.create_group("layers/activation/vars")
    h5.create_dataset("layers/chunked/vars/0", data=np.zeros((64, 64), "float32"), chunks=(8, 8))
    h5.create_dataset("optimizer/vars/0", shape=(), dtype="int64")


@pytest.mark.parametrize("libver", ["earliest", "latest"])
def test_agrees_with_h5py(tmp_path, libver):
    path = tmp_path / "w.h5"
    with h5py.File(path, "w", libver=libver) as h5:
        fill(h5, few=libver == "latest")
    tree = fast(str(path))
    assert tree is not None
    assert same(tree, slow(str(path)))
    assert list(tree.datasets)[:4] == ["layers/chunked/vars/0", "layers/count/vars/0",
                                       "layers/dense_0/vars/0", "layers/dense_0/vars/1"]
    if libver == "earliest":  # natural order: dense_2 before dense_10
        names = list(tree.datasets)
        assert names.index("layers/dense_2/vars/0") < names.index("layers/dense_10/vars/0")
    assert tree.datasets["layers/norm/vars/0"].dtype == "float16"
    assert tree.datasets["layers/count/vars/0"].shape == ()


def test_agrees_on_many_links_in_one_group(tmp_path):
    path = tmp_path / "many.h5"
    with h5py.File(path, "w") as h5:
        for i in range(300):  # a symbol table spread over many B-tree and symbol table nodes
            h5[f"layers/dense_{i}/vars/0"] = np.zeros((i % 7 + 1,), "float32")
    tree = fast(str(path))
    assert tree is not None and len(tree.datasets) == 300
    assert same(tree, slow(str(path)))


def test_oversized_is_reported_alike(tmp_path):
    path = tmp_path / "big.h5"
    with h5py.File(path, "w") as h5:
        h5.create_dataset("layers/dense/vars/0", shape=(100_000, 1000), dtype="float32")  # never written
    tree = fast(str(path))
    assert tree is not None and tree.oversized and same(tree, slow(str(path)))


def _declines(tmp_path, edit, libver="earliest"):
    path = tmp_path / "d.h5"
    with h5py.File(path, "w", libver=libver) as h5:
        h5["layers/dense/vars/0"] = np.zeros((3, 2), "float32")
        edit(h5, tmp_path)
    return fast(str(path)) is None


@pytest.mark.parametrize("case", ["soft", "external-link", "external-storage", "virtual", "big-endian", "bool",
                                  "string", "dense-links"])
def test_declines_what_it_does_not_interpret(tmp_path, case):
    def edit(h5, d):
        if case == "soft":
            h5["layers/dense/vars/1"] = h5py.SoftLink("/layers/dense/vars/0")
        elif case == "external-link":
            h5["layers/dense/vars/1"] = h5py.ExternalLink("/etc/passwd", "/x")
        elif case == "external-storage":
            h5.create_dataset("layers/dense/vars/1", shape=(4,), dtype="float32",
                              external=[(str(d / "raw.bin"), 0, h5py.h5f.UNLIMITED)])
        elif case == "virtual":
            layout = h5py.VirtualLayout(shape=(3, 2), dtype="float32")
            layout[:] = h5py.VirtualSource(str(d / "other.h5"), "x", shape=(3, 2))
            h5.create_virtual_dataset("layers/dense/vars/1", layout)
        elif case == "big-endian":
            h5["layers/dense/vars/1"] = np.zeros((2,), ">f4")
        elif case == "bool":
            h5["layers/dense/vars/1"] = np.zeros((2,), bool)
        elif case == "string":
            h5["layers/dense/vars/1"] = "text"
        elif case == "dense-links":
            for i in range(40):
                h5[f"layers/many/vars/{i}"] = np.zeros((1,), "float32")

    assert _declines(tmp_path, edit, "latest" if case == "dense-links" else "earliest")


def test_declined_keras_file_still_reports_its_links(tmp_path):
    """The reader falls back to h5py, which records the soft link for the security rules."""
    import keras

    src = tmp_path / "m.keras"
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)]).save(src)
    with zipfile.ZipFile(src) as zf:
        members = {i.filename: zf.read(i) for i in zf.infolist()}
    h5path = tmp_path / "w.h5"
    h5path.write_bytes(members["model.weights.h5"])
    with h5py.File(h5path, "r+") as h5:
        h5["layers/dense/vars/2"] = h5py.SoftLink("/layers/dense/vars/0")
    members["model.weights.h5"] = h5path.read_bytes()
    dst = tmp_path / "linked.keras"
    with zipfile.ZipFile(dst, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    graph = keras_v3.read(str(dst))
    assert any(kind.startswith("soft link") for _, kind in graph.source.hdf5_links)


def test_the_keras_reader_needs_no_h5py(zoo_free_model):
    """`check` of a plain .keras imports neither h5py nor numpy (checked in a fresh interpreter)."""
    import subprocess
    import sys

    code = ("import sys; from modelaudit import formats; g = formats.read(sys.argv[1]); "
            "assert g.layers[-1].weights; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('h5py', 'numpy')))")
    out = subprocess.run([sys.executable, "-c", code, zoo_free_model], capture_output=True, text=True, timeout=60,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.fixture
def zoo_free_model(tmp_path):
    import keras

    path = tmp_path / "m.keras"
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(2)]).save(path)
    return str(path)


def test_damaged_bytes_never_raise(tmp_path):
    path = tmp_path / "w.h5"
    with h5py.File(path, "w") as h5:
        fill(h5)
    data = bytearray(path.read_bytes())
    rng = random.Random(1)
    for i in range(300):
        damaged = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            pos = rng.randrange(len(damaged))
            damaged[pos] = rng.randrange(256)
        if i % 5 == 0:
            damaged = damaged[: rng.randrange(len(damaged))]
        p = tmp_path / f"d{i}.h5"
        p.write_bytes(bytes(damaged))
        tree = fast(str(p))  # a Tree or None; never an exception
        assert tree is None or isinstance(tree, hdf5.Tree)
        p.unlink()


def test_agrees_on_the_zoo_and_the_samples(zoo):
    import glob

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    paths = [p.get("keras-v3") for _, p in zoo.values()] + sorted(glob.glob(os.path.join(root, "samples", "*.keras")))
    checked = 0
    for path in filter(None, paths):
        name = os.path.basename(path)
        with open(path, "rb") as f, zipfile.ZipFile(f) as zf:
            if "model.weights.h5" not in zf.namelist():
                continue
            info = zf.getinfo("model.weights.h5")
            view = keras_v3._member_view(zf, f, "model.weights.h5")
            tree = h5meta.walk(f.fileno(), view._start, view._size, info.file_size)
            with h5py.File(view, "r") as h5:
                expected = hdf5.walk(h5, "", info.file_size)
        assert tree is not None, name
        assert same(tree, expected), name
        checked += 1
    assert checked >= 5
