"""A team's own layer specs: `layer-specs` in [tool.modelaudit] and the `modelaudit.layers` entry point group.

The model is real: a custom Keras 3 layer with a weight of its own, saved by Keras. The spec module is
written in tmp_path, as a team would write it. Truth: Keras's count_params() and output shapes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import modelaudit

ROOT = Path(__file__).resolve().parents[1]

SPEC_MODULE = '''
"""Specs for acme's layers."""
from modelaudit.infer.registry import LayerSpec, WeightSpec, register


@register("acme_plugin_test>ChannelScale")
class ChannelScaleSpec(LayerSpec):
    # ChannelScale.build(): one trainable scale per input channel; the output keeps the input's shape
    def weights(self, config, input_shapes):
        return [WeightSpec("scale", (input_shapes[0][-1],))]
'''


@pytest.fixture(scope="module")
def custom_model(tmp_path_factory):
    import keras

    @keras.saving.register_keras_serializable(package="acme_plugin_test")
    class ChannelScale(keras.layers.Layer):
        def build(self, input_shape):
            self.scale = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="scale")

        def call(self, x):
            return x * self.scale

    folder = tmp_path_factory.mktemp("plugins")
    model = keras.Sequential([
        keras.Input((6,)), keras.layers.Dense(5, name="dense"), ChannelScale(name="scale"),
        keras.layers.Dense(2, name="head"),
    ])
    model.compile(optimizer="adam", loss="mse")
    path = folder / "acme.keras"
    model.save(path)
    layer = model.get_layer("scale")
    truth = {"params": layer.count_params(), "output": tuple(layer.output.shape), "total": model.count_params()}
    (folder / "acme_specs.py").write_text(SPEC_MODULE)
    (folder / "acme_broken.py").write_text("raise RuntimeError('acme specs need ACME_HOME set')\n")
    return folder, path, truth


def run_cli(*args, cwd: Path, pythonpath: Path):
    env = dict(os.environ, NO_COLOR="1", PYTHONPATH=os.pathsep.join([str(pythonpath), str(ROOT)]))
    proc = subprocess.run([sys.executable, "-m", "modelaudit", *args], capture_output=True, text=True,
                          timeout=120, cwd=cwd, env=env)
    return proc.returncode, proc.stdout, proc.stderr


def _pyproject(folder: Path, body: str) -> Path:
    project = folder / "project"
    project.mkdir(exist_ok=True)
    (project / "pyproject.toml").write_text("[tool.modelaudit]\n" + textwrap.dedent(body))
    return project


def _ma107(stdout: str) -> list:
    return [f for f in json.loads(stdout)["files"][0]["findings"] if f["code"] == "MA107"]


def test_without_the_plugin_the_custom_layer_is_not_recomputed(custom_model):
    folder, path, _ = custom_model
    project = _pyproject(folder, "select = ['ALL']\n")
    code, out, err = run_cli("check", "--format", "json", str(path), cwd=project, pythonpath=folder)
    assert [f["layer"] for f in _ma107(out)] == ["scale"], err


def test_configured_spec_module_recomputes_it_and_the_model_is_clean(custom_model):
    folder, path, truth = custom_model
    project = _pyproject(folder, "layer-specs = ['acme_specs']\n")
    code, out, err = run_cli("check", "--format", "json", str(path), cwd=project, pythonpath=folder)
    assert code == 0, (out, err)
    report = json.loads(out)["files"][0]
    assert not _ma107(out)
    assert [f for f in report["findings"] if f["severity"] in ("error", "warning")] == []
    assert report["stats"]["total_params"] == truth["total"]
    code, out, err = run_cli("summary", "--format", "json", str(path), cwd=project, pythonpath=folder)
    row = next(r for r in json.loads(out)["layers"] if r["path"] == "scale")
    assert row["recomputed"] and row["params"] == truth["params"] == row["stored_params"]
    assert tuple(row["output_shapes"][0]) == truth["output"]


def test_the_python_api_takes_the_key_too(custom_model, monkeypatch):
    folder, path, truth = custom_model
    monkeypatch.syspath_prepend(str(folder))
    report = modelaudit.audit(str(path), config={"layer-specs": ["acme_specs"]})
    assert not [f for f in report.findings if f.code == "MA107"]
    assert report.files[0].stats["total_params"] == truth["total"]


@pytest.mark.parametrize("module,reason", [
    ("acme_missing", "cannot import 'acme_missing': ModuleNotFoundError"),
    ("acme_broken", "cannot import 'acme_broken': RuntimeError: acme specs need ACME_HOME set"),
])
def test_a_module_that_fails_to_import_is_a_one_line_config_error(custom_model, module, reason):
    folder, path, _ = custom_model
    project = _pyproject(folder, f"layer-specs = ['{module}']\n")
    code, out, err = run_cli("check", str(path), cwd=project, pythonpath=folder)
    assert code == 2
    assert reason in err and "layer-specs" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("value,reason", [
    ("[1]", "layer-specs must be a list of module names"),
    ("['../evil']", "'../evil' is not a module name"),
])
def test_the_key_takes_module_names_only(custom_model, value, reason):
    folder, path, _ = custom_model
    project = _pyproject(folder, f"layer-specs = {value}\n")
    code, out, err = run_cli("check", str(path), cwd=project, pythonpath=folder)
    assert code == 2 and reason in err, err


def test_an_installed_entry_point_registers_specs(custom_model, tmp_path):
    folder, path, truth = custom_model
    # an installed distribution, as pip leaves it: its dist-info declares the entry point
    dist = tmp_path / "acme_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[modelaudit.layers]\nacme = acme_specs\n")
    (tmp_path / "acme_specs.py").write_text(SPEC_MODULE)
    code, out, err = run_cli("check", "--format", "json", str(path), cwd=tmp_path, pythonpath=tmp_path)
    assert code == 0 and not _ma107(out), (out, err)
    assert json.loads(out)["files"][0]["stats"]["total_params"] == truth["total"]
