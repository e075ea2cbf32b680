"""Bad and hostile input: every unreadable path gives exactly one line `PATH: cannot read: REASON` on
stderr, no traceback, the other paths are still checked, and the run exits 2 (DESIGN principle 3).

Every bad file is made from a real model saved by real Keras (samples/make_samples.py), changed the way
a damaged or malicious file would be: zip members copied and replaced with zipfile, HDF5 attributes
edited with h5py on a copy, bytes cut off.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import random
import signal
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelaudit.cli import app
from modelaudit.formats import json_config

ROOT = Path(__file__).resolve().parents[2]
SEQ = "mnist_classifier.keras"  # Sequential, compiled, clean
FUNC = "multi_input_functional.keras"  # Functional: shared layer, nested Sequential, two outputs
H5 = "mnist_classifier_keras2.h5"  # legacy HDF5 written by tf_keras


def _make_samples():
    spec = importlib.util.spec_from_file_location("_modelaudit_make_samples", ROOT / "samples" / "make_samples.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def real(tmp_path_factory) -> dict:
    """Real models saved by real Keras, built once for the module. Never modified: copies are."""
    out = tmp_path_factory.mktemp("real")
    samples = _make_samples()
    files = {name: Path(samples.build(name, str(out))) for name in (SEQ, FUNC, H5)}

    import keras
    import tf_keras

    # Weights only, Keras 2 style (layer_names attribute, no model_config).
    m2 = tf_keras.Sequential([tf_keras.layers.Dense(4, input_shape=(3,)), tf_keras.layers.Dense(2)])
    files["weights2.h5"] = out / "weights2.h5"
    m2.save_weights(str(files["weights2.h5"]), save_format="h5")
    # Weights only, Keras 3 style (layers/... groups, no attributes at all).
    m3 = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dense(2)])
    files["weights3.h5"] = out / "x.weights.h5"
    m3.save_weights(str(files["weights3.h5"]))
    return files


@pytest.fixture(autouse=True)
def no_hang():
    """A hang is a failure, not a stuck test run."""

    def on_alarm(signum, frame):
        # pytest.fail raises a BaseException, which CliRunner does not swallow as it would an
        # Exception; re-armed in case something catches it anyway.
        signal.alarm(5)
        pytest.fail("modelaudit took longer than 30 s: a hang", pytrace=True)

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(30)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


# ---- building bad files from real ones ---------------------------------------------------------


def rewrite_zip(src: Path, dst: Path, replace: dict | None = None, drop=(), compress: dict | None = None) -> Path:
    """A copy of the archive with members replaced (bytes), dropped, or recompressed."""
    replace, compress = replace or {}, compress or {}
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            if info.filename in drop:
                continue
            data = replace.get(info.filename, None)
            if data is None:
                data = zin.read(info)
            new = zipfile.ZipInfo(info.filename, date_time=info.date_time)
            new.compress_type = compress.get(info.filename, info.compress_type)
            zout.writestr(new, data)
    return dst


def config_of(path: Path) -> dict:
    with zipfile.ZipFile(path) as zf:
        return json.loads(zf.read("config.json"))


def layer_named(cfg: dict, name: str) -> dict:
    return next(item for item in cfg["config"]["layers"] if item["name"] == name)


def history_refs(obj):
    """Every keras_history list inside obj (mutable, in place)."""
    if isinstance(obj, dict):
        if "keras_history" in obj:
            yield obj["keras_history"]
        for v in obj.values():
            yield from history_refs(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from history_refs(v)


def with_config(mutate, base: str = FUNC, name: str = "bad.keras"):
    """A maker: the real .keras with config.json replaced by mutate(config) (bytes, an object, or
    None for `changed in place`)."""

    def make(real, d: Path) -> Path:
        cfg = config_of(real[base])
        new = mutate(cfg)
        if new is None:
            new = cfg
        data = new if isinstance(new, bytes) else _dumps(new)
        return rewrite_zip(real[base], d / name, replace={"config.json": data})

    return make


def _dumps(obj) -> bytes:
    """json.dumps with room for models nested past MAX_MODEL_DEPTH (3 JSON levels each)."""
    import sys

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, json_config.MAX_DOCUMENT_DEPTH + 1000))
    try:
        return json.dumps(obj).encode()
    finally:
        sys.setrecursionlimit(limit)


def raw_bytes(data: bytes, name: str):
    def make(real, d: Path) -> Path:
        (d / name).write_bytes(data)
        return d / name

    return make


def truncated(base: str):
    def make(real, d: Path) -> Path:
        data = real[base].read_bytes()
        dst = d / f"truncated_{base}"
        dst.write_bytes(data[: len(data) // 2])
        return dst

    return make


def h5_copy(base: str, edit):
    """A copy of a real .h5 file, edited with h5py."""

    def make(real, d: Path) -> Path:
        import h5py

        dst = d / f"edited_{base}"
        dst.write_bytes(real[base].read_bytes())
        with h5py.File(dst, "r+") as h5:
            edit(h5)
        return dst

    return make


def copy_of(key: str):
    def make(real, d: Path) -> Path:
        dst = d / Path(real[key]).name
        dst.write_bytes(real[key].read_bytes())
        return dst

    return make


def empty_folder(real, d: Path) -> Path:
    folder = d / "no_models_here"
    folder.mkdir()
    (folder / "README.txt").write_text("not a model\n")
    (folder / "weights.bin").write_bytes(b"\0" * 64)
    return folder


def random_junk(real, d: Path) -> Path:
    rng = random.Random(1234)
    data = bytes([0x07]) + rng.randbytes(8191)  # starts with no magic, not JSON
    (d / "junk.keras").write_bytes(data)
    return d / "junk.keras"


def layers_not_list(cfg):
    cfg["config"]["layers"] = "dense, dense_1"


def layer_is_string(cfg):
    cfg["config"]["layers"][2] = "Dense"


def layer_config_not_object(cfg):
    cfg["config"]["layers"][2]["config"] = [1, 2, 3]


def inbound_nodes_not_list(cfg):
    layer_named(cfg, "add")["inbound_nodes"] = "shared_encoder"


def cycle(cfg):
    # shared_encoder's first call now consumes add, which consumes shared_encoder: a cycle.
    refs = list(history_refs(layer_named(cfg, "shared_encoder")["inbound_nodes"]))
    refs[0][:] = ["add", 0, 0]


def self_loop(cfg):
    refs = list(history_refs(layer_named(cfg, "add")["inbound_nodes"]))
    refs[0][:] = ["add", 0, 0]


def missing_layer(cfg):
    refs = list(history_refs(layer_named(cfg, "add")["inbound_nodes"]))
    refs[0][:] = ["no_such_layer", 0, 0]


def missing_call(cfg):
    refs = list(history_refs(layer_named(cfg, "add")["inbound_nodes"]))
    refs[0][:] = ["shared_encoder", 7, 0]


def malformed_history(cfg):
    refs = list(history_refs(layer_named(cfg, "add")["inbound_nodes"]))
    refs[0][:] = ["shared_encoder", "zero", None]


def output_missing_layer(cfg):
    outputs = cfg["config"]["output_layers"]
    first = next(iter(outputs.values())) if isinstance(outputs, dict) else outputs[0]
    first[0] = "no_such_output"


def duplicate_names(cfg):
    cfg["config"]["layers"][3]["name"] = cfg["config"]["layers"][2]["name"]


def deep_json(cfg):
    return b"[" * 100_000 + b"]" * 100_000


def deep_json_in_layer(cfg):
    # Under Python's recursion limit but deeper than MAX_JSON_DEPTH: the iterative bound catches it.
    deep = {}
    node = deep
    for _ in range(json_config.MAX_JSON_DEPTH + 50):
        node["x"] = {}
        node = node["x"]
    layer_named(cfg, "add")["config"]["extra"] = deep


def nested_models(cfg):
    """Models nested deeper than MAX_MODEL_DEPTH, each one a Sequential holding the next."""
    inner = {"module": "keras.layers", "class_name": "Dense", "name": "leaf",
             "config": {"name": "leaf", "units": 2}, "build_config": {"input_shape": [None, 4]}}
    for i in range(json_config.MAX_MODEL_DEPTH + 3):
        inner = {"module": "keras", "class_name": "Sequential", "name": f"level_{i}",
                 "config": {"name": f"level_{i}", "layers": [inner]}}
    return inner


def zip_bomb_declared(real, d: Path) -> Path:
    """config.json inflates (honestly declared) past MAX_CONFIG_BYTES from a few dozen KiB."""
    body = json.dumps(config_of(real[SEQ])).encode()
    data = body + b" " * (json_config.MAX_CONFIG_BYTES + 1 - len(body))
    dst = rewrite_zip(real[SEQ], d / "bomb.keras", replace={"config.json": data},
                      compress={"config.json": zipfile.ZIP_DEFLATED})
    assert dst.stat().st_size < 1024 * 1024
    return dst


def _patch_sizes(path: Path, member: str, declared: int) -> None:
    """Make the local header and the central directory entry of `member` declare `declared` bytes
    uncompressed: a header that lies about its size."""
    data = bytearray(path.read_bytes())
    name = member.encode()
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(member)
    # local file header: signature, ..., uncompressed size at offset 22
    local = info.header_offset
    assert data[local: local + 4] == b"PK\x03\x04"
    struct.pack_into("<I", data, local + 22, declared)
    # central directory entry: uncompressed size at offset 24, name at 46
    pos = 0
    while True:
        pos = data.find(b"PK\x01\x02", pos)
        assert pos >= 0, "central directory entry not found"
        name_len = struct.unpack_from("<H", data, pos + 28)[0]
        if bytes(data[pos + 46: pos + 46 + name_len]) == name:
            struct.pack_into("<I", data, pos + 24, declared)
            break
        pos += 4
    path.write_bytes(bytes(data))


def zip_bomb_lying(real, d: Path) -> Path:
    """config.json declares 1 KiB but inflates to more than MAX_CONFIG_BYTES."""
    body = json.dumps(config_of(real[SEQ])).encode()
    data = body + b" " * (json_config.MAX_CONFIG_BYTES * 2 - len(body))
    dst = rewrite_zip(real[SEQ], d / "lying_bomb.keras", replace={"config.json": data},
                      compress={"config.json": zipfile.ZIP_DEFLATED})
    _patch_sizes(dst, "config.json", 1024)
    with zipfile.ZipFile(dst) as zf:
        assert zf.getinfo("config.json").file_size == 1024
    return dst


def zip_bomb_lying_at_bound(real, d: Path) -> Path:
    """config.json declares exactly the bound (so the declared-size check passes) and inflates to twice it."""
    body = json.dumps(config_of(real[SEQ])).encode()
    data = body + b" " * (json_config.MAX_CONFIG_BYTES * 2 - len(body))
    dst = rewrite_zip(real[SEQ], d / "lying_bomb2.keras", replace={"config.json": data},
                      compress={"config.json": zipfile.ZIP_DEFLATED})
    _patch_sizes(dst, "config.json", json_config.MAX_CONFIG_BYTES)
    return dst


def weights_member_lies(real, d: Path) -> Path:
    """The stored model.weights.h5 declares more bytes than the archive holds."""
    dst = rewrite_zip(real[SEQ], d / "weights_lie.keras")
    _patch_sizes(dst, "model.weights.h5", 50 * 1024 * 1024)
    return dst


def weights_member_garbage(real, d: Path) -> Path:
    return rewrite_zip(real[SEQ], d / "weights_garbage.keras", replace={"model.weights.h5": b"\x89HDF\r\n\x1a\n" + b"\0" * 300})


def no_config(real, d: Path) -> Path:
    return rewrite_zip(real[SEQ], d / "no_config.keras", drop={"config.json"})


def metadata_invalid(real, d: Path) -> Path:
    return rewrite_zip(real[SEQ], d / "bad_metadata.keras", replace={"metadata.json": b'{"keras_version": '})


def empty_zip(real, d: Path) -> Path:
    with zipfile.ZipFile(d / "empty_zip.keras", "w"):
        pass
    return d / "empty_zip.keras"


def fifo(real, d: Path) -> Path:
    """A named pipe called model.keras: opening it for reading would wait for a writer forever."""
    if not hasattr(os, "mkfifo"):
        pytest.skip("no named pipes on this platform")
    os.mkfifo(d / "pipe.keras")
    return d / "pipe.keras"


def _set_flag_bit(path: Path, member: str, bit: int) -> None:
    """Set a general-purpose flag bit of `member` in its local header and central directory entry."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(member)
    data[info.header_offset + 6] |= bit
    pos = 0
    while True:
        pos = data.find(b"PK\x01\x02", pos)
        assert pos >= 0
        name_len = struct.unpack_from("<H", data, pos + 28)[0]
        if bytes(data[pos + 46: pos + 46 + name_len]) == member.encode():
            data[pos + 8] |= bit
            break
        pos += 4
    path.write_bytes(bytes(data))


def encrypted_config(real, d: Path) -> Path:
    dst = rewrite_zip(real[SEQ], d / "encrypted.keras")
    _set_flag_bit(dst, "config.json", 0x1)
    return dst


def deflated_weights_corrupt(real, d: Path) -> Path:
    """model.weights.h5 compressed (Keras never does this) and its deflate stream damaged."""
    dst = rewrite_zip(real[SEQ], d / "deflated.keras", compress={"model.weights.h5": zipfile.ZIP_DEFLATED})
    data = bytearray(dst.read_bytes())
    with zipfile.ZipFile(dst) as zf:
        info = zf.getinfo("model.weights.h5")
    start = info.header_offset + 30 + len(info.filename) + 200
    for i in range(start, start + 400):
        data[i] ^= 0x55
    dst.write_bytes(bytes(data))
    return dst


def weight_names_not_text(h5):
    import numpy as np

    group = h5["model_weights"]
    first = next(iter(group.keys()))
    group[first].attrs["weight_names"] = np.array([1, 2, 3])


def del_attr(key):
    def edit(h5):
        del h5.attrs[key]

    return edit


def set_attr(key, value):
    def edit(h5):
        h5.attrs[key] = value

    return edit


def json_file(text: str, name: str = "model.json"):
    return raw_bytes(text.encode(), name)


# (id, maker(real files, folder) -> path of the bad input)
BAD = [
    ("empty-file", raw_bytes(b"", "empty.keras")),
    ("empty-h5-suffix", raw_bytes(b"", "empty.h5")),
    ("random-bytes", random_junk),
    ("truncated-keras", truncated(SEQ)),
    ("truncated-functional-keras", truncated(FUNC)),
    ("empty-zip", empty_zip),
    ("named-pipe", fifo),
    ("encrypted-config-member", encrypted_config),
    ("deflated-weights-member-damaged", deflated_weights_corrupt),
    ("config-invalid-json", with_config(lambda cfg: b'{"class_name": "Sequential", "config": {"layers": [')),
    ("config-not-utf8", with_config(lambda cfg: b'{"class_name": "\xff\xfe"}')),
    ("config-is-a-list", with_config(lambda cfg: [cfg])),
    ("config-no-class-name", with_config(lambda cfg: {"config": {"name": "x"}})),
    ("config-config-not-object", with_config(lambda cfg: {"class_name": "Functional", "config": "layers"})),
    ("layers-not-a-list", with_config(layers_not_list)),
    ("layers-not-a-list-seq", with_config(layers_not_list, base=SEQ)),
    ("layer-is-a-string", with_config(layer_is_string)),
    ("layer-config-not-object", with_config(layer_config_not_object)),
    ("inbound-nodes-not-list", with_config(inbound_nodes_not_list)),
    ("inbound-cycle", with_config(cycle)),
    ("inbound-self-loop", with_config(self_loop)),
    ("inbound-missing-layer", with_config(missing_layer)),
    ("inbound-missing-call", with_config(missing_call)),
    ("inbound-malformed-history", with_config(malformed_history)),
    ("output-missing-layer", with_config(output_missing_layer)),
    ("duplicate-layer-names", with_config(duplicate_names)),
    ("input-batch-shape-string",
     with_config(lambda cfg: layer_named(cfg, "features_a")["config"].update(batch_shape="abc"))),
    ("input-batch-shape-infinity",
     with_config(lambda cfg: layer_named(cfg, "features_a")["config"].update(batch_shape=[None, float("inf")]))),
    ("no-config-json", no_config),
    ("json-nesting-100000", with_config(deep_json)),
    ("json-nesting-in-layer-config", with_config(deep_json_in_layer)),
    ("models-nested-too-deep", with_config(nested_models)),
    ("zip-bomb-declared-size", zip_bomb_declared),
    ("zip-bomb-header-lies-small", zip_bomb_lying),
    ("zip-bomb-header-lies-at-bound", zip_bomb_lying_at_bound),
    ("weights-member-declared-past-end", weights_member_lies),
    ("weights-member-not-hdf5", weights_member_garbage),
    ("h5-model-config-deleted", h5_copy(H5, del_attr("model_config"))),
    ("h5-model-config-invalid-json", h5_copy(H5, set_attr("model_config", '{"class_name": "Sequential", '))),
    ("h5-model-config-not-text", h5_copy(H5, set_attr("model_config", 42))),
    ("h5-weight-names-not-text", h5_copy(H5, weight_names_not_text)),
    ("h5-training-config-invalid-json", h5_copy(H5, set_attr("training_config", '{"loss": '))),
    ("h5-model-config-deep", h5_copy(H5, set_attr("model_config", "[" * 100_000 + "]" * 100_000))),
    ("truncated-h5", truncated(H5)),
    ("folder-without-models", empty_folder),
    ("json-invalid", json_file('{"class_name": "Sequential", "config": ')),
    ("json-empty-object", json_file("{}")),
    ("json-nesting-100000", json_file("{\"a\": " + "[" * 100_000 + "]" * 100_000 + "}")),
]


@pytest.fixture(scope="module")
def good(real, tmp_path_factory) -> Path:
    """A clean model, checked after each bad one to show the run went on."""
    d = tmp_path_factory.mktemp("good")
    dst = d / "good.keras"
    dst.write_bytes(real[SEQ].read_bytes())
    return dst


def _runner() -> CliRunner:
    return CliRunner()


def _assert_one_line(stderr: str, path: Path) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1, f"expected exactly one line on stderr, got:\n{stderr}"
    prefix = f"{path}: cannot read: "
    assert lines[0].startswith(prefix), lines[0]
    reason = lines[0][len(prefix):]
    assert reason.strip(), "the reason is empty"
    assert "Traceback" not in stderr
    return reason


@pytest.mark.parametrize("key", ["weights2.h5", "weights3.h5"])
def test_weights_only_files_are_skipped_not_refused(key, real, good, tmp_path):
    """A checkpoint holds no model by design: one note, exit 0, the next file still checked."""
    weights = copy_of(key)(real, tmp_path)
    result = _runner().invoke(app, ["check", "--format", "json", str(weights), str(good)])
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert result.stderr == f"{weights}: weights only, no model config: skipped\n"
    by_path = {f["path"]: f for f in json.loads(result.stdout)["files"]}
    assert by_path[str(weights)]["skipped"] and by_path[str(weights)]["error"] is None
    assert by_path[str(good)]["error"] is None and by_path[str(good)]["stats"]["total_params"] > 0


def test_invalid_metadata_is_read_and_reported(real, tmp_path):
    """Keras writes metadata.json and never reads it (issue 14): a broken one is an MA405 warning, and
    config.json and the weights are audited as from the real file."""
    bad = metadata_invalid(real, tmp_path)
    result = _runner().invoke(app, ["check", "--format", "json", str(bad), str(real[SEQ])])
    assert result.exit_code == 1, (result.stdout, result.stderr)
    broken, clean = json.loads(result.stdout)["files"]
    assert broken["error"] is None and broken["stats"] == clean["stats"]
    assert [f["severity"] for f in broken["findings"] if f["code"] == "MA405"] == ["warning"]


@pytest.mark.parametrize("make", [m for _, m in BAD], ids=[i for i, _ in BAD])
def test_bad_input(make, real, good, tmp_path):
    bad = make(real, tmp_path)
    runner = _runner()

    result = runner.invoke(app, ["check", "--format", "json", str(bad), str(good)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    assert "Traceback" not in result.output
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    _assert_one_line(result.stderr, bad)
    report = json.loads(result.stdout)
    by_path = {f["path"]: f for f in report["files"]}
    assert by_path[str(bad)]["error"], by_path
    # the good model after the bad one was still checked
    assert by_path[str(good)]["error"] is None
    assert by_path[str(good)]["stats"]["total_params"] > 0

    # text output too: the same one line
    result = runner.invoke(app, ["check", str(bad)])
    assert result.exit_code == 2
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    _assert_one_line(result.stderr, bad)

    # summary of a single bad file: one line, exit 2
    if not bad.is_dir():
        result = runner.invoke(app, ["summary", str(bad)])
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
        assert result.exit_code == 2, (result.stdout, result.stderr)
        _assert_one_line(result.stderr, bad)


# Wrong types inside an otherwise well-formed config: values Keras would refuse (or that make no sense).
# The decision: the graph is readable, so the file is read; a layer whose config cannot be evaluated is
# a finding (MA106, "its config cannot be evaluated") and its shapes fall back to what the file records;
# a value that is odd but evaluates the way Keras would evaluate it is no finding. A model input
# without a shape is a read error (the input-batch-shape cases above): nothing could be recomputed.
# Never a traceback; the other files go on.
def _units(value):
    return lambda cfg: layer_named(cfg, "shared_encoder")["config"].update(units=value)


WRONG_TYPES = [
    # (id, mutate config, what the tool does: "MA106" a finding with that code, "finding" any failing
    #  finding, "clean" read and nothing to say)
    ("dense-units-string", _units("abc"), "MA106"),
    ("dense-units-null", _units(None), "MA106"),
    ("dense-units-list", _units([4]), "MA106"),
    ("dense-units-infinity", _units(float("inf")), "MA106"),
    ("dense-units-nan", _units(float("nan")), "finding"),
    ("dense-units-negative", _units(-3), "finding"),
    ("dense-units-huge", _units(10 ** 300), "finding"),
    ("input-batch-shape-negative",
     lambda cfg: layer_named(cfg, "features_a")["config"].update(batch_shape=[None, -16]), "finding"),
    # Keras tests `if self.use_bias:`, so "yes" builds a bias exactly as true does: same params, clean.
    ("use-bias-string", lambda cfg: layer_named(cfg, "shared_encoder")["config"].update(use_bias="yes"), "clean"),
    ("dtype-not-a-policy", lambda cfg: layer_named(cfg, "add")["config"].update(dtype=[1, 2]), "clean"),
]


@pytest.mark.parametrize(
    "mutate,expect", [(m, e) for _, m, e in WRONG_TYPES], ids=[i for i, _, _ in WRONG_TYPES]
)
def test_wrong_types_are_findings_not_crashes(mutate, expect, real, good, tmp_path):
    bad = with_config(mutate)(real, tmp_path)
    runner = _runner()
    result = runner.invoke(app, ["check", "--format", "json", str(bad), str(good)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    assert "Traceback" not in result.output
    assert result.stderr == "", result.stderr
    report = json.loads(result.stdout)
    by_path = {f["path"]: f for f in report["files"]}
    assert by_path[str(good)]["error"] is None
    entry = by_path[str(bad)]
    assert entry["error"] is None, entry["error"]
    failing = [f for f in entry["findings"] if f["severity"] in ("warning", "error")]
    if expect == "clean":
        assert result.exit_code == 0, entry["findings"]
        assert not failing
        original = runner.invoke(app, ["check", "--format", "json", str(real[FUNC])])
        assert entry["stats"] == json.loads(original.stdout)["files"][0]["stats"]
    else:
        assert result.exit_code == 1, entry
        assert failing, entry["findings"]
        if expect.startswith("MA"):
            hits = [f for f in failing if f["code"] == expect]
            assert hits and all(f["layer"] == "shared_encoder" for f in hits), entry["findings"]

    # the summary still shows the table (values the file records where recomputing fails)
    result = runner.invoke(app, ["summary", "--format", "json", str(bad)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    assert result.exit_code == 0, result.stderr
    rows = {row["path"]: row for row in json.loads(result.stdout)["layers"]}
    assert "shared_encoder" in rows


def test_unforeseen_exceptions_are_one_line(real, good, monkeypatch):
    """Defence in depth: an exception a reader or a spec did not foresee still gives one line, exit 2,
    and the run goes on (formats.read and api.recompute fail closed)."""
    from modelaudit.formats import legacy_h5
    from modelaudit.infer import propagate

    runner = _runner()

    def boom_read(path):
        raise struct.error("unpack requires a buffer of 4 bytes")

    monkeypatch.setattr(legacy_h5, "read", boom_read)
    for command in (["check", str(real[H5]), str(good)], ["summary", str(real[H5])]):
        result = runner.invoke(app, command)
        assert result.exit_code == 2, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
        reason = _assert_one_line(result.stderr, real[H5])
        assert "struct.error" in reason or "error" in reason
    monkeypatch.undo()

    real_propagate = propagate.propagate

    def boom_propagate(graph):
        if graph.name == "multi_input_functional":
            raise OverflowError("cannot convert float infinity to integer")
        return real_propagate(graph)

    monkeypatch.setattr(propagate, "propagate", boom_propagate)
    for command in (["check", "--format", "json", str(real[FUNC]), str(good)], ["summary", str(real[FUNC])]):
        result = runner.invoke(app, command)
        assert result.exit_code == 2, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
        reason = _assert_one_line(result.stderr, real[FUNC])
        assert "OverflowError" in reason
        if command[0] == "check":
            by_path = {f["path"]: f for f in json.loads(result.stdout)["files"]}
            assert by_path[str(good)]["error"] is None


def test_no_model_at_all_exits_2(tmp_path):
    runner = _runner()
    result = runner.invoke(app, ["check"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    (tmp_path / "notes.txt").write_text("nothing\n")
    result = runner.invoke(app, ["check", str(tmp_path)])
    assert result.exit_code == 2
    _assert_one_line(result.stderr, tmp_path)
    result = runner.invoke(app, ["check", str(tmp_path / "does_not_exist.keras")])
    assert result.exit_code == 2
    _assert_one_line(result.stderr, tmp_path / "does_not_exist.keras")


def test_good_models_exit_0(real):
    result = _runner().invoke(app, ["check", str(real[SEQ]), str(real[FUNC]), str(real[H5])])
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert result.stderr == ""


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tree(folder: Path) -> dict:
    # A named pipe is listed, never opened (reading it would block).
    return {str(p.relative_to(folder)): (_digest(p) if p.is_file() else p.is_dir()) for p in sorted(folder.rglob("*"))}


def test_inputs_are_byte_identical_afterwards(real, tmp_path):
    folder = tmp_path / "inputs"
    folder.mkdir()
    paths = []
    for key in (SEQ, FUNC, H5):
        dst = folder / f"good_{key}"
        dst.write_bytes(real[key].read_bytes())
        paths.append(dst)
    for i, (case, make) in enumerate(BAD):
        sub = folder / f"{i:02d}_{case}"
        sub.mkdir()
        paths.append(make(real, sub))
    before = _tree(folder)
    stats = {p: os.stat(p).st_mtime_ns for p in paths}
    assert any(p.is_fifo() for p in paths) or not hasattr(os, "mkfifo")

    runner = _runner()
    result = runner.invoke(app, ["check", *map(str, paths)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    result = runner.invoke(app, ["check", "--scan-weights", "--format", "json", str(folder)])
    assert result.exit_code == 2
    for p in paths:
        result = runner.invoke(app, ["summary", str(p)])
        assert result.exit_code in (0, 2)
        assert "Traceback" not in result.output

    assert _tree(folder) == before  # same files, same bytes, nothing added
    assert {p: os.stat(p).st_mtime_ns for p in paths} == stats


def test_subprocess_mix_of_bad_and_good(real, tmp_path):
    picks = dict(BAD)
    bad = []
    for case in ("empty-file", "named-pipe", "truncated-keras", "inbound-cycle", "json-nesting-100000", "zip-bomb-header-lies-small",
                 "truncated-h5", "h5-model-config-deleted", "models-nested-too-deep"):
        sub = tmp_path / case
        sub.mkdir()
        bad.append(picks[case](real, sub))
    goods = [real[SEQ], real[H5]]
    args = [str(bad[0]), str(goods[0]), *map(str, bad[1:]), str(goods[1])]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", NO_COLOR="1")
    proc = subprocess.run(
        [sys.executable, "-m", "modelaudit.cli", "check", "--format", "json", *args],
        capture_output=True, text=True, timeout=60, cwd=ROOT, env=env,
    )
    assert "Traceback" not in proc.stderr
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == len(bad), proc.stderr
    for path, line in zip(bad, lines):
        assert line.startswith(f"{path}: cannot read: "), line
    report = json.loads(proc.stdout)
    by_path = {f["path"]: f for f in report["files"]}
    for g in goods:
        assert by_path[str(g)]["error"] is None
        assert by_path[str(g)]["stats"]["total_params"] > 0
