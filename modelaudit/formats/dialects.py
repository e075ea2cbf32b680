"""Keras 1, Keras 2 and Keras 3 config differences, normalized once, here.

Everything downstream (infer/, checks/) reads the Keras 3 dialect only.
"""

from __future__ import annotations

from dataclasses import replace

from modelaudit.graph import normalize_dtype  # noqa: F401  (the dtype dialects: read from here too)


def normalize_layer_config(class_name: str, config: dict) -> dict:
    """One layer's config in the Keras 3 dialect. Returns a new dict; the input is not changed."""
    if not isinstance(config, dict):
        return config
    out = dict(config)
    # Keras 2 InputLayer / first layer: batch_input_shape; Keras 3: batch_shape
    if "batch_input_shape" in out and "batch_shape" not in out:
        out["batch_shape"] = out["batch_input_shape"]
    # Keras 2 BatchNormalization may write its axis as a one-element list
    if class_name in ("BatchNormalization", "LayerNormalization") and isinstance(out.get("axis"), list):
        if len(out["axis"]) == 1:
            out["axis"] = out["axis"][0]
    # Wrapped layers (TimeDistributed, Bidirectional) normalize their inner layer too
    for key in ("layer", "backward_layer"):
        inner = out.get(key)
        if isinstance(inner, dict) and isinstance(inner.get("config"), dict):
            inner_class, inner_config = normalize_layer(str(inner.get("class_name", "")), inner["config"])
            out[key] = dict(inner, class_name=inner_class, config=inner_config)
    return out


def renumber_keras2_calls(layers: list, outputs: tuple):
    """Keras 2 numbers the calls of a nested model from 1 when the model was built on an Input:
    its call 0 is the one that built it, which the config leaves out (tf_keras
    functional._should_skip_first_node). Shift those references to count from 0, as Keras 3 does."""
    skip = {
        layer.name
        for layer in layers
        if layer.submodel is not None and layer.submodel.layers and layer.submodel.layers[0].class_name == "InputLayer"
        and not layer.submodel.layers[0].synthetic
    }
    if not skip:
        return layers, outputs

    def fix(ref):
        return replace(ref, call=ref.call - 1) if ref.layer in skip and ref.call > 0 else ref

    new_layers = []
    for layer in layers:
        calls = tuple(replace(call, inputs=tuple(fix(r) for r in call.inputs)) for call in layer.calls)
        new_layers.append(replace(layer, calls=calls))
    return new_layers, tuple(fix(r) for r in outputs)


# ---- Keras 1 and Keras <= 2.2 -------------------------------------------------------------------
# Keras 2 read Keras 1 configs through keras/legacy/interfaces.py: every Keras 1 argument renamed,
# some values converted, a few arguments folded together. The same conversions, once, here.

DIM_ORDERING = {"th": "channels_first", "tf": "channels_last", "default": None}
CONSUME_LESS = {"cpu": 0, "mem": 1, "gpu": 2}

# Keras 1 class names Keras 2 kept as aliases (layers/convolutional.py, legacy/layers.py)
KERAS1_CLASSES = {
    "Convolution1D": "Conv1D",
    "AtrousConvolution1D": "Conv1D",
    "Convolution2D": "Conv2D",
    "AtrousConvolution2D": "Conv2D",
    "Convolution3D": "Conv3D",
    "Deconvolution2D": "Conv2DTranspose",
    "SeparableConvolution2D": "SeparableConv2D",
}

_WEIGHTED = [
    ("init", "kernel_initializer"), ("W_regularizer", "kernel_regularizer"), ("b_regularizer", "bias_regularizer"),
    ("W_constraint", "kernel_constraint"), ("b_constraint", "bias_constraint"), ("bias", "use_bias"),
]
_CONV = [
    ("nb_filter", "filters"), ("subsample", "strides"), ("border_mode", "padding"), ("dim_ordering", "data_format"),
    ("atrous_rate", "dilation_rate"),
]
_RECURRENT = [
    ("output_dim", "units"), ("init", "kernel_initializer"), ("inner_init", "recurrent_initializer"),
    ("inner_activation", "recurrent_activation"), ("W_regularizer", "kernel_regularizer"),
    ("b_regularizer", "bias_regularizer"), ("U_regularizer", "recurrent_regularizer"), ("dropout_W", "dropout"),
    ("dropout_U", "recurrent_dropout"), ("consume_less", "implementation"),
]
_ORDERED = [("dim_ordering", "data_format")]
_POOL1D = [("pool_length", "pool_size"), ("stride", "strides"), ("border_mode", "padding")]
_POOL = [("border_mode", "padding"), ("dim_ordering", "data_format")]
_RATE = [("p", "rate")]

# Keras 2 class name -> the (Keras 1 name, Keras 2 name) pairs its legacy interface renamed
KERAS1_ARGUMENTS = {
    "Dense": [("output_dim", "units")] + _WEIGHTED,
    "Dropout": _RATE, "GaussianDropout": _RATE, "SpatialDropout1D": _RATE,
    "SpatialDropout2D": _RATE + _ORDERED, "SpatialDropout3D": _RATE + _ORDERED,
    "GaussianNoise": [("sigma", "stddev")],
    "Embedding": [
        ("init", "embeddings_initializer"), ("W_regularizer", "embeddings_regularizer"),
        ("W_constraint", "embeddings_constraint"),
    ],
    "PReLU": [("init", "alpha_initializer")],
    "BatchNormalization": [("beta_init", "beta_initializer"), ("gamma_init", "gamma_initializer")],
    "MaxPooling1D": _POOL1D, "AveragePooling1D": _POOL1D,
    "MaxPooling2D": _POOL, "AveragePooling2D": _POOL, "MaxPooling3D": _POOL, "AveragePooling3D": _POOL,
    "GlobalMaxPooling2D": _ORDERED, "GlobalAveragePooling2D": _ORDERED,
    "GlobalMaxPooling3D": _ORDERED, "GlobalAveragePooling3D": _ORDERED,
    "UpSampling1D": [("length", "size")], "UpSampling2D": _ORDERED, "UpSampling3D": _ORDERED,
    "ZeroPadding2D": _ORDERED, "ZeroPadding3D": _ORDERED, "Cropping2D": _ORDERED, "Cropping3D": _ORDERED,
    "SimpleRNN": _RECURRENT, "GRU": _RECURRENT, "LSTM": _RECURRENT,
    "Conv1D": [
        ("nb_filter", "filters"), ("filter_length", "kernel_size"), ("subsample_length", "strides"),
        ("border_mode", "padding"), ("atrous_rate", "dilation_rate"),
    ] + _WEIGHTED,
    "Conv2D": _CONV + _WEIGHTED, "Conv3D": _CONV + _WEIGHTED, "Conv2DTranspose": _CONV + _WEIGHTED,
    "SeparableConv2D": _CONV + _WEIGHTED[1:],
    "ConvLSTM2D": _CONV + _RECURRENT[1:] + [("bias", "use_bias")],
    "InputLayer": [("input_dtype", "dtype")],
}

# Keras 1 Merge(mode=...) -> the Keras 2 merge layer computing that mode (Keras 2 kept Merge itself
# in legacy/layers.py; Keras 3 has none)
MERGE_MODES = {
    "sum": "Add", "mul": "Multiply", "concat": "Concatenate", "ave": "Average", "max": "Maximum",
    "dot": "Dot", "cos": "Dot",
}


def model_config(config):
    """A Sequential's config as Keras <= 2.2.2 wrote it, a bare list of layers, as an object."""
    if isinstance(config, list):  # Keras 2 Sequential.from_config: no name, no build_input_shape
        return {"layers": config}
    return config


# Keras 1 layers whose config records no dim_ordering (all of 1.0 to 1.2): Keras built them with
# keras.json's image_dim_ordering, as it built the model's convolutions, which record it
ORDERLESS = ("UpSampling2D", "UpSampling3D", "ZeroPadding2D", "ZeroPadding3D", "Cropping2D", "Cropping3D")


def keras1_orderings(layers: list) -> list:
    """A model's layer configs, those of ORDERLESS given the one dim_ordering the others record."""
    recorded = {
        item["config"].get("dim_ordering")
        for item in layers if isinstance(item, dict) and isinstance(item.get("config"), dict)
        and isinstance(item["config"].get("dim_ordering"), str)
    }
    if len(recorded) != 1:
        return layers
    ordering = recorded.pop()
    out = []
    for item in layers:
        config = item.get("config") if isinstance(item, dict) else None
        if (isinstance(config, dict) and item.get("class_name") in ORDERLESS
                and "dim_ordering" not in config and "data_format" not in config):
            item = dict(item, config=dict(config, dim_ordering=ordering))
        out.append(item)
    return out


def normalize_layer(class_name: str, config: dict) -> tuple[str, dict]:
    """One layer (class name and config) in the Keras 3 dialect, whatever Keras wrote it."""
    if isinstance(config, dict):
        class_name, config = keras1_layer(class_name, config)
    return class_name, normalize_layer_config(class_name, config)


def keras1_layer(class_name: str, config: dict) -> tuple[str, dict]:
    """A Keras 1 layer as Keras 2 read it: class and arguments renamed, values converted. Keras 2
    and 3 configs pass unchanged: no Keras 1 argument is a later argument of the same class."""
    if class_name == "Merge":
        return _merge(config)
    if class_name == "TimeDistributedDense":
        return _time_distributed_dense(config)
    class_name = KERAS1_CLASSES.get(class_name, class_name)
    out = dict(config)
    for old, new in KERAS1_ARGUMENTS.get(class_name, ()):
        if old in out:
            value = out.pop(old)
            out.setdefault(new, value)
    # Keras 1 input_dtype is the dtype of the input Keras made for the layer, not of its weights
    out.pop("input_dtype", None)
    if isinstance(out.get("data_format"), str) and out["data_format"] in DIM_ORDERING:
        out["data_format"] = DIM_ORDERING[out["data_format"]]
    if isinstance(out.get("implementation"), str) and out["implementation"] in CONSUME_LESS:
        out["implementation"] = CONSUME_LESS[out["implementation"]]
    for key in [k for k in out if k.endswith("_regularizer")]:
        out[key] = _regularizer(out[key])
    _kernel_size(class_name, out)
    _input_shape(class_name, out)
    _keras1_defaults(class_name, out)
    return class_name, out


# Keras 1 regularizers serialized as {"name": class, "l1": .., "l2": ..}: all L1L2 in Keras 2
KERAS1_REGULARIZERS = ("WeightRegularizer", "ActivityRegularizer", "L1L2Regularizer")


def _regularizer(value):
    if isinstance(value, dict) and "class_name" not in value and value.get("name") in KERAS1_REGULARIZERS:
        return {"class_name": "L1L2", "config": {"l1": value.get("l1", 0.0), "l2": value.get("l2", 0.0)}}
    return value


def _kernel_size(class_name: str, out: dict) -> None:
    # conv2d_args_preprocessor / conv3d_args_preprocessor: nb_row, nb_col (kernel_dim1..3) -> kernel_size
    if "nb_row" in out and "nb_col" in out:
        rows, cols = out.pop("nb_row"), out.pop("nb_col")
        out.setdefault("kernel_size", [rows, cols])
    dims = ("kernel_dim1", "kernel_dim2", "kernel_dim3")
    if all(k in out for k in dims):
        out.setdefault("kernel_size", [out.pop(k) for k in dims])


def _input_shape(class_name: str, out: dict) -> None:
    """input_dim (and input_length) -> the layer's input shape, as Keras 2's legacy interfaces did."""
    if class_name == "Embedding":
        length = out.get("input_length")
        if isinstance(length, int) and out.get("batch_shape") is None and out.get("batch_input_shape") is None:
            out["batch_shape"] = [None, length]  # Embedding.__init__: input_shape (input_length,)
        return
    if "input_dim" not in out or class_name in ("Bidirectional", "TimeDistributed"):
        return
    if class_name in ("Conv1D", "SimpleRNN", "GRU", "LSTM"):
        dim, length = out.pop("input_dim"), out.pop("input_length", None)
        shape = [None, length, dim]
    elif class_name == "Dense":
        dim = out.pop("input_dim")
        shape = [None, dim]
    else:
        return
    if isinstance(dim, int) and out.get("batch_shape") is None and out.get("batch_input_shape") is None:
        out["batch_shape"] = shape


def _keras1_defaults(class_name: str, out: dict) -> None:
    """Arguments Keras 1 had and later Keras dropped or defaults differently."""
    if class_name == "BatchNormalization":
        out.pop("mode", None)  # Keras 2 took mode 0 only; the weights are the same for all modes
    elif class_name == "Embedding":
        out.pop("dropout", None)
    elif class_name == "Conv2DTranspose":
        out.pop("output_shape", None)
    elif class_name == "SeparableConv2D" and "init" in out:
        init = out.pop("init")
        out.setdefault("depthwise_initializer", init)
        out.setdefault("pointwise_initializer", init)
    elif class_name == "ZeroPadding2D":
        out["padding"] = _zero_padding(out.get("padding"))
    if class_name in ("LSTM", "ConvLSTM2D") and "forget_bias_init" in out:
        out["unit_forget_bias"] = out.pop("forget_bias_init") == "one"
    if class_name == "GRU" and "reset_after" not in out:
        # Keras <= 2.0 wrote no reset_after and meant False; Keras 3 defaults to True
        out["reset_after"] = False


def _zero_padding(padding):
    # Keras 1.2 ZeroPadding2D: (rows, cols), (top, bottom, left, right) or a dict of those four
    if isinstance(padding, dict):
        keys = ("top_pad", "bottom_pad", "left_pad", "right_pad")
        padding = [padding.get(k, 0) for k in keys]
    if isinstance(padding, list) and len(padding) == 4:
        return [padding[:2], padding[2:]]
    return padding


def _merge(config: dict) -> tuple[str, dict]:
    """Keras 1 Merge -> the merge layer of its mode. A Merge of a Python function, or one holding
    its branch models (a Keras 1 Sequential's first layer), stays a Merge: not recomputed."""
    mode = config.get("mode", "sum")
    if config.get("mode_type", "raw") != "raw" or not isinstance(mode, str) or mode not in MERGE_MODES:
        return "Merge", config
    if config.get("layers") is not None:
        return "Merge", config
    out = {k: config[k] for k in ("name", "trainable") if k in config}
    if mode == "concat":
        out["axis"] = config.get("concat_axis", -1)
    elif mode in ("dot", "cos"):
        out["axes"] = config.get("dot_axes", -1)
        out["normalize"] = mode == "cos"
    return MERGE_MODES[mode], out


# ---- Keras 1 stored weights -----------------------------------------------------------------------
# Keras 2 loaded Keras 1 weights through engine/saving.py preprocess_weights_for_loading: kernels
# transposed, per-gate recurrent arrays concatenated. The same, on stored shapes (never data), so
# that the weights compare with what the normalized config implies. Theano's kernel flips change no
# shape. Keras 2 took a weights file without a keras_version for Keras 1, as here.

# (gates in file order, their order in the Keras 2 kernel) for Keras 1's per-gate arrays
_GATE_ORDER = {"GRU": (3, (0, 1, 2)), "LSTM": (4, (0, 2, 1, 3)), "ConvLSTM2D": (4, (0, 2, 1, 3))}


def is_keras1(keras_version) -> bool:
    return keras_version is None or (isinstance(keras_version, str) and keras_version.startswith("1"))


def legacy_weights(graph, keras_version, backend=None):
    """The graph with Keras 1 stored weight shapes in the Keras 2 layout; other files unchanged.
    `backend` only decides Theano kernel flips, which keep the shape."""
    if not is_keras1(keras_version):
        return graph
    from modelaudit.nesting import run

    return run(_keras1_graph(graph))


def _keras1_graph(graph):
    """Steps (modelaudit/nesting.py) returning the converted graph; nested models by yielding theirs."""
    layers = []
    for layer in graph.layers:
        if layer.submodel is not None:
            layer = replace(layer, submodel=(yield _keras1_graph(layer.submodel)))
        elif layer.weights:
            weights = keras1_weights(layer.class_name, layer.config, list(layer.weights))
            layer = replace(layer, weights=tuple(weights))
        layers.append(layer)
    return replace(graph, layers=tuple(layers))


def keras1_weights(class_name: str, config: dict, weights: list) -> list:
    """One layer's stored Weights (Keras 1 order) -> as Keras 2 holds them."""
    if class_name == "Bidirectional":
        inner_class, inner_config = _inner(config, "layer")
        half = len(weights) // 2
        back_class, back_config = _inner(config, "backward_layer") if config.get("backward_layer") else (
            inner_class, inner_config)
        return (keras1_weights(inner_class, inner_config, weights[:half])
                + keras1_weights(back_class, back_config, weights[half:]))
    if class_name == "TimeDistributed":
        return keras1_weights(*_inner(config, "layer"), weights)
    if class_name in _GATE_ORDER:
        weights = _merge_gates(class_name, weights)
    if weights and len(weights[0].shape) >= 3:
        weights = [replace(weights[0], shape=_keras1_kernel(class_name, config, tuple(weights[0].shape)))] + [
            _pointwise(class_name, config, w) for w in weights[1:]]
    return weights


def _inner(config: dict, key: str) -> tuple[str, dict]:
    inner = config.get(key)
    if not isinstance(inner, dict) or not isinstance(inner.get("config"), dict):
        return "", {}
    return str(inner.get("class_name", "")), inner["config"]


def _merge_gates(class_name: str, weights: list) -> list:
    """Keras 1's (W, U, b) per gate -> kernel, recurrent_kernel, bias concatenated on the last axis."""
    gates, order = _GATE_ORDER[class_name]
    if len(weights) != 3 * gates:
        return weights
    merged = []
    for role in range(3):  # W, U, b
        parts = [weights[3 * g + role] for g in order]
        if any(len(p.shape) != len(parts[0].shape) or tuple(p.shape[:-1]) != tuple(parts[0].shape[:-1])
               for p in parts):
            return weights  # not Keras 1's gates after all: compared as stored
        last = sum(int(p.shape[-1]) for p in parts)
        path = _joined_path([p.path for p in parts])
        merged.append(replace(parts[0], path=path, shape=tuple(parts[0].shape[:-1]) + (last,)))
    return merged


def _joined_path(paths: list) -> str:
    """`group/a` + `group/b` -> `group/{a,b}`: the datasets one Keras 2 variable was made of."""
    head = paths[0].rsplit("/", 1)[0] + "/" if "/" in paths[0] else ""
    if all(p.startswith(head) for p in paths):
        return head + "{" + ",".join(p[len(head):] for p in paths) + "}"
    return "{" + ",".join(paths) + "}"


def _channels_first(config: dict) -> bool:
    return config.get("data_format") == "channels_first"


def _keras1_kernel(class_name: str, config: dict, shape: tuple) -> tuple:
    """A Keras 1 convolution kernel's shape -> Keras 2's."""
    if class_name == "Conv1D" and len(shape) == 4:
        size = config.get("kernel_size")
        size = size[0] if isinstance(size, list) and size else size
        filters = config.get("filters")
        if shape[:2] != (size, 1) or shape[3] != filters:  # Keras 1.0: (filters, input_dim, length, 1)
            if shape[0] == filters and shape[2:] == (size, 1):
                shape = (shape[2], shape[3], shape[1], shape[0])
        return (shape[0],) + shape[2:] if shape[1] == 1 else shape  # Keras 1.1+: (length, 1, input_dim, filters)
    if class_name in ("Conv2D", "SeparableConv2D", "ConvLSTM2D") and len(shape) == 4 and _channels_first(config):
        return (shape[2], shape[3], shape[1], shape[0])  # (filters, stack, rows, cols) -> (rows, cols, stack, filters)
    if class_name == "Conv2DTranspose" and len(shape) == 4:
        if _channels_first(config):
            return (shape[2], shape[3], shape[0], shape[1])
        return (shape[0], shape[1], shape[3], shape[2])
    if class_name == "Conv3D" and len(shape) == 5 and _channels_first(config):
        return (shape[2], shape[3], shape[4], shape[1], shape[0])
    return shape


def _pointwise(class_name: str, config: dict, weight):
    """The second kernel of a layer with two: SeparableConv2D's pointwise kernel, ConvLSTM2D's
    recurrent kernel, both (filters, stack, rows, cols) in a Keras 1 "th" file."""
    if class_name in ("SeparableConv2D", "ConvLSTM2D") and len(weight.shape) == 4 and _channels_first(config):
        s = tuple(weight.shape)
        return replace(weight, shape=(s[2], s[3], s[1], s[0]))
    return weight


def _time_distributed_dense(config: dict) -> tuple[str, dict]:
    """Keras 1's TimeDistributedDense (gone in Keras 2) is TimeDistributed(Dense): the same W and b."""
    inner = {k: v for k, v in config.items() if k not in ("name", "trainable", "batch_input_shape", "input_length")}
    inner.pop("input_dim", None)
    _, dense = keras1_layer("Dense", inner)
    out = {k: config[k] for k in ("name", "trainable", "batch_input_shape") if k in config}
    dim = config.get("input_dim")
    if isinstance(dim, int) and out.get("batch_input_shape") is None:
        out["batch_shape"] = [None, config.get("input_length"), dim]
    out["layer"] = {"class_name": "Dense", "config": dict(dense, name=str(config.get("name", "dense")) + "_dense")}
    return "TimeDistributed", out
