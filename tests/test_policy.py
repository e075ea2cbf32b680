"""MA501-MA507, the team policy: one declarative case per situation — a real model built with Keras,
the [tool.modelaudit.policy] table, the (code, layer) findings expected — run through one test."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import modelaudit
from modelaudit.cli import app
from modelaudit.engine import all_rules
from tests import integration_models as im

POLICY_CODES = [f"MA50{i}" for i in range(1, 8)]


def classifier(keras):
    return im.classifier()  # Input (8,) "features" -> Dense(4) "hidden" -> Dense(3, softmax) "probs": 51 params


def uncompiled(keras):
    return keras.Sequential([keras.Input((8,)), keras.layers.Dense(1, activation="sigmoid")])


def nested_dropout(keras):
    inner = keras.Sequential([keras.Input((8,)), keras.layers.Dropout(0.2, name="drop"), keras.layers.Dense(4)],
                             name="inner")
    x = keras.Input((8,), name="x")
    return keras.Model(x, keras.layers.Dense(2, activation="softmax", name="out")(inner(x)))


def softmax_then_dropout(keras):
    return keras.Sequential([keras.Input((8,)), keras.layers.Dense(3, activation="softmax", name="head"),
                             keras.layers.Dropout(0.1, name="drop")])


def mixed_precision_head(keras):
    return keras.Sequential([keras.Input((8,)), keras.layers.Dense(3, activation="softmax", name="head",
                                                                   dtype="mixed_float16")])


def two_in_two_out(keras):
    a, b = keras.Input((8,), name="a"), keras.Input((8,), name="b", dtype="int32")
    x = keras.layers.Concatenate()([a, keras.layers.Identity()(b)])
    label = keras.layers.Dense(1, activation="sigmoid", name="label")(x)
    kind = keras.layers.Dense(4, activation="softmax", name="kind")(x)
    return keras.Model([a, b], {"label": label, "kind": kind})


def variable_length(keras):
    return keras.Sequential([keras.Input((None, 4), name="tokens"), keras.layers.GlobalAveragePooling1D(),
                             keras.layers.Dense(2)])


def keras2_without_input(keras):
    import tf_keras

    return tf_keras.Sequential([tf_keras.layers.Dense(3, input_shape=(8,), name="dense")])


CASES = {
    # MA501 max-params
    "params over": (classifier, {"max-params": 50}, [("MA501", None)]),
    "params at the limit": (classifier, {"max-params": 51}, []),
    # MA502 forbidden-layer, at any depth
    "forbidden nested": (nested_dropout, {"forbid-layers": ["Dropout"]}, [("MA502", "inner/drop")]),
    "forbidden absent": (classifier, {"forbid-layers": ["Lambda", "Dropout"]}, []),
    # MA503 input-contract
    "input shape": (classifier, {"inputs": [{"shape": [16]}]}, [("MA503", "features")]),
    "input dtype": (classifier, {"inputs": [{"shape": [8], "dtype": "int32"}]}, [("MA503", "features")]),
    "input batch-shape with any": (classifier, {"inputs": [{"batch-shape": ["*", 8], "dtype": "float32"}]}, []),
    "input left unknown": (variable_length, {"inputs": {"tokens": {"shape": ["None", 4]}}}, []),
    "input must be open": (variable_length, {"inputs": [{"shape": [128, 4]}]}, [("MA503", "tokens")]),
    "input count": (two_in_two_out, {"inputs": [{"shape": [8]}]}, [("MA503", None)]),
    "input by name": (two_in_two_out, {"inputs": {"b": {"dtype": "float32"}, "c": {"shape": [1]}}},
                      [("MA503", "b"), ("MA503", None)]),
    "input by name in a list": (two_in_two_out, {"inputs": [{"name": "b", "dtype": "float32"}]}, [("MA503", "b")]),
    "keras 2 input": (keras2_without_input, {"inputs": [{"shape": [8], "dtype": "float32"}]}, []),
    # MA504 output-contract
    "output ok": (classifier, {"outputs": [{"shape": [3], "activation": "softmax", "dtype": "float32"}]}, []),
    "output logits expected": (softmax_then_dropout, {"outputs": [{"activation": "linear"}]}, [("MA504", "head")]),
    "output shape": (softmax_then_dropout, {"outputs": [{"batch-shape": ["None", 4]}]}, [("MA504", "drop")]),
    "output float16": (mixed_precision_head, {"outputs": [{"dtype": "float32"}]}, [("MA504", "head")]),
    "output by name": (two_in_two_out, {"outputs": {"kind": {"shape": [4], "activation": "softmax"},
                                                    "label": {"activation": "softmax"}}}, [("MA504", "label")]),
    "output unknown activation": (nested_dropout, {"outputs": [{"activation": "softmax"}]}, []),
    # MA505 max-file-size
    "file over": (classifier, {"max-file-mb": 0.001}, [("MA505", None)]),
    "file under": (classifier, {"max-file-mb": 10}, []),
    # MA506 require-compiled
    "not compiled": (uncompiled, {"require-compiled": True}, [("MA506", None)]),
    "compiled": (classifier, {"require-compiled": True}, []),
    "not required": (uncompiled, {"require-compiled": False}, []),
    # MA507 max-layers (rows as `modelaudit summary` lists them: a Sequential's Input is not one)
    "layers over": (classifier, {"max-layers": 1}, [("MA507", None)]),
    "layers at the limit": (classifier, {"max-layers": 2}, []),
}


def _save(model, folder) -> str:
    import keras

    if type(model).__module__.startswith("tf_keras"):
        path = str(folder / "model.h5")
        model.save(path, save_format="h5")
    else:
        path = str(folder / "model.keras")
        keras.saving.save_model(model, path)
    return path


@pytest.mark.parametrize("name", list(CASES))
def test_policy(name, tmp_path):
    import keras

    build, policy, expected = CASES[name]
    path = _save(build(keras), tmp_path)
    report = modelaudit.audit(path, {"select": ["MA5"], "policy": policy})
    assert not report.unreadable, report.files[0].error or report.files[0].internal_errors
    found = sorted(((f.code, f.layer) for f in report.findings), key=str)
    assert found == sorted(expected, key=str), [f.message for f in report.findings]


def test_messages_say_what_and_what_the_policy_wants(tmp_path):
    import keras

    path = _save(softmax_then_dropout(keras), tmp_path)
    report = modelaudit.audit(path, {"policy": {"outputs": [{"shape": [4], "activation": "linear"}],
                                                "max-params": 10}})
    messages = {f.code + ":" + (f.layer or "-"): f.message for f in report.findings if f.code.startswith("MA5")}
    assert messages == {
        "MA501:-": "the model has 27 params (27 trainable), above the policy's max-params of 10",
        "MA504:drop": "output 'drop' has shape (None, 3); the policy requires (4,) per sample",
        "MA504:head": "output 'drop' comes out of a softmax activation (applied by 'head'); the policy "
                      "requires linear (logits)",
    }


def test_off_until_configured(tmp_path):
    path = im.save_classifier(tmp_path / "m.keras")
    rules = all_rules()
    assert all(not rules[code].default_enabled for code in POLICY_CODES)
    assert not [f for f in modelaudit.audit(path).findings if f.code.startswith("MA5")]
    selected = modelaudit.audit(path, {"select": ["MA5"]})  # selected but unconfigured: nothing to hold to
    assert selected.findings == [] and not selected.unreadable
    configured = modelaudit.audit(path, {"policy": {"max-params": 1}})  # configuring one enables that one
    assert [f.code for f in configured.findings if f.code.startswith("MA5")] == ["MA501"]


def test_live_model_policy_without_a_file(tmp_path):
    """An in-memory model has no file size (MA505 stays quiet) but is held to the rest."""
    model = im.classifier()
    report = modelaudit.audit(model, {"select": ["MA5"], "policy": {"max-file-mb": 0.001, "max-params": 10}})
    assert [f.code for f in report.findings] == ["MA501"]


def test_policy_from_pyproject_through_the_cli(tmp_path, monkeypatch):
    path = im.save_classifier(tmp_path / "m.keras")
    (tmp_path / "pyproject.toml").write_text(
        "[tool.modelaudit.policy]\nforbid-layers = [\"Dense\"]\nmax-params = 1_000\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["check", path, "--select", "MA5", "--format", "concise"])
    assert result.exit_code == 1
    assert "m.keras: hidden: MA502 [error] Dense 'hidden': the policy forbids Dense layers" in result.stdout
    assert "MA501" not in result.stdout
    rows = json.loads(CliRunner().invoke(app, ["rules", "--format", "json"]).stdout)
    assert {r["code"]: r["default"] for r in rows if r["code"] in POLICY_CODES} == dict.fromkeys(POLICY_CODES, "off")
    page = CliRunner().invoke(app, ["explain", "max-params"])
    assert page.exit_code == 0 and page.stdout.startswith("# MA501 max-params (error)")
