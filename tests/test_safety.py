"""Nothing in a model file is ever executed, and the read path never imports Keras (DESIGN principle 1);
`--help` and `rules` import neither numpy nor h5py (principle 5).

Real models are saved with a Lambda whose function creates a marker file when it runs, and with a layer
naming a module that creates a marker when imported. `modelaudit check` and `summary` run on them in a
fresh interpreter that reports, afterwards, which heavy modules it imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("keras", "tensorflow", "tf_keras", "jax", "torch")

# Runs the CLI as `modelaudit ARGS...` would, then prints the heavy modules it imported on a last line.
WRAPPER = r"""
import json, sys
sys.argv = ["modelaudit"] + sys.argv[1:]
code = 0
try:
    from modelaudit.cli import main
    main()
except SystemExit as exc:
    code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
# pydantic: typer 0.29 imports it to coerce values (0.1 s a run); the pinned typer range does not
watched = ("keras", "tensorflow", "tf_keras", "jax", "torch", "numpy", "h5py", "pydantic", "evil_module")
loaded = sorted(m for m in sys.modules if m.split(".")[0] in watched)
sys.stdout.write("\n@@MODULES@@" + json.dumps(loaded) + "\n")
sys.stdout.flush()
sys.exit(code)
"""


def run_cli(*args: str, cwd: Path = ROOT, extra_path: Path | None = None):
    """(exit code, stdout without the last line, stderr, imported modules) of `modelaudit ARGS`."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", NO_COLOR="1")
    if extra_path is not None:  # a folder where a module named by the file could be found and imported
        env["PYTHONPATH"] = os.pathsep.join([str(extra_path), str(ROOT), env.get("PYTHONPATH", "")])
    else:
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, "-c", WRAPPER, *args], capture_output=True, text=True, timeout=60, cwd=cwd, env=env,
    )
    out, sep, modules = proc.stdout.rpartition("\n@@MODULES@@")
    assert sep, f"the wrapper did not finish: {proc.stdout}\n{proc.stderr}"
    return proc.returncode, out, proc.stderr, json.loads(modules)


def heavy(modules: list[str]) -> list[str]:
    return [m for m in modules if m.split(".")[0] in HEAVY]


@pytest.fixture(scope="module")
def lambda_models(tmp_path_factory):
    """A Keras 3 .keras and a tf_keras .h5, each with a Lambda that creates MARKER if it is ever run."""
    d = tmp_path_factory.mktemp("lambda")
    marker = d / "LAMBDA_WAS_EXECUTED"
    # The path is a constant in the lambda's own code, so the saved bytecode alone creates the file.
    source = f"lambda x: (open({str(marker)!r}, 'w').close(), x)[1]"

    import keras

    fn = eval(source)
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3), keras.layers.Lambda(fn, name="side_effect"), keras.layers.Dense(2)],
        name="lambda_model",
    )
    model.compile(optimizer="adam", loss="mse")
    assert marker.exists(), "Keras traces the lambda when building: the marker proves the lambda works"
    v3 = d / "lambda_model.keras"
    model.save(v3)

    import tf_keras

    fn2 = eval(source)
    model2 = tf_keras.Sequential(
        [tf_keras.layers.Dense(3, input_shape=(4,)), tf_keras.layers.Lambda(fn2, name="side_effect"),
         tf_keras.layers.Dense(2)],
        name="lambda_model_keras2",
    )
    model2.compile(optimizer="adam", loss="mse")
    h5 = d / "lambda_model_keras2.h5"
    model2.save(h5, save_format="h5")

    # Positive control: the files themselves carry code that runs when Keras loads them.
    marker.unlink()
    keras.saving.load_model(v3, safe_mode=False)
    assert marker.exists(), "loading the .keras with Keras runs the lambda"
    marker.unlink()
    tf_keras.models.load_model(h5)
    assert marker.exists(), "loading the .h5 with tf_keras runs the lambda"
    marker.unlink()
    return {"marker": marker, "keras": v3, "h5": h5}


@pytest.fixture(scope="module")
def module_named(tmp_path_factory, lambda_models):
    """A .keras whose layer names a module (on PYTHONPATH) that creates MARKER if it is imported."""
    d = tmp_path_factory.mktemp("module")
    marker = d / "MODULE_WAS_IMPORTED"
    (d / "evil_module.py").write_text(
        f"open({str(marker)!r}, 'w').close()\n\nclass Evil:\n    pass\n", encoding="utf-8"
    )
    src = lambda_models["keras"]
    dst = d / "custom_module.keras"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == "config.json":
                cfg = json.loads(data)
                for layer in cfg["config"]["layers"]:
                    if layer["class_name"] == "Lambda":
                        layer.update(module="evil_module", class_name="Evil", registered_name="evil_module>Evil")
                cfg["module"] = "evil_module"
                data = json.dumps(cfg).encode()
            new = zipfile.ZipInfo(info.filename, date_time=info.date_time)
            new.compress_type = info.compress_type
            zout.writestr(new, data)
    return {"marker": marker, "path": dst, "folder": d}


@pytest.mark.parametrize("kind", ["keras", "h5"])
@pytest.mark.parametrize(
    "command", [("check",), ("check", "--scan-weights", "--format", "json"), ("summary",), ("summary", "--format", "json")],
    ids=["check", "check-scan-weights-json", "summary", "summary-json"],
)
def test_lambda_is_never_executed(lambda_models, kind, command, tmp_path):
    marker = lambda_models["marker"]
    assert not marker.exists()
    code, out, err, modules = run_cli(*command, str(lambda_models[kind]), cwd=tmp_path)
    assert not marker.exists(), "the Lambda in the file was executed"
    assert heavy(modules) == [], f"the read path imported {heavy(modules)}"
    if "--scan-weights" in command:
        assert "h5py" in modules, "positive control: the wrapper sees what the run imported (weights via h5py)"
    else:  # a .keras's weights tree and a legacy .h5 are read by formats/h5meta.py, without h5py or numpy
        assert "h5py" not in modules and "numpy" not in modules, modules
    assert "Traceback" not in err
    assert "cannot read" not in err, err  # read and audited, not refused
    if command[0] == "summary":
        assert code == 0, err
        assert "side_effect" in out
    else:
        assert code in (0, 1), err
    if "json" in command:
        data = json.loads(out)
        if command[0] == "check":
            assert data["files"][0]["error"] is None
            assert data["files"][0]["stats"]["total_params"] == 4 * 3 + 3 + 3 * 2 + 2
        else:
            assert data["total_params"] == 4 * 3 + 3 + 3 * 2 + 2


@pytest.mark.parametrize("command", ["check", "summary"])
def test_a_module_named_in_the_config_is_never_imported(module_named, command):
    marker = module_named["marker"]
    # cwd and PYTHONPATH both hold evil_module.py: importing it by name would succeed.
    code, out, err, modules = run_cli(command, str(module_named["path"]), cwd=module_named["folder"],
                                      extra_path=module_named["folder"])
    assert not marker.exists(), "a module named in the file was imported"
    assert "evil_module" not in modules
    assert heavy(modules) == []
    assert "Traceback" not in err
    assert code in (0, 1) if command == "check" else code == 0, err


def test_files_are_not_changed_by_a_lambda_audit(lambda_models, tmp_path):
    import hashlib

    paths = [lambda_models["keras"], lambda_models["h5"]]
    before = [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]
    code, _, err, _ = run_cli("check", "--scan-weights", *map(str, paths), cwd=tmp_path)
    assert code in (0, 1), err
    assert [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths] == before
    assert list(tmp_path.iterdir()) == []  # nothing extracted or written where it ran


@pytest.mark.parametrize(
    "args", [("--help",), ("check", "--help"), ("summary", "--help"), ("rules",), ("rules", "--format", "json"),
             ("explain", "MA101")],
    ids=["help", "check-help", "summary-help", "rules", "rules-json", "explain"],
)
def test_fast_start_imports_no_numpy_or_h5py(args, tmp_path):
    code, out, err, modules = run_cli(*args, cwd=tmp_path)
    assert code == 0, err
    assert out.strip()
    assert "Traceback" not in err
    loaded = sorted({m.split(".")[0] for m in modules})
    assert loaded == [], f"`modelaudit {' '.join(args)}` imported {loaded}"
