"""--scan-weights: MA108 (NaN/Inf) and MA110 (all-zero kernel) on real files, the data read in bounded
chunks from the file in place, never from outside the file, and only when asked."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

import modelaudit
from modelaudit.engine import Settings
from modelaudit.formats import scan as scan_mod

SCAN = Settings(scan_weights=True)


def _keras_model(keras, nan_at=None, zero_kernel=False, big=False):
    units = 300 if big else 3
    model = keras.Sequential([keras.Input((64 if big else 4,)), keras.layers.Dense(units, name="hidden"),
                              keras.layers.Dense(2, name="out")])
    kernel, bias = model.get_layer("hidden").get_weights()
    if nan_at is not None:
        kernel[nan_at] = np.nan
    model.get_layer("hidden").set_weights([kernel, bias])
    if zero_kernel:
        kernel, bias = model.get_layer("out").get_weights()
        model.get_layer("out").set_weights([np.zeros_like(kernel), bias])
    return model


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    import keras
    import tf_keras

    d = tmp_path_factory.mktemp("scan")
    out = {}
    m = _keras_model(keras, nan_at=(0, 0), zero_kernel=True)
    out["bad.keras"] = str(d / "bad.keras")
    m.save(out["bad.keras"])
    out["good.keras"] = str(d / "good.keras")
    _keras_model(keras).save(out["good.keras"])
    # the last value of a kernel read in many chunks
    m = _keras_model(keras, nan_at=(63, 299), big=True)
    out["big.keras"] = str(d / "big.keras")
    m.save(out["big.keras"])

    m2 = tf_keras.Sequential([tf_keras.layers.Dense(3, input_shape=(4,), name="hidden"),
                              tf_keras.layers.Dense(2, name="out")])
    kernel, bias = m2.get_layer("hidden").get_weights()
    kernel[1, 2] = np.inf
    kernel[2, 2] = -np.inf
    m2.get_layer("hidden").set_weights([kernel, bias])
    out["bad.h5"] = str(d / "bad.h5")
    m2.save(out["bad.h5"], save_format="h5")
    return out


def codes(report):
    return [f.code for f in report.findings]


def test_nan_and_zero_kernel_in_a_keras_file(files):
    report = modelaudit.audit(files["bad.keras"], SCAN)
    found = {f.code: f for f in report.findings if f.code in ("MA108", "MA110")}
    assert found["MA108"].layer == "hidden"
    assert "1 NaN" in found["MA108"].message and "(4, 3)" in found["MA108"].message
    assert found["MA110"].layer == "out"
    assert found["MA110"].message.startswith("Dense 'out': kernel ")
    assert found["MA108"].severity.value == "error" and found["MA110"].severity.value == "warning"


def test_inf_in_a_legacy_h5(files):
    report = modelaudit.audit(files["bad.h5"], SCAN)
    ma108 = [f for f in report.findings if f.code == "MA108"]
    assert len(ma108) == 1 and ma108[0].layer == "hidden"
    assert "1 +Inf, 1 -Inf" in ma108[0].message
    assert "MA110" not in codes(report)  # trained-looking kernels; zero biases are not kernels


def test_clean_file_has_neither(files):
    assert not {"MA108", "MA110"} & set(codes(modelaudit.audit(files["good.keras"], SCAN)))


def test_nothing_is_read_without_scan_weights(files, monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("weight data read without --scan-weights")

    monkeypatch.setattr(scan_mod, "_scan_dataset", boom)
    report = modelaudit.audit(files["bad.keras"])
    assert not {"MA108", "MA110"} & set(codes(report))
    assert report.files[0].inferred.weight_scan is None
    # asked, but no rule that reads the data is selected: still nothing read
    report = modelaudit.audit(files["bad.keras"], Settings(scan_weights=True, select=["MA2"]))
    assert report.files[0].inferred.weight_scan is None


def test_read_in_bounded_chunks_from_the_member_in_place(files, monkeypatch):
    budget = 4096
    monkeypatch.setattr(scan_mod, "CHUNK_BYTES", budget)
    sizes = []
    feed = scan_mod._Reducer.feed

    def spy(self, chunk):
        sizes.append(chunk.nbytes)
        return feed(self, chunk)

    monkeypatch.setattr(scan_mod._Reducer, "feed", spy)
    opened = []
    real_open = zipfile.ZipFile.open

    def open_spy(self, name, *args, **kwargs):
        opened.append(getattr(name, "filename", name))
        return real_open(self, name, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", open_spy)
    report = modelaudit.audit(files["big.keras"], SCAN)
    ma108 = [f for f in report.findings if f.code == "MA108"]
    assert len(ma108) == 1 and "1 NaN" in ma108[0].message  # the very last value, in the last chunk
    kernel_bytes = 64 * 300 * 4
    assert sum(sizes) >= kernel_bytes and len(sizes) > kernel_bytes // budget
    assert max(sizes) <= budget
    assert "model.weights.h5" not in opened  # a byte range of the .keras file, never extracted


@pytest.mark.parametrize("shape", [(), (7,), (5, 3), (3, 4, 5), (2, 1000), (1, 1, 3000), (0, 4)])
@pytest.mark.parametrize("budget", [1, 16, 100, 4096])
def test_blocks_cover_the_array_once_within_budget(shape, budget):
    a = np.arange(int(np.prod(shape)) if shape else 1, dtype="float32").reshape(shape)
    seen = []
    for sel in scan_mod._blocks(shape, 4, budget):
        block = a[sel] if sel else a[()]
        block = np.asarray(block)
        if block.ndim and shape and min(shape) > 0:
            # a block is over budget only when a single element is
            assert block.nbytes <= max(budget, 4)
        seen.extend(np.ravel(block).tolist())
    assert seen == np.ravel(a).tolist()


def test_data_outside_the_file_is_never_read(files, tmp_path):
    """A kernel replaced by external storage pointing at a file full of NaN: not read, not reported."""
    import shutil

    import h5py

    path = tmp_path / "external.h5"
    shutil.copy(files["bad.h5"], path)
    outside = tmp_path / "outside.bin"
    np.full((3, 2), np.nan, dtype="float32").tofile(outside)
    with h5py.File(path, "r+") as h5:
        del h5["model_weights/out/out/kernel:0"]
        h5["model_weights/out/out"].create_dataset("kernel:0", shape=(3, 2), dtype="float32",
                                                   external=[(str(outside), 0, h5py.h5f.UNLIMITED)])
    report = modelaudit.audit(str(path), SCAN)
    facts = report.files[0].inferred.weight_scan.facts["model_weights/out/out/kernel:0"]
    assert facts.skipped and "external storage" in facts.skipped
    assert not [f for f in report.findings if f.code == "MA108" and f.layer == "out"]


def test_reducer_counts_and_zero():
    facts = scan_mod.WeightFacts("w", (6,), "float32")
    r = scan_mod._Reducer(facts)
    r.feed(np.array([0.0, -0.0, 0.0], dtype="float32"))
    r.finish()
    assert facts.all_zero and facts.nonfinite == 0
    facts = scan_mod.WeightFacts("w", (6,), "float16")
    r = scan_mod._Reducer(facts)
    for chunk in ([0, np.nan, np.inf], [np.nan, -np.inf, 1]):
        r.feed(np.array(chunk, dtype="float16"))
    r.finish()
    assert (facts.nan, facts.posinf, facts.neginf, facts.all_zero) == (2, 1, 1, False)
    facts = scan_mod.WeightFacts("w", (0,), "float32")
    scan_mod._Reducer(facts).finish()
    assert not facts.all_zero  # nothing stored is not "all zeros"


def test_npy_chunks_reads_raw_bytes_and_refuses_pickles(monkeypatch):
    monkeypatch.setattr(scan_mod, "CHUNK_BYTES", 40)
    buf = io.BytesIO()
    data = np.arange(101, dtype="float64")
    data[100] = np.inf
    np.save(buf, data)
    buf.seek(0)
    chunks = list(scan_mod.npy_chunks(buf))
    assert len(chunks) > 10 and all(c.nbytes <= 40 for c in chunks)
    assert np.concatenate(chunks).tolist()[:100] == list(range(100))
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    buf.seek(0)
    with pytest.raises(ValueError, match="never read"):
        list(scan_mod.npy_chunks(buf))


class FakeTTY(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_only_on_a_terminal_and_after_the_delay(monkeypatch):
    tty = FakeTTY()
    bar = scan_mod.Progress(tty, 100, "model.keras")
    bar.update(50)  # within the first second: nothing drawn
    assert tty.getvalue() == ""
    monkeypatch.setattr(scan_mod.Progress, "DELAY", 0.0)
    bar = scan_mod.Progress(tty, 100, "model.keras")
    bar.update(50)
    assert "scanning weights model.keras" in tty.getvalue() and "50%" in tty.getvalue()
    bar.close()
    assert tty.getvalue().endswith("\r\x1b[2K")  # the line is cleared for the report
    pipe = io.StringIO()  # not a terminal: never drawn
    bar = scan_mod.Progress(pipe, 100)
    bar.update(100)
    bar.close()
    assert pipe.getvalue() == ""


def test_cli_scan_weights(files):
    from typer.testing import CliRunner

    from modelaudit.cli import app

    result = CliRunner().invoke(app, ["check", "--scan-weights", "--format", "json", files["bad.keras"]])
    assert result.exit_code == 1
    import json

    found = {f["code"] for f in json.loads(result.stdout)["files"][0]["findings"]}
    assert {"MA108", "MA110"} <= found
    result = CliRunner().invoke(app, ["check", "--format", "json", files["bad.keras"]])
    found = {f["code"] for f in json.loads(result.stdout)["files"][0]["findings"]}
    assert not {"MA108", "MA110"} & found


def test_scan_weights_config_key(files, tmp_path):
    """`scan-weights = true` in the configuration does what the flag does; only a bool is taken."""
    import json

    from typer.testing import CliRunner

    from modelaudit.cli import app
    from modelaudit.errors import ConfigError

    on = tmp_path / "on.toml"
    on.write_text("scan-weights = true\n")
    result = CliRunner().invoke(app, ["check", "--config", str(on), "--format", "json", files["bad.keras"]])
    assert result.exit_code == 1
    found = {f["code"] for f in json.loads(result.stdout)["files"][0]["findings"]}
    assert {"MA108", "MA110"} <= found

    assert {"MA108", "MA110"} <= set(codes(modelaudit.audit(files["bad.keras"], {"scan-weights": True})))
    assert not {"MA108", "MA110"} & set(codes(modelaudit.audit(files["bad.keras"], {"scan-weights": False})))

    text = tmp_path / "text.toml"
    text.write_text('scan-weights = "false"\n')
    result = CliRunner().invoke(app, ["check", "--config", str(text), files["bad.keras"]])
    assert result.exit_code == 2 and "scan-weights must be true or false" in result.stderr
    with pytest.raises(ConfigError, match="scan-weights must be true or false"):
        modelaudit.audit(files["bad.keras"], {"scan-weights": 1})
