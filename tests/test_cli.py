"""The command line contract (DESIGN.md): commands, JSON shapes, exit codes."""

from __future__ import annotations

import json
import os
import sys

import pytest
from typer.testing import CliRunner

from modelaudit.cli import app


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def textbook(samples_dir):
    return os.path.join(samples_dir, "conv2d_textbook.keras")


def test_summary_json_textbook_against_keras_and_by_hand(textbook):
    """Conv2D(32, (5,5)) on 28x28x1: 5·5·1·32 + 32 = 832 params, output 24x24x32 — checked against
    Keras's own count_params() and output shape, and against the arithmetic done here."""
    import keras

    result = run("summary", textbook, "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["schema_version"] == 1
    assert doc["format"] == "keras-v3"
    assert doc["model"] == {"name": "conv2d_textbook", "class": "Sequential"}
    conv = next(row for row in doc["layers"] if row["class"] == "Conv2D")
    keras_conv = keras.layers.Conv2D(32, (5, 5), padding="valid")
    out = keras_conv(keras.Input((28, 28, 1)))
    assert conv["params"] == keras_conv.count_params() == 5 * 5 * 1 * 32 + 32
    assert conv["output_shapes"] == [list(out.shape)] == [[None, 24, 24, 32]]
    assert conv["macs"] == 5 * 5 * 1 * 32 * 24 * 24
    assert conv["stored_params"] == 832
    assert conv["recomputed"] is True
    assert conv["trainable_params"] == 832 and conv["non_trainable_params"] == 0
    assert conv["depth"] == 0 and conv["inbound"]
    assert set(conv) >= {"path", "class", "depth", "inbound", "output_shapes", "params", "trainable_params",
                         "non_trainable_params", "stored_params", "macs", "recomputed"}
    assert doc["total_params"] == sum(row["params"] for row in doc["layers"])
    assert doc["trainable_params"] + doc["non_trainable_params"] == doc["total_params"]


def test_summary_text_looks_like_keras(textbook):
    result = run("summary", textbook, "--formulas")
    assert result.exit_code == 0
    assert "Layer (type)" in result.output and "Output Shape" in result.output and "Param #" in result.output
    assert "conv2d (Conv2D)" in result.output
    assert "(None, 24, 24, 32)" in result.output
    assert "(5·5·1 + 1)·32 = 832" in result.output
    assert "Total params: 1,162" in result.output  # 832 + (32 + 1)·10


def test_summary_functional_shows_connections_and_nesting(samples_dir, monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")  # wide enough for the table as it is (tests/test_text_layout.py: narrower)
    result = run("summary", os.path.join(samples_dir, "multi_input_functional.keras"))
    assert result.exit_code == 0
    assert "Connected to" in result.output
    assert "shared_encoder[0][0], shared_encoder[1][0]" in result.output
    assert "└ " in result.output  # the nested Sequential's layer hangs under it


def test_summary_markdown(textbook):
    result = run("summary", textbook, "--format", "markdown")
    assert result.exit_code == 0
    assert "| Layer (type)" in result.output and "| conv2d (Conv2D)" in result.output


def test_check_json_schema(samples_dir):
    result = run("check", samples_dir, "--format", "json")
    doc = json.loads(result.output)
    assert doc["schema_version"] == 1
    assert doc["tool"]["name"] == "modelaudit"
    assert set(doc["counts"]) == {"error", "warning", "info"}
    paths = sorted(os.path.basename(f["path"]) for f in doc["files"])
    assert "conv2d_textbook.keras" in paths and "mnist_classifier_keras2.h5" in paths
    for f in doc["files"]:
        assert f["format"] in ("keras-v3", "keras-h5", "json-config")
        assert f["error"] is None
        assert set(f["stats"]) == {"layers", "total_params", "trainable_params", "non_trainable_params"}
        for finding in f["findings"]:
            assert set(finding) == {"code", "name", "severity", "layer", "message", "fix", "url"}
    textbook = next(f for f in doc["files"] if f["path"].endswith("conv2d_textbook.keras"))
    assert textbook["stats"] == {"layers": 3, "total_params": 1162, "trainable_params": 1162, "non_trainable_params": 0}


def test_exit_codes(samples_dir, tmp_path):
    good = os.path.join(samples_dir, "mnist_classifier.keras")
    assert run("check", good).exit_code == 0
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    result = run("check", str(broken), good)
    assert result.exit_code == 2
    assert f"{broken}: cannot read: " in result.stderr
    assert "1 file checked, 1 unreadable" in result.stdout  # the good one was still checked
    assert run("check").exit_code == 2  # no paths
    assert run("check", good, "--select", "MA999").exit_code == 2
    assert run("check", good, "--format", "xml").exit_code == 2
    assert run("check", good, "--fail-on", "sometimes").exit_code == 2


def test_fail_on_and_exit_zero(tmp_path):
    """An info finding fails the run only with --fail-on info; --exit-zero turns 1 into 0."""
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    path = tmp_path / "uncompiled.json"
    path.write_text(model.to_json())
    # MA107 is info: make one by renaming the class
    cfg = json.loads(path.read_text())
    cfg["config"]["layers"][1]["class_name"] = "MyDense"
    path.write_text(json.dumps(cfg))
    result = run("check", path, "--select", "MA107")
    assert result.exit_code == 0 and "MA107" not in result.stdout
    assert "1 info (hidden; --show-info)" in result.stdout
    shown = run("check", path, "--select", "MA107", "--show-info")
    assert "MA107 [info]" in shown.stdout
    assert run("check", path, "--select", "MA107", "--fail-on", "info").exit_code == 1
    assert run("check", path, "--select", "MA107", "--fail-on", "info", "--exit-zero").exit_code == 0


def test_output_file(samples_dir, tmp_path):
    out = tmp_path / "report.json"
    result = run("check", os.path.join(samples_dir, "mnist_classifier.keras"), "--format", "json", "--output", out)
    assert result.exit_code == 0
    assert result.stdout == ""
    assert json.loads(out.read_text())["files"][0]["error"] is None
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_rules_list():
    result = run("rules")
    assert result.exit_code == 0
    assert "MA101" in result.output and "weight-shape-mismatch" in result.output
    rows = json.loads(run("rules", "--format", "json").output)
    assert {"code": "MA104", "name": "recorded-shape-mismatch", "severity": "error"}.items() <= next(
        r for r in rows if r["code"] == "MA104").items()


def test_folder_without_models(tmp_path):
    (tmp_path / "notes.txt").write_text("nothing here")
    result = run("check", tmp_path)
    assert result.exit_code == 2
    assert f"{tmp_path}: cannot read: no model files" in result.stderr


def test_install_pulls_no_tensorflow():
    """`pip install .` alone must not bring TensorFlow: it is only in the keras and test extras."""
    from importlib.metadata import requires

    from packaging.requirements import Requirement

    base = [Requirement(r) for r in requires("keras-modelaudit") if "extra ==" not in r]
    here = {r.name.lower() for r in base if r.marker is None or r.marker.evaluate({"extra": ""})}
    assert here == ({"typer", "tabulate", "h5py", "numpy"} | ({"tomli"} if sys.version_info < (3, 11) else set()))
    # tomli only where tomllib is missing
    assert [str(r.marker) for r in base if r.name == "tomli"] == ['python_version < "3.11"']
