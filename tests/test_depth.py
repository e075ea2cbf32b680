"""Models nested deep (issue 14 item 5): read, recomputed and audited at any depth Keras loads, without
recursion limits; refused, in one line, only far beyond.

Keras 3 saves and loads a model nested 350 levels deep and fails near 420 (it raises Python's recursion
limit to 3,000 and recurses a few frames a level); modelaudit's bound is MAX_MODEL_DEPTH (1,024).
The files: real models nested 40 levels, saved by Keras 3 (.keras) and tf_keras (.h5), and copies of the
.keras edited the way an attacker would nest it deeper: each wrap a Sequential holding the model, the
weights moved under `layers/<name>/` as Keras names them. The truth is Keras's own count_params() and
trainable_weights (wrapping adds no weight).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

import modelaudit
from modelaudit.formats.json_config import MAX_MODEL_DEPTH

LEVELS = 40
ROOT = Path(__file__).resolve().parents[1]


def _nested(layers, depth: int):
    """A model nested `depth` levels: Functional and Sequential in turn, a Dense every fourth level, one
    nested model frozen (non-trainable weights at depth)."""
    model = layers.Sequential([layers.Input((4,)), layers.Dense(4, name="d0")], name="m0")
    for i in range(1, depth):
        inp = layers.Input((model.output_shape[-1],))
        if i % 2:
            out = model(inp)
            if i % 4 == 1:
                out = layers.Dense(4, name=f"d{i}")(out)
            model = layers.Model(inp, out, name=f"m{i}")
        else:
            model = layers.Sequential([inp, model], name=f"m{i}")
        if i == 10:
            model.trainable = False
    return model


class _Keras3:
    def __init__(self):
        import keras

        self.Sequential, self.Model, self.Input = keras.Sequential, keras.Model, keras.Input
        self.Dense = keras.layers.Dense


class _TfKeras:
    def __init__(self):
        import tf_keras

        self.Sequential, self.Model, self.Input = tf_keras.Sequential, tf_keras.Model, tf_keras.Input
        self.Dense = tf_keras.layers.Dense


def _truth(model) -> tuple:
    trainable = sum(int(w.numpy().size) for w in model.trainable_weights)
    return model.count_params(), trainable


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("deep")
    k3 = _nested(_Keras3(), LEVELS)
    k3_path = str(out / "deep.keras")
    k3.save(k3_path)
    k2 = _nested(_TfKeras(), LEVELS)
    k2_path = str(out / "deep.h5")
    k2.save(k2_path, save_format="h5")
    return {"dir": out, "keras": k3_path, "keras_truth": _truth(k3), "h5": k2_path, "h5_truth": _truth(k2),
            "top_class": json.loads(zipfile.ZipFile(k3_path).read("config.json"))["class_name"]}


def wrap(src: str, dst: str, levels: int) -> str:
    """The .keras at `src` nested `levels` more levels deep, as Keras would save it: each wrap a Sequential
    (InputLayer, the model), each wrapped model's weights under `layers/<snake class name>/`."""
    import h5py

    with zipfile.ZipFile(src) as z:
        members = {name: z.read(name) for name in z.namelist()}
    node = json.loads(members["config.json"])
    classes = []  # the class of each wrapped model, innermost first
    for i in range(levels):
        classes.append(node["class_name"])
        node = {
            "module": "keras", "class_name": "Sequential", "registered_name": None,
            "config": {"name": f"w{i}", "trainable": True, "layers": [
                {"module": "keras.layers", "class_name": "InputLayer", "registered_name": None,
                 "config": {"batch_shape": [None, 4], "dtype": "float32", "sparse": False, "ragged": False,
                            "name": f"w{i}_input", "optional": False}},
                node]},
            "build_config": {"input_shape": [None, 4]},
        }
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 4 * levels + 1000))  # json.dumps recurses once a JSON level
    try:
        config = json.dumps(node).encode()
    finally:
        sys.setrecursionlimit(limit)
    old, new = dst + ".old.h5", dst + ".new.h5"
    Path(old).write_bytes(members["model.weights.h5"])
    with h5py.File(old, "r") as src_h5, h5py.File(new, "w") as out:
        group = out
        for i in reversed(range(levels)):  # the outermost wrap first
            group.create_group("vars").attrs["name"] = f"w{i}"
            group = group.create_group("layers").create_group(classes[i].lower())
        for key in src_h5:
            src_h5.copy(src_h5[key], group, name=key)
    members["config.json"], members["model.weights.h5"] = config, Path(new).read_bytes()
    with zipfile.ZipFile(dst, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return dst


def _audited(path: str):
    fr = modelaudit.audit(path).files[0]
    assert fr.error is None, fr.error
    assert not fr.internal_errors, fr.internal_errors
    return fr


def _deepest(fr) -> int:
    return max(row.depth for row in fr.inferred.rows)


@pytest.mark.parametrize("kind", ["keras", "h5"])
def test_real_deep_model_is_read_with_kerass_totals(saved, kind):
    fr = _audited(saved[kind])
    total, trainable = saved[f"{kind}_truth"]
    assert (fr.stats["total_params"], fr.stats["trainable_params"]) == (total, trainable)
    assert fr.stats["non_trainable_params"] == total - trainable > 0
    assert _deepest(fr) == LEVELS - 1  # the bottom Dense sits inside 39 nested models
    assert not [f for f in fr.findings if f.code.startswith("MA4") or f.severity.value == "error"]


def test_keras_loads_an_edited_deeper_copy_and_so_do_we(saved):
    """The edit is faithful: Keras itself loads a copy wrapped 30 levels more (70 in all), with the same
    count; we read it with the same totals."""
    import keras

    path = wrap(saved["keras"], str(saved["dir"] / "wrapped70.keras"), 30)
    assert keras.saving.load_model(path).count_params() == saved["keras_truth"][0]
    fr = _audited(path)
    assert (fr.stats["total_params"], fr.stats["trainable_params"]) == saved["keras_truth"]
    assert _deepest(fr) == LEVELS + 30 - 1


# Run in a fresh process: importing TensorFlow raises Python's recursion limit to 3,000, which would hide
# any recursion left in the readers, the recomputation, the rules or the reporters.
PROBE = """
import json, sys
import modelaudit
from modelaudit.report import markdown  # noqa: F401
assert sys.getrecursionlimit() == 1000, sys.getrecursionlimit()
fr = modelaudit.audit(sys.argv[1]).files[0]
print(json.dumps({"error": fr.error, "internal": fr.internal_errors, "stats": fr.stats,
                  "depth": max(r.depth for r in fr.inferred.rows),
                  "security": [f.code for f in fr.findings if f.code.startswith("MA4")]}))
"""


def test_far_deeper_than_keras_loads_is_still_audited(saved):
    """1,000 levels (Keras stops near 420): read, recomputed, checked and reported iteratively, at
    Python's default recursion limit, in every report format."""
    levels = 1000 - LEVELS
    path = wrap(saved["keras"], str(saved["dir"] / "wrapped1000.keras"), levels)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", PROBE, path], capture_output=True, text=True, env=env, timeout=120)
    took = time.perf_counter() - start
    assert done.returncode == 0, done.stderr[-2000:]
    got = json.loads(done.stdout)
    assert got["error"] is None and not got["internal"], got
    assert (got["stats"]["total_params"], got["stats"]["trainable_params"]) == saved["keras_truth"]
    assert got["depth"] == 1000 - 1
    assert got["security"] == []
    assert took < 30, took
    for command in (["check"], ["check", "--format", "json"], ["check", "--format", "sarif"],
                    ["check", "--format", "markdown"], ["summary", "--format", "text"], ["summary", "--format", "json"],
                    ["summary", "--format", "markdown"]):
        out = subprocess.run([sys.executable, "-m", "modelaudit.cli", *command, path], capture_output=True,
                             text=True, env=env, timeout=120)
        assert out.returncode in (0, 1) and "Traceback" not in out.stderr, (command, out.stderr[-2000:])
        assert "d0" in out.stdout or command[0] == "check", command


def test_refused_in_one_line_only_beyond_the_bound(saved):
    path = wrap(saved["keras"], str(saved["dir"] / "too-deep.keras"), MAX_MODEL_DEPTH + 1 - LEVELS + 1)
    fr = modelaudit.audit(path).files[0]
    assert fr.error is not None and f"nested deeper than {MAX_MODEL_DEPTH} levels" in fr.error, fr.error
    assert "\n" not in fr.error
