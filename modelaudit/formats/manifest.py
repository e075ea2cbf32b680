"""Weight manifests: every stored variable attached to the layer that owns it.

The walk over the graph is shared; each reader says how it keys variables (`lookup`): Keras 3 by
generic class-based names with counters, legacy h5 by layer name.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Callable

from modelaudit.graph import Layer, ModelGraph
from modelaudit.nesting import Steps, run


def to_snake_case(name: str) -> str:
    # As keras.src.utils.naming.to_snake_case, which names the groups of a .keras weights file.
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def generic_keys(graph: ModelGraph) -> dict[str, str]:
    """Layer name -> the key Keras 3 saves its variables under (`dense`, `dense_1`, ...).

    Keras walks `model.layers`, which for a Sequential leaves out the InputLayer, and numbers
    repeated class names in that order (saving_lib._get_unique_name). A Keras 3 op applied to a
    tensor (`x + 3.0` is an ops.numpy Add in the config) is not a layer: it has no key and takes no
    number, else the layers of its class after it (the Add layers) are numbered one too high.
    """
    used: dict[str, int] = {}
    keys = {}
    for layer in graph.layers:
        if layer.synthetic or (graph.sequential and layer.class_name == "InputLayer") or is_op(layer):
            continue
        base = to_snake_case(layer.class_name)
        if base in used:
            used[base] += 1
            keys[layer.name] = f"{base}_{used[base]}"
        else:
            used[base] = 0
            keys[layer.name] = base
    return keys


def is_op(layer: Layer) -> bool:
    """A Keras 3 operation (keras.src.ops.*) serialized as a node of the functional graph."""
    return layer.is_op


def name_keys(graph: ModelGraph) -> dict[str, str]:
    return {layer.name: layer.name for layer in graph.layers if not layer.synthetic}


# (container keys, layer, its key, is a nested model) -> its Weights; a nested model's own are asked for
# before its layers' (live.py builds the nested model's name map then)
Lookup = Callable[[tuple, Layer, str, bool], tuple]


def attach(graph: ModelGraph, lookup: Lookup, keys_of: Callable[[ModelGraph], dict], container: tuple = ()) -> ModelGraph:
    """A copy of `graph` whose layers carry their stored weights (nested models at any depth)."""
    return run(_attach(graph, lookup, keys_of, container))


def _attach(graph: ModelGraph, lookup: Lookup, keys_of: Callable[[ModelGraph], dict], container: tuple) -> Steps:
    # Steps (modelaudit/nesting.py): a nested model is attached by yielding its own _attach
    keys = keys_of(graph)
    layers = []
    for layer in graph.layers:
        key = keys.get(layer.name)
        if key is None:
            layers.append(replace(layer, weights=()))
            continue
        if layer.submodel is not None:
            own = lookup(container, layer, key, True)
            sub = yield _attach(layer.submodel, lookup, keys_of, container + (key,))
            layers.append(replace(layer, weights=tuple(own), submodel=sub))
        else:
            layers.append(replace(layer, weights=tuple(lookup(container, layer, key, False))))
    return replace(graph, layers=tuple(layers))
