"""TensorFlow ops in tf_keras Functional models (TFOpLambda / SlicingOpLambda) and Keras 3 op nodes,
read from every file they are saved to and recomputed layer by layer against Keras.

tf_keras models are saved as `.h5`, tf_keras's own `.keras` and `model.to_json()`; every layer's
params, trainable split and output shapes must equal tf_keras's (the zoo's comparison), with no
layer left unrecomputed. Keras 3 op nodes are not layers: their output shapes are held against the
op's own symbolic outputs. An op no spec models is read, reported as MA107 (info), and the layers
after it are still recomputed where the file records its shape.
"""

from __future__ import annotations

import json
import os

import pytest

import keras
import tf_keras
import tensorflow as tf

import modelaudit  # noqa: E402
from modelaudit import formats  # noqa: E402
from modelaudit.formats import json_config  # noqa: E402
from modelaudit.infer.propagate import propagate  # noqa: E402
from tests.differential import test_zoo as zoo_check  # noqa: E402

# ---- tf_keras models, one per op family ------------------------------------------------------------


def elementwise(k):
    x, y = k.Input((4, 6), name="x"), k.Input((4, 6), name="y")
    bias = k.Input((6,), name="bias")
    outs = [
        x + y,  # a tensor passed by keyword (y=)
        x * 2.0,
        2.0 - x,  # a constant first argument
        x / y,
        -x,
        tf.nn.relu(x),
        tf.nn.leaky_relu(x, 0.1),
        tf.nn.softmax(x, axis=1),
        tf.math.maximum(x, 0.5),
        tf.math.squared_difference(x, y),
        tf.clip_by_value(x, 0.0, 1.0),
        tf.cast(x, tf.float16),
        tf.math.sigmoid(x),
        tf.where(x > 0.0, x, y),
        tf.math.add_n([x, y, x]),
        x + bias[:, tf.newaxis, :],  # broadcasting (None, 4, 6) with (None, 1, 6)
        tf.nn.bias_add(x, tf.ones((6,))),
    ]
    merged = k.layers.Concatenate()([k.layers.Flatten()(tf.cast(o, tf.float32)) for o in outs])
    return k.Model([x, y, bias], k.layers.Dense(3)(merged), name="elementwise")


def shape_ops(k):
    x = k.Input((4, 6), name="x")
    a, b, c = tf.split(x, 3, axis=-1)  # three outputs, each consumed
    p, q, r = tf.split(x, [1, -1, 2], axis=1)
    parts = [
        tf.reshape(x, (-1, 24)),
        tf.reshape(tf.expand_dims(x, -1), (-1, 2, 12)),
        tf.squeeze(tf.expand_dims(x, 1), axis=1),
        tf.transpose(x, [0, 2, 1]),
        tf.concat([a, b, c], -1),
        tf.concat([x, x], axis=1),
        tf.stack([a, c], axis=1),
        tf.unstack(x, axis=1)[2],
        p, q, r,
        tf.pad(x, [[0, 0], [1, 2], [0, 3]]),
        tf.compat.v1.pad(x, [[0, 0], [1, 1], [0, 0]]),
        tf.tile(x, [1, 2, 3]),
        tf.identity(x),
    ]
    flat = k.layers.Concatenate()([k.layers.Flatten()(t) for t in parts])
    return k.Model(x, k.layers.Dense(2)(flat), name="shape_ops")


def reductions(k):
    x = k.Input((4, 6), name="x")
    parts = [
        tf.math.reduce_mean(x, axis=1, keepdims=True),
        tf.reduce_sum(x, axis=[1, 2]),
        tf.reduce_max(x, axis=-1),
        tf.reduce_min(x, 1),
        tf.math.reduce_std(x, axis=-1, keepdims=True),
        tf.compat.v1.reduce_mean(x, 1, keep_dims=True),
        tf.cast(tf.argmax(x, axis=-1), tf.float32),
    ]
    flat = k.layers.Concatenate()([k.layers.Flatten()(t) for t in parts])
    whole = tf.reduce_max(x)  # every axis: a scalar
    over_batch = tf.math.argmin(x)  # no axis: TensorFlow reduces axis 0, the batch
    return k.Model(x, [k.layers.Dense(2)(flat), whole, over_batch], name="reductions")


def products_images(k):
    x, y = k.Input((4, 6), name="x"), k.Input((5, 6), name="y")
    img = k.Input((8, 8, 4), name="img")
    scores = tf.matmul(x, y, transpose_b=True)  # (4, 5)
    back = tf.linalg.matmul(tf.nn.softmax(scores), y)  # (4, 6)
    gram = tf.transpose(x, [0, 2, 1]) @ x  # (6, 6)
    big = tf.image.resize(img, (16, 12))
    deep = tf.nn.space_to_depth(img, 2)  # (4, 4, 16)
    wide = tf.nn.depth_to_space(img, 2)  # (16, 16, 1)
    conv = k.layers.Conv2D(3, 3)(big)
    parts = [back, gram, conv, deep, wide]
    flat = k.layers.Concatenate()([k.layers.Flatten()(t) for t in parts])
    return k.Model([x, y, img], k.layers.Dense(2)(flat), name="products_images")


def gathering(k):
    x = k.Input((4, 6), name="x")
    ids = k.Input((3,), dtype="int32", name="ids")
    values, indices = tf.math.top_k(x, k=2)  # two outputs, both consumed
    parts = [
        tf.gather(x, [0, 2], axis=2),
        tf.gather(x, ids, axis=1, batch_dims=1),
        tf.one_hot(ids, 5),
        tf.one_hot(ids, 5, axis=1),
        values,
        tf.cast(indices, tf.float32),
        tf.cast(tf.shape(x), tf.float32)[tf.newaxis, :] * tf.ones_like(x[:, :1, 0]),
    ]
    flat = k.layers.Concatenate()([k.layers.Flatten()(t) for t in parts])
    return k.Model([x, ids], k.layers.Dense(2)(flat), name="gathering")


def _slices(k, ellipsis: bool):
    x = k.Input((4, 6, 5), name="x")
    parts = [
        x[:, 0],
        x[:, 1:3, ::2],
        x[:, tf.newaxis, -1],
        x[:, ::-1, 2:, 1:4],
        x[:, :, 4],
    ]
    if ellipsis:
        parts += [x[..., tf.newaxis, ::2], x[..., 0], x[:, ..., 1:3]]
    flat = k.layers.Concatenate()([k.layers.Flatten()(t) for t in parts])
    return k.Model(x, k.layers.Dense(2)(flat), name="slices")


def slices(k):
    return _slices(k, ellipsis=True)


def slices_no_ellipsis(k):
    return _slices(k, ellipsis=False)


# tf_keras's own .keras writer cannot serialize Ellipsis (TypeError in serialization_lib): the
# sliced model with `...` is saved as .h5 and JSON, its twin without it as .keras too.
MODELS = {
    "elementwise": (elementwise, ("keras-h5", "keras-v3", "json-config")),
    "shape_ops": (shape_ops, ("keras-h5", "keras-v3", "json-config")),
    "reductions": (reductions, ("keras-h5", "keras-v3", "json-config")),
    "products_images": (products_images, ("keras-h5", "keras-v3", "json-config")),
    "gathering": (gathering, ("keras-h5", "keras-v3", "json-config")),
    "slices": (slices, ("keras-h5", "json-config")),
    "slices_no_ellipsis": (slices_no_ellipsis, ("keras-v3",)),
}
SUFFIX = {"keras-h5": ".h5", "keras-v3": ".keras", "json-config": ".json"}


def _save_tf_keras(model, path: str, fmt: str) -> None:
    if fmt == "json-config":
        with open(path, "w") as f:
            f.write(model.to_json())
    elif fmt == "keras-h5":
        model.save(path, save_format="h5")
    else:
        model.save(path, save_format="keras")


@pytest.fixture(scope="module")
def tf_models(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("tf_ops"))
    built = {}
    for name, (builder, fmts) in MODELS.items():
        model = builder(tf_keras)
        files = {}
        for fmt in fmts:
            files[fmt] = os.path.join(folder, name + SUFFIX[fmt])
            _save_tf_keras(model, files[fmt], fmt)
        built[name] = zoo_check.Built(f"k2-{name}", zoo_check.K2, model, files)
    yield built
    tf_keras.backend.clear_session()


@pytest.mark.parametrize("name", list(MODELS))
def test_tf_keras_ops_match_keras(tf_models, name):
    built = tf_models[name]
    ops = [layer for layer in built.model.layers if type(layer).__name__ in ("TFOpLambda", "SlicingOpLambda")]
    assert len(ops) >= 5
    problems = []
    for fmt, path in built.files.items():
        graph = formats.read(path)
        assert graph.format == fmt
        problems += zoo_check.compare(built, graph, fmt)
        problems += zoo_check.audit_problems(built, path, fmt)
    assert not problems, "\n".join(problems)


def test_the_node_shapes_tf_keras_writes(tf_models):
    """A single tensor is a bare entry, a list of tensors a nested list, a constant first argument a
    _CONSTANT_VALUE entry, and a tensor passed by keyword a history inside the kwargs."""
    built = tf_models["elementwise"]
    with open(built.files["json-config"]) as f:
        nodes = {layer["name"]: layer["inbound_nodes"] for layer in json.load(f)["config"]["layers"]}
    add = next(n for name, n in nodes.items() if name.startswith("tf.__operators__.add"))
    assert add[0][0] == "x" and add[0][3]["y"] == ["y", 0, 0]
    sub = next(n for name, n in nodes.items() if name.startswith("tf.math.subtract"))
    assert sub[0][:3] == ["_CONSTANT_VALUE", -1, 2.0]
    add_n = next(n for name, n in nodes.items() if name.startswith("tf.math.add_n"))
    assert [entry[0] for entry in add_n[0]] == ["x", "y", "x"]

    graph = formats.read(built.files["json-config"])
    layer = next(layer for layer in graph.layers if layer.name.startswith("tf.math.subtract"))
    assert [ref.layer for ref in layer.calls[0].inputs] == ["x"]
    assert layer.calls[0].tensor_kwargs == ("y",)
    layer = next(layer for layer in graph.layers if layer.name.startswith("tf.__operators__.add"))
    assert [ref.layer for ref in layer.calls[0].inputs] == ["x", "y"]


# ---- Keras 3 op nodes -------------------------------------------------------------------------------


def keras3_ops(k):
    ops = k.ops
    x, y = k.Input((4, 6), name="x"), k.Input((4, 6), name="y")
    s = ops.split(x, 3, axis=-1)
    parts = [
        x + 3.0, 2.0 * x, x + y, ops.maximum(x, 0.0), ops.where(ops.not_equal(x, 0), x, y),
        ops.reshape(x, (-1, 24)), ops.transpose(x, (0, 2, 1)), ops.expand_dims(x, 1),
        ops.squeeze(ops.expand_dims(x, -1), axis=-1), ops.concatenate([x, y], axis=-1),
        ops.stack([x, y], axis=1), s[0], s[1], s[2], ops.split(x, [1, 3], axis=1)[1],
        ops.mean(x, axis=1, keepdims=True), ops.sum(x, axis=(1, 2)), ops.max(x, axis=-1), ops.min(x, axis=1),
        ops.matmul(x, ops.transpose(y, (0, 2, 1))), ops.einsum("bij,bkj->bik", x, y),
        ops.einsum("...ij,...jk", x, ops.transpose(y, (0, 2, 1))),  # implicit output: "...ik"
        ops.einsum("...j,...j->...", x, y),
        ops.take(x, [0, 2], axis=2), x[:, 0], x[:, None, 1:3, ::2], x[..., ::-1], ops.tile(x, (1, 2, 1)),
        ops.pad(x, ((0, 0), (1, 1), (2, 0))), ops.argmax(x, axis=-1),
        ops.cumsum(x, axis=1), ops.repeat(x, 2, axis=2), ops.swapaxes(x, 1, 2), ops.top_k(x, 3)[0],
        ops.top_k(x, 2)[1], ops.one_hot(ops.argmax(x, axis=-1), 7), ops.slice(x, (0, 1, 2), (-1, 2, -1)),
        ops.broadcast_to(ops.sum(x, axis=(0, 1), keepdims=True), (2, 4, 6)),
    ]
    flat = k.layers.Concatenate()([k.layers.Flatten()(ops.cast(t, "float32")) for t in parts])
    return k.Model([x, y], k.layers.Dense(2)(flat), name="keras3_ops")


def _op_problems(model, graph, where: str) -> list[str]:
    """Every Keras 3 op node: recomputed by an op spec, with Keras's own output shapes."""
    rows = {r.path: r for r in propagate(graph).rows}
    problems = []
    checked = 0
    for op in model.operations:
        if hasattr(op, "count_params"):  # a layer: the zoo comparison holds those
            continue
        checked += 1
        row = rows.get(op.name)
        theirs = [tuple(t.shape) for t in zoo_check._flat(op._inbound_nodes[0].output_tensors)]
        if row is None:
            problems.append(f"[{where}] {op.name}: no row")
        elif not row.recomputed or row.shape_error or [tuple(s) for s in row.output_shapes[0]] != theirs:
            problems.append(f"[{where}] {op.name} ({type(op).__name__}): ours {row.output_shapes[0]} "
                            f"{row.unknown_reason or row.shape_error or ''} != keras {theirs}")
    assert checked >= 25, f"only {checked} op nodes in the model"
    return problems


def test_keras3_op_nodes_match_keras(tmp_path):
    model = keras3_ops(keras)
    path = str(tmp_path / "keras3_ops.keras")
    model.save(path)
    graph = formats.read(path)
    op_nodes = [layer for layer in graph.layers if (layer.module or "").startswith("keras.src.ops.")]
    assert len(op_nodes) >= 25
    built = zoo_check.Built("k3-ops", zoo_check.K3, model, {"keras-v3": path})
    problems = _op_problems(model, graph, "keras-v3") + zoo_check.compare(built, graph, "keras-v3")
    problems += zoo_check.audit_problems(built, path, "keras-v3")
    assert not problems, "\n".join(problems)


def test_keras3_op_is_not_the_layer_of_its_name(tmp_path):
    """ops.Reshape takes the whole shape, batch included, and ops.Add adds a constant: the layer
    specs of the same names (Reshape, Add) would get both wrong."""
    x = keras.Input((4, 6))
    model = keras.Model(x, keras.layers.Dense(2)(keras.ops.reshape(x + 1.0, (-1, 3, 8))))
    path = str(tmp_path / "reshape_add.keras")
    model.save(path)
    rows = {r.layer.class_name: r for r in propagate(formats.read(path)).rows}
    assert rows["Add"].output_shapes[0] == [(None, 4, 6)] and rows["Add"].recomputed
    assert rows["Reshape"].output_shapes[0] == [tuple(model.layers[-1].input.shape)] == [(None, 3, 8)]


def test_squeeze_of_an_unknown_size_has_an_unknown_rank():
    """TensorFlow's squeeze without an axis gives up on the rank when a size is unknown (it may be
    1 when the model runs); Keras 3's keeps the unknown size."""
    x = tf_keras.Input((4, 1, 6))
    fixed = tf_keras.Input(batch_shape=(2, 4, 1, 6))
    model = tf_keras.Model([x, fixed], [tf.squeeze(x), tf.squeeze(fixed)])
    rows = {r.path: r for r in propagate(json_config.graph_from_config(
        json.loads(model.to_json()), format="json-config")).rows}
    first, second = (layer for layer in model.layers if layer.name.startswith("tf.compat.v1.squeeze"))
    assert first.output.shape.rank is None and rows[first.name].output_shapes[0] == [None]
    assert rows[second.name].output_shapes[0] == [tuple(second.output.shape.as_list())] == [(2, 4, 6)]
    k3 = keras.Input((4, 1, 6))
    k3_model = keras.Model(k3, keras.ops.squeeze(k3))
    path_rows = propagate(json_config.graph_from_config(
        json.loads(k3_model.to_json()), format="json-config")).rows
    squeeze = next(r for r in path_rows if r.layer.class_name == "Squeeze")
    assert squeeze.output_shapes[0] == [tuple(k3_model.output.shape)] == [(None, 4, 6)]


# ---- an op no spec models ---------------------------------------------------------------------------


def _unknown_op_tf_keras():
    x = tf_keras.Input((6, 4), name="x")
    framed = tf.signal.frame(x, 2, 1, axis=1)  # (None, 5, 2, 4): no spec for signal.frame
    out = tf_keras.layers.Dense(3, name="after")(tf_keras.layers.Flatten(name="flat")(framed))
    return tf_keras.Model(x, out, name="unknown_op")


@pytest.fixture(scope="module")
def unknown_op_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("unknown_op")
    model = _unknown_op_tf_keras()
    files = {}
    for fmt in ("keras-v3", "keras-h5", "json-config"):
        files[fmt] = str(folder / f"unknown_op{SUFFIX[fmt]}")
        _save_tf_keras(model, files[fmt], fmt)
    k3 = keras.Input((6, 4), name="x")
    k3_model = keras.Model(k3, keras.layers.Dense(3, name="after")(keras.ops.diagonal(k3, axis1=1, axis2=2)))
    files["keras3"] = str(folder / "unknown_op_k3.keras")
    k3_model.save(files["keras3"])
    return model, k3_model, files


def test_unknown_op_is_info_and_later_layers_are_recomputed(unknown_op_files):
    model, k3_model, files = unknown_op_files
    frame = model.get_layer(next(layer.name for layer in model.layers if layer.name.startswith("tf.signal.frame")))
    after = model.get_layer("after")
    rows = {r.path: r for r in propagate(formats.read(files["keras-v3"])).rows}
    row = rows[frame.name]
    assert not row.recomputed and row.unknown_reason == "no spec for op signal.frame"
    # the Flatten after it was built on the op's output: tf_keras's .keras records that shape
    assert row.output_shapes[0] == [tuple(frame.output.shape.as_list())]
    assert rows["after"].recomputed and rows["after"].params == after.count_params()
    assert rows["after"].output_shapes[0] == [tuple(after.output.shape.as_list())]

    # Keras 3: the consumer's tensor record gives the op's shape
    rows = {r.path: r for r in propagate(formats.read(files["keras3"])).rows}
    diagonal = next(r for r in rows.values() if r.layer.class_name == "Diagonal")
    assert not diagonal.recomputed and diagonal.unknown_reason == "no spec for op keras.src.ops.numpy.Diagonal"
    assert rows["after"].recomputed and rows["after"].params == k3_model.get_layer("after").count_params()

    for fmt, path in files.items():
        report = modelaudit.audit(path)
        fr = report.files[0]
        assert fr.error is None, f"{fmt}: {fr.error}"
        ma107 = [f for f in fr.findings if f.code == "MA107"]
        assert ma107 and all(f.severity.value == "info" for f in ma107), f"{fmt}: {fr.findings}"
        assert "no spec for op" in ma107[0].message
        assert not [f for f in fr.findings if f.severity.value in ("error", "warning")], f"{fmt}: {fr.findings}"


def test_unknown_op_check_exits_zero(unknown_op_files):
    from typer.testing import CliRunner

    from modelaudit.cli import app

    _, _, files = unknown_op_files
    result = CliRunner().invoke(app, ["check", *files.values()])
    assert result.exit_code == 0, result.output


def test_tf_keras_einsum_saves_no_operands(tmp_path):
    """tf_keras writes tf.einsum's equation as its constant first argument and drops its operands
    (varargs): the file does not load back into tf_keras itself, and modelaudit says the call has
    no input instead of blaming an earlier layer."""
    x, y = tf_keras.Input((4, 6)), tf_keras.Input((5, 6))
    model = tf_keras.Model([x, y], tf.einsum("bij,bkj->bik", x, y))
    path = tmp_path / "einsum.json"
    path.write_text(model.to_json())
    with pytest.raises(ValueError):
        tf_keras.models.model_from_json(model.to_json())
    layer = next(layer for layer in json.loads(path.read_text())["config"]["layers"] if layer["name"] == "tf.einsum")
    assert layer["inbound_nodes"] == [["_CONSTANT_VALUE", -1, "bij,bkj->bik", {}]]
    row = next(r for r in propagate(formats.read(str(path))).rows if r.path == "tf.einsum")
    assert not row.recomputed and row.unknown_reason == "the file records no input tensor for its call"
    findings = modelaudit.audit(str(path)).files[0].findings
    assert [f.severity.value for f in findings if f.code == "MA107" and f.layer == "tf.einsum"] == ["info"]
