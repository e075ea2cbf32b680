"""The intermediate representation every reader produces and every later stage reads.

Frozen dataclasses only: the readers build a ModelGraph once, nothing downstream mutates it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from modelaudit.errors import ModelReadError

Dim = Optional[int]
Shape = tuple  # tuple[Dim, ...]; None for an unknown dimension (the batch, usually)


def is_shape(value: Any) -> bool:
    """A list or tuple of ints (not bools) and Nones: what a config may hold as a shape."""
    # a plain loop: called for every tensor of every layer, a generator here cost a tenth of a
    # 10,000-layer check
    if not isinstance(value, (list, tuple)):
        return False
    for d in value:
        if d is not None and (type(d) is not int and (not isinstance(d, int) or isinstance(d, bool))):
            return False
    return True


def shape_or_none(value: Any) -> Optional[Shape]:
    return tuple(value) if is_shape(value) else None


def normalize_dtype(dtype):
    """A dtype as written by either dialect -> (variable dtype, compute dtype) as strings or None.

    Keras 3 writes a DTypePolicy object ({"class_name": "DTypePolicy", "config": {"name": ...}}),
    Keras 2 a string or a Policy object ({"class_name": "Policy", "config": {"name": ...}}).
    """
    if isinstance(dtype, dict):
        config = dtype.get("config")
        name = config.get("name") if isinstance(config, dict) else None
        if name is None and isinstance(config, dict):  # a quantized policy names the one it came from
            name = config.get("source_name")
    else:
        name = dtype
    if not isinstance(name, str):
        return None, None
    name = name.rpartition("_from_")[2]  # "int8_from_mixed_bfloat16" computes in bfloat16
    if name.startswith("mixed_"):
        return "float32", name[len("mixed_"):]
    return name, name


def fmt_shape(shape) -> str:
    """A shape as Keras's summary() prints it: (None, 28, 28, 1); "?" when unknown."""
    if shape is None:
        return "?"
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + (",)" if len(shape) == 1 else ")")


def size_of(shape) -> int:
    """The number of values a variable of this (known) shape holds."""
    n = 1
    for d in shape:
        n *= int(d)
    return n


@dataclass(frozen=True)
class TensorRef:
    """Keras's own `keras_history` triple: which call of which layer, which of its outputs."""

    layer: str
    call: int = 0
    index: int = 0


@dataclass(frozen=True)
class Weight:
    """One stored variable: where it sits in the weights file, its shape and dtype. Never its data."""

    path: str
    shape: Shape
    dtype: str
    # what the file says of the variable's trainability (a SavedModel's SavedVariable does); None:
    # the file does not say, and infer/stored.py decides from the variable's name and owner
    trainable: Optional[bool] = None

    @property
    def size(self) -> int:
        return size_of(self.shape)


@dataclass(frozen=True)
class Call:
    """One call of a layer (Keras's inbound node).

    `inputs` is every tensor passed, args then kwargs, flattened in order; `input_shapes` holds the
    shape the file records for each of them (Keras 3 `__keras_tensor__` records), None where it
    records none. `kwargs` keeps every keyword argument as the file writes it (e.g. `training`), a
    tensor replaced by TENSOR, and under POSITIONAL ("*args") the positional
    arguments so (`2.0 - x` in tf_keras: [2.0]); op specs (infer/tf_ops.py) bind them.
    """

    inputs: tuple[TensorRef, ...]
    input_shapes: tuple[Optional[Shape], ...] = ()
    kwargs: dict = field(default_factory=dict, hash=False, compare=False)
    # names of keyword arguments that carried tensors, aligned with the tail of `inputs`
    tensor_kwargs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Layer:
    name: str
    class_name: str
    config: dict = field(hash=False, compare=False)
    module: Optional[str] = None
    registered_name: Optional[str] = None
    calls: tuple[Call, ...] = ()
    weights: Optional[tuple[Weight, ...]] = None  # None: the file holds no weights at all
    build_input_shape: Any = None  # build_config.input_shape as recorded
    submodel: Optional["ModelGraph"] = None
    synthetic: bool = False  # an InputLayer we added to a Sequential that saved none

    @property
    def trainable(self) -> bool:
        return bool(self.config.get("trainable", True))

    @property
    def is_op(self) -> bool:
        """A Keras 3 operation (keras.src.ops.*) serialized as a node of the functional graph."""
        return (self.module or "").startswith(("keras.src.ops.", "keras.ops."))

    @property
    def dtypes(self) -> tuple[Optional[str], Optional[str]]:
        """(variable dtype, compute dtype) of the layer's dtype policy, either dialect; None where the
        config names none."""
        return normalize_dtype(self.config.get("dtype") if isinstance(self.config, dict) else None)


@dataclass(frozen=True)
class Objective:
    loss: Any  # as in the file: str, dict (one object or by output name), list, or None
    metrics: Any = None
    weighted_metrics: Any = None
    loss_weights: Any = None
    optimizer: Optional[str] = None
    learning_rate: Any = None
    raw: dict = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class Signature:
    """A SavedModel serving signature: what a caller feeds it and gets back, by key."""

    name: str
    inputs: tuple = ()  # (key, dtype, shape) per input; None for an unknown dimension or rank
    outputs: tuple = ()


@dataclass(frozen=True)
class SourceFacts:
    """What the container itself holds, for the security rules (the readers never judge it)."""

    members: tuple = ()  # zip members: (name, compressed size, uncompressed size, compress_type)
    hdf5_links: tuple = ()  # (path, kind) for external/soft links, external storage, virtual datasets
    oversized: tuple = ()  # (path, declared bytes) for datasets declaring more than the file holds
    file_size: int = 0
    keras_version: Optional[str] = None
    backend: Optional[str] = None
    # a legacy .h5's training_config as parsed, for the security walk even when it names no objective
    training_config: Any = field(default=None, hash=False, compare=False)
    # weight files the model names that are not beside it (a TF.js manifest's shards), in its order
    missing_weight_files: tuple = ()
    # (npz member, the globals its pickle names) for each weight stored as an object array (a pickle)
    pickled_members: tuple = ()
    signatures: tuple = ()  # a SavedModel's serving signatures (Signature), in the file's order
    # a SavedModel's traced graph: each distinct op per function and where it is reached from
    # (formats/tfgraph.GraphOp)
    graph_ops: tuple = ()
    # bytes before the container that its readers skip (an HDF5 user block; whatever precedes a zip's
    # first member): how many, and the first formats.detect.HIDDEN_HEAD of them
    prefix_size: int = 0
    prefix_head: bytes = b""
    # the same after the container's end (a zip's end record and comment; the end of file an HDF5
    # superblock records)
    suffix_size: int = 0
    suffix_head: bytes = b""
    member_prefixes: tuple = ()  # (member, bytes before its HDF5 superblock, the first HIDDEN_HEAD of them)
    archive_comment: bytes = b""  # a zip's comment (at most 64 KiB)
    # (where: "prefix" | "suffix" | "comment" | a member, the globals it names) for hidden bytes that parse
    # as a pickle
    hidden_pickles: tuple = ()
    member_modes: tuple = ()  # (name, Unix mode) of zip members whose mode is neither a file's nor a folder's
    header_mismatches: tuple = ()  # (name, what its local header says that the central directory does not)
    metadata: Any = field(default=None, hash=False, compare=False)  # metadata.json as parsed, None if absent
    metadata_problem: Optional[str] = None  # why metadata.json could not be parsed (Keras never reads it)


@dataclass(frozen=True)
class ModelGraph:
    name: str
    class_name: str
    format: str  # keras-v3 | keras-h5 | json-config | live
    layers: tuple[Layer, ...]
    inputs: tuple[TensorRef, ...]
    outputs: tuple[TensorRef, ...]
    output_names: tuple[str, ...] = ()
    objective: Optional[Objective] = None
    config: dict = field(default_factory=dict, hash=False, compare=False)  # the whole raw config
    source: SourceFacts = field(default_factory=SourceFacts)
    opaque: bool = False  # a subclassed model whose config holds no layer graph
    unassigned_weights: tuple[Weight, ...] = ()  # stored variables no layer in the config explains
    sequential: bool = False

    @property
    def holds_weights(self) -> bool:
        """False for a bare config (a JSON file): no variable is stored anywhere, so what no spec
        recomputes is unknown, not zero."""
        return self.format != "json-config"

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    def walk(self, prefix: str = ""):
        """Yield (path, layer, depth) for every layer at every depth, nested models included: each
        nested model's layers right after it. Iterative: models nest deeper than Python recurses."""
        # a stack of (layers, position, prefix, depth): one frame of the walk per open model
        stack = [(self.layers, 0, prefix, prefix.count("/") + 1 if prefix else 0)]
        while stack:
            layers, i, base, depth = stack.pop()
            if i >= len(layers):
                continue
            layer = layers[i]
            stack.append((layers, i + 1, base, depth))
            path = f"{base}/{layer.name}" if base else layer.name
            yield path, layer, depth
            if layer.submodel is not None:
                stack.append((layer.submodel.layers, 0, path, path.count("/") + 1))


# ---- calls and their order -------------------------------------------------------------------

# Call.kwargs holds every argument of the call as the file writes it, each tensor replaced by TENSOR
# (the tensors themselves are Call.inputs, in the same order), and under POSITIONAL the positional
# arguments (tf_keras writes only the first argument so; every other one by name). Op specs
# (infer/tf_ops.py) bind them to the op's signature: `2.0 - x` is subtract(x=2.0, y=<tensor>).
# Not an identifier, so no keyword argument can be named so.
POSITIONAL = "*args"


class _Tensor:
    """The place of a tensor among the arguments in Call.kwargs."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<tensor>"


TENSOR = _Tensor()


def positional_constants(call: Call) -> bool:
    """True if the call's positional arguments hold a value that is not a tensor (`2.0 - x`)."""

    def constant(obj: Any) -> bool:
        if obj is TENSOR:
            return False
        if isinstance(obj, list):
            return any(constant(v) for v in obj)
        if isinstance(obj, dict):
            return any(constant(v) for v in obj.values())
        return True

    args = call.kwargs.get(POSITIONAL)
    return args is not None and constant(args)


def topological_order(graph: ModelGraph) -> list[tuple[str, int]]:
    """(layer name, call index) pairs so that every call comes after the calls it consumes.

    Iterative (Kahn's algorithm) so that a long chain cannot exhaust the stack; raises on a cycle.
    """
    by_name = {layer.name: layer for layer in graph.layers}
    deps: dict[tuple[str, int], set] = {}
    for layer in graph.layers:
        if not layer.calls:
            deps[(layer.name, 0)] = set()
        for i, call in enumerate(layer.calls):
            deps[(layer.name, i)] = {(ref.layer, ref.call) for ref in call.inputs if ref.layer in by_name}
    users: dict[tuple[str, int], list] = {key: [] for key in deps}
    missing = [key for key in deps if any(d not in deps for d in deps[key])]
    if missing:
        raise ModelReadError(f"layer '{missing[0][0]}' consumes a call that does not exist")
    remaining = {key: len(d) for key, d in deps.items()}
    for key, d in deps.items():
        for dep in d:
            users[dep].append(key)
    ready = [key for key, n in remaining.items() if n == 0]
    order = []
    while ready:
        key = ready.pop()
        order.append(key)
        for user in users[key]:
            remaining[user] -= 1
            if remaining[user] == 0:
                ready.append(user)
    if len(order) != len(deps):
        stuck = sorted(key[0] for key, n in remaining.items() if n > 0)
        raise ModelReadError(f"model '{graph.name}': inbound_nodes form a cycle through '{stuck[0]}'")
    return order
