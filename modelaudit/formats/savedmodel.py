"""A SavedModel folder: saved_model.pb, keras_metadata.pb, variables/ — read without TensorFlow.

What a SavedModel holds, and where this reader finds it:

- `saved_model.pb` (tensorflow/core/protobuf/saved_model.proto): a SavedModel whose MetaGraphDef
  holds the object graph (saved_object_graph.proto) — every tracked Python object of the saved model
  as a node: Keras layers (`user_object`, identifier `_tf_keras_*`), variables (dtype, shape,
  trainable), lists, functions — and the serving signatures (meta_graph.proto `signature_def`).
  The traced graph (`graph_def`, most of the file) is walked one node at a time for the ops each
  function uses and where they are reached from (formats/tfgraph.py, for MA409); no tensor value or
  shape of it is decoded.
- The Keras config: tf_keras and tf.keras from TF 2.5 write it to `keras_metadata.pb` (a
  SavedMetadata: per Keras object, its node id and a JSON string); TF 2.0-2.4 wrote the same JSON
  string into the object graph's `user_object.metadata` (tf_keras saving/legacy/saved_model/load.py
  `_read_legacy_metadata` reads it back from there into the same SavedMetadata field). The root
  node's JSON holds `model_config` — as a legacy .h5's root attribute of that name — with
  `training_config`, `keras_version` and `backend`. That JSON writes tuples as
  `{"class_name": "__tuple__", "items": [...]}` and shapes as `{"class_name": "TensorShape", ...}`:
  both become lists here, once, so the rest of modelaudit reads it like any Keras 2 config.
- The stored variables: `variables/variables.index`, a table (sstable.py) of BundleEntryProto per
  checkpoint key (dtype, shape, shard, offset, size). A key is the object-graph path of its variable
  (`layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE`): TensorFlow names each object by its
  first path in a breadth-first walk of the same graph (checkpoint/util.py
  `objects_ids_and_slot_variables_and_paths`), so the walk is repeated here to pair keys with nodes.
  Variables are attached to layers through the object graph — a Keras layer node's `variables`
  child lists its variables in `layer.weights` order — never by matching names. A Weight's path is
  its checkpoint path without the attribute suffix (`layer_with_weights-0/kernel`); its shape and
  dtype are the checkpoint's (what loading restores), its trainable flag the SavedVariable's. A
  variable the graph declares and the checkpoint lacks is not attached (MA102 reports it); without a
  variables/ folder the graph's declared shapes are used.
- Keras 3 `model.export()` and a plain `tf.saved_model.save()` carry no Keras config: they are read
  as opaque models whose variables (the root's `variables` list, else every variable node) are
  audited by path, dtype and shape, with the signatures in `SourceFacts.signatures`.

The protobuf messages are decoded by protowire.py from the field numbers below (TensorFlow's .proto
files), not by the protobuf package: see protowire.py for why. Nothing is written into the folder;
every file is opened read-only, and only regular files are read.
"""

from __future__ import annotations

import mmap
import os
import re
import stat
from dataclasses import replace
from typing import Any, NamedTuple, Optional

from modelaudit.errors import ModelReadError
from modelaudit.formats import json_config
from modelaudit.formats.detect import SAVED_MODEL_PB
from modelaudit.formats.manifest import attach, name_keys
from modelaudit.formats.protowire import (
    BOOL, BYTES, INT64, MESSAGE, STRING, VARINT, Field, ProtoError, decode, entries, message, spans,
)
from modelaudit.graph import ModelGraph, Signature, SourceFacts, Weight

KERAS_METADATA_PB = "keras_metadata.pb"
VARIABLES_INDEX = os.path.join("variables", "variables.index")
FORMAT = "savedmodel"

MAX_SAVED_MODEL_BYTES = (2 << 30) - 1  # protobuf's own limit on one message
MAX_METADATA_BYTES = json_config.MAX_CONFIG_BYTES  # JSON strings, parsed: the bound of any config
MAX_INDEX_BYTES = 64 << 20  # about 600,000 variables
MAX_NODES = 1 << 20  # object graph nodes; ResNet50 has 3,016
MAX_SHARDS = 1 << 16
MAX_RANK = 254  # TensorShape's own limit

KERAS_IDENTIFIERS = frozenset({
    "_tf_keras_input_layer", "_tf_keras_layer", "_tf_keras_metric", "_tf_keras_model",
    "_tf_keras_network", "_tf_keras_rnn_layer", "_tf_keras_sequential",
})
_LAYER_CHILD = re.compile(r"layer-\d+$")  # a model's children `layer-0`, `layer-1`... are model.layers

# tensorflow/core/framework/types.proto DataType -> the names Keras uses (a *_REF type is its base + 100)
DTYPES = {
    1: "float32", 2: "float64", 3: "int32", 4: "uint8", 5: "int16", 6: "int8", 7: "string", 8: "complex64",
    9: "int64", 10: "bool", 11: "qint8", 12: "quint8", 13: "qint32", 14: "bfloat16", 15: "qint16", 16: "quint16",
    17: "uint16", 18: "complex128", 19: "float16", 20: "resource", 21: "variant", 22: "uint32", 23: "uint64",
    24: "float8_e5m2", 25: "float8_e4m3fn", 26: "float8_e4m3fnuz", 27: "float8_e4m3b11fnuz", 28: "float8_e5m2fnuz",
    29: "int4", 30: "uint4", 31: "int2", 32: "uint2", 33: "float4_e2m1fn",
}

# ---- schemas: field numbers from TensorFlow's .proto files -------------------------------------

# tensor_shape.proto
DIM = message("TensorShapeProto.Dim", f1=Field("size", INT64))
SHAPE = message("TensorShapeProto", f2=Field("dim", MESSAGE, True, DIM, max_items=MAX_RANK),
                f3=Field("unknown_rank", BOOL))
# meta_graph.proto
TENSOR_INFO = message("TensorInfo", f1=Field("name", STRING), f2=Field("dtype", VARINT),
                      f3=Field("tensor_shape", MESSAGE, message=SHAPE))
TENSOR_ENTRY = message("SignatureDef.TensorEntry", f1=Field("key", STRING),
                       f2=Field("value", MESSAGE, message=TENSOR_INFO))
SIGNATURE_DEF = message("SignatureDef", f1=Field("inputs", MESSAGE, True, TENSOR_ENTRY, max_items=65536),
                        f2=Field("outputs", MESSAGE, True, TENSOR_ENTRY, max_items=65536),
                        f3=Field("method_name", STRING))
SIGNATURE_ENTRY = message("MetaGraphDef.SignatureDefEntry", f1=Field("key", STRING),
                          f2=Field("value", MESSAGE, message=SIGNATURE_DEF))
META_INFO = message("MetaInfoDef", f4=Field("tags", STRING, True, max_items=1024),
                    f5=Field("tensorflow_version", STRING))
# saved_object_graph.proto, trackable_object_graph.proto (ObjectReference)
REFERENCE = message("ObjectReference", f1=Field("node_id", VARINT), f2=Field("local_name", STRING))
USER_OBJECT = message("SavedUserObject", f1=Field("identifier", STRING), f3=Field("metadata", STRING))
VARIABLE = message("SavedVariable", f1=Field("dtype", VARINT), f2=Field("shape", MESSAGE, message=SHAPE),
                   f3=Field("trainable", BOOL), f6=Field("name", STRING))
OBJECT = message("SavedObject", f1=Field("children", MESSAGE, True, REFERENCE),
                 f4=Field("user_object", MESSAGE, message=USER_OBJECT), f7=Field("variable", MESSAGE, message=VARIABLE))
OBJECT_GRAPH = message("SavedObjectGraph", f1=Field("nodes", MESSAGE, True, OBJECT, max_items=MAX_NODES))
META_GRAPH = message("MetaGraphDef", f1=Field("meta_info_def", MESSAGE, message=META_INFO),
                     f5=Field("signature_def", MESSAGE, True, SIGNATURE_ENTRY, max_items=65536),
                     f7=Field("object_graph_def", MESSAGE, message=OBJECT_GRAPH))
SAVED_MODEL = message("SavedModel", f2=Field("meta_graphs", MESSAGE, True, META_GRAPH, max_items=256))
# tf_keras protobuf/saved_metadata.proto
METADATA_NODE = message("SavedMetadata.SavedObject", f2=Field("node_id", VARINT), f4=Field("identifier", STRING),
                        f5=Field("metadata", STRING))
SAVED_METADATA = message("SavedMetadata", f1=Field("nodes", MESSAGE, True, METADATA_NODE, max_items=MAX_NODES))
# tensor_bundle.proto
BUNDLE_HEADER = message("BundleHeaderProto", f1=Field("num_shards", VARINT), f2=Field("endianness", VARINT))
BUNDLE_ENTRY = message("BundleEntryProto", f1=Field("dtype", VARINT), f2=Field("shape", MESSAGE, message=SHAPE),
                       f3=Field("shard_id", VARINT), f4=Field("offset", INT64), f5=Field("size", INT64),
                       f7=Field("slices", BYTES, True))


def read(path: str, scan=None) -> ModelGraph:
    """`scan`: a formats.scan.WeightScan, run on the variables' data (--scan-weights)."""
    meta_graph, graph_ops = _read_saved_model(os.path.join(path, SAVED_MODEL_PB))
    nodes = (meta_graph.get("object_graph_def") or {}).get("nodes") or []
    checkpoint = _read_checkpoint(path)
    view = ObjectGraph(nodes, checkpoint)
    keras = _keras_metadata(path, nodes)
    root = _root_metadata(keras)
    source = SourceFacts(
        file_size=_folder_size(path, checkpoint),
        keras_version=_text(root, "keras_version"),
        backend=_text(root, "backend"),
        training_config=root.get("training_config") if root else None,
        signatures=_signatures(meta_graph),
        graph_ops=graph_ops,
    )
    config = _model_config(root)
    if config is None:
        graph = _opaque(path, view, nodes)
    else:
        graph = json_config.graph_from_config(config, format=FORMAT, compile_config=source.training_config or {})
        graph = _attach(graph, view, keras)
    if scan is not None:
        _scan(path, graph, checkpoint, scan)
    return replace(graph, source=source)


# ---- saved_model.pb ----------------------------------------------------------------------------


def _read_saved_model(file: str) -> tuple[dict, tuple]:
    """The MetaGraphDef to read — the one tagged `serve` (what TF2 writes, and what serving loads),
    else the first — and the ops of its traced graph (formats/tfgraph.py)."""
    from modelaudit.formats import tfgraph

    with _Mapped(file, MAX_SAVED_MODEL_BYTES) as buf:
        try:
            graphs = [(decode(buf, META_GRAPH, s, e), s, e)
                      for _, s, e in spans(buf, 0, len(buf), frozenset({2}), "SavedModel")]
            if len(graphs) > 256:
                raise ProtoError("SavedModel.meta_graphs: more than 256 values")
            if not graphs:
                raise ModelReadError(f"{SAVED_MODEL_PB} holds no meta graph: not a SavedModel")
            chosen = next((g for g in graphs if "serve" in (g[0].get("meta_info_def") or {}).get("tags", ())), graphs[0])
            meta_graph, start, end = chosen
            ops = tfgraph.read_ops(buf, start, end, _signature_tensors(meta_graph))
        except ProtoError as exc:
            raise ModelReadError(f"{SAVED_MODEL_PB} is not a valid SavedModel ({exc})") from None
    return meta_graph, ops


def _signature_tensors(meta_graph: dict) -> list:
    """Every tensor a signature (the init op's included) feeds or fetches: what a caller, or the
    loader, runs."""
    names = []
    for entry in meta_graph.get("signature_def") or ():
        sig = entry.get("value") or {}
        for side in ("inputs", "outputs"):
            names.extend((e.get("value") or {}).get("name", "") for e in sig.get(side) or ())
    return names


class _Mapped:
    """A regular file's bytes, mapped read-only (empty bytes for an empty file)."""

    def __init__(self, file: str, limit: int):
        self.file, self.limit, self.map = file, limit, None

    def __enter__(self):
        fd = _open_regular(self.file)
        try:
            size = os.fstat(fd).st_size
            if size > self.limit:
                raise ModelReadError(f"{_name(self.file)} is {size:,} bytes, more than the {self.limit:,}-byte bound")
            if size == 0:
                raise ModelReadError(f"{_name(self.file)} is empty")
            self.map = mmap.mmap(fd, size, access=mmap.ACCESS_READ)
        except OSError as exc:
            raise ModelReadError(f"{_name(self.file)} cannot be read ({exc.strerror or exc})") from None
        finally:
            os.close(fd)
        return self.map

    def __exit__(self, *exc):
        if self.map is not None:
            self.map.close()


def _open_regular(file: str) -> int:
    # Non-blocking, so that a FIFO named saved_model.pb cannot hang the run; then only a regular
    # file is read (detect.py does the same for model files).
    try:
        fd = os.open(file, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise ModelReadError(f"{_name(file)} cannot be opened ({exc.strerror or exc})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ModelReadError(f"{_name(file)} is not a regular file")
    return fd


def _read_bytes(file: str, limit: int) -> bytes:
    fd = _open_regular(file)
    try:
        size = os.fstat(fd).st_size
        if size > limit:
            raise ModelReadError(f"{_name(file)} is {size:,} bytes, more than the {limit:,}-byte bound")
        with os.fdopen(os.dup(fd), "rb") as f:
            return f.read(limit + 1)
    except OSError as exc:
        raise ModelReadError(f"{_name(file)} cannot be read ({exc.strerror or exc})") from None
    finally:
        os.close(fd)


def _name(file: str) -> str:
    """A file of the folder as the user sees it: `variables/variables.index`."""
    parent = os.path.basename(os.path.dirname(file))
    return f"{parent}/{os.path.basename(file)}" if parent == "variables" else os.path.basename(file)


def _signatures(meta_graph: dict) -> tuple:
    out = []
    try:
        signatures = entries(meta_graph.get("signature_def"), "signature_def")
        for name, sig in signatures.items():
            if name.startswith("__"):  # __saved_model_init_op: TensorFlow's own, not a caller's
                continue
            out.append(Signature(
                name=name,
                inputs=tuple(_tensor_spec(k, v) for k, v in entries(sig.get("inputs"), f"{name} inputs").items()),
                outputs=tuple(_tensor_spec(k, v) for k, v in entries(sig.get("outputs"), f"{name} outputs").items()),
            ))
    except ProtoError as exc:
        raise ModelReadError(f"{SAVED_MODEL_PB}: {exc}") from None
    return tuple(out)


def _tensor_spec(key: str, info: dict) -> tuple:
    return key, DTYPES.get(info.get("dtype", 0), "unknown"), _shape(info.get("tensor_shape"), unknown=True)


def _shape(proto: Optional[dict], unknown: bool = False) -> Optional[tuple]:
    """TensorShapeProto -> tuple, -1 -> None (where `unknown` allows it); unknown rank -> None."""
    proto = proto or {}
    if proto.get("unknown_rank"):
        return None
    dims = tuple(d.get("size", 0) for d in proto.get("dim", ()))
    if any(d < 0 for d in dims):
        if not unknown:
            return None
        return tuple(None if d < 0 else d for d in dims)
    return dims


# ---- the object graph ----------------------------------------------------------------------------


class ObjectGraph:
    """The object graph's nodes, with each variable node's stored Weight (checkpoint shape first)."""

    def __init__(self, nodes: list, checkpoint: Optional["Checkpoint"]):
        self.nodes = nodes
        self.paths = _object_paths(nodes)
        self.checkpoint = checkpoint
        self._weights: dict[int, Optional[Weight]] = {}

    def child(self, node_id: int, name: str) -> Optional[int]:
        for ref in self.nodes[node_id].get("children", ()):
            if ref.get("local_name", "") == name:
                return ref.get("node_id", 0)
        return None

    def children(self, node_id: int) -> list:
        return [(ref.get("local_name", ""), ref.get("node_id", 0)) for ref in self.nodes[node_id].get("children", ())]

    def is_variable(self, node_id: int) -> bool:
        return "variable" in self.nodes[node_id]

    def weight(self, node_id: int) -> Optional[Weight]:
        """The variable node's Weight; None when a checkpoint exists and does not hold it."""
        if node_id not in self._weights:
            self._weights[node_id] = self._make_weight(node_id)
        return self._weights[node_id]

    def _make_weight(self, node_id: int) -> Optional[Weight]:
        var = self.nodes[node_id]["variable"]
        path = self.paths.get(node_id, f"node-{node_id}")
        trainable = bool(var.get("trainable", False))
        if self.checkpoint is not None:
            entry = self.checkpoint.entries.get(path)
            if entry is None:
                return None  # declared in the graph, but never stored: the comparison reports it missing
            return Weight(path=path, shape=entry[1], dtype=entry[0], trainable=trainable)
        shape = _shape(var.get("shape"))
        if shape is None:
            raise ModelReadError(f"variable {path} has no known shape and the folder holds no {VARIABLES_INDEX}")
        return Weight(path=path, shape=shape, dtype=DTYPES.get(var.get("dtype", 0), "unknown"), trainable=trainable)

    def variables_of(self, node_id: int) -> list[int]:
        """A Keras object's variables in `layer.weights` order, each once: its `variables` list, else
        the variables among its direct children (a layer may name one twice: Normalization's `mean`
        is also its `adapt_mean`)."""
        listed = self.child(node_id, "variables")
        owner = listed if listed is not None and not self.is_variable(listed) else node_id
        return list(dict.fromkeys(n for _, n in self.children(owner) if self.is_variable(n)))

    def weights(self, node_ids) -> tuple:
        return tuple(w for w in (self.weight(n) for n in node_ids) if w is not None)


def _object_paths(nodes: list) -> dict[int, str]:
    """node id -> its checkpoint name: the first path to it in a breadth-first walk from the root,
    local names escaped as TensorFlow escapes them (trackable_utils.escape_local_name)."""
    count = len(nodes)
    for node_id, node in enumerate(nodes):  # every reference, reachable or not, names a node that exists
        for ref in node.get("children", ()):
            if ref.get("node_id", 0) >= count:
                raise ModelReadError(
                    f"{SAVED_MODEL_PB}: object {node_id} refers to object {ref.get('node_id')}, which does not exist")
    paths = {0: ""} if nodes else {}
    queue = [0] if nodes else []
    for node_id in queue:  # the list grows while it is walked: a breadth-first walk
        prefix = paths[node_id]
        for ref in nodes[node_id].get("children", ()):
            child = ref.get("node_id", 0)
            if child not in paths:
                name = ref.get("local_name", "").replace(".", "..").replace("/", ".S")
                paths[child] = f"{prefix}/{name}" if prefix else name
                queue.append(child)
    return paths


# ---- the Keras metadata ------------------------------------------------------------------------


def _keras_metadata(path: str, nodes: list) -> dict[int, tuple[str, str]]:
    """node id -> (identifier, metadata JSON text) for every Keras object of the graph."""
    file = os.path.join(path, KERAS_METADATA_PB)
    out: dict[int, tuple[str, str]] = {}
    if os.path.lexists(file):
        data = _read_bytes(file, MAX_METADATA_BYTES)
        try:
            saved = decode(data, SAVED_METADATA)
        except ProtoError as exc:
            raise ModelReadError(f"{KERAS_METADATA_PB} is not a valid Keras SavedMetadata ({exc})") from None
        for node in saved.get("nodes", ()):
            node_id = node.get("node_id", 0)
            if node_id >= len(nodes):
                raise ModelReadError(f"{KERAS_METADATA_PB} describes object {node_id}, which {SAVED_MODEL_PB} does not hold")
            out[node_id] = (node.get("identifier", ""), node.get("metadata", ""))
        # The file is a sequence of nodes: cut between two it still decodes, but misses objects.
        keras_objects = [i for i, n in enumerate(nodes) if (n.get("user_object") or {}).get("identifier") in KERAS_IDENTIFIERS]
        missing = [i for i in keras_objects if i not in out]
        if missing:
            raise ModelReadError(
                f"{KERAS_METADATA_PB} describes {len(keras_objects) - len(missing)} of the {len(keras_objects)} Keras "
                f"objects of {SAVED_MODEL_PB} (object {missing[0]} is missing): truncated or from another model"
            )
        return out
    # TF 2.0-2.4: the same JSON in the object graph itself
    for node_id, node in enumerate(nodes):
        user = node.get("user_object")
        if user and user.get("identifier") in KERAS_IDENTIFIERS and user.get("metadata"):
            out[node_id] = (user["identifier"], user["metadata"])
    return out


def _root_metadata(keras: dict) -> Optional[dict]:
    if 0 not in keras:
        return None
    data = json_config.loads(keras[0][1], "the Keras metadata of the model")
    if not isinstance(data, dict):
        raise ModelReadError("the Keras metadata of the model is not a JSON object")
    return plain(data)


def _model_config(root: Optional[dict]) -> Optional[dict]:
    """The root's model config, as a legacy .h5's `model_config` holds it; None if it has none."""
    if root is None:
        return None
    config = root.get("model_config")
    if isinstance(config, dict):
        return config
    if isinstance(root.get("class_name"), str) and isinstance(root.get("config"), dict):
        return {"class_name": root["class_name"], "config": root["config"]}
    return None


def plain(node: Any) -> Any:
    """The metadata JSON with its encoded tuples and TensorShapes as lists: `{"class_name":
    "__tuple__", "items": [...]}` -> [...], as the .h5 writer's JSON has them. Other encoded values
    (`__ellipsis__`, TypeSpecs) stay as they are. Depth is bounded by json_config.loads."""
    if isinstance(node, dict):
        if node.get("class_name") in ("__tuple__", "TensorShape") and isinstance(node.get("items"), list):
            return [plain(v) for v in node["items"]]
        return {k: plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [plain(v) for v in node]
    return node


def _layer_name(keras: dict, node_id: int) -> Optional[str]:
    if node_id not in keras:
        return None
    data = json_config.loads(keras[node_id][1], f"the Keras metadata of object {node_id}")
    name = data.get("name") if isinstance(data, dict) else None
    return name if isinstance(name, str) else None


def _text(root: Optional[dict], key: str) -> Optional[str]:
    value = root.get(key) if root else None
    return value if isinstance(value, str) else None


# ---- variables -> layers ------------------------------------------------------------------------


def _attach(graph: ModelGraph, view: ObjectGraph, keras: dict) -> ModelGraph:
    """The stored variables attached to the layers that own them, found through the object graph:
    a model node's `layer-N` children are its layers, each named in its own metadata."""
    layers_of: dict[int, dict[str, int]] = {}

    def layer_nodes(model_id: int) -> dict[str, int]:
        if model_id not in layers_of:
            found = {}
            for local, child in view.children(model_id):
                if _LAYER_CHILD.match(local):
                    name = _layer_name(keras, child)
                    if name is not None:
                        found.setdefault(name, child)
            layers_of[model_id] = found
        return layers_of[model_id]

    model_ids = {(): 0}  # container path (layer names) -> its model's node
    claimed: set[int] = set()

    def lookup(container, layer, key, is_model):
        node = layer_nodes(model_ids[container]).get(key) if container in model_ids else None
        if node is None:
            return ()
        own = view.variables_of(node)
        if is_model:
            model_ids[container + (key,)] = node
            inner = {v for child in layer_nodes(node).values() for v in view.variables_of(child)}
            own = [v for v in own if v not in inner]
        claimed.update(own)
        return view.weights(own)

    graph = attach(graph, lookup, name_keys)
    leftover = [v for v in view.variables_of(0) if v not in claimed]
    if graph.opaque:
        return replace(graph, unassigned_weights=view.weights(view.variables_of(0)))
    return replace(graph, unassigned_weights=view.weights(leftover)) if leftover else graph


def _opaque(path: str, view: ObjectGraph, nodes: list) -> ModelGraph:
    """No Keras config (Keras 3 `export()`, `tf.saved_model.save`): the variables are all there is.
    Keras objects list theirs under `variables` (and the trainable ones under `trainable_variables`);
    anything else: every variable node reachable from the root, once. A Keras 3 SeedGenerator's state
    (Dropout, noise and random layers hold one) is not a weight: count_params() leaves it out."""
    name = os.path.basename(os.path.normpath(path)) or "saved_model"
    if not nodes:
        return ModelGraph(name=name, class_name="SavedModel", format=FORMAT, layers=(), inputs=(), outputs=(),
                          opaque=True, unassigned_weights=_checkpoint_only(view.checkpoint))
    listed = _list_of(view, 0, "variables")
    ids = listed if listed is not None else [n for n in view.paths if view.is_variable(n)]
    ids = [n for n in dict.fromkeys(ids) if not _rng_state(view, n)]
    trainable = _list_of(view, 0, "trainable_variables")
    weights = []
    for node_id in ids:
        weight = view.weight(node_id)
        if weight is not None:
            weights.append(weight if trainable is None else replace(weight, trainable=node_id in trainable))
    return ModelGraph(name=name, class_name="SavedModel", format=FORMAT, layers=(), inputs=(), outputs=(),
                      opaque=True, unassigned_weights=tuple(weights))


def _list_of(view: ObjectGraph, node_id: int, name: str) -> Optional[list]:
    """The variables a Keras object lists under `name` (`variables`, `trainable_variables`), or None."""
    listed = view.child(node_id, name)
    if listed is None or view.is_variable(listed):
        return None
    return [n for _, n in view.children(listed) if view.is_variable(n)]


def _rng_state(view: ObjectGraph, node_id: int) -> bool:
    # keras/src/random/seed_generator.py names its state variable so
    return view.nodes[node_id]["variable"].get("name", "").rpartition("/")[2] == "seed_generator_state"


def _checkpoint_only(checkpoint: Optional[Checkpoint]) -> tuple:
    """A TF1 SavedModel has no object graph: its variables are the checkpoint's entries."""
    stored = checkpoint.entries if checkpoint else {}
    return tuple(Weight(path=key, shape=e[1], dtype=e[0]) for key, e in stored.items() if key != _OBJECT_GRAPH_KEY)


# ---- variables/variables.index -------------------------------------------------------------------

_VALUE_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
_OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"  # the checkpoint's own object graph, a string tensor


class Checkpoint(NamedTuple):
    """variables/variables.index: object path -> (dtype, shape, shard, offset, size) per stored tensor."""

    entries: dict
    shards: int

    def shard_file(self, path: str, shard: int) -> str:
        return os.path.join(path, "variables", f"variables.data-{shard:05d}-of-{self.shards:05d}")


def _read_checkpoint(path: str) -> Optional[Checkpoint]:
    """Every tensor the checkpoint stores; None if the folder holds no checkpoint index. The data
    shards are checked to exist and to hold what the index places in them (their bytes are read
    only by --scan-weights)."""
    from modelaudit.formats.sstable import TableError, read_table

    file = os.path.join(path, VARIABLES_INDEX)
    if not os.path.lexists(file):
        return None
    data = _read_bytes(file, MAX_INDEX_BYTES)
    try:
        table = read_table(data)
        if not table or table[0][0] != b"":
            raise TableError("no bundle header entry")
        header = decode(table[0][1], BUNDLE_HEADER)
        if header.get("endianness", 0) != 0:
            raise TableError("the variables are stored big-endian")
        shards = header.get("num_shards", 0)
        if not 1 <= shards <= MAX_SHARDS:
            raise TableError(f"the header declares {shards} data shards")
        out = {}
        for key, value in table[1:]:
            out[_object_key(key)] = _entry(decode(value, BUNDLE_ENTRY), shards)
    except (TableError, ProtoError) as exc:
        raise ModelReadError(f"variables/variables.index is not a readable checkpoint index ({exc})") from None
    checkpoint = Checkpoint(out, shards)
    _check_shards(path, checkpoint)
    return checkpoint


def _object_key(key: bytes) -> str:
    try:
        text = key.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtoError("a checkpoint key is not UTF-8 text") from None
    return text[: -len(_VALUE_SUFFIX)] if text.endswith(_VALUE_SUFFIX) else text


def _entry(entry: dict, shards: int) -> tuple:
    shape = _shape(entry.get("shape"))
    if shape is None:
        raise ProtoError("a stored tensor has no known shape")
    shard, offset, size = entry.get("shard_id", 0), entry.get("offset", 0), entry.get("size", 0)
    if offset < 0 or size < 0 or shard >= shards:
        raise ProtoError(f"a stored tensor lies outside the data (shard {shard}, offset {offset}, size {size})")
    return DTYPES.get(entry.get("dtype", 0), "unknown"), shape, shard, offset, size


def _check_shards(path: str, checkpoint: Checkpoint) -> None:
    needed: dict[int, int] = {}
    for _, _, shard, offset, size in checkpoint.entries.values():
        needed[shard] = max(needed.get(shard, 0), offset + size)
    for shard, end in sorted(needed.items()):
        file = checkpoint.shard_file(path, shard)
        try:
            held = os.stat(file).st_size
        except OSError:
            raise ModelReadError(f"{_name(file)} is missing: the checkpoint index places variables in it") from None
        if held < end:
            raise ModelReadError(f"{_name(file)} is truncated: {held:,} bytes, the index places variables up to byte {end:,}")


def _folder_size(path: str, checkpoint: Optional[Checkpoint]) -> int:
    """Bytes of the files that make the model: the protobufs, the index and the data shards (assets,
    which may be many, are not walked)."""
    files = [os.path.join(path, name) for name in (SAVED_MODEL_PB, KERAS_METADATA_PB, VARIABLES_INDEX, "fingerprint.pb")]
    if checkpoint:
        files += [checkpoint.shard_file(path, shard) for shard in {e[2] for e in checkpoint.entries.values()}]
    total = 0
    for file in files:
        try:
            total += os.stat(file).st_size
        except OSError:
            pass
    return total


# ---- --scan-weights ----------------------------------------------------------------------------


def _scan(path: str, graph: ModelGraph, checkpoint: Optional[Checkpoint], scan) -> None:
    """Every model variable's data, in bounded chunks, from its shard at the index's offset."""
    if checkpoint is None:
        return
    from modelaudit.formats.scan import model_weights

    stored = checkpoint.entries
    scan.run_arrays((w, _chunks(path, checkpoint, stored[w.path])) for w in model_weights(graph) if w.path in stored)


def _chunks(path: str, checkpoint: Checkpoint, entry: tuple):
    import numpy as np

    from modelaudit.formats.scan import CHUNK_BYTES

    dtype, _, shard, offset, size = entry
    try:
        item = np.dtype(dtype).newbyteorder("<")
    except TypeError:
        raise ValueError(f"{dtype} data is not scanned") from None
    if item.kind not in "biufc":
        raise ValueError(f"{dtype} data is not scanned")
    step = CHUNK_BYTES - CHUNK_BYTES % item.itemsize
    fd = _open_regular(checkpoint.shard_file(path, shard))
    try:
        done = 0
        while done < size:
            data = os.pread(fd, min(step, size - done), offset + done)
            if not data:
                raise ValueError("the variable's data is truncated")
            done += len(data)
            usable = len(data) - len(data) % item.itemsize
            if usable:
                yield np.frombuffer(data[:usable], dtype=item)
    finally:
        os.close(fd)
