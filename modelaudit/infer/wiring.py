"""The graph view: who feeds whom in a propagated model, with nested models opened up.

The one walker of nested models that the views and the rules share. `Scope` is one (sub)model of
the graph of nested models: its layers by name, its path prefix, the nested-model layer that holds
it; a reference to a tensor is followed across model boundaries through it (into a nested model's
outputs, out of its InputLayers to the tensors its call is fed). `Wiring` is the dataflow the
architecture rules read: one `Node` per call of a layer (never a nested model: its layers are nodes
themselves), so that a Conv2D inside a nested Sequential feeding a BatchNormalization outside it is
one edge like any other. The output tracing of infer/outputs.py walks the same scopes.

Built once per model (`Inferred.wiring`); every walk is bounded against a hostile config.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Optional

from modelaudit.infer.families import FEATURES_LAST, LAYOUT_KEEPING, activation_name
from modelaudit.infer.geometry import data_format
from modelaudit.nesting import Steps, run

MAX_WALK = 10_000  # bound on every walk along the graph, against a hostile config

# A Tensor below is a tuple (layer path, call index, output index) naming the layer call that produces it.


class Scope:
    """One (sub)model: its graph, its path prefix, and the nested-model layer that holds it."""

    def __init__(self, graph, prefix: str = "", parent: Optional["Scope"] = None, owner=None):
        self.graph = graph  # graph.ModelGraph
        self.prefix = prefix
        self.parent = parent
        self.owner = owner  # the Layer in parent.graph whose submodel this is
        self._by_name: Optional[dict] = None

    def layer(self, name: str):
        """The layer of that name in this (sub)model, or None."""
        if self._by_name is None:
            self._by_name = {layer.name: layer for layer in self.graph.layers}
        return self._by_name.get(name)

    def path(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def inner(self, layer) -> "Scope":
        """The scope of a nested model held by `layer` (a layer of this scope's graph)."""
        return Scope(layer.submodel, self.path(layer.name), self, layer)

    def input_position(self, name: str) -> Optional[int]:
        """Which of this (sub)model's inputs an InputLayer of that name is."""
        return next((i for i, r in enumerate(self.graph.inputs) if r.layer == name), None)

    def fed(self) -> bool:
        """A nested model that its owner calls: its InputLayers stand for the tensors of the call."""
        return self.owner is not None and bool(self.owner.calls)


@dataclass
class Node:
    """One call of one layer (never a nested model: its layers are nodes themselves)."""

    path: str
    call: int
    row: object  # infer.propagate.LayerResult
    inputs: list = field(default_factory=list)  # per input tensor: the Tensors that can feed it (usually one)

    @property
    def layer(self):
        return self.row.layer

    @property
    def cls(self) -> str:
        return self.row.layer.class_name

    @property
    def config(self) -> dict:
        return self.row.layer.config if isinstance(self.row.layer.config, dict) else {}

    def where(self) -> str:
        return f"{self.cls} '{self.path}'"

    def input_shape(self, i: int = 0):
        shapes = self.row.input_shapes[self.call] if self.call < len(self.row.input_shapes) else []
        return known_shape(shapes[i]) if i < len(shapes) else None

    def output_shape(self, i: int = 0):
        shapes = self.row.output_shapes[self.call] if self.call < len(self.row.output_shapes) else []
        return known_shape(shapes[i]) if i < len(shapes) else None


def known_shape(shape):
    """A shape of ints and Nones as a tuple; None for anything else (a hostile record)."""
    if isinstance(shape, (list, tuple)) and all(d is None or (isinstance(d, int) and not isinstance(d, bool))
                                                for d in shape):
        return tuple(shape)
    return None


class Wiring:
    """The dataflow of a propagated model: nodes, the tensors feeding each node, the users of each node.

    A nested model is opened up: its outputs resolve to the inner layers that produce them and its
    InputLayers to the outer tensors that feed it, so edges cross model boundaries. A nested model
    called twice (a shared encoder) keeps one set of nodes, fed by both calls.
    """

    def __init__(self, model):
        rows = {row.path: row for row in model.rows}
        self.nodes: dict[tuple, Node] = {}  # (path, call) -> Node, in file order
        self.outputs: list = []  # per model output: the Tensors it stands for (one, except in odd configs)
        self._scopes: dict[str, Scope] = {}
        self._users: dict[tuple, list] = {}
        self._memo: dict = {}
        graph = model.graph
        if graph.opaque:
            return
        top = Scope(graph)
        run(self._collect(top, rows))
        self.outputs = [run(self._resolve(top, ref)) for ref in graph.outputs]
        for node in self.nodes.values():
            for slot, tensors in enumerate(node.inputs):
                for path, call, _ in tensors:
                    self._users.setdefault((path, call), []).append((node, slot))

    def _collect(self, scope: Scope, rows: dict) -> Steps:
        """A node for every call of every layer of one (sub)model, nested models opened up (Steps,
        modelaudit/nesting.py: a nested model's nodes are collected by yielding its own _collect)."""
        for layer in scope.graph.layers:
            path = scope.path(layer.name)
            row = rows.get(path)
            if row is None:
                continue
            if layer.submodel is not None:
                self._scopes[path] = inner = scope.inner(layer)
                yield self._collect(inner, rows)
                continue
            if layer.class_name == "InputLayer" and not layer.calls:
                if not scope.fed():  # a model input, or a nested one never fed
                    self.nodes[(path, 0)] = Node(path, 0, row)
                continue
            for c, call in enumerate(layer.calls):
                self.nodes[(path, c)] = Node(path, c, row, [run(self._resolve(scope, ref)) for ref in call.inputs])

    def _resolve(self, scope: Scope, ref) -> Steps:
        """Steps returning the Tensors a reference in a scope's graph stands for (through nested-model
        boundaries, each crossed by yielding the _resolve on the other side)."""
        key = (scope.prefix, ref.layer, ref.call, ref.index)
        if key in self._memo:
            return self._memo[key]
        self._memo[key] = []  # a cycle in a hostile config resolves to nothing
        out: list = []
        layer = scope.layer(ref.layer)
        path = scope.path(ref.layer)
        if layer is None:
            pass
        elif layer.submodel is not None:
            inner = self._scopes.get(path)
            if inner is not None and not layer.submodel.opaque and ref.index < len(layer.submodel.outputs):
                out = yield self._resolve(inner, layer.submodel.outputs[ref.index])
        elif layer.class_name == "InputLayer" and scope.fed():
            position = scope.input_position(layer.name)
            for call in scope.owner.calls:  # a nested model called twice is fed twice
                if position is not None and position < len(call.inputs):
                    out.extend((yield self._resolve(scope.parent, call.inputs[position])))  # += per call: quadratic
        else:
            out = [(path, ref.call, ref.index)]
        self._memo[key] = out
        return out

    # -- questions the rules ask --

    def producer(self, node: Node, slot: int = 0) -> Optional[Node]:
        """The node that feeds input `slot` of `node`, when exactly one does."""
        if slot >= len(node.inputs) or len(node.inputs[slot]) != 1:
            return None
        path, call, _ = node.inputs[slot][0]
        return self.nodes.get((path, call))

    def users(self, node: Node) -> list:
        """(node, slot) of every consumer of any output of `node`."""
        return self._users.get((node.path, node.call), [])

    def is_output(self, node: Node) -> bool:
        return any((path, call) == (node.path, node.call) for out in self.outputs for path, call, _ in out)

    @staticmethod
    def sole_input(node: Node) -> bool:
        return len(node.inputs) == 1

    def first_calls(self) -> Iterator[Node]:
        """Each layer once: a shared layer is judged on its first call."""
        for node in self.nodes.values():
            if node.call == 0:
                yield node

    def upstream(self, node: Node, passing, *, linear_activation: bool = False,
                 sole_user: bool = False) -> Optional[Node]:
        """The first node before `node` (along its single input) that is not a `passing` layer.

        An Activation passes only when it is linear and `linear_activation` asks for it; with
        `sole_user`, every node on the way must feed nothing but the next one.
        """
        if not self.sole_input(node):
            return None
        current = node
        for _ in range(MAX_WALK):
            prev = self.producer(current)
            if prev is None:
                return None
            if sole_user and len(self.users(prev)) != 1:
                return None
            if prev.cls in passing and (prev.cls != "Activation" or (
                    linear_activation and activation_name(prev.config.get("activation")) == "linear")):
                if not self.sole_input(prev):
                    return None
                current = prev
                continue
            return prev
        return None

    def layout(self, node: Node):
        """(data format, the node that says so, found upstream?) for the tensor a node reads; None if
        unknown.

        Upstream first: the nearest layer with a data_format, or one whose features are last by
        construction (Dense, RNN, attention); then downstream through layers that keep the layout.
        """
        current = node
        for _ in range(MAX_WALK):
            prev = self.producer(current)
            if prev is None:
                break
            if "data_format" in prev.config and prev.cls not in ("Flatten",):
                return data_format(prev.config), prev, True
            if prev.cls in FEATURES_LAST:
                return "channels_last", prev, True
            if prev.cls not in LAYOUT_KEEPING:
                break
            current = prev
        current = node
        for _ in range(MAX_WALK):
            users = self.users(current)
            if len(users) != 1:
                return None
            nxt = users[0][0]
            if "data_format" in nxt.config and nxt.cls not in ("Flatten",):
                return data_format(nxt.config), nxt, False
            if nxt.cls not in LAYOUT_KEEPING:
                return None
            current = nxt
        return None
