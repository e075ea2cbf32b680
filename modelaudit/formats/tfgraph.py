"""The ops of a SavedModel's traced graph (MetaGraphDef.graph_def), for the security rules (MA409).

What is recorded: every distinct op each function of the graph's library uses, and every distinct op
of the main graph, with where it is reached from — a serving signature or the init op (`runs`: a
caller or the loader runs it), or the saver's own save and restore targets (`saver`: what
`saver_def` names, which TensorFlow runs to write and restore the checkpoint). Reachability follows
a node's inputs in the main graph, and from a node into the functions it calls (its op, when that
names a library function, and every function-valued attribute: `f`, `then_branch`, `body` ...).

Nothing else of the graph is kept: no tensor value but a Const's first string (the literal path a
file op is handed), no shape. The graph is walked one NodeDef at a time (protowire.spans), so its
size bounds neither memory nor the decoder's per-message budget; node and function counts are
bounded here.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

from modelaudit.formats.protowire import BYTES, MESSAGE, STRING, Field, ProtoError, decode, message, spans

MAX_GRAPH_NODES = 1 << 20  # nodes in the main graph and every function together (~30,000 a second)
MAX_FUNCTIONS = 1 << 20
MAX_NODE_VALUES = 1 << 20  # one NodeDef's decoded values (a Const of a large vocabulary)
MAX_DETAIL = 200  # characters of a literal kept

# attr_value.proto, tensor.proto, node_def.proto, op_def.proto, function.proto, graph.proto, saver.proto
TENSOR = message("TensorProto", f8=Field("string_val", BYTES, True))
NAME_ATTR_LIST = message("NameAttrList", f1=Field("name", STRING))
ATTR_LIST = message("AttrValue.ListValue", f9=Field("func", MESSAGE, True, NAME_ATTR_LIST))
ATTR = message("AttrValue", f1=Field("list", MESSAGE, message=ATTR_LIST), f2=Field("s", BYTES),
               f8=Field("tensor", MESSAGE, message=TENSOR), f10=Field("func", MESSAGE, message=NAME_ATTR_LIST))
ATTR_ENTRY = message("NodeDef.AttrEntry", f1=Field("key", STRING), f2=Field("value", MESSAGE, message=ATTR))
# a node's attributes are kept as bytes: most (shapes, dtypes, a Const's tensor) are never looked into
NODE = message("NodeDef", f1=Field("name", STRING), f2=Field("op", STRING), f3=Field("input", STRING, True),
               f5=Field("attr", BYTES, True))
_FUNC_TAGS = (0x52, 0x4A)  # AttrValue.func (field 10) and ListValue.func (field 9), length-delimited
OP_DEF = message("OpDef", f1=Field("name", STRING))
SAVER = message("SaverDef", f2=Field("save_tensor_name", STRING), f3=Field("restore_op_name", STRING))

_GRAPH_DEF, _SAVER_DEF = 2, 3  # MetaGraphDef fields
_NODE, _LIBRARY = 1, 2  # GraphDef fields
_FUNCTION = 1  # FunctionDefLibrary
_SIGNATURE, _NODE_DEF = 1, 3  # FunctionDef


class GraphOp(NamedTuple):
    """One op as used somewhere in the graph: in a library function (`function`) or in the main graph
    (`function` "")."""

    op: str
    function: str
    node: str  # the first node using it there
    runs: bool  # reached from a serving signature or the init op
    saver: bool  # reached from the saver's save or restore target
    detail: Optional[str] = None  # PrintV2's output_stream; else the literal string its first input is


class _Node(NamedTuple):
    name: str
    op: str
    inputs: tuple  # node names (control inputs and output indices stripped)
    calls: tuple  # function names from attributes
    detail: Optional[str]
    literal: Optional[str]  # a Const's first string value
    shown: str = ""  # the name as written (cut to MAX_DETAIL), for the finding


class _Scope:
    """The nodes of one function, or of the main graph."""

    def __init__(self):
        self.nodes: list[_Node] = []

    def literals(self) -> dict:
        return {n.name: n.literal for n in self.nodes if n.literal is not None}


def read_ops(buf, start: int, end: int, roots: list) -> tuple:
    """The GraphOps of the MetaGraphDef in buf[start:end]; `roots`: the tensor names its signatures
    (the init op's too) feed and fetch."""
    graph_span, saver = None, {}
    for number, s, e in spans(buf, start, end, frozenset({_GRAPH_DEF, _SAVER_DEF}), "MetaGraphDef"):
        if number == _GRAPH_DEF:
            graph_span = (s, e)
        else:
            saver = decode(buf, SAVER, s, e)
    if graph_span is None:
        return ()
    main, functions = _read_graph(buf, *graph_span)
    saver_roots = [saver.get("save_tensor_name", ""), saver.get("restore_op_name", "")]
    runs = _reached(main, functions, roots)
    saved = _reached(main, functions, saver_roots)
    return _facts(main, functions, runs, saved)


def _read_graph(buf, start: int, end: int) -> tuple:
    main, functions = _Scope(), {}
    budget = [MAX_GRAPH_NODES]
    for number, s, e in spans(buf, start, end, frozenset({_NODE, _LIBRARY}), "GraphDef"):
        if number == _NODE:
            main.nodes.append(_node(buf, s, e, budget, function=False))
            continue
        for _, fs, fe in spans(buf, s, e, frozenset({_FUNCTION}), "FunctionDefLibrary"):
            if len(functions) >= MAX_FUNCTIONS:
                raise ProtoError(f"the graph's library holds more than {MAX_FUNCTIONS:,} functions")
            name, scope = _function(buf, fs, fe, budget)
            functions.setdefault(name, scope)
    return main, functions


def _function(buf, start: int, end: int, budget: list) -> tuple:
    name, scope = "", _Scope()
    for number, s, e in spans(buf, start, end, frozenset({_SIGNATURE, _NODE_DEF}), "FunctionDef"):
        if number == _SIGNATURE:
            name = decode(buf, OP_DEF, s, e).get("name", "")
        else:
            scope.nodes.append(_node(buf, s, e, budget, function=True))
    return name, scope


def _node(buf, start: int, end: int, budget: list, function: bool) -> _Node:
    budget[0] -= 1
    if budget[0] < 0:
        raise ProtoError(f"the graph holds more than {MAX_GRAPH_NODES:,} nodes")
    node = decode(buf, NODE, start, end, max_values=MAX_NODE_VALUES)
    calls, detail, literal = [], None, None
    for raw in node.get("attr", ()):
        key, at = _attr_key(raw)
        wanted = key == "output_stream" or (key == "value" and node.get("op") == "Const")
        if not wanted and not _may_hold_function(raw, at):
            continue  # holds no function (a cheap test on the bytes: a false hit only costs a decode)
        entry = decode(raw, ATTR_ENTRY, max_values=MAX_NODE_VALUES)
        value = entry.get("value", {})
        if "func" in value:
            calls.append(value["func"].get("name", ""))
        calls.extend(f.get("name", "") for f in (value.get("list") or {}).get("func", ()))
        if entry.get("key") == "output_stream" and "s" in value:
            detail = _text(value["s"])
        if entry.get("key") == "value" and node.get("op") == "Const":
            strings = (value.get("tensor") or {}).get("string_val")
            literal = _text(strings[0]) if strings else None
    inputs = tuple(_key(_input_node(i, function)) for i in node.get("input", ()))
    name = node.get("name", "")
    return _Node(_key(name), node.get("op", ""), inputs, tuple(calls), detail, literal, name[:MAX_DETAIL])


def _key(name: str):
    """A node name as the graph walk keeps it: itself, or for a long one its 16-byte digest, so that
    the walk holds a few bytes per edge however long the names a file spells out (a 200 MB graph of
    1 KB input names once took 190 MB to hold)."""
    if len(name) <= 64:
        return name
    import hashlib

    return hashlib.blake2b(name.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _attr_key(raw: bytes) -> tuple[str, int]:
    """(key, where the value starts) of a NodeDef.AttrEntry whose key comes first, as TensorFlow
    writes it, read without decoding the entry; ("", 0) otherwise."""
    if len(raw) >= 2 and raw[0] == 0x0A and raw[1] < 0x80:
        return raw[2:2 + raw[1]].decode("utf-8", "replace"), 2 + raw[1]
    return "", 0


def _may_hold_function(raw: bytes, at: int) -> bool:
    """Whether the value's bytes hold a function's tag at all: a cheap test that passes over most
    attributes (dtypes, shapes, a Const's tensor); a false hit only costs a decode."""
    return any(tag in raw[at:] for tag in _FUNC_TAGS)


def _input_node(name: str, function: bool) -> str:
    """`^ctrl`, `x:1` (main graph), `Const:output:0` (a function's node output) -> the node's name."""
    name = name[1:] if name.startswith("^") else name
    return name.split(":", 1)[0]


def _text(raw: bytes) -> str:
    return raw[:MAX_DETAIL].decode("utf-8", "backslashreplace")


def _reached(main: _Scope, functions: dict, roots: list) -> tuple[set, set]:
    """(main-graph node names, function names) reached from the tensors named in `roots`."""
    by_name = {n.name: n for n in main.nodes}
    nodes, funcs = set(), set()
    stack = [_key(_input_node(r, False)) for r in roots if r]
    called: list = []
    while stack:
        name = stack.pop()
        if name in nodes or name not in by_name:
            continue
        nodes.add(name)
        node = by_name[name]
        stack.extend(node.inputs)
        called.extend(_callees(node, functions))
    while called:
        name = called.pop()
        if name in funcs:
            continue
        funcs.add(name)
        for node in functions[name].nodes:
            called.extend(_callees(node, functions))
    return nodes, funcs


def _callees(node: _Node, functions: dict) -> list:
    return [f for f in (node.op,) + node.calls if f in functions]


def _facts(main: _Scope, functions: dict, runs: tuple, saved: tuple) -> tuple:
    out: dict = {}

    def add(node: _Node, function: str, in_runs: bool, in_saver: bool, literals: dict) -> None:
        detail = node.detail
        if detail is None and node.inputs:
            detail = literals.get(node.inputs[0])
        key = (node.op, function, in_runs, in_saver, detail)
        if key not in out:
            out[key] = GraphOp(node.op, function, node.shown, in_runs, in_saver, detail)

    literals = main.literals()
    for node in main.nodes:
        add(node, "", node.name in runs[0], node.name in saved[0], literals)
    for name, scope in functions.items():
        literals = scope.literals()
        for node in scope.nodes:
            add(node, name, name in runs[1], name in saved[1], literals)
    return tuple(out.values())
