"""SavedModel folders, made by real tf_keras and Keras 3 here, read without TensorFlow: every layer's
params and output shapes against tf_keras's own, the stored variables attached through the object
graph, the TF 2.0-2.4 layout, Keras 3 exports as opaque models, damaged files, folder scans."""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import modelaudit
from modelaudit import formats
from modelaudit.api import recompute
from modelaudit.errors import ModelReadError
from modelaudit.formats import protowire
from modelaudit.infer import registry
from modelaudit.infer.propagate import propagate
from tests.differential.test_zoo import K2, Built, audit_problems, compare

import tensorflow as tf
import tf_keras


# ---- models: each takes tf_keras -------------------------------------------------------------------


def sequential_bn(k):
    L = k.layers
    model = k.Sequential([k.Input((10,)), L.Dense(8, activation="relu"), L.BatchNormalization(), L.Dropout(0.1),
                          L.Dense(3, activation="softmax")], name="seq_bn")
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model


def two_outputs(k):
    L = k.layers
    inp = k.Input((6,), name="features")
    x = L.Dense(16, activation="relu")(inp)
    cls = L.Dense(4, activation="softmax", name="cls")(x)
    reg = L.Dense(1, name="reg")(L.Concatenate()([x, inp]))
    model = k.Model(inp, [cls, reg], name="two_outputs")
    model.compile(loss={"cls": "sparse_categorical_crossentropy", "reg": "mse"}, optimizer="sgd")
    return model


def nested(k):
    L = k.layers
    inner = k.Sequential([k.Input((8,)), L.Dense(5), L.BatchNormalization()], name="inner_seq")
    i2 = k.Input((5,))
    inner_fn = k.Model(i2, L.Dense(2, name="inner_dense")(L.ReLU()(i2)), name="inner_fn")
    inp = k.Input((8,))
    x = inner(inp)
    frozen = L.Dense(5, trainable=False, name="frozen")(x)
    out = inner_fn(L.Add()([x, frozen]))
    return k.Model(inp, out, name="outer")


def tf_ops(k):
    L = k.layers
    inp = k.Input((6,))
    x = L.Dense(4)(inp)
    y = L.Dense(3)(x)
    return k.Model(inp, [tf.reshape(y, (-1, 3, 1)), x * 2.0], name="with_ops")


def conv_bn(k):
    L = k.layers
    inp = k.Input((12, 12, 3))
    norm = L.Normalization(name="norm")  # adapted: its node names each variable twice (mean, adapt_mean)
    norm.adapt(np.random.default_rng(0).random((8, 12, 12, 3), dtype="float32"))
    x = L.Conv2D(4, 3, use_bias=False)(norm(inp))
    x = L.BatchNormalization(name="bn")(x)
    x = L.BatchNormalization(trainable=False, name="frozen_bn")(x)
    x = L.GlobalAveragePooling2D()(x)
    return k.Model(inp, L.Dense(2)(x), name="conv_bn")


MODELS = {"sequential_bn": sequential_bn, "two_outputs": two_outputs, "nested": nested, "tf_ops": tf_ops,
          "conv_bn": conv_bn}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """{name: (tf_keras model, SavedModel folder)}, each model saved once with model.save(folder)."""
    folder = tmp_path_factory.mktemp("savedmodels")
    out = {}
    for name, builder in MODELS.items():
        model = builder(tf_keras)
        path = str(folder / name)
        model.save(path, save_format="tf")
        out[name] = (model, path)
    return out


def _sizes(variables) -> int:
    return sum(math.prod(int(d) for d in v.shape) for v in variables)


def _keras_leaf_layers(model, prefix=""):
    for layer in model.layers:
        path = f"{prefix}/{layer.name}" if prefix else layer.name
        if hasattr(layer, "layers"):
            yield from _keras_leaf_layers(layer, path)
        elif type(layer).__name__ != "InputLayer":
            yield path, layer


def _problems(name, model, graph):
    """compare()'s disagreements; without a TFOpLambda spec, those of the op layers (and of the model's
    outputs they make) are expected, and nothing else is."""
    problems = compare(Built(name, K2, model, {}), graph, "savedmodel")
    if registry.get("TFOpLambda") is None:
        ops = [layer.name for layer in model.layers if type(layer).__name__ == "TFOpLambda"]
        problems = [p for p in problems if not any(f"] {op}:" in p for op in ops) and "model output shapes" not in p]
    return problems


# ---- tf_keras SavedModels, layer by layer ---------------------------------------------------------


@pytest.mark.parametrize("name", list(MODELS))
def test_tf_keras_savedmodel_matches_keras(saved, name):
    model, path = saved[name]
    graph = formats.read(path)
    assert graph.format == "savedmodel" and not graph.opaque and graph.name == model.name
    problems = _problems(name, model, graph) + audit_problems(Built(name, K2, model, {}), path, "savedmodel")
    assert not problems, "\n".join(problems)
    # the stored variables, attached through the object graph: each layer's, in layer.weights order
    ours = {path: layer for path, layer, _ in graph.walk()}
    for lpath, layer in _keras_leaf_layers(model):
        stored = [(tuple(w.shape), w.dtype, w.trainable) for w in ours[lpath].weights]
        keras = [(tuple(v.shape), v.dtype.name, v.trainable) for v in layer.weights]
        assert stored == keras, f"{lpath}: stored {stored} != keras {keras}"
    inferred = propagate(graph)
    assert (inferred.total_params, inferred.trainable_params, inferred.non_trainable_params) == (
        model.count_params(), _sizes(model.trainable_weights), _sizes(model.non_trainable_weights))
    assert inferred.stored_params == model.count_params()


def test_tf_ops_read_and_the_rest_recomputed(saved):
    model, path = saved["tf_ops"]
    rows = {r.path: r for r in propagate(formats.read(path)).rows}
    ops = [layer.name for layer in model.layers if type(layer).__name__ == "TFOpLambda"]
    assert sorted(ops) == sorted(p for p, r in rows.items() if r.layer.class_name == "TFOpLambda") and len(ops) == 2
    assert all(r.recomputed for p, r in rows.items() if p not in ops)
    if registry.get("TFOpLambda") is not None:
        assert all(rows[op].recomputed for op in ops)


def test_compile_config_and_versions(saved):
    model, path = saved["two_outputs"]
    graph = formats.read(path)
    assert graph.objective.loss == {"cls": "sparse_categorical_crossentropy", "reg": "mse"}
    assert graph.objective.optimizer == type(model.optimizer).__name__
    assert graph.source.keras_version == tf_keras.__version__ and graph.source.backend == "tensorflow"
    assert list(graph.output_names) == model.output_names
    (sig,) = graph.source.signatures
    assert sig.name == "serving_default"
    assert [(k, d, s) for k, d, s in sig.inputs] == [("features", "float32", (None, 6))]
    assert sorted(s for _, _, s in sig.outputs) == sorted(tuple(t.shape.as_list()) for t in model.outputs)


def test_saved_model_pb_named_reads_its_folder(saved):
    model, path = saved["sequential_bn"]
    (fr,) = modelaudit.audit(os.path.join(path, "saved_model.pb")).files
    assert fr.error is None and fr.format == "savedmodel" and fr.stats["total_params"] == model.count_params()


def test_batch_normalization_moving_statistics_are_non_trainable(saved):
    model, path = saved["conv_bn"]
    bn = formats.read(path).layer("bn")
    assert [(w.path.rsplit("/", 1)[1], w.trainable) for w in bn.weights] == [
        (v.name.split("/")[-1].split(":")[0], v.trainable) for v in model.get_layer("bn").weights]
    inferred = propagate(formats.read(path))
    assert inferred.non_trainable_params == _sizes(model.non_trainable_weights) == 3 + 3 + 1 + 4 + 4 + 4 * 4


def test_variables_of_another_model_are_weight_mismatches(tmp_path):
    """variables/ copied from a model whose Dense has 5 units into one whose config says 4: tf_keras
    cannot load it, and the audit names the layer and both shapes (MA101)."""
    def build(units):
        return tf_keras.Sequential([tf_keras.Input((8,)), tf_keras.layers.Dense(units, name="hidden"),
                                    tf_keras.layers.Dense(2, name="out")])

    build(4).save(str(tmp_path / "four"), save_format="tf")
    build(5).save(str(tmp_path / "five"), save_format="tf")
    shutil.rmtree(tmp_path / "four" / "variables")
    shutil.copytree(tmp_path / "five" / "variables", tmp_path / "four" / "variables")
    with pytest.raises(Exception):
        tf_keras.models.load_model(str(tmp_path / "four"))
    report = modelaudit.audit(str(tmp_path / "four"))
    mismatches = sorted((f.layer, f.message.split(": stored weight ")[1].split(", but")[0]) for f in report.findings
                        if f.code == "MA101")
    assert mismatches == [("hidden", "layer_with_weights-0/bias has shape (5,)"),
                          ("hidden", "layer_with_weights-0/kernel has shape (8, 5)"),
                          ("out", "layer_with_weights-1/kernel has shape (5, 2)")]
    assert report.exit_code() == 1


# ---- TF 2.0-2.4: the Keras metadata inside saved_model.pb ------------------------------------------


def _legacy_copy(src: str, dst: str) -> str:
    """What TF 2.0-2.4 wrote: no keras_metadata.pb; each Keras object's JSON in its object graph node's
    user_object.metadata (TF's save.py then set SavedUserObject(metadata=obj._tracking_metadata))."""
    from tensorflow.core.protobuf import saved_model_pb2
    from tf_keras.protobuf import saved_metadata_pb2

    shutil.copytree(src, dst)
    saved_model = saved_model_pb2.SavedModel()
    with open(os.path.join(dst, "saved_model.pb"), "rb") as f:
        saved_model.ParseFromString(f.read())
    metadata = saved_metadata_pb2.SavedMetadata()
    with open(os.path.join(dst, "keras_metadata.pb"), "rb") as f:
        metadata.ParseFromString(f.read())
    nodes = saved_model.meta_graphs[0].object_graph_def.nodes
    for node in metadata.nodes:
        assert nodes[node.node_id].user_object.identifier == node.identifier
        nodes[node.node_id].user_object.metadata = node.metadata
    with open(os.path.join(dst, "saved_model.pb"), "wb") as f:
        f.write(saved_model.SerializeToString())
    os.remove(os.path.join(dst, "keras_metadata.pb"))
    return dst


def test_tf_2_4_layout(saved, tmp_path):
    model, path = saved["nested"]
    legacy = _legacy_copy(path, str(tmp_path / "legacy"))
    # tf_keras itself reads this layout back (load.py _read_legacy_metadata): the same model
    assert tf_keras.models.load_model(legacy).count_params() == model.count_params()
    graph = formats.read(legacy)
    assert graph.class_name == "Functional" and not graph.opaque
    problems = _problems("nested", model, graph) + audit_problems(Built("nested", K2, model, {}), legacy, "legacy")
    assert not problems, "\n".join(problems)


def test_tf_saved_model_save_of_a_tf_keras_model_is_opaque(saved, tmp_path):
    """tf.saved_model.save writes no Keras metadata (tf_keras cannot rebuild it either): its variables
    are audited, the model's own `variables` list, each once."""
    model, _ = saved["two_outputs"]
    path = str(tmp_path / "raw")
    tf.saved_model.save(model, path)
    graph = formats.read(path)
    assert graph.opaque and graph.format == "savedmodel"
    assert sorted(w.shape for w in graph.unassigned_weights) == sorted(tuple(v.shape) for v in model.weights)
    assert propagate(graph).total_params == model.count_params()


# ---- Keras 3 export and plain tf.Module: opaque -----------------------------------------------------


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    import keras

    L = keras.layers
    inp = keras.Input((9,))
    x = L.Dense(6, activation="relu")(inp)
    x = L.BatchNormalization()(x)
    x = L.Dropout(0.2)(x)  # its SeedGenerator state is a variable of the export, not a weight
    model = keras.Model(inp, L.Dense(2)(x))
    path = str(tmp_path_factory.mktemp("export") / "exported")
    model.export(path, verbose=False)
    return model, path


def test_keras3_export_is_opaque_with_keras_totals(exported):
    model, path = exported
    report = modelaudit.audit(path)
    (fr,) = report.files
    assert fr.error is None and fr.format == "savedmodel"
    graph, inferred = fr.inferred.graph, fr.inferred
    assert graph.opaque and graph.layers == ()
    (opaque,) = [f for f in fr.findings if f.code == "MA109"]
    assert "holds no Keras config" in opaque.message and f"({model.count_params()} params)" in opaque.message
    assert inferred.total_params == model.count_params()
    assert inferred.trainable_params == _sizes(model.trainable_weights)
    assert inferred.non_trainable_params == _sizes(model.non_trainable_weights) == 2 * 6
    assert sorted(w.shape for w in graph.unassigned_weights) == sorted(tuple(v.shape) for v in model.weights)
    assert {s.name for s in graph.source.signatures} == {"serve", "serving_default"}
    for sig in graph.source.signatures:
        assert [s for _, _, s in sig.inputs] == [tuple(model.inputs[0].shape)]
        assert [s for _, _, s in sig.outputs] == [tuple(model.outputs[0].shape)]
    # the summary shows them where a table would be
    from typer.testing import CliRunner

    from modelaudit.cli import app

    shown = CliRunner().invoke(app, ["summary", path]).output
    assert "Signature serving_default(" in shown and "float32 (None, 9)" in shown and "float32 (None, 2)" in shown
    listed = json.loads(CliRunner().invoke(app, ["summary", path, "--format", "json"]).stdout)["signatures"]
    assert {s["name"]: ([i["shape"] for i in s["inputs"]], [o["shape"] for o in s["outputs"]]) for s in listed} == {
        name: ([[None, 9]], [[None, 2]]) for name in ("serve", "serving_default")}


def test_plain_tf_module(tmp_path):
    class Scale(tf.Module):
        def __init__(self):
            self.w = tf.Variable(tf.ones((3, 4)))
            self.steps = tf.Variable(0, dtype=tf.int64, trainable=False)

        @tf.function(input_signature=[tf.TensorSpec((None, 3), tf.float32)])
        def __call__(self, x):
            return tf.matmul(x, self.w)

    module = Scale()
    tf.saved_model.save(module, str(tmp_path / "plain"))
    graph = formats.read(str(tmp_path / "plain"))
    assert graph.opaque
    assert sorted((w.shape, w.dtype, w.trainable) for w in graph.unassigned_weights) == sorted(
        (tuple(v.shape), v.dtype.name, v.trainable) for v in module.variables)
    inferred = propagate(graph)
    assert (inferred.total_params, inferred.trainable_params) == (13, 12)
    assert graph.source.signatures[0].inputs == (("x", "float32", (None, 3)),)


# ---- damaged folders: one line, exit 2 ----------------------------------------------------------------


DAMAGED = [(f, how) for f in ("saved_model.pb", "keras_metadata.pb", "variables/variables.index",
                              "variables/variables.data-00000-of-00001") for how in ("truncated", "garbage")]


def _damage(file: str, how: str) -> None:
    with open(file, "rb") as f:
        data = f.read()
    with open(file, "wb") as f:
        f.write(data[: len(data) * 2 // 3] if how == "truncated" else bytes(range(256)) * 4)


@pytest.mark.parametrize("member,how", DAMAGED, ids=[f"{m.replace('/', '-')}-{h}" for m, h in DAMAGED])
def test_damaged_file_is_one_line(saved, tmp_path, member, how):
    _, path = saved["sequential_bn"]
    copy = str(tmp_path / "damaged")
    shutil.copytree(path, copy)
    _damage(os.path.join(copy, member), how)
    if member.endswith("data-00000-of-00001") and how == "garbage":
        # a data shard is never parsed: garbage of its size is a valid model; shorter, it is truncated
        with open(os.path.join(copy, member), "wb") as f:
            f.write(b"\x00" * 10)
    report = modelaudit.audit(copy)
    (fr,) = report.files
    assert fr.error and "\n" not in fr.error and report.exit_code() == 2, fr.error
    with pytest.raises(ModelReadError):
        formats.read(copy)


def test_damaged_check_exits_2_with_one_line(saved, tmp_path):
    _, path = saved["two_outputs"]
    copy = str(tmp_path / "cut")
    shutil.copytree(path, copy)
    _damage(os.path.join(copy, "saved_model.pb"), "truncated")
    run = subprocess.run([sys.executable, "-c", "from modelaudit.cli import main; main()", "check", copy],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{copy}: cannot read: saved_model.pb is not a valid SavedModel")


def test_keras_metadata_cut_between_nodes_is_refused(saved, tmp_path):
    from tf_keras.protobuf import saved_metadata_pb2

    _, path = saved["nested"]
    copy = str(tmp_path / "short")
    shutil.copytree(path, copy)
    metadata = saved_metadata_pb2.SavedMetadata()
    with open(os.path.join(copy, "keras_metadata.pb"), "rb") as f:
        metadata.ParseFromString(f.read())
    del metadata.nodes[len(metadata.nodes) // 2:]  # still a valid message: only whole nodes are gone
    with open(os.path.join(copy, "keras_metadata.pb"), "wb") as f:
        f.write(metadata.SerializeToString())
    with pytest.raises(ModelReadError, match="truncated or from another model"):
        formats.read(copy)


@pytest.fixture(scope="module")
def mutable_copy(saved, tmp_path_factory):
    _, path = saved["nested"]
    copy = str(tmp_path_factory.mktemp("mutated") / "model")
    shutil.copytree(path, copy)
    members = ("saved_model.pb", "keras_metadata.pb", "variables/variables.index")
    return copy, {m: open(os.path.join(copy, m), "rb").read() for m in members}


def test_mutated_files_are_read_or_refused_in_one_line(mutable_copy):
    """Random byte edits, cuts and insertions in each protobuf and the index: the reader returns a graph
    or raises ModelReadError with one line of its own (never a reason the generic fallback had to
    invent from an exception it did not foresee)."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    copy, originals = mutable_copy
    edit = st.tuples(st.sampled_from(["flip", "cut", "insert", "truncate"]), st.floats(0, 1), st.binary(min_size=1, max_size=8))

    @settings(max_examples=150, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(member=st.sampled_from(sorted(originals)), edits=st.lists(edit, min_size=1, max_size=4))
    def check(member, edits):
        data = bytearray(originals[member])
        for kind, where, blob in edits:
            at = int(where * max(len(data) - 1, 0))
            if kind == "flip" and data:
                data[at] ^= blob[0] or 1
            elif kind == "cut":
                del data[at:at + len(blob) * 8]
            elif kind == "insert":
                data[at:at] = blob
            else:
                del data[at:]
        for name, original in originals.items():
            with open(os.path.join(copy, name), "wb") as f:
                f.write(data if name == member else original)
        try:
            recompute(formats.read(copy))
        except ModelReadError as exc:
            assert "\n" not in str(exc) and "damaged or unexpected content" not in str(exc), str(exc)

    check()


def test_wire_decoder_bounds():
    schema = protowire.message("M", f1=protowire.Field("n", protowire.VARINT),
                               f2=protowire.Field("items", protowire.STRING, True, max_items=2))
    assert protowire.decode(b"\x08\x96\x01\x12\x01a", schema) == {"n": 150, "items": ["a"]}
    for bad, why in [(b"\x08" + b"\xff" * 10 + b"\x01", "longer than 10"), (b"\x12\x05ab", "runs past"),
                     (b"\x1b\x00", "group"), (b"\x12\x01a" * 3, "more than 2"), (b"\x1f", "invalid wire type"), (b"\x0d\x00\x00\x00\x00", "unexpected wire type"),
                     (b"\x12\x01\xff", "UTF-8"), (b"\x08", "truncated")]:
        with pytest.raises(protowire.ProtoError, match=why):
            protowire.decode(bad, schema)
    # all values of one message, at every depth, are bounded too
    assert protowire.decode(b"\x08\x01" * 5, schema, max_values=5) == {"n": 1}
    with pytest.raises(protowire.ProtoError, match="more values than the bound"):
        protowire.decode(b"\x08\x01" * 6, schema, max_values=5)


# ---- the folder is never written; --scan-weights reads the shards ------------------------------------


def _tree_hashes(folder: str) -> dict:
    out = {}
    for root, dirs, files in os.walk(folder):
        out.update({os.path.relpath(os.path.join(root, d), folder): "dir" for d in dirs})
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                out[os.path.relpath(os.path.join(root, name), folder)] = hashlib.sha256(f.read()).hexdigest()
    return out


def test_nothing_is_written_and_scan_reads_the_variables(tmp_path):
    model = tf_keras.Sequential([tf_keras.Input((4,)), tf_keras.layers.Dense(3, name="hidden"),
                                 tf_keras.layers.Dense(2, name="out")])
    kernel, bias = model.get_layer("hidden").get_weights()
    kernel[1, 2] = np.nan
    model.get_layer("hidden").set_weights([kernel, bias])
    path = str(tmp_path / "nan_model")
    model.save(path, save_format="tf")
    before = _tree_hashes(path)
    clean = modelaudit.audit(path)
    scanned = modelaudit.audit(path, {"scan-weights": True})
    runner_summary = subprocess.run([sys.executable, "-c", "from modelaudit.cli import main; main()", "summary", path],
                                    capture_output=True, text=True, timeout=120)
    assert runner_summary.returncode == 0 and "hidden (Dense)" in runner_summary.stdout
    assert _tree_hashes(path) == before
    assert "MA108" not in [f.code for f in clean.findings]
    (nan,) = [f for f in scanned.findings if f.code == "MA108"]
    assert nan.layer == "hidden" and "1 NaN" in nan.message


def test_nothing_in_the_folder_is_run_and_nothing_heavy_is_imported(tmp_path):
    """A Lambda that creates a marker file when it runs: `check` and `summary` neither run it nor import
    TensorFlow, Keras, protobuf or numpy (the folder's protobufs are decoded by protowire.py)."""
    marker = tmp_path / "LAMBDA_WAS_EXECUTED"
    fn = eval(f"lambda x: (open({str(marker)!r}, 'w').close(), x)[1]")  # the test's own code, not a file's
    model = tf_keras.Sequential([tf_keras.Input((4,)), tf_keras.layers.Lambda(fn, name="side_effect"),
                                 tf_keras.layers.Dense(2)])
    path = str(tmp_path / "lambda_sm")
    model.save(path, save_format="tf")
    assert marker.exists(), "tracing runs the lambda: the marker proves it works"
    marker.unlink()
    wrapper = (
        "import sys\nfrom modelaudit.cli import main\n"
        "for args in (['check', sys.argv[1]], ['summary', sys.argv[1]]):\n"
        "    sys.argv = ['modelaudit'] + args\n"
        "    try:\n        main()\n    except SystemExit:\n        pass\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tf_keras', 'google', 'numpy')))\n"
    )
    run = subprocess.run([sys.executable, "-c", wrapper, path], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "side_effect (Lambda)" in run.stdout and run.stdout.strip().splitlines()[-1] == "[]"
    assert not marker.exists()


# ---- folder scans ------------------------------------------------------------------------------------


def test_folder_scan_finds_savedmodels_and_does_not_descend(saved, tmp_path):
    import keras

    _, path = saved["sequential_bn"]
    models = tmp_path / "models"
    shutil.copytree(path, models / "exported_sm")
    (models / "exported_sm" / "assets").mkdir(exist_ok=True)
    (models / "exported_sm" / "assets" / "vocab.json").write_text("{}")  # part of the SavedModel, not a model
    small = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    small.compile(loss="binary_crossentropy")  # MA201: a finding that names the .keras file
    small.save(models / "small.keras")
    report = modelaudit.audit(str(models))
    assert sorted(fr.path for fr in report.files) == sorted([str(models / "exported_sm"), str(models / "small.keras")])
    assert [fr.format for fr in sorted(report.files, key=lambda fr: fr.path)] == ["savedmodel", "keras-v3"]
    assert all(fr.error is None for fr in report.files)
    # named directly, the SavedModel folder is one model
    assert [fr.path for fr in modelaudit.audit(str(models / "exported_sm")).files] == [str(models / "exported_sm")]
    # the command line goes the same way
    from typer.testing import CliRunner

    from modelaudit.cli import app

    result = CliRunner().invoke(app, ["check", str(models), "--format", "json"])
    listed = json.loads(result.stdout)["files"]
    assert sorted((f["path"], f["format"]) for f in listed) == [
        (str(models / "exported_sm"), "savedmodel"), (str(models / "small.keras"), "keras-v3")]


@pytest.mark.parametrize("fmt", ["text", "json", "sarif", "github", "gitlab", "markdown"])
def test_reporters_show_a_folder_path(saved, fmt):
    from typer.testing import CliRunner

    from modelaudit.cli import app

    _, path = saved["nested"]
    result = CliRunner().invoke(app, ["check", path, "--format", fmt, "--show-info", "--select", "MA211"])
    assert result.exit_code == 0, result.output
    # SARIF and GitLab write paths relative to the repository; the others as given
    assert (os.path.basename(path) if fmt in ("sarif", "gitlab") else path) in result.output
    assert "MA211" in result.output  # uncompiled: an info finding that names the folder


# ---- the traced graph's ops (MA409) ------------------------------------------------------------------


def _tf_ops_by_function(path: str) -> set:
    """(function, op) for every node of the graph, as TensorFlow's own protobuf parses them."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        saved.ParseFromString(f.read())
    graph = saved.meta_graphs[0].graph_def
    found = {("", n.op) for n in graph.node}
    for function in graph.library.function:
        found |= {(function.signature.name, n.op) for n in function.node_def}
    return found


def _ma409(path):
    return [f for f in modelaudit.audit(path).findings if f.code == "MA409"]


def test_graph_ops_agree_with_tensorflow_and_correct_models_raise_no_ma409(saved, exported):
    """Every op of every function, read without TensorFlow, as TensorFlow's parser lists them; the
    saver's checkpoint ops are the saver's (reached from saver_def, not from a signature), and a
    correct tf_keras SavedModel or Keras 3 export raises no MA409."""
    for path in [p for _, p in saved.values()] + [exported[1]]:
        ops = formats.read(path).source.graph_ops
        assert {(o.function, o.op) for o in ops} == _tf_ops_by_function(path), path
        checkpoint = [o for o in ops if o.op in ("SaveV2", "RestoreV2", "MergeV2Checkpoints")]
        assert {o.op for o in checkpoint} == {"SaveV2", "RestoreV2", "MergeV2Checkpoints"}
        assert all(o.saver and not o.runs for o in checkpoint), checkpoint
        assert any(o.runs and o.op == "StatefulPartitionedCall" for o in ops)
        assert not _ma409(path), path


class _Files(tf.Module):
    def __init__(self):
        super().__init__()
        self.v = tf.Variable(tf.ones((3,)))

    @tf.function(input_signature=[tf.TensorSpec((None, 3), tf.float32)])
    def __call__(self, x):
        # inside a branch: reached through the If op's then_branch function attribute
        y = tf.cond(tf.reduce_sum(x) > 0, lambda: self._log(x), lambda: x)
        return y * self.v

    def _log(self, x):
        tf.io.write_file("/tmp/modelaudit-never-written", tf.strings.as_string(tf.reduce_sum(x)))
        return x + 0.0

    @tf.function(input_signature=[tf.TensorSpec((), tf.string)])
    def peek(self, name):  # restored as a callable method, in no signature
        return tf.io.read_file(name)


def test_file_ops_found_through_branches_and_in_exposed_functions(tmp_path):
    path = str(tmp_path / "files")
    module = _Files()
    tf.saved_model.save(module, path, signatures={"serving_default": module.__call__})
    found = {f.message.split("`")[1]: f.message for f in _ma409(path)}
    assert set(found) == {"WriteFile", "ReadFile"}, found
    assert "reached from a serving signature" in found["WriteFile"]
    assert "'/tmp/modelaudit-never-written'" in found["WriteFile"]
    assert "in a function the SavedModel exposes" in found["ReadFile"]
    # TensorFlow agrees on where they are
    ops = _tf_ops_by_function(path)
    assert any(op == "WriteFile" for _, op in ops) and any(op == "ReadFile" for _, op in ops)


def test_graph_bounds_are_one_line(saved, monkeypatch):
    from modelaudit.formats import tfgraph

    _, path = saved["nested"]
    monkeypatch.setattr(tfgraph, "MAX_GRAPH_NODES", 10)
    with pytest.raises(ModelReadError, match="more than 10 nodes") as info:
        formats.read(path)
    assert "\n" not in str(info.value)


def test_graph_mutations_are_read_or_refused_in_one_line(saved, tmp_path):
    """The fuzzer's SavedModel operators (tests/hostile/mutations.py, level "proto": op names, calls,
    inputs, saver targets, many nodes, damaged nodes) on a real tf_keras SavedModel: read, or refused
    in one line of the reader's own; an op renamed to WriteFile is MA409."""
    from tests.hostile import mutations as m

    _, path = saved["tf_ops"]
    seeds = {"tfk_savedmodel/saved_model.pb": os.path.join(path, "saved_model.pb")}
    flagged = 0
    for name in m.LEVEL_OPS["proto"]:
        for n in range(6):
            out = m.input_path("tfk_savedmodel/saved_model.pb", tmp_path / f"{name}-{n}")
            out.parent.mkdir(parents=True)
            m.make(m.Case("tfk_savedmodel/saved_model.pb", ((name, n),)), seeds, out, tmp=tmp_path)
            try:
                recompute(formats.read(str(out.parent)))
            except ModelReadError as exc:
                assert "\n" not in str(exc) and "damaged or unexpected content" not in str(exc), str(exc)
                continue
            if name == "proto_op_name":
                flagged += bool(_ma409(str(out.parent)))
    assert flagged, "no renamed op was a file op"


def test_long_node_names_cost_the_walk_a_few_bytes_each(saved, tmp_path):
    """Found by bench/fuzz.py (seed 20261201): a real SavedModel whose nodes gained 500-fold input names
    and were repeated thousands of times (proto_inputs, proto_many_nodes): 200 MB of saved_model.pb,
    whose names the graph walk once held as text (190 MB, past the fuzzer's 512 MiB address-space
    bound). Here the real file gains 6,000 nodes, each fed by two 1 KB names (12 MB; the walk's cost per
    byte is what is measured, so more nodes would only cost the suite memory): long names are kept as
    digests, so the walk holds a few MB, not the names."""
    import shutil
    import tracemalloc

    from tests.hostile import mutations as m

    _, path = saved["tf_ops"]
    folder = tmp_path / "long_names"
    shutil.copytree(path, folder)
    model = m.pb_parse((folder / "saved_model.pb").read_bytes(), "SavedModel")
    (graph_def,) = m._pb_all(model, (2, 2))[:1]
    long = [b"n" * 1000 + b"%d" % i for i in range(6_000)]
    graph_def.extend([1, 2, m.pb_build([[1, 2, name], [2, 2, b"Identity"], [3, 2, long[i - 1]], [3, 2, b"^" + long[i - 2]]])]
                     for i, name in enumerate(long))
    (folder / "saved_model.pb").write_bytes(m.pb_build(model))
    added = os.path.getsize(folder / "saved_model.pb") - os.path.getsize(os.path.join(path, "saved_model.pb"))
    assert added > 12 << 20

    def held_by_the_walk(where):
        """Bytes allocated while the whole graph is held: when the walk turns its nodes into facts."""
        held = []

        def facts(*args):
            held.append(tracemalloc.get_traced_memory()[0])
            return facts_of(*args)

        tracemalloc.start()
        try:
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(tfgraph, "_facts", facts)
                graph = formats.read(str(where))
        finally:
            tracemalloc.stop()
        assert graph.source.graph_ops and len(held) == 1  # the walk ran to its end
        return held[0]

    from modelaudit.formats import tfgraph

    facts_of = tfgraph._facts
    more = held_by_the_walk(folder) - held_by_the_walk(path)
    assert more < added // 4, f"{more:,} more bytes held to walk {added:,} more bytes of names"  # was 1.1x
