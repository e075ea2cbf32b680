"""formats/h5meta.py, the h5py-free walk of a weights file's metadata: it agrees with the h5py walk
(hdf5.walk) exactly wherever it answers, and declines (None) everything it does not interpret, above
all what the security rules look at (links, external storage, virtual datasets)."""

from __future__ import annotations

import os
import random
import zipfile
from unittest import mock

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


# ---- legacy .h5 models: the attributes too, and the whole read ------------------------------------


def read_both(path):
    """(the fast read, or None if h5meta declined; the h5py read) of a legacy .h5: graph or error line."""
    from modelaudit.errors import ModelReadError
    from modelaudit.formats import legacy_h5

    def outcome(fn):
        try:
            return fn()
        except ModelReadError as exc:
            return f"error: {exc}"

    size = os.path.getsize(path)
    metadata = legacy_h5._read_metadata(str(path), size)
    fast = outcome(lambda: legacy_h5._read(metadata, size)) if metadata is not None else None
    with mock.patch.object(legacy_h5, "_read_metadata", return_value=None):  # h5py, through h5guard
        slow = outcome(lambda: legacy_h5.read(str(path)))
    return fast, slow


def same_graph(a, b):
    """Equal graphs (dataclass equality leaves out the raw configs and the parsed training_config)."""
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    return a == b and a.config == b.config and a.source.training_config == b.source.training_config


def stored_params(graph) -> int:
    total = sum(int(np.prod(w.shape)) for w in graph.unassigned_weights)
    for layer in graph.layers:
        total += sum(int(np.prod(w.shape)) for w in layer.weights)
        if layer.submodel is not None:
            total += stored_params(layer.submodel) - sum(int(np.prod(w.shape)) for w in layer.submodel.unassigned_weights)
    return total


@pytest.fixture(scope="module")
def applications(tmp_path_factory):
    """keras.applications saved as legacy .h5 by Keras 3 and by tf_keras (weights=None): configs of
    100-250 KB (past HDF5's 64 KB header limit: variable-length strings in a global heap), tf_keras's
    `conv1/conv` layer names (groups nested below model_weights), a compiled one with optimizer state."""
    import keras
    import tf_keras

    folder = tmp_path_factory.mktemp("apps")
    out = {}
    # MobileNetV3Small: a 158 KB config in 2.5 million params (ResNet50's 25 million held 100 MB more)
    model = keras.applications.MobileNetV3Small(weights=None)
    out["k3_mobilenetv3small.h5"] = (model.count_params(), str(folder / "k3_mobilenetv3small.h5"))
    model.save(out["k3_mobilenetv3small.h5"][1])
    for name, build in (("k2_densenet121.h5", tf_keras.applications.DenseNet121),
                        ("k2_mobilenetv2.h5", tf_keras.applications.MobileNetV2)):
        model = build(weights=None)
        if name == "k2_mobilenetv2.h5":
            model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
        out[name] = (model.count_params(), str(folder / name))
        model.save(out[name][1], save_format="h5")
    tf_keras.backend.clear_session()
    return out


def test_legacy_fast_path_agrees_with_h5py(zoo, applications):
    """Every legacy .h5 the suite makes: h5meta answers, and its graph, weights and source facts are
    exactly h5py's; the applications' stored weights add up to Keras's own count_params()."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    paths = {name: p["keras-h5"] for name, (_, p) in zoo.items() if "keras-h5" in p}
    paths["mnist_classifier_keras2.h5"] = os.path.join(root, "samples", "mnist_classifier_keras2.h5")
    paths.update({name: path for name, (_, path) in applications.items()})
    assert len(paths) >= 10
    for name, path in paths.items():
        fast, slow = read_both(path)
        assert fast is not None, f"{name}: h5meta declined"
        assert not isinstance(slow, str), f"{name}: {slow}"
        assert same_graph(fast, slow), name
        assert fast.layers and any(layer.weights for layer in fast.layers), name
    for name, (params, path) in applications.items():
        fast, _ = read_both(path)
        assert stored_params(fast) == params, name
        with h5py.File(path, "r") as h5:
            assert len(h5.attrs["model_config"]) > 64 * 1024, name
    fast, _ = read_both(applications["k2_mobilenetv2.h5"][1])
    assert fast.objective is not None and fast.source.training_config


def test_legacy_fast_path_reads_split_layer_names(zoo):
    """tf_keras splits a long `layer_names` into fixed-length layer_names0, layer_names1, ...: read
    in order, they are the model's own layer names."""
    from modelaudit.formats import legacy_h5

    model, paths = zoo["k2_long_names"]
    path = paths["keras-h5"]
    with h5py.File(path, "r") as h5:
        split = [k for k in h5["model_weights"].attrs if k.startswith("layer_names")]
    assert "layer_names" not in split and {"layer_names0", "layer_names1"} <= set(split)
    metadata = legacy_h5._read_metadata(path, os.path.getsize(path))
    assert metadata is not None
    assert metadata.layer_groups.layer_names == [layer.name for layer in model.layers]


def test_legacy_fixed_length_model_config_agrees(tmp_path):
    """A model_config stored as a fixed-length string (numpy bytes) reads as h5py reads it."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = tmp_path / "fixed.h5"
    path.write_bytes(open(os.path.join(root, "samples", "mnist_classifier_keras2.h5"), "rb").read())
    with h5py.File(path, "r+") as h5:
        text = h5.attrs["model_config"]
        del h5.attrs["model_config"]
        h5.attrs["model_config"] = np.bytes_(text.encode())
        assert h5.attrs.get_id("model_config").get_type().is_variable_str() is False
    fast, slow = read_both(path)
    assert fast is not None and same_graph(fast, slow)


def test_the_legacy_reader_needs_no_h5py():
    """`modelaudit check` of a legacy .h5 imports neither h5py nor numpy (python -X importtime)."""
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.path.join(root, "samples", "mnist_classifier_keras2.h5")
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "modelaudit.cli", "check", path],
                         capture_output=True, text=True, timeout=60, cwd=root)
    assert out.returncode in (0, 1), out.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines() if line.startswith("import time:")}
    assert "modelaudit.formats.legacy_h5" in imported and "modelaudit.formats.h5meta" in imported
    assert not {m for m in imported if m.split(".")[0] in ("h5py", "numpy")}


def _edited(tmp_path, edit, name="edited.h5"):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = tmp_path / name
    path.write_bytes(open(os.path.join(root, "samples", "mnist_classifier_keras2.h5"), "rb").read())
    with h5py.File(path, "r+") as h5:
        edit(h5, tmp_path)
    return path


def _zero_first_heap_object(h5, d):
    pass  # edited as bytes below: h5py never writes a damaged file


LEGACY_HOSTILE = {
    # what the security rules look at: h5meta never interprets it, h5py records it
    "soft-link": lambda h5, d: h5["model_weights/dense"].__setitem__("extra", h5py.SoftLink("/model_weights/conv2d")),
    "external-link": lambda h5, d: h5["model_weights"].__setitem__("other", h5py.ExternalLink("/etc/passwd", "/x")),
    "external-storage": lambda h5, d: h5.create_dataset(
        "model_weights/dense/raw", shape=(4,), dtype="float32", external=[(str(d / "raw.bin"), 0, h5py.h5f.UNLIMITED)]),
    "model-weights-link": lambda h5, d: (h5.move("model_weights", "elsewhere"),
                                         h5.__setitem__("model_weights", h5py.SoftLink("/elsewhere"))),
    # attributes h5meta does not interpret: h5py reads them and decides as before
    "model-config-not-text": lambda h5, d: h5.attrs.__setitem__("model_config", 42),
    "model-config-bad-utf8": lambda h5, d: h5.attrs.__setitem__("model_config", b"\xff{}"),
    "weight-names-numbers": lambda h5, d: h5["model_weights/dense"].attrs.__setitem__("weight_names", np.array([1, 2])),
    "layer-names-2d": lambda h5, d: h5["model_weights"].attrs.__setitem__("layer_names", np.array([[b"a"], [b"b"]])),
    "second-link-to-a-group": lambda h5, d: h5["model_weights"].__setitem__("again", h5["model_weights/dense"]),
}


@pytest.mark.parametrize("case", list(LEGACY_HOSTILE) + ["heap-object-zeroed", "truncated", "dense-attributes"])
def test_legacy_hostile_variants_fall_back(tmp_path, case):
    """h5meta declines each one, and the read (through h5py) reports what the security rules need or
    fails closed with one line, as it did before h5meta read legacy files."""
    from modelaudit.errors import ModelReadError
    from modelaudit.formats import legacy_h5

    if case in LEGACY_HOSTILE:
        path = _edited(tmp_path, LEGACY_HOSTILE[case])
    elif case == "dense-attributes":  # more than 8 attributes on a new-style header: a fractal heap
        path = _edited(tmp_path, lambda h5, d: None)
        with h5py.File(path, "r") as src, h5py.File(tmp_path / "dense.h5", "w", libver="latest") as dst:
            for key, value in src.attrs.items():
                dst.attrs[key] = value
            for i in range(12):
                dst.attrs[f"extra_{i}"] = f"value {i}"
            src.copy("model_weights", dst)
        path = tmp_path / "dense.h5"
    else:
        data = bytearray(_edited(tmp_path, lambda h5, d: None).read_bytes())
        if case == "truncated":
            data = data[: len(data) * 3 // 4]
        else:
            at = data.find(b"GCOL")
            data[at + 16:at + 32] = bytes(16)  # object 1: index 0, size 0 (the library loops on it)
        path = tmp_path / f"{case}.h5"
        path.write_bytes(bytes(data))
    assert legacy_h5._read_metadata(str(path), os.path.getsize(path)) is None
    try:
        graph = legacy_h5.read(str(path))
    except ModelReadError as exc:
        reason = str(exc)
        assert "\n" not in reason and reason
        expected = {"heap-object-zeroed": "damaged HDF5 global heap", "model-config-not-text": "not text",
                    "weight-names-numbers": "other than text", "layer-names-2d": "other than text",
                    "truncated": "not a readable HDF5 file", "second-link-to-a-group": "a second link to a group"}
        assert case in expected or case == "model-config-bad-utf8", (case, reason)
        assert expected.get(case, "") in reason
        return
    kinds = " ".join(kind for _, kind in graph.source.hdf5_links)
    expected = {"soft-link": "soft link", "external-link": "external link", "external-storage": "external storage",
                "model-weights-link": "soft link", "dense-attributes": ""}
    assert case in expected, (case, kinds)
    assert expected[case] in kinds
    if case in ("soft-link", "external-link", "external-storage", "dense-attributes"):
        assert graph.layer("dense").weights  # the rest of the file is read as always


def test_legacy_damaged_bytes_decline_or_agree(tmp_path):
    """Random damage to a legacy file's metadata: h5meta gives metadata or declines, never an
    exception; where it answers, the h5py read (in a child process: the HDF5 library can crash on a
    damaged file) gives the same graph. h5meta checks what the library checks on the way (superblock
    fields, header message counts and alignment, local heap free lists, B-tree key order, global heap
    bounds), so it never reads a file the library would refuse, or read otherwise."""
    import subprocess
    import sys

    from modelaudit.formats import legacy_h5

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    data = open(os.path.join(root, "samples", "mnist_classifier_keras2.h5"), "rb").read()
    rng = random.Random(7)
    answered = []
    for i in range(150):
        damaged = bytearray(data)
        for _ in range(rng.randint(1, 6)):
            pos = rng.randrange(8192)  # the metadata; the weights' data comes after it
            damaged[pos] = rng.randrange(256)
        p = tmp_path / f"d{i}.h5"
        p.write_bytes(bytes(damaged))
        if legacy_h5._read_metadata(str(p), len(damaged)) is not None:
            answered.append(str(p))
        else:
            p.unlink()
    assert 10 <= len(answered) <= 100  # damage in attribute values or unused bytes leaves a readable file
    code = ("import sys; from tests.test_h5meta import read_both, same_graph\n"
            "for path in sys.argv[1:]:\n"
            "    fast, slow = read_both(path)\n"
            "    print(path, 'agree' if same_graph(fast, slow) else f'differ: {slow}')\n")
    out = subprocess.run([sys.executable, "-c", code, *answered], capture_output=True, text=True, timeout=120,
                         cwd=root)
    assert out.returncode == 0, out.stderr[-2000:]
    verdicts = [line for line in out.stdout.splitlines() if line.startswith(str(tmp_path))]
    assert len(verdicts) == len(answered) and all(v.endswith(" agree") for v in verdicts), verdicts
