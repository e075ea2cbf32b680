"""Keras 1 and Keras <= 2.2 files (issue 12): read, normalized once into the Keras 3 dialect
(formats/dialects.py), recomputed, and held against what they store.

The files under tests/data/legacy/ were written by Keras 1.0 to 2.2, which no installable Keras can
run any more; tests/data/README.md says where each comes from. The truths they are held against:
the weights they store (counted here with h5py), Keras 2's own conversions (keras/legacy/interfaces.py,
engine/saving.py preprocess_weights_for_loading) worked by hand, and tf_keras layers built from the
normalized arguments.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import modelaudit
from modelaudit.formats import dialects
from modelaudit.graph import Weight

DATA = Path(__file__).parent / "data" / "legacy"
COMPARISON = {"MA101", "MA102", "MA103", "MA107"}

# full models (.h5 with model_config and model_weights), each written by the Keras its name says
H5_MODELS = [
    "keras1_theano_lstm_dense.h5",  # LSTM: 12 per-gate arrays
    "keras1_theano_bidirectional_lstm.h5",  # Bidirectional(LSTM): 24 per-gate arrays
    "keras1_theano_simple_rnn.h5",
    "keras1_tf_embedding_conv1d.h5",  # Convolution1D: 4-D kernel (length, 1, input_dim, filters)
    "keras1_theano_dense_batchnorm_conv2d.h5",  # BatchNormalization(mode=0): running_mean/running_std
    "keras1_theano_conv2d_reshape.h5",
    "keras1_tf_lstm_timedistributeddense.h5",  # Keras 1.1.0 TimeDistributedDense
    "keras2_1_sequential_list_cnn_batchnorm.h5",  # Keras 2.1.3, Sequential config a list
    "keras2_2_sequential_list_masking_lstm.h5",  # Keras 2.2.0, Sequential config a list
]
# (model.to_json() output, the weights save_weights wrote for it, Keras version) of "th" models
TH_PAIRS = [
    ("keras1_th_mnist_cnn.json", "keras1_th_mnist_cnn_weights.h5", "1.2.2"),  # Sequential CNN
    ("keras1_th_functional_unet.json", "keras1_th_functional_unet_weights.h5", "1.0.5"),  # Model + Merge
]
JSON_CONFIGS = [
    "keras1_chemts_gru.json",  # Keras 1.1.1: Embedding, GRU x2, TimeDistributed(Dense)
    "keras1_functional_merge_mlp.json",  # Keras 1.1.2 Model: Merge(mode='concat'), two outputs
    "keras1_th_yolo_tiny.json",  # Keras 1.2.0 "th" Sequential: Convolution2D, LeakyReLU, pooling
    "keras1_th_mnist_cnn.json",
    "keras1_th_functional_unet.json",  # Keras 1.0.5: UpSampling2D records no dim_ordering
    "keras2_0_sequential_list_cnn_th.json",  # Keras 2.0.6: Sequential config a list, channels_first
]


def stored_params(path: Path, group: str | None) -> int:
    """Every value the file stores under `group` (the whole file if None), counted with h5py."""
    import h5py

    total = 0

    def add(_, obj):
        nonlocal total
        if isinstance(obj, h5py.Dataset):
            total += obj.size

    with h5py.File(path, "r") as f:
        (f[group] if group else f).visititems(add)
    return total


def audited(path) -> modelaudit.api.FileReport:
    report = modelaudit.audit(str(path)).files[0]
    assert report.error is None, report.error
    return report


def assert_recomputed_and_agreeing(report) -> None:
    codes = {f.code for f in report.findings}
    assert not codes & COMPARISON, [f.message for f in report.findings if f.code in COMPARISON]
    assert all(row.recomputed for row in report.inferred.rows), [
        (row.path, row.unknown_reason) for row in report.inferred.rows if not row.recomputed]


@pytest.mark.parametrize("name", H5_MODELS)
def test_real_h5_is_recomputed_and_agrees_with_its_stored_weights(name):
    report = audited(DATA / name)
    assert report.format == "keras-h5"
    assert_recomputed_and_agreeing(report)
    assert report.inferred.total_params == stored_params(DATA / name, "model_weights")


def keras1_model_file(folder: Path, config_name: str, weights_name: str, version: str) -> Path:
    """A model.to_json() and its save_weights() file as one file, laid out as Keras 1's save_model
    wrote a model (keras/models.py, 1.0 to 1.2): root attributes keras_version and model_config
    ({class_name, config}), the weights as save_weights writes them in a `model_weights` group.
    Keras loaded the two with model_from_json and load_weights; nothing in either is changed."""
    import h5py

    document = json.loads((DATA / config_name).read_text())
    out = folder / config_name.replace(".json", ".h5")
    with h5py.File(DATA / weights_name, "r") as src, h5py.File(out, "w") as dst:
        dst.attrs["keras_version"] = version.encode()
        dst.attrs["model_config"] = json.dumps(
            {"class_name": document["class_name"], "config": document["config"]}).encode()
        group = dst.create_group("model_weights")
        for key, value in src.attrs.items():
            group.attrs[key] = value
        for member in src:
            src.copy(src[member], group, member)
    return out


@pytest.mark.parametrize("config_name,weights_name,version", TH_PAIRS)
def test_real_th_weights_agree_with_their_config(tmp_path, config_name, weights_name, version):
    """Keras 1 "th" kernels are (filters, stack, rows, cols); normalized to Keras 2's
    (rows, cols, stack, filters) they match the config's Conv2D(channels_first) everywhere."""
    path = keras1_model_file(tmp_path, config_name, weights_name, version)
    report = audited(path)
    assert_recomputed_and_agreeing(report)
    assert report.inferred.total_params == stored_params(DATA / weights_name, None)
    conv = report.inferred.graph.layer("convolution2d_1")
    assert conv.class_name == "Conv2D" and conv.config["data_format"] == "channels_first"
    assert [tuple(w.shape) for w in conv.weights] == [(3, 3, 1, 32), (32,)]  # stored (32, 1, 3, 3)


def test_keras1_lstm_gates_become_kernel_recurrent_kernel_and_bias():
    """12 arrays (W, U, b of gates i, c, f, o) -> 3 in Keras 2's gate order i, f, c, o."""
    lstm = audited(DATA / "keras1_theano_lstm_dense.h5").inferred.graph.layer("lstm_1")
    assert [tuple(w.shape) for w in lstm.weights] == [(1, 200), (50, 200), (200,)]
    assert lstm.weights[0].path == "model_weights/lstm_1/{lstm_1_W_i,lstm_1_W_f,lstm_1_W_c,lstm_1_W_o}"
    assert lstm.config["units"] == 50 and "output_dim" not in lstm.config


# ---- JSON configs, against tf_keras layers built from the normalized arguments -------------------


def tf_keras_rebuild(graph) -> dict:
    """layer name -> (count_params(), output shape) of a tf_keras model wired as `graph`, each layer
    built by tf_keras from its normalized class name and config."""
    import tensorflow as tf
    import tf_keras

    from modelaudit.formats.json_config import topological_order

    # In a graph of its own, the layers' variables are symbolic: Keras counts and shapes them without
    # allocating their values (YOLO tiny's 45 million, 365 MB of the suite's memory, never given back).
    with tf.Graph().as_default():
        return _rebuild(graph, tf_keras, topological_order)


def _rebuild(graph, tf_keras, topological_order) -> dict:
    by_name = {layer.name: layer for layer in graph.layers}
    tensors, built = {}, {}
    for name, call in topological_order(graph):
        layer = by_name[name]
        config = {k: v for k, v in layer.config.items() if k not in ("batch_shape", "batch_input_shape")}
        if layer.class_name == "InputLayer":
            tensors[(name, 0, 0)] = tf_keras.Input(batch_shape=layer.config["batch_shape"], name=name)
            continue
        keras_layer = built.get(name) or tf_keras.layers.deserialize({"class_name": layer.class_name, "config": config})
        built[name] = keras_layer
        refs = layer.calls[call].inputs
        args = [tensors[(r.layer, r.call, r.index)] for r in refs]
        tensors[(name, call, 0)] = keras_layer(args[0] if len(args) == 1 else args)
    return {name: (built[name].count_params(), tuple(tensors[(name, 0, 0)].shape)) for name in built}


@pytest.mark.parametrize("name", JSON_CONFIGS)
def test_real_json_config_agrees_with_tf_keras_layer_by_layer(name):
    report = audited(DATA / name)
    assert report.format == "json-config"
    assert_recomputed_and_agreeing(report)
    keras = tf_keras_rebuild(report.inferred.graph)
    ours = {row.layer.name: (row.params, tuple(row.output_shapes[0][0]))
            for row in report.inferred.rows if row.layer.class_name != "InputLayer"}
    assert ours == keras
    assert report.inferred.total_params == sum(params for params, _ in keras.values())


def test_chemts_gru_matches_its_stored_weights_by_hand():
    """tsudalab/ChemTS ships RNN-model/model.h5 (2.6 MB, not copied) with this config: embedding
    64x64, per GRU 3 gates of W (in, 256), U (256, 256), b (256,) with in = 64 and 256, dense 256x64+64."""
    weights = 64 * 64 + 3 * (64 * 256 + 256 * 256 + 256) + 3 * (256 * 256 + 256 * 256 + 256) + 256 * 64 + 64
    assert audited(DATA / "keras1_chemts_gru.json").inferred.total_params == weights == 661_056


def test_json_string_inside_json_is_read_once(tmp_path):
    """`json.dump(model.to_json(), f)` writes the config as one JSON string."""
    import tf_keras

    model = tf_keras.Sequential([tf_keras.Input((12,)), tf_keras.layers.Dense(5), tf_keras.layers.Dense(3)])
    path = tmp_path / "model.json"
    with open(path, "w") as f:
        json.dump(model.to_json(), f)
    assert isinstance(json.loads(path.read_text()), str)
    report = audited(path)
    assert report.inferred.total_params == model.count_params() == 12 * 5 + 5 + 5 * 3 + 3
    assert [r.output_shapes[0][0] for r in report.inferred.rows if r.layer.class_name == "Dense"] == [
        tuple(layer.output.shape) for layer in model.layers]


@pytest.mark.parametrize("build_input_shape", [None, [None, 6]])
def test_sequential_list_and_object_configs_read_alike(build_input_shape):
    """Keras <= 2.2.2 wrote a Sequential's config as the list of its layers; later Keras as
    {name, layers} (tf.keras adds build_input_shape when the model was built without an Input)."""
    from modelaudit.formats.json_config import graph_from_config

    first = {"name": "dense_1", "units": 4}
    if build_input_shape is None:
        first["batch_input_shape"] = [None, 6]
    second = {"name": "dense_2", "units": 2}
    layers = [{"class_name": "Dense", "config": first}, {"class_name": "Dense", "config": second}]
    as_list = graph_from_config({"class_name": "Sequential", "config": layers}, format="json-config")
    as_object = graph_from_config({"class_name": "Sequential", "config": {
        "name": "sequential", "layers": layers, "build_input_shape": build_input_shape}}, format="json-config")
    for graph in (as_list, as_object) if build_input_shape is None else (as_object,):
        assert [layer.name for layer in graph.layers] == ["sequential_input", "dense_1", "dense_2"]
        assert graph.layers[0].config["batch_shape"] == [None, 6]


# ---- the conversions, case by case, against Keras 2's legacy interfaces worked by hand -------------

REG = {"class_name": "L1L2", "config": {"l1": 0.0, "l2": 0.01}}
KERAS1_CASES = [
    # (Keras 1 class, Keras 1 config, Keras 2 class, what Keras 2 made of it, Keras 1 keys gone)
    ("Convolution2D", {"nb_filter": 8, "nb_row": 3, "nb_col": 5, "border_mode": "same", "subsample": [2, 1],
                       "dim_ordering": "th", "init": "he_normal", "W_regularizer": REG, "b_regularizer": None,
                       "W_constraint": None, "b_constraint": None, "bias": False},
     "Conv2D", {"filters": 8, "kernel_size": [3, 5], "padding": "same", "strides": [2, 1],
                "data_format": "channels_first", "kernel_initializer": "he_normal", "kernel_regularizer": REG,
                "bias_regularizer": None, "kernel_constraint": None, "bias_constraint": None, "use_bias": False},
     ["nb_filter", "nb_row", "nb_col", "border_mode", "subsample", "dim_ordering", "init", "bias"]),
    ("Convolution2D", {"nb_filter": 2, "nb_row": 1, "nb_col": 1, "dim_ordering": "tf"},
     "Conv2D", {"data_format": "channels_last", "kernel_size": [1, 1]}, []),
    ("AtrousConvolution2D", {"nb_filter": 2, "nb_row": 3, "nb_col": 3, "atrous_rate": [2, 2]},
     "Conv2D", {"dilation_rate": [2, 2]}, ["atrous_rate"]),
    ("Convolution1D", {"nb_filter": 4, "filter_length": 3, "subsample_length": 2, "border_mode": "valid",
                       "input_dim": 5, "input_length": 10},
     "Conv1D", {"filters": 4, "kernel_size": 3, "strides": 2, "padding": "valid", "batch_shape": [None, 10, 5]},
     ["input_dim", "input_length", "filter_length"]),
    ("Convolution3D", {"nb_filter": 2, "kernel_dim1": 3, "kernel_dim2": 2, "kernel_dim3": 1, "dim_ordering": "th"},
     "Conv3D", {"kernel_size": [3, 2, 1], "data_format": "channels_first"}, ["kernel_dim1"]),
    ("Deconvolution2D", {"nb_filter": 3, "nb_row": 3, "nb_col": 3, "output_shape": [None, 3, 8, 8]},
     "Conv2DTranspose", {"filters": 3, "kernel_size": [3, 3]}, ["output_shape"]),
    ("SeparableConvolution2D", {"nb_filter": 4, "nb_row": 3, "nb_col": 3, "depth_multiplier": 2, "init": "zero"},
     "SeparableConv2D", {"depthwise_initializer": "zero", "pointwise_initializer": "zero", "depth_multiplier": 2},
     ["init"]),
    ("Dense", {"output_dim": 10, "init": "uniform", "W_regularizer": REG, "input_dim": 784, "bias": True},
     "Dense", {"units": 10, "kernel_initializer": "uniform", "kernel_regularizer": REG, "batch_shape": [None, 784],
               "use_bias": True}, ["output_dim", "input_dim"]),
    ("Dense", {"output_dim": 3, "input_dim": None}, "Dense", {"units": 3}, ["input_dim", "batch_shape"]),
    ("Dense", {"output_dim": 2, "W_regularizer": {"name": "WeightRegularizer", "l1": 0.001, "l2": 0.0},
               "activity_regularizer": {"name": "ActivityRegularizer", "l1": 0.0, "l2": 0.5}},
     "Dense", {"kernel_regularizer": {"class_name": "L1L2", "config": {"l1": 0.001, "l2": 0.0}},
               "activity_regularizer": {"class_name": "L1L2", "config": {"l1": 0.0, "l2": 0.5}}}, ["W_regularizer"]),
    ("Dropout", {"p": 0.25}, "Dropout", {"rate": 0.25}, ["p"]),
    ("SpatialDropout2D", {"p": 0.1, "dim_ordering": "th"}, "SpatialDropout2D",
     {"rate": 0.1, "data_format": "channels_first"}, ["p"]),
    ("GaussianDropout", {"p": 0.2}, "GaussianDropout", {"rate": 0.2}, ["p"]),
    ("GaussianNoise", {"sigma": 0.3}, "GaussianNoise", {"stddev": 0.3}, ["sigma"]),
    ("Embedding", {"input_dim": 64, "output_dim": 32, "input_length": 82, "init": "uniform", "dropout": 0.0,
                   "W_regularizer": None, "W_constraint": None},
     "Embedding", {"input_dim": 64, "output_dim": 32, "embeddings_initializer": "uniform", "batch_shape": [None, 82],
                   "embeddings_regularizer": None, "embeddings_constraint": None}, ["dropout", "init"]),
    ("LSTM", {"output_dim": 8, "init": "glorot_uniform", "inner_init": "orthogonal", "inner_activation": "hard_sigmoid",
              "consume_less": "gpu", "forget_bias_init": "one", "dropout_W": 0.1, "dropout_U": 0.2,
              "W_regularizer": None, "U_regularizer": None, "b_regularizer": None, "input_dim": 3, "input_length": 5},
     "LSTM", {"units": 8, "kernel_initializer": "glorot_uniform", "recurrent_initializer": "orthogonal",
              "recurrent_activation": "hard_sigmoid", "implementation": 2, "unit_forget_bias": True, "dropout": 0.1,
              "recurrent_dropout": 0.2, "kernel_regularizer": None, "recurrent_regularizer": None,
              "bias_regularizer": None, "batch_shape": [None, 5, 3]},
     ["output_dim", "consume_less", "forget_bias_init", "input_dim", "input_length"]),
    ("GRU", {"output_dim": 4, "consume_less": "cpu"}, "GRU", {"units": 4, "implementation": 0, "reset_after": False},
     []),
    ("SimpleRNN", {"output_dim": 4, "consume_less": "mem", "input_dim": 2, "input_length": None},
     "SimpleRNN", {"units": 4, "implementation": 1, "batch_shape": [None, None, 2]}, []),
    ("BatchNormalization", {"mode": 0, "axis": 1, "epsilon": 0.001, "momentum": 0.99, "beta_init": "zero",
                            "gamma_init": "one"},
     "BatchNormalization", {"axis": 1, "epsilon": 0.001, "beta_initializer": "zero", "gamma_initializer": "one"},
     ["mode", "beta_init"]),
    ("MaxPooling2D", {"pool_size": [2, 2], "strides": None, "border_mode": "same", "dim_ordering": "th"},
     "MaxPooling2D", {"pool_size": [2, 2], "padding": "same", "data_format": "channels_first"}, ["border_mode"]),
    ("AveragePooling1D", {"pool_length": 3, "stride": 1, "border_mode": "valid"},
     "AveragePooling1D", {"pool_size": 3, "strides": 1, "padding": "valid"}, ["pool_length", "stride"]),
    ("GlobalAveragePooling2D", {"dim_ordering": "tf"}, "GlobalAveragePooling2D", {"data_format": "channels_last"}, []),
    ("UpSampling1D", {"length": 2}, "UpSampling1D", {"size": 2}, ["length"]),
    ("UpSampling2D", {"size": [2, 2], "dim_ordering": "default"}, "UpSampling2D", {"data_format": None}, []),
    ("ZeroPadding2D", {"padding": [1, 2, 3, 4], "dim_ordering": "th"}, "ZeroPadding2D",
     {"padding": [[1, 2], [3, 4]], "data_format": "channels_first"}, []),
    ("ZeroPadding2D", {"padding": {"top_pad": 1, "left_pad": 2}}, "ZeroPadding2D", {"padding": [[1, 0], [2, 0]]}, []),
    ("ZeroPadding2D", {"padding": [1, 1]}, "ZeroPadding2D", {"padding": [1, 1]}, []),
    ("PReLU", {"init": "zero"}, "PReLU", {"alpha_initializer": "zero"}, ["init"]),
    ("InputLayer", {"batch_input_shape": [None, 3], "input_dtype": "int32"},
     "InputLayer", {"batch_shape": [None, 3], "dtype": "int32"}, ["input_dtype"]),
    ("Merge", {"name": "m", "mode": "sum", "concat_axis": -1, "dot_axes": -1}, "Add", {"name": "m"}, ["mode"]),
    ("Merge", {"mode": "mul"}, "Multiply", {}, []),
    ("Merge", {"mode": "ave"}, "Average", {}, []),
    ("Merge", {"mode": "max"}, "Maximum", {}, []),
    ("Merge", {"mode": "concat", "concat_axis": 1}, "Concatenate", {"axis": 1}, ["concat_axis"]),
    ("Merge", {"mode": "dot", "dot_axes": [1, 1]}, "Dot", {"axes": [1, 1], "normalize": False}, []),
    ("Merge", {"mode": "cos", "dot_axes": 1}, "Dot", {"axes": 1, "normalize": True}, []),
    ("Merge", {"mode": "gASVAAAAAAAA", "mode_type": "lambda"}, "Merge", {"mode_type": "lambda"}, []),
    ("TimeDistributedDense", {"name": "tdd", "output_dim": 3, "init": "uniform", "input_dim": 2, "input_length": 10},
     "TimeDistributed", {"name": "tdd", "batch_shape": [None, 10, 2]}, ["output_dim"]),
]


@pytest.mark.parametrize("old_class,old,new_class,expected,gone", KERAS1_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(KERAS1_CASES)])
def test_keras1_layer_config_as_keras2_read_it(old_class, old, new_class, expected, gone):
    name, config = dialects.normalize_layer(old_class, dict(old, name=old.get("name", "layer")))
    assert name == new_class
    assert {k: config.get(k, "<absent>") for k in expected} == expected
    assert not set(gone) & set(config)


def test_wrapped_keras1_layers_are_normalized_too():
    name, config = dialects.normalize_layer("Bidirectional", {"name": "b", "merge_mode": "concat", "layer": {
        "class_name": "LSTM", "config": {"name": "lstm", "output_dim": 4, "inner_activation": "sigmoid"}}})
    assert name == "Bidirectional"
    assert config["layer"]["class_name"] == "LSTM"
    assert config["layer"]["config"]["units"] == 4 and config["layer"]["config"]["recurrent_activation"] == "sigmoid"
    _, tdd = dialects.normalize_layer("TimeDistributedDense", {"name": "t", "output_dim": 3, "bias": False})
    assert tdd["layer"]["class_name"] == "Dense"
    assert tdd["layer"]["config"]["units"] == 3 and tdd["layer"]["config"]["use_bias"] is False


@pytest.mark.parametrize("build", ["dense", "embedding", "lstm", "conv", "gru"])
def test_keras2_and_keras3_configs_are_not_changed(build):
    """No Keras 1 argument is a later argument of the same class: tf_keras configs pass unchanged
    (but for the dialect's own batch_shape and a one-element BatchNormalization axis)."""
    import tf_keras

    layer = {
        "dense": lambda: tf_keras.layers.Dense(3, input_shape=(4,)),
        "embedding": lambda: tf_keras.layers.Embedding(10, 4, input_length=7),
        "lstm": lambda: tf_keras.layers.LSTM(4, implementation=1),
        "conv": lambda: tf_keras.layers.Conv2D(2, 3, data_format="channels_first"),
        "gru": lambda: tf_keras.layers.GRU(3, reset_after=True),
    }[build]()
    raw = json.loads(json.dumps(tf_keras.layers.serialize(layer)))
    name, config = dialects.normalize_layer(raw["class_name"], raw["config"])
    assert name == raw["class_name"]
    config.pop("batch_shape", None)
    assert config == raw["config"]


def W(*shape, path="w"):
    return Weight(path=path, shape=shape, dtype="float32")


def gates(n, input_dim, units):
    """Keras 1's per-gate arrays: for each gate W (input_dim, units), U (units, units), b (units,)."""
    out = []
    for g in range(n):
        out += [W(input_dim, units, path=f"l/W{g}"), W(units, units, path=f"l/U{g}"), W(units, path=f"l/b{g}")]
    return out


TH = {"data_format": "channels_first"}
WEIGHT_CASES = [
    # (class, normalized config, Keras 1 stored shapes, Keras 2 shapes) — engine/saving.py by hand
    ("Conv2D", TH, [W(8, 3, 2, 5), W(8)], [(2, 5, 3, 8), (8,)]),
    ("Conv2D", {"data_format": "channels_last"}, [W(2, 5, 3, 8), W(8)], [(2, 5, 3, 8), (8,)]),
    ("Conv1D", {"kernel_size": 3, "filters": 6}, [W(3, 1, 5, 6), W(6)], [(3, 5, 6), (6,)]),  # Keras 1.1+
    ("Conv1D", {"kernel_size": [3], "filters": 6}, [W(6, 5, 3, 1), W(6)], [(3, 5, 6), (6,)]),  # Keras 1.0
    ("Conv3D", TH, [W(4, 2, 3, 3, 1), W(4)], [(3, 3, 1, 2, 4), (4,)]),
    ("Conv2DTranspose", {"data_format": "channels_last"}, [W(3, 3, 4, 8)], [(3, 3, 8, 4)]),
    ("Conv2DTranspose", TH, [W(8, 4, 3, 3)], [(3, 3, 8, 4)]),
    ("SeparableConv2D", TH, [W(2, 3, 5, 5), W(8, 6, 1, 1), W(8)], [(5, 5, 3, 2), (1, 1, 6, 8), (8,)]),
    ("LSTM", {}, gates(4, 5, 4), [(5, 16), (4, 16), (16,)]),
    ("GRU", {}, gates(3, 5, 4), [(5, 12), (4, 12), (12,)]),
    ("LSTM", {}, [W(5, 16), W(4, 16), W(16)], [(5, 16), (4, 16), (16,)]),  # consume_less='gpu': already 3
    ("SimpleRNN", {}, [W(5, 4), W(4, 4), W(4)], [(5, 4), (4, 4), (4,)]),
    ("Bidirectional", {"layer": {"class_name": "GRU", "config": {}}}, gates(3, 5, 4) + gates(3, 5, 4),
     [(5, 12), (4, 12), (12,)] * 2),
    ("TimeDistributed", {"layer": {"class_name": "Conv2D", "config": TH}}, [W(8, 3, 2, 2), W(8)],
     [(2, 2, 3, 8), (8,)]),
]


@pytest.mark.parametrize("class_name,config,stored,expected", WEIGHT_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(WEIGHT_CASES)])
def test_keras1_weight_shapes_as_keras2_loads_them(class_name, config, stored, expected):
    assert [tuple(w.shape) for w in dialects.keras1_weights(class_name, config, stored)] == expected


def test_lstm_gate_paths_name_the_arrays_merged_in_keras2_order():
    merged = dialects.keras1_weights("LSTM", {}, gates(4, 5, 4))
    assert [w.path for w in merged] == ["l/{W0,W2,W1,W3}", "l/{U0,U2,U1,U3}", "l/{b0,b2,b1,b3}"]


def test_only_keras1_files_have_their_weights_converted():
    """Keras 2 took a weights file without keras_version for Keras 1; a Keras 2 file is as stored."""
    report = audited(DATA / "keras2_1_sequential_list_cnn_batchnorm.h5")
    graph = report.inferred.graph
    assert dialects.legacy_weights(graph, "2.1.3") is graph
    assert dialects.is_keras1(None) and dialects.is_keras1("1.2.2") and not dialects.is_keras1("2.2.4")


# ---- the command line -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def th_model_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("th")
    return [keras1_model_file(folder, *pair) for pair in TH_PAIRS]


def test_check_exits_0_or_1_on_every_fixture(th_model_files):
    from typer.testing import CliRunner

    from modelaudit.cli import app

    for path in [DATA / n for n in H5_MODELS + JSON_CONFIGS] + th_model_files:
        result = CliRunner().invoke(app, ["check", str(path)])
        assert result.exit_code in (0, 1), (path.name, result.output)
        assert "cannot read" not in result.output
