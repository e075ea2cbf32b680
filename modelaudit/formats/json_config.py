"""A model config (as `model.to_json()` writes it, or as config.json inside a .keras) -> ModelGraph.

Every reader ends here: the .keras and .h5 readers hand over the config they found, then attach the
stored weights to the graph this module builds. The config is data: nothing named in it is imported.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any, Optional

from modelaudit.errors import ModelReadError, NotKerasJSON
from modelaudit.formats import dialects
from modelaudit.graph import (  # noqa: F401  (positional_constants, topological_order: read from here too)
    POSITIONAL,
    TENSOR,
    Call,
    Layer,
    ModelGraph,
    Objective,
    SourceFacts,
    TensorRef,
    is_shape,
    positional_constants,
    shape_or_none,
    topological_order,
)
from modelaudit.nesting import Steps, run

# Bounds that hold against hostile files (DESIGN principle 3).
MAX_CONFIG_BYTES = 64 * 1024 * 1024
# Keras 3 saves and loads models nested 350 levels deep (it raises Python's recursion limit to 3,000 and
# fails near 420); every walk here over nested models is iterative (modelaudit/nesting.py), so the bound
# only needs to lie far beyond that.
MAX_MODEL_DEPTH = 1024
# JSON nesting other than models in models: a layer config, a compile config, call arguments. The steps
# from a layer to the layers of the model it is (layer -> "config" -> "layers" -> layer) do not count.
MAX_JSON_DEPTH = 200
# The whole document: every model level costs 3 JSON levels.
MAX_DOCUMENT_DEPTH = 3 * MAX_MODEL_DEPTH + MAX_JSON_DEPTH
# Layers at every depth. Each costs 0.1 to 0.3 ms and about 7 KB to read, recompute and check:
# 15,000 keeps a hostile config under 5 s and 512 MiB (bench/FUZZ.md); the largest real Keras
# models have a few thousand.
MAX_LAYERS = 15_000
# Values in one JSON document (bounded by counting `,`, `[` and `{`). Tiny tokens cost far more as
# Python objects than as text (`[],` is 3 bytes and 64 as a list): 16 MiB of them take 430 MiB.
# Real configs hold 40 to 80 values a layer.
MAX_JSON_VALUES = 2_000_000
# Layer calls (inbound nodes) at every depth: a shared layer is called a few times, not 90,000.
MAX_CALLS = 50_000

MODEL_CLASSES = {"Sequential", "Functional", "Model"}


def loads(text: bytes | str, what: str = "config") -> Any:
    """json.loads with the size and depth bounds, and one-line errors."""
    if len(text) > MAX_CONFIG_BYTES:
        raise ModelReadError(f"{what} is larger than {MAX_CONFIG_BYTES // (1024 * 1024)} MiB")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ModelReadError(f"{what} is not UTF-8 text") from None
    if len(text) > MAX_JSON_VALUES:
        values = text.count(",") + text.count("[") + text.count("{")
        if values > MAX_JSON_VALUES:
            raise ModelReadError(f"{what} holds more than {MAX_JSON_VALUES:,} values ({values:,} separators)")
    try:
        data = _decode(text)
    except RecursionError:
        raise ModelReadError(f"{what} is nested deeper than {MAX_DOCUMENT_DEPTH} levels") from None
    except ValueError as exc:
        raise ModelReadError(f"{what} is not valid JSON ({exc})") from None
    _check_depth(data, what)
    if _SURROGATE.search(text):
        data = _escape_surrogates(data)
    return data


def _decode(text: str) -> Any:
    """json.loads, with room for MAX_DOCUMENT_DEPTH levels: the C decoder counts one Python frame a
    level (a few hundred bytes of C stack each, so 3,272 levels take about 1 MiB), and Python's default
    recursion limit (1,000) would refuse models Keras loads. Deeper documents still raise RecursionError."""
    limit = sys.getrecursionlimit()
    needed = _frames() + MAX_DOCUMENT_DEPTH + 64
    if needed <= limit:
        return json.loads(text)
    sys.setrecursionlimit(needed)
    try:
        return json.loads(text)
    finally:
        sys.setrecursionlimit(limit)


def _frames() -> int:
    """The current Python stack depth (frames), counted without recursion."""
    frame, count = sys._getframe(), 0
    while frame is not None:
        frame, count = frame.f_back, count + 1
    return count


# A lone surrogate ("\ud800" in the JSON text) is a str no UTF-8 output can hold: every report,
# hash and file written would fail on it. Such strings are kept as the escape text they were.
_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]|[\ud800-\udfff]")


def _escape_surrogates(node: Any) -> Any:
    """The document with each string holding a surrogate escaped; iterative, as deep as the document."""
    def fix(value):
        if isinstance(value, str) and _SURROGATE.search(value):
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
        return value

    if not isinstance(node, (dict, list)):
        return fix(node)
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key in list(item):  # keys too: rebuilt in order so the dict keeps its key order
                value = item.pop(key)
                item[fix(key)] = value
            entries = item.items()
        else:
            entries = enumerate(item)
        for key, value in list(entries):
            if isinstance(value, (dict, list)):
                stack.append(value)
            elif isinstance(value, str):
                item[key] = fix(value)
    return node


def _check_depth(data: Any, what: str) -> None:
    # Iterative, so that a deep document cannot exhaust the stack here either. Only containers are
    # stacked: a scalar cannot be deeper than the container holding it (a third of the time of
    # reading a 10,000-layer config went to stacking every scalar).
    # `depth` leaves out the model-in-model steps (a layer's "config", its "layers", the layer in it):
    # `step` says how far along that path a node is (1: a dict's "config" dict, 2: its "layers" list).
    if not isinstance(data, (dict, list)):
        return
    stack = [(data, 1, 0)]
    pop, push = stack.pop, stack.append
    while stack:
        node, depth, step = pop()
        if depth > MAX_JSON_DEPTH:
            raise ModelReadError(f"{what} is nested deeper than {MAX_JSON_DEPTH} levels")
        depth += 1
        if isinstance(node, dict):
            config, layers = node.get("config"), node.get("layers") if step == 1 else None
            for v in node.values():
                if isinstance(v, (dict, list)):
                    # by identity: the values are the node's own, so `is` finds the key without items()
                    push((v, depth, 1 if v is config and isinstance(v, dict) else
                          2 if v is layers and isinstance(v, list) else 0))
        else:
            inner = depth - 3 if step == 2 else depth  # a layer of a nested model: as deep as its model
            for v in node:
                if isinstance(v, (dict, list)):
                    push((v, inner, 0))


def read(path: str) -> ModelGraph:
    import os

    size = os.path.getsize(path)
    if size > MAX_CONFIG_BYTES:
        raise ModelReadError(f"JSON config is larger than {MAX_CONFIG_BYTES // (1024 * 1024)} MiB")
    with open(path, "rb") as f:
        data = loads(f.read(), "JSON config")
    if isinstance(data, str):
        # `json.dump(model.to_json(), f)`: the config as a JSON string inside JSON. Once, not again.
        data = loads(data, "JSON config (a JSON string holding the config)")
    from modelaudit.formats import tfjs

    if tfjs.is_layers_model(data):
        return tfjs.read(path, data, size)
    if not (isinstance(data, dict) and (isinstance(data.get("class_name"), str) or "layers" in data)):
        raise NotKerasJSON("not a Keras model config: the JSON holds no class_name or layers")
    return graph_from_config(
        data, format="json-config", source=SourceFacts(file_size=size, keras_version=_str(data, "keras_version"))
    )


def _str(data: Any, key: str) -> Optional[str]:
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


# ---- model config -> graph ---------------------------------------------------------------------


def graph_from_config(
    data: Any,
    *,
    format: str,
    source: SourceFacts = SourceFacts(),
    compile_config: Any = None,
) -> ModelGraph:
    """The whole model: top-level object {class_name, config, compile_config?} -> ModelGraph."""
    if not isinstance(data, dict):
        raise ModelReadError("model config is not a JSON object")
    if "class_name" not in data and "layers" in data:
        data = {"class_name": "Functional" if "input_layers" in data else "Sequential", "config": data}
    if not isinstance(data.get("class_name"), str):
        raise ModelReadError("model config has no class_name")
    if compile_config is None:
        compile_config = data.get("compile_config")
    counter = [0, 0]  # layers, calls
    graph = run(_model(data, format=format, depth=0, counter=counter))
    objective = objective_from(compile_config)
    from dataclasses import replace

    return replace(graph, objective=objective, config=data, source=source)


def _model(data: dict, *, format: str, depth: int, counter: list) -> Steps:
    """Steps (modelaudit/nesting.py) returning the ModelGraph of one (sub)model."""
    if depth > MAX_MODEL_DEPTH:
        raise ModelReadError(f"models nested deeper than {MAX_MODEL_DEPTH} levels")
    class_name = data.get("class_name")
    config = dialects.model_config(data.get("config"))
    if not isinstance(config, dict):
        raise ModelReadError(f"{class_name}: config is not an object")
    name = config.get("name") if isinstance(config.get("name"), str) else str(class_name).lower()
    layers_cfg = config.get("layers")
    if layers_cfg is None:
        # A subclassed model saves only its constructor arguments: no graph to rebuild.
        return ModelGraph(name=name, class_name=class_name, format=format, layers=(), inputs=(), outputs=(), opaque=True)
    if not isinstance(layers_cfg, list):
        raise ModelReadError(f"model '{name}': layers is not a list")
    counter[0] += len(layers_cfg)
    if counter[0] > MAX_LAYERS:
        raise ModelReadError(f"more than {MAX_LAYERS} layers")

    sequential = class_name == "Sequential" or ("input_layers" not in config and "output_layers" not in config)
    layers_cfg = dialects.keras1_orderings(layers_cfg)
    layers = []
    for i, item in enumerate(layers_cfg):
        layers.append((yield from _layer(item, format=format, depth=depth, counter=counter, index=i)))
    names = [layer.name for layer in layers]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise ModelReadError(f"model '{name}': two layers are named '{dup}'")
    if sequential:
        return _sequential(name, class_name, format, layers, config)
    inputs = _refs(config.get("input_layers"), "input_layers", name)
    outputs_raw = config.get("output_layers")
    outputs = _refs(outputs_raw, "output_layers", name)
    if any(isinstance(item, dict) and _keras2_nodes(item.get("inbound_nodes")) for item in layers_cfg):
        layers, outputs = dialects.renumber_keras2_calls(layers, outputs)
    if isinstance(outputs_raw, dict):
        output_names = tuple(str(k) for k in outputs_raw)
    else:
        output_names = tuple(ref.layer for ref in outputs)
    graph = ModelGraph(
        name=name, class_name=class_name, format=format, layers=tuple(layers), inputs=inputs,
        outputs=outputs, output_names=output_names,
    )
    _check_references(graph)
    return graph


def _sequential(name, class_name, format, layers: list[Layer], config: dict) -> ModelGraph:
    if not layers:
        return ModelGraph(name=name, class_name=class_name, format=format, layers=(), inputs=(), outputs=(), sequential=True)
    if layers[0].class_name != "InputLayer":
        shape = layers[0].config.get("batch_shape") or config.get("build_input_shape") or layers[0].build_input_shape
        if is_shape(shape):
            synthetic = Layer(
                name=f"{name}_input", class_name="InputLayer", config={"batch_shape": list(shape), "name": f"{name}_input"},
                synthetic=True,
            )
            layers = [synthetic] + layers
    chained = [layers[0]]
    prev = layers[0]
    for layer in layers[1:]:
        if layer.class_name == "InputLayer":
            raise ModelReadError(f"Sequential '{name}': an InputLayer after the first layer ('{layer.name}')")
        call = Call(inputs=(TensorRef(prev.name, 0, 0),), input_shapes=(shape_or_none(layer.build_input_shape),))
        layer = _replace(layer, calls=(call,))
        chained.append(layer)
        prev = layer
    first = chained[0]
    inputs = (TensorRef(first.name, 0, 0),)
    return ModelGraph(
        name=name, class_name=class_name, format=format, layers=tuple(chained), inputs=inputs,
        outputs=(TensorRef(prev.name, 0, 0),), output_names=(prev.name,), sequential=True,
    )


def _replace(layer: Layer, **changes) -> Layer:
    from dataclasses import replace

    return replace(layer, **changes)


def _layer(item: Any, *, format: str, depth: int, counter: list, index: int) -> Steps:
    """Steps returning one Layer; a nested model's graph is built by yielding its own Steps."""
    if not isinstance(item, dict):
        raise ModelReadError(f"layer #{index} is not an object")
    class_name = item.get("class_name")
    if not isinstance(class_name, str):
        raise ModelReadError(f"layer #{index} has no class_name")
    registered = item.get("registered_name")
    if ">" in class_name and not isinstance(registered, str):
        # Keras 2's legacy serialization (.h5) names a registered class by its registered name
        # "Package>Class" (InceptionResNetV2's "Custom>CustomScaleLayer"); Keras 3 writes class_name
        # "Class" and registered_name "Package>Class". Read both the Keras 3 way.
        registered, class_name = class_name, class_name.split(">", 1)[1]
    raw_config = item.get("config")
    if class_name in MODEL_CLASSES:
        raw_config = dialects.model_config(raw_config)
    if not isinstance(raw_config, dict):
        raise ModelReadError(f"layer #{index} ({class_name}): config is not an object")
    name = item.get("name", raw_config.get("name"))
    if not isinstance(name, str) or not name:
        raise ModelReadError(f"layer #{index} ({class_name}) has no name")
    class_name, config = dialects.normalize_layer(class_name, raw_config)
    if class_name == "InputLayer" and config.get("batch_shape") is not None and not is_shape(config["batch_shape"]):
        # A model input without a shape: nothing downstream can be recomputed or compared.
        raise ModelReadError(f"layer '{name}' (InputLayer): batch_shape is not a list of integers and nulls")
    build = item.get("build_config")
    build_input_shape = build.get("input_shape") if isinstance(build, dict) else None
    submodel = None
    # a Keras 1 Merge may hold its branch models (`layers`): not a model of its own
    if class_name in MODEL_CLASSES or (isinstance(raw_config.get("layers"), list) and class_name != "Merge"):
        submodel = yield _model(item, format=format, depth=depth + 1, counter=counter)
    nodes = item.get("inbound_nodes")
    if isinstance(nodes, list):
        counter[1] += len(nodes)
        if counter[1] > MAX_CALLS:
            raise ModelReadError(f"more than {MAX_CALLS} layer calls (inbound nodes)")
    calls = _calls(nodes, name)
    module = item.get("module")
    return Layer(
        name=name, class_name=class_name, config=config,
        module=module if isinstance(module, str) else None,
        registered_name=registered if isinstance(registered, str) else None,
        calls=calls, build_input_shape=build_input_shape, submodel=submodel,
    )


# ---- inbound nodes: both dialects ------------------------------------------------------------

# tf_keras writes a positional constant in place of a tensor as [_CONSTANT, -1, value, kwargs].
_CONSTANT = "_CONSTANT_VALUE"


def _calls(nodes: Any, layer: str) -> tuple[Call, ...]:
    if nodes is None:
        return ()
    if not isinstance(nodes, list):
        raise ModelReadError(f"layer '{layer}': inbound_nodes is not a list")
    calls = []
    for node in nodes:
        if _keras2_dict_node(node):  # Keras 2, a layer called on a dict: {"a": [name, node, tensor, kwargs]}
            calls.append(_call_keras2(node, layer))
        elif isinstance(node, dict):  # Keras 3: {"args": [...], "kwargs": {...}}
            calls.append(_call_keras3(node, layer))
        elif isinstance(node, list):  # Keras 2: [[name, node, tensor, kwargs], ...] or one bare entry
            calls.append(_call_keras2(node, layer))
        else:
            raise ModelReadError(f"layer '{layer}': an inbound node is neither a list nor an object")
    return tuple(calls)


def _keras2_nodes(nodes: Any) -> bool:
    return isinstance(nodes, list) and any(isinstance(node, list) or _keras2_dict_node(node) for node in nodes)


def _keras2_dict_node(node: Any) -> bool:
    return (
        isinstance(node, dict) and bool(node) and "args" not in node and "kwargs" not in node
        and all(_is_entry(v) for v in node.values())
    )


def _keras_tensor(obj: Any) -> bool:
    return isinstance(obj, dict) and obj.get("class_name") == "__keras_tensor__"


def _call_keras3(node: dict, layer: str) -> Call:
    refs: list[TensorRef] = []
    shapes: list = []

    def collect(obj: Any) -> Any:
        """Append the tensors found in obj; obj with each tensor replaced by TENSOR."""
        if _keras_tensor(obj):
            cfg = obj.get("config") or {}
            refs.append(_history(cfg.get("keras_history"), layer))
            shapes.append(shape_or_none(cfg.get("shape")))
            return TENSOR
        if isinstance(obj, list):
            return [collect(item) for item in obj]
        if isinstance(obj, dict):
            return {key: collect(item) for key, item in obj.items()}
        return obj

    args = node.get("args", [])
    kwargs = node.get("kwargs", {})
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        raise ModelReadError(f"layer '{layer}': an inbound node has malformed args/kwargs")
    templates = {POSITIONAL: collect(args)}
    tensor_kwargs = []
    for key, value in kwargs.items():
        before = len(refs)
        templates[key] = collect(value)
        tensor_kwargs.extend([key] * (len(refs) - before))
    return Call(inputs=tuple(refs), input_shapes=tuple(shapes), kwargs=templates, tensor_kwargs=tuple(tensor_kwargs))


def _is_history(obj: Any) -> bool:
    return (
        isinstance(obj, list) and len(obj) == 3 and isinstance(obj[0], str)
        and isinstance(obj[1], int) and isinstance(obj[2], int)
    )


def _is_entry(obj: Any) -> bool:
    """One Keras 2 node entry, [name, node, tensor] or [name, node, tensor, kwargs] (tf_keras's
    tf_utils.convert_inner_node_data reads any 3 or 4 items starting with a string so)."""
    return isinstance(obj, list) and len(obj) in (3, 4) and isinstance(obj[0], str)


def _call_keras2(node: list | dict, layer: str) -> Call:
    """A Keras 2 inbound node: the structure of the call's first argument with an entry per tensor.

    A layer's node is a list of entries; a TFOpLambda keeps its first argument's structure, so one
    tensor is one bare entry and `tf.concat([a, b])` a list of two. Every entry carries the same
    kwargs (tf_keras Node.serialize: every other argument, by name), read once; tensors in them are
    [name, node, tensor] anywhere inside a value. A constant first argument is a _CONSTANT entry.
    """
    refs: list[TensorRef] = []
    extras: list = []

    def first_argument(obj: Any) -> Any:
        if _is_entry(obj):
            extra = obj[3] if len(obj) == 4 else {}
            if not isinstance(extra, dict):
                raise ModelReadError(f"layer '{layer}': malformed inbound node entry (its kwargs are not an object)")
            extras.append(extra)
            if obj[0] == _CONSTANT:
                return obj[2]
            refs.append(_history(obj[:3], layer))
            return TENSOR
        if isinstance(obj, list):
            return [first_argument(item) for item in obj]
        if isinstance(obj, dict):
            return {key: first_argument(item) for key, item in obj.items()}
        raise ModelReadError(f"layer '{layer}': malformed inbound node entry")

    kwargs, tensor_kwargs = {POSITIONAL: [first_argument(node)]}, []
    for key, value in (extras[-1] if extras else {}).items():
        before = len(refs)
        kwargs[key] = _kwarg_tensors(value, refs, layer)
        # tensors passed by keyword (`x + y`'s y, MultiHeadAttention's value=)
        tensor_kwargs.extend([key] * (len(refs) - before))
    return Call(inputs=tuple(refs), input_shapes=(None,) * len(refs), kwargs=kwargs, tensor_kwargs=tuple(tensor_kwargs))


def _kwarg_tensors(value: Any, refs: list, layer: str) -> Any:
    """Append the tensors ([name, node, tensor] histories) inside one keyword argument's value; the
    value with each replaced by TENSOR."""
    if _is_history(value):
        refs.append(_history(value, layer))
        return TENSOR
    if isinstance(value, list):
        return [_kwarg_tensors(item, refs, layer) for item in value]
    if isinstance(value, dict):
        return {key: _kwarg_tensors(item, refs, layer) for key, item in value.items()}
    return value


def _history(history: Any, layer: str) -> TensorRef:
    if not (isinstance(history, (list, tuple)) and len(history) >= 3 and isinstance(history[0], str)):
        raise ModelReadError(f"layer '{layer}': a tensor reference is malformed")
    try:
        node, index = int(history[1]), int(history[2])
    except (TypeError, ValueError):
        raise ModelReadError(f"layer '{layer}': a tensor reference is malformed") from None
    if node < 0 or index < 0:
        raise ModelReadError(f"layer '{layer}': a tensor reference has a negative index")
    return TensorRef(history[0], node, index)


def _refs(raw: Any, key: str, model: str) -> tuple[TensorRef, ...]:
    if raw is None:
        raise ModelReadError(f"model '{model}': no {key}")
    if isinstance(raw, dict):
        raw = list(raw.values())
    if _is_history(raw) or (isinstance(raw, list) and len(raw) == 3 and isinstance(raw[0], str)):
        raw = [raw]
    if not isinstance(raw, list):
        raise ModelReadError(f"model '{model}': {key} is malformed")
    return tuple(_history(item, f"{model}.{key}") for item in raw)


def _check_references(graph: ModelGraph) -> None:
    """Every reference names an existing layer and call, and the calls form no cycle."""
    by_name = {layer.name: layer for layer in graph.layers}

    def calls_of(layer: Layer) -> int:
        # An InputLayer (and a Sequential's first layer) is "called" once, by its creation.
        return max(len(layer.calls), 1)

    for ref in graph.inputs + graph.outputs:
        if ref.layer not in by_name:
            raise ModelReadError(f"model '{graph.name}': input/output names a missing layer '{ref.layer}'")
    for layer in graph.layers:
        for call in layer.calls:
            for ref in call.inputs:
                src = by_name.get(ref.layer)
                if src is None:
                    raise ModelReadError(f"layer '{layer.name}' takes its input from a missing layer '{ref.layer}'")
                if ref.call >= calls_of(src):
                    raise ModelReadError(
                        f"layer '{layer.name}' refers to call {ref.call} of '{ref.layer}', which has {calls_of(src)}"
                    )
    topological_order(graph)


# ---- compile configuration -------------------------------------------------------------------


def objective_from(compile_config: Any) -> Optional[Objective]:
    """Keras 3 `compile_config` or Keras 2 `training_config` -> Objective; None if uncompiled."""
    if not isinstance(compile_config, dict) or not compile_config:
        return None
    optimizer = compile_config.get("optimizer") or compile_config.get("optimizer_config")
    opt_name, lr = None, None
    if isinstance(optimizer, dict):
        opt_name = optimizer.get("class_name")
        if isinstance(opt_name, str) and opt_name.startswith("Custom>"):
            opt_name = opt_name[len("Custom>"):]
        cfg = optimizer.get("config")
        if isinstance(cfg, dict):
            lr = cfg.get("learning_rate", cfg.get("lr"))
    elif isinstance(optimizer, str):
        opt_name = optimizer
    if compile_config.get("loss") is None and optimizer is None:
        return None
    return Objective(
        loss=compile_config.get("loss"),
        metrics=compile_config.get("metrics"),
        weighted_metrics=compile_config.get("weighted_metrics"),
        loss_weights=compile_config.get("loss_weights"),
        optimizer=opt_name if isinstance(opt_name, str) else None,
        learning_rate=lr,
        raw=compile_config,
    )
