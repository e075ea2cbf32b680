"""The layer graph as the pictures draw it (report/html.py, report/mermaid.py): one scope per model —
the top model, then each nested model — holding a node per layer and an edge per connection.

A Sequential's InputLayer is no node (Keras's summary() does not list it either); a shared layer is
one node whatever its number of calls, with an edge from each distinct layer that feeds it; a nested
model is a node of its outer scope and a scope of its own."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from modelaudit.graph import fmt_shape

RANK = {"info": 0, "warning": 1, "error": 2}


@dataclass
class Node:
    path: str  # the layer's path, nested models joined with "/": the `layer` of its findings
    name: str
    class_name: str
    shape: str  # the first call's output shapes
    params: Optional[int]  # None: unknown
    macs: Optional[int]
    formula: Optional[str]
    recomputed: bool
    scope: Optional[int] = None  # a nested model: the index of its own Scope


@dataclass
class Scope:
    path: str  # "" for the top model
    name: str
    class_name: str
    depth: int
    nodes: list = field(default_factory=list)
    edges: list = field(default_factory=list)  # (source node index, target node index, connections)


def scopes(inferred) -> list[Scope]:
    """Every model's scope, the top model first; a nested model's scope after its outer one's.
    Iterative (models nest 1,000 deep)."""
    rows = {}
    for row in inferred.rows:
        rows.setdefault(row.path, row)
    graph = inferred.graph
    out = [Scope("", graph.name, graph.class_name, 0)]
    todo = [(graph, 0)]
    while todo:
        model, index = todo.pop(0)
        scope = out[index]
        by_name: dict = {}
        for layer in model.layers:
            if model.sequential and layer.class_name == "InputLayer":
                continue
            path = f"{scope.path}/{layer.name}" if scope.path else layer.name
            node = _node(path, layer, rows.get(path))
            by_name.setdefault(layer.name, len(scope.nodes))
            scope.nodes.append(node)
            if layer.submodel is not None:
                node.scope = len(out)
                out.append(Scope(path, layer.submodel.name, layer.submodel.class_name, scope.depth + 1))
                todo.append((layer.submodel, node.scope))
        scope.edges = _edges(model, by_name)
    return out


def _node(path: str, layer, row) -> Node:
    if row is None:  # never reached by the walk: drawn, with nothing recomputed
        return Node(path, layer.name, layer.class_name, "?", None, None, None, False)
    shapes = row.first_output_shapes
    return Node(path, layer.name, layer.class_name, ", ".join(fmt_shape(s) for s in shapes) if shapes else "?",
                row.params, row.macs, row.formula, row.recomputed)


def _edges(model, by_name: dict) -> list:
    counts: dict = {}
    for layer in model.layers:
        target = by_name.get(layer.name)
        if target is None:
            continue
        for call in layer.calls:
            for ref in call.inputs:
                source = by_name.get(ref.layer)
                if source is not None and source != target:
                    counts[(source, target)] = counts.get((source, target), 0) + 1
    return [(s, t, n) for (s, t), n in counts.items()]


def worst_by_path(findings) -> tuple[dict, dict]:
    """(path -> the worst severity of the findings on that layer, path -> the worst on anything inside
    that nested model). Severities as their names."""
    own: dict = {}
    inner: dict = {}
    for f in findings:
        if not f.layer:
            continue
        severity = f.severity.value
        _raise(own, f.layer, severity)
        parts = f.layer.split("/")
        for i in range(1, len(parts)):
            _raise(inner, "/".join(parts[:i]), severity)
    return own, inner


def _raise(table: dict, key: str, severity: str) -> None:
    if key not in table or RANK[severity] > RANK[table[key]]:
        table[key] = severity


def count(n) -> str:
    return "unknown" if n is None else f"{n:,}"
