"""Operations in a Functional graph: tf.keras TFOpLambda / SlicingOpLambda, and Keras 3 op nodes.

tf.keras (>= 2.4, tf_keras) records a TensorFlow call on a Keras tensor (`tf.reshape(x, ...)`,
`x * 2.0`, `x[:, 0]`) as a TFOpLambda (SlicingOpLambda for getitem) whose `config["function"]` names
the op ("reshape", "math.multiply", "__operators__.getitem"); its arguments are the call's. Shapes
follow TensorFlow's documented semantics and its static shape inference (broadcasting; an unknown
dimension stays unknown unless the other side fixes it).

Keras 3 writes an op (`x + 3.0` is keras.src.ops.numpy.Add) as a node whose config holds the op's
constructor arguments (`axis`, `newshape`) and whose call holds its tensors and constants. Shapes
follow keras/src/ops/numpy.py `compute_output_spec`, batch axis included: an op is not a layer
(ops.Reshape takes the whole shape, ops.Add adds a constant). The two tables are separate: `TF_OPS`
by function name, `KERAS_OPS` by class name.

No op has weights. An op without a spec is declined (MA107, "no spec for op X"); propagation then
takes its shapes from what the file records.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from modelaudit.graph import POSITIONAL, TENSOR
from modelaudit.infer.applications import broadcast
from modelaudit.infer.registry import CALL, EVERY_ARGUMENT, LayerSpec, ShapeError, fmt_shape

# The keras.src.ops modules whose classes KERAS_OPS names.
KERAS_OP_MODULES = ("numpy", "nn", "core", "math")
# Outputs one split / unstack may have: a hostile size must not become a billion-entry list.
MAX_OUTPUTS = 4096
# The Keras 3 op config keys that are not constructor arguments of the op.
_NOT_ARGUMENTS = ("name",)


class Tensor:
    """A tensor argument of an op: its shape (None: not known)."""

    __slots__ = ("shape",)

    def __init__(self, shape):
        self.shape = None if shape is None else tuple(shape)

    def __repr__(self) -> str:
        return f"Tensor{fmt_shape(self.shape)}"


class Op:
    """One op: its parameters in the order the op's signature has them, and its shape function.

    `compute(args)` receives {parameter: value} (tensors as Tensor) and returns one shape or, for an
    op with several outputs, a list of shapes. `open` ops (shape-keeping elementwise ones) take any
    further keyword, since none of them changes the shape; any other op declines an argument its
    spec does not know rather than guess.
    """

    def __init__(self, params: tuple, compute: Callable[[dict], Any], *, open: bool = False, multi: bool = False,
                 varargs: Optional[str] = None):
        self.params, self.compute, self.open, self.multi = params, compute, open, multi
        self.varargs = varargs  # the parameter that takes every further positional argument (einsum's operands)

    def bind(self, label: str, args: list, kwargs: dict) -> dict:
        if self.varargs is not None:
            k = self.params.index(self.varargs)
            bound = dict(zip(self.params[:k], args[:k]))
            bound[self.varargs] = list(args[k:])
        elif len(args) > len(self.params):
            raise NotImplementedError(f"op {label} called with {len(args)} positional arguments")
        else:
            bound = dict(zip(self.params, args))
        for key, value in kwargs.items():
            if key in bound:
                raise NotImplementedError(f"op {label} given '{key}' twice")
            if key not in self.params and not self.open:
                raise NotImplementedError(f"op {label} called with an argument its spec does not know: '{key}'")
            bound[key] = value
        return bound


class OpSpec(LayerSpec):
    """A LayerSpec around one Op: binds the call (propagation hands it over whole) to the op."""

    call_arguments = EVERY_ARGUMENT
    tensor_arguments = EVERY_ARGUMENT

    def __init__(self, label: str, op: Op, keras3: bool):
        self.label, self.op, self.keras3 = label, op, keras3

    def output_shapes(self, config, input_shapes):
        args, kwargs = call_values(config, input_shapes)
        if self.keras3:  # the op's constructor arguments
            kwargs.update({k: v for k, v in config.items() if k not in _NOT_ARGUMENTS and k != CALL})
        out = self.op.compute(self.op.bind(self.label, args, kwargs))
        shapes = out if self.op.multi else [out]
        if len(shapes) > MAX_OUTPUTS:
            raise NotImplementedError(f"op {self.label} with {len(shapes)} outputs (more than {MAX_OUTPUTS})")
        return [None if s is None else tuple(s) for s in shapes]


class UnknownOp(LayerSpec):
    """An op no spec models: declined, so that propagation reports it and takes the file's shapes."""

    def __init__(self, label: str):
        self.label = label

    def output_shapes(self, config, input_shapes):
        raise NotImplementedError(f"no spec for op {self.label}")


def call_values(config: dict, input_shapes: list) -> tuple[list, dict]:
    """The call's positional and keyword arguments, each tensor as a Tensor of its shape in the order
    the call holds them (formats/json_config.py writes TENSOR in their place)."""
    call = config.get(CALL)
    if call is None:
        return [Tensor(s) for s in input_shapes], {}
    shapes = iter(input_shapes)

    def fill(obj):
        if obj is TENSOR:
            try:
                return Tensor(next(shapes))
            except StopIteration:
                raise NotImplementedError("the call holds more tensors than the graph gives it") from None
        if isinstance(obj, list):
            return [fill(v) for v in obj]
        if isinstance(obj, dict):
            return {k: fill(v) for k, v in obj.items()}
        return obj

    positional = call.kwargs.get(POSITIONAL)
    args = fill(positional) if isinstance(positional, list) else [Tensor(s) for s in input_shapes]
    kwargs = {k: fill(v) for k, v in call.kwargs.items() if k != POSITIONAL}
    return args, kwargs


def spec_for_op(layer) -> LayerSpec:
    """The spec of a TFOpLambda / SlicingOpLambda (by its function) or of a Keras 3 op node (by class)."""
    if layer.class_name in ("TFOpLambda", "SlicingOpLambda"):
        function = layer.config.get("function")
        label = function if isinstance(function, str) else "?"
        op = TF_OPS.get(label)
        return OpSpec(label, op, keras3=False) if op is not None else UnknownOp(label)
    label = f"{layer.module}.{layer.class_name}"
    # by class name within the modules the table is written from (ops.image or ops.linalg classes
    # of the same name would be other ops)
    op = KERAS_OPS.get(layer.class_name) if layer.module.rsplit(".", 1)[-1] in KERAS_OP_MODULES else None
    return OpSpec(label, op, keras3=True) if op is not None else UnknownOp(label)


# ---- values: shapes of tensors and constants ------------------------------------------------------


def shape_of(value, what: str = "argument") -> Optional[tuple]:
    """The shape of a tensor or a constant (a number is (), a nested list has its lengths)."""
    if isinstance(value, Tensor):
        return value.shape
    if isinstance(value, dict) and value.get("class_name") == "__numpy__":  # Keras 3 numpy constant
        value = (value.get("config") or {}).get("value")
    if isinstance(value, (bool, int, float)) or value is None:
        return ()
    if isinstance(value, list):
        if not value:
            return (0,)
        inner = shape_of(value[0], what)
        return None if inner is None else (len(value),) + inner
    raise NotImplementedError(f"the {what} is a {type(value).__name__}, not a tensor or a number")


def tensor_shape(value, what: str) -> tuple:
    """The shape of an argument that must be a tensor of known rank."""
    shape = shape_of(value, what)
    if shape is None:
        raise NotImplementedError(f"the rank of {what} is not known")
    return shape


def int_value(value, what: str) -> Optional[int]:
    """A constant int argument; None for a tensor (its value is known only when the model runs)."""
    if isinstance(value, Tensor):
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ShapeError(f"{what} should be an integer, got {value!r}")
    return value


def int_list(value, what: str) -> list:
    """A constant list of ints (an int is a list of one); tensors inside it are None."""
    if isinstance(value, Tensor):
        raise NotImplementedError(f"{what} is a tensor: its value is known only when the model runs")
    if isinstance(value, (list, tuple)):
        return [int_value(v, what) for v in value]
    return [int_value(value, what)]


def axis_index(axis, rank: int, op: str) -> int:
    axis = int_value(axis, f"{op} axis")
    if axis is None:
        raise NotImplementedError(f"{op} axis is a tensor")
    if not -rank <= axis < rank:
        raise ShapeError(f"{op} axis {axis} is out of range for a tensor of rank {rank}")
    return axis % rank


def merge_dims(a, b, op: str):
    """Two sizes of one dimension that must agree: a known one wins over an unknown one."""
    if a is None:
        return b
    if b is None or a == b:
        return a
    raise ShapeError(f"{op}: sizes {a} and {b} of one dimension differ")


def merge_shapes(shapes: list, op: str, skip_axis: Optional[int] = None) -> list:
    """TensorFlow's shape merge: every input of the same rank; dims agree where known."""
    ranks = {len(s) for s in shapes}
    if len(ranks) != 1:
        raise ShapeError(f"{op} inputs must have the same rank, got {', '.join(fmt_shape(s) for s in shapes)}")
    out = list(shapes[0])
    for s in shapes[1:]:
        for i, d in enumerate(s):
            if i != skip_axis:
                try:
                    out[i] = merge_dims(out[i], d, op)
                except ShapeError:
                    raise ShapeError(
                        f"{op} inputs differ on axis {i}: {', '.join(fmt_shape(x) for x in shapes)}"
                    ) from None
    return out


def broadcast_all(values: list, op: str) -> Optional[tuple]:
    shapes = [shape_of(v, f"{op} operand") for v in values if v is not None]
    if any(s is None for s in shapes):
        return None
    out = shapes[0]
    for s in shapes[1:]:
        out = broadcast(out, s, op)
    return out


def reduce_dims(shape: tuple, axis, keepdims: bool, op: str) -> tuple:
    """Keras's reduce_shape and TensorFlow's reductions: no axis reduces all of them."""
    if axis is None:
        return tuple(1 for _ in shape) if keepdims else ()
    axes = {axis_index(a, len(shape), op) for a in (axis if isinstance(axis, list) else [axis])}
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def _rank_known(value, op: str) -> tuple:
    return tensor_shape(value, f"the input of {op}")


# ---- elementwise ---------------------------------------------------------------------------------


def _same_shape(args):
    """Elementwise ops of one tensor (activations, math.*, cast, identity): the shape is kept."""
    return shape_of(args.get("x"), "input")


def _binary(first: str, second: str, op: str):
    """Broadcasting ops of two operands (`x + y`, `x * 2.0`, math.maximum, ops.NotEqual)."""

    def compute(args):
        if second not in args or first not in args:
            # tf_keras writes no second operand for `x == y` (__operators__.eq): nothing to broadcast
            raise NotImplementedError(f"the file holds no '{second if first in args else first}' operand for {op}")
        return broadcast_all([args[first], args[second]], op)

    return compute


def _where(first: str, second: str, op: str):
    def compute(args):
        cond = tensor_shape(args.get("condition"), f"the condition of {op}")
        if args.get(first) is None and args.get(second) is None:
            return (None, len(cond))  # the coordinates of the true elements
        return broadcast_all([args.get("condition"), args.get(first), args.get(second)], op)

    return compute


def _add_n(args):
    values = args.get("inputs")
    if not isinstance(values, list) or not values:
        raise ShapeError("math.add_n expects a list of tensors")
    return tuple(merge_shapes([_rank_known(v, "math.add_n") for v in values], "math.add_n"))


def _clip_by_value(args):
    # TensorFlow requires the clip values not to change the tensor's shape by broadcasting.
    return broadcast_all([args.get("t"), args.get("clip_value_min"), args.get("clip_value_max")], "clip_by_value")


# ---- shape ops ------------------------------------------------------------------------------------


def _reshape_to(shape: tuple, target, op: str) -> tuple:
    """The shape `shape` takes under reshape(target): one -1 is solved when every input dim is known.
    A dimension given by a tensor (tf.shape(x)[0]) is known only when the model runs."""
    if isinstance(target, Tensor):
        length = target.shape[0] if target.shape and len(target.shape) == 1 else None
        if length is None:
            raise NotImplementedError(f"{op} to a shape whose length is known only when the model runs")
        return (None,) * length
    dims = int_list(target, f"{op} shape")
    if dims.count(-1) > 1:
        raise ShapeError(f"{op} shape {target} has more than one -1")
    if any(d is not None and d < -1 for d in dims):
        raise ShapeError(f"{op} shape {target} has a negative dimension")
    if None in shape or None in dims:
        return tuple(None if d == -1 else d for d in dims)
    size = 1
    for d in shape:
        size *= d
    known = 1
    for d in dims:
        if d != -1:
            known *= d
    if -1 not in dims:
        if known != size:
            raise ShapeError(
                f"{op} cannot reshape {fmt_shape(shape)} ({size} values) to {fmt_shape(tuple(dims))} ({known})"
            )
        return tuple(dims)
    if known == 0 or size % known:
        raise ShapeError(f"{op} cannot reshape {fmt_shape(shape)} ({size} values) to {fmt_shape(tuple(dims))}")
    return tuple(size // known if d == -1 else d for d in dims)


def _tf_reshape(args):
    return _reshape_to(_rank_known(args.get("tensor"), "reshape"), args.get("shape"), "reshape")


def _expand(shape: tuple, axes: list, op: str) -> tuple:
    rank = len(shape) + len(axes)
    where = set()
    for a in axes:
        if a is None or not -rank <= a < rank:
            raise ShapeError(f"{op} axis {a} is out of range for an output of rank {rank}")
        where.add(a % rank)
    dims = iter(shape)
    return tuple(1 if i in where else next(dims) for i in range(rank))


def _tf_expand_dims(args):
    return _expand(_rank_known(args.get("input"), "expand_dims"), [int_value(args.get("axis"), "expand_dims axis")],
                   "expand_dims")


def _tf_squeeze(args):
    """TensorFlow squeeze: without an axis every known 1 goes, and an unknown dimension makes the
    output's rank unknown (TF's shape inference gives up); a squeezed axis must be 1 where known."""
    shape = _rank_known(args.get("input"), "squeeze")
    axis = args.get("axis") if args.get("axis") is not None else args.get("squeeze_dims")
    if axis is None or axis == []:
        if None in shape:
            return None
        return tuple(d for d in shape if d != 1)
    axes = {axis_index(a, len(shape), "squeeze") for a in int_list(axis, "squeeze axis")}
    for a in axes:
        if shape[a] is not None and shape[a] != 1:
            raise ShapeError(f"squeeze cannot remove axis {a} of {fmt_shape(shape)}: its size is {shape[a]}, not 1")
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def _permute(shape: tuple, perm, op: str) -> tuple:
    if perm is None:
        return tuple(reversed(shape))
    axes = int_list(perm, f"{op} permutation")
    if len(axes) != len(shape) or sorted(-1 if a is None else a % len(shape) for a in axes) != list(range(len(shape))):
        raise ShapeError(f"{op} permutation {perm} is not a permutation of the {len(shape)} axes of {fmt_shape(shape)}")
    return tuple(shape[a % len(shape)] for a in axes)


def _tf_transpose(args):
    return _permute(_rank_known(args.get("a"), "transpose"), args.get("perm"), "transpose")


def _tensor_list(values, op: str) -> list:
    if isinstance(values, Tensor):
        raise NotImplementedError(f"{op} of one stacked tensor")
    if not isinstance(values, list) or not values:
        raise ShapeError(f"{op} expects a list of tensors")
    return [_rank_known(v, op) for v in values]


def _tf_concat(args):
    shapes = _tensor_list(args.get("values"), "concat")
    axis = axis_index(args.get("axis"), len(shapes[0]), "concat")
    out = merge_shapes(shapes, "concat", skip_axis=axis)
    sizes = [s[axis] for s in shapes]
    out[axis] = None if None in sizes else sum(sizes)
    return tuple(out)


def _tf_stack(args):
    shapes = _tensor_list(args.get("values"), "stack")
    out = merge_shapes(shapes, "stack")
    rank = len(out) + 1
    axis = int_value(args.get("axis", 0), "stack axis")
    if axis is None or not -rank <= axis < rank:
        raise ShapeError(f"stack axis {axis} is out of range for an output of rank {rank}")
    out.insert(axis % rank, len(shapes))
    return tuple(out)


def _tf_unstack(args):
    shape = _rank_known(args.get("value"), "unstack")
    axis = axis_index(args.get("axis", 0), len(shape), "unstack")
    num = args.get("num") if args.get("num") is not None else shape[axis]
    if num is None:
        raise NotImplementedError("unstack along an axis of unknown size gives an unknown number of outputs")
    if shape[axis] is not None and num != shape[axis]:
        raise ShapeError(f"unstack num={num} differs from the size {shape[axis]} of axis {axis}")
    rest = tuple(d for i, d in enumerate(shape) if i != axis)
    return [rest] * _outputs(num, "unstack")


def _split_axis(value, axis, op: str) -> tuple:
    """split and ops.split: the tensor's shape, the axis it is cut along and that axis's size."""
    shape = _rank_known(value, op)
    axis = axis_index(axis, len(shape), op)
    return shape, axis, shape[axis]


def _equal_parts(dim, parts: int, op: str) -> list:
    """The sizes of `parts` equal parts of an axis of size dim (None where dim is unknown)."""
    return [None if dim is None else dim // parts] * _outputs(parts, op)


def _split_parts(shape, axis: int, sizes) -> list:
    """The shapes of the parts: the tensor's shape with the cut axis of each size."""
    return [tuple(s if i == axis else d for i, d in enumerate(shape)) for s in sizes]


def _tf_split(args):
    """split: an int makes that many equal parts; a list gives the sizes (one -1 takes the rest)."""
    shape, axis, dim = _split_axis(args.get("value"), args.get("axis", 0), "split")
    splits = args.get("num_or_size_splits")
    if isinstance(splits, int) and not isinstance(splits, bool):
        if splits <= 0:
            raise ShapeError(f"split into {splits} parts")
        if dim is not None and dim % splits:
            raise ShapeError(f"split cannot cut axis {axis} of size {dim} into {splits} equal parts")
        sizes = _equal_parts(dim, splits, "split")
    else:
        sizes = int_list(splits, "split sizes")
        if sizes.count(-1) > 1:
            raise ShapeError(f"split sizes {splits} have more than one -1")
        if -1 in sizes:
            known = sum(s for s in sizes if s != -1)
            sizes = [(None if dim is None else dim - known) if s == -1 else s for s in sizes]
        elif dim is not None and None not in sizes and sum(sizes) != dim:
            raise ShapeError(f"split sizes {splits} do not add up to the size {dim} of axis {axis}")
    return _split_parts(shape, axis, sizes)


def _outputs(n: int, op: str) -> int:
    if n > MAX_OUTPUTS:
        raise NotImplementedError(f"{op} into {n} outputs (more than {MAX_OUTPUTS})")
    return n


def _pad_to(shape: tuple, paddings, op: str) -> tuple:
    pairs = paddings if isinstance(paddings, list) else None
    if pairs is None or len(pairs) != len(shape) or not all(isinstance(p, list) and len(p) == 2 for p in pairs):
        raise ShapeError(
            f"{op} paddings should be one [before, after] pair per axis of {fmt_shape(shape)}, got {paddings!r}"
        )
    out = []
    for d, (before, after) in zip(shape, pairs):
        before, after = int_value(before, f"{op} padding"), int_value(after, f"{op} padding")
        out.append(None if d is None or before is None or after is None else d + before + after)
    return tuple(out)


def _tf_pad(args):
    return _pad_to(_rank_known(args.get("tensor"), "pad"), args.get("paddings"), "pad")


def _tile_by(shape: tuple, multiples: list, op: str) -> tuple:
    return tuple(None if d is None or m is None else d * m for d, m in zip(shape, multiples))


def _tf_tile(args):
    shape = _rank_known(args.get("input"), "tile")
    multiples = int_list(args.get("multiples"), "tile multiples")
    if len(multiples) != len(shape):
        raise ShapeError(f"tile multiples {multiples} should have one entry per axis of {fmt_shape(shape)}")
    return _tile_by(shape, multiples, "tile")


# ---- reductions -----------------------------------------------------------------------------------


def _tf_reduce(op: str):
    def compute(args):
        shape = _rank_known(args.get("input_tensor"), op)
        axis = args.get("axis") if args.get("axis") is not None else args.get("reduction_indices")
        keep = args.get("keepdims") if args.get("keepdims") is not None else args.get("keep_dims")
        if isinstance(axis, Tensor):
            raise NotImplementedError(f"{op} over axes known only when the model runs")
        return reduce_dims(shape, axis, bool(keep), op)

    return compute


def _tf_arg_reduce(op: str):
    def compute(args):
        shape = _rank_known(args.get("input"), op)
        axis = args.get("axis") if args.get("axis") is not None else args.get("dimension")
        return reduce_dims(shape, 0 if axis is None else axis, False, op)  # TensorFlow's default axis is 0

    return compute


# ---- gathering and indexing ------------------------------------------------------------------------


def _tf_shape(args):
    """tf.shape: a vector holding one size per axis."""
    return (len(_rank_known(args.get("input"), "shape")),)


def _tf_gather(args):
    """gather: the indices' shape (after the batch dims they share) replaces the gathered axis."""
    params = _rank_known(args.get("params"), "gather")
    indices = tensor_shape(args.get("indices"), "the indices of gather")
    batch_dims = int_value(args.get("batch_dims") or 0, "gather batch_dims")
    axis = axis_index(args.get("axis") if args.get("axis") is not None else batch_dims, len(params), "gather")
    if batch_dims is None or batch_dims < 0 or batch_dims > min(axis, len(indices)):
        raise NotImplementedError(f"gather with batch_dims={batch_dims}")
    return params[:axis] + indices[batch_dims:] + params[axis + 1:]


def _tf_one_hot(args):
    """one_hot: a new axis of `depth` (at the end, or at `axis`)."""
    shape = _rank_known(args.get("indices"), "one_hot")
    depth = int_value(args.get("depth"), "one_hot depth")
    axis = -1 if args.get("axis") is None else int_value(args.get("axis"), "one_hot axis")
    rank = len(shape) + 1
    if axis is None or not -rank <= axis < rank:
        raise ShapeError(f"one_hot axis {axis} is out of range for an output of rank {rank}")
    out = list(shape)
    out.insert(axis % rank, depth)
    return tuple(out)


def _tf_top_k(args):
    """math.top_k: values and indices, the last axis cut to k."""
    shape = _rank_known(args.get("input"), "math.top_k")
    k = int_value(args.get("k", 1), "math.top_k k")
    if not shape or (k is not None and shape[-1] is not None and k > shape[-1]):
        raise ShapeError(f"math.top_k k={k} for an input {fmt_shape(shape)}")
    return [shape[:-1] + (k,)] * 2


# ---- products -------------------------------------------------------------------------------------


def matmul_shape(a: tuple, b: tuple, op: str) -> tuple:
    """keras operation_utils.compute_matmul_output_shape, as TensorFlow's BatchMatMulV2: the inner
    dimensions agree, the leading ones broadcast; a 1-D operand is a row (left) or a column (right)."""
    a_1d, b_1d = len(a) == 1, len(b) == 1
    if not a or not b:
        raise ShapeError(f"{op} operands must have rank >= 1, got {fmt_shape(a)} and {fmt_shape(b)}")
    a = (1,) + a if a_1d else a
    b = b + (1,) if b_1d else b
    if a[-1] is not None and b[-2] is not None and a[-1] != b[-2]:
        raise ShapeError(f"{op} inner dimensions differ: {fmt_shape(a)} times {fmt_shape(b)}")
    out = list(broadcast(a[:-2], b[:-2], op)) + [a[-2], b[-1]]
    if a_1d:
        del out[-2]
    if b_1d:
        del out[-1]
    return tuple(out)


def _tf_matmul(args):
    a = _rank_known(args.get("a"), "linalg.matmul")
    b = _rank_known(args.get("b"), "linalg.matmul")
    if len(a) < 2 or len(b) < 2:
        raise ShapeError(f"linalg.matmul operands must have rank >= 2, got {fmt_shape(a)} and {fmt_shape(b)}")
    if args.get("transpose_a") or args.get("adjoint_a"):
        a = a[:-2] + (a[-1], a[-2])
    if args.get("transpose_b") or args.get("adjoint_b"):
        b = b[:-2] + (b[-1], b[-2])
    return matmul_shape(a, b, "linalg.matmul")


def einsum_shape(equation, operands: list, op: str) -> tuple:
    """The output of an einsum: each letter's size from the operands (1 stretches, as in
    broadcasting), "..." the broadcast of the operands' unnamed axes; without "->" the output is
    "..." then the letters used once, in alphabetical order (NumPy's implicit mode)."""
    if not isinstance(equation, str):
        raise ShapeError(f"{op} equation should be a string, got {equation!r}")
    spec = equation.replace(" ", "")
    inputs, arrow, output = spec.partition("->")
    terms = inputs.split(",")
    if len(terms) != len(operands):
        raise ShapeError(f"{op} equation '{equation}' names {len(terms)} operands, got {len(operands)}")
    sizes: dict = {}
    ellipsis: tuple = ()
    for term, shape in zip(terms, operands):
        head, dots, tail = term.partition("...")
        if len(head) + len(tail) > len(shape) or (not dots and len(head) != len(shape)):
            raise ShapeError(f"{op} term '{term}' does not fit its operand {fmt_shape(shape)}")
        cut = len(shape) - len(tail)
        named = list(zip(head, shape[: len(head)])) + list(zip(tail, shape[cut:]))
        if dots:
            ellipsis = broadcast(ellipsis, shape[len(head):cut], op)
        for letter, d in named:
            sizes[letter] = broadcast((sizes[letter],), (d,), op)[0] if letter in sizes else d
    if not arrow:
        once = sorted(c for c in set(inputs) if c.isalpha() and inputs.count(c) == 1)
        output = "..." + "".join(once)
    head, has_ellipsis, tail = output.partition("...")
    out = [sizes.get(c) for c in head]
    if has_ellipsis:
        out += list(ellipsis) + [sizes.get(c) for c in tail]
    if any(c.isalpha() and c not in sizes for c in output):
        raise ShapeError(f"{op} output '{output}' names an axis no operand has")
    return tuple(out)


def _tf_einsum(args):
    inputs = args.get("inputs") or []
    return einsum_shape(args.get("equation"), [_rank_known(v, "einsum") for v in inputs], "einsum")


# ---- images -------------------------------------------------------------------------------------


def _tf_resize(args):
    shape = _rank_known(args.get("images"), "image.resize")
    if len(shape) not in (3, 4):
        raise ShapeError(f"image.resize expects images of rank 3 or 4, got {fmt_shape(shape)}")
    if args.get("preserve_aspect_ratio"):
        raise NotImplementedError("image.resize with preserve_aspect_ratio depends on the image sizes' ratio")
    size = int_list(args.get("size"), "image.resize size")
    if len(size) != 2:
        raise ShapeError(f"image.resize size should be [height, width], got {args.get('size')!r}")
    return shape[:-3] + (size[0], size[1], shape[-1])


def _block_op(op: str, to_depth: bool):
    """nn.space_to_depth / depth_to_space: blocks of block_size x block_size move between the
    spatial axes and the channels (NHWC, or NCHW)."""

    def compute(args):
        shape = _rank_known(args.get("input"), op)
        if len(shape) != 4:
            raise ShapeError(f"{op} expects a 4-D input, got {fmt_shape(shape)}")
        block = int_value(args.get("block_size"), f"{op} block_size")
        if block is None or block < 2:
            raise ShapeError(f"{op} block_size should be at least 2, got {block}")
        fmt = args.get("data_format") or "NHWC"
        if fmt not in ("NHWC", "NCHW"):
            raise NotImplementedError(f"{op} with data_format {fmt}")
        n, h, w, c = shape if fmt == "NHWC" else (shape[0], shape[2], shape[3], shape[1])
        if to_depth:
            for d in (h, w):
                if d is not None and d % block:
                    raise ShapeError(f"{op}: spatial size {d} is not divisible by block_size {block}")
            h, w, c = _div(h, block), _div(w, block), _mul(c, block * block)
        else:
            if c is not None and c % (block * block):
                raise ShapeError(f"{op}: depth {c} is not divisible by block_size² = {block * block}")
            h, w, c = _mul(h, block), _mul(w, block), _div(c, block * block)
        return (n, h, w, c) if fmt == "NHWC" else (n, c, h, w)

    return compute


def _div(d, k):
    return None if d is None else d // k


def _mul(d, k):
    return None if d is None else d * k


# ---- slicing: x[...] -------------------------------------------------------------------------------

_NEWAXIS = object()
_ELLIPSIS = object()


def _slice_key(item, op: str):
    """One entry of a slice spec as the file writes it -> int, slice, _NEWAXIS or _ELLIPSIS.
    tf_keras writes a slice as {"start", "stop", "step"}, Keras 3 as a "__slice__" object; both
    write `tf.newaxis` as null and `...` as an "__ellipsis__" object."""
    if item is None:
        return _NEWAXIS
    if isinstance(item, bool):
        raise NotImplementedError(f"{op} with a boolean index")
    if isinstance(item, int):
        return item
    if isinstance(item, dict):
        if item.get("class_name") == "__ellipsis__":
            return _ELLIPSIS
        bounds = item.get("config") if item.get("class_name") == "__slice__" else item
        if isinstance(bounds, dict) and set(bounds) <= {"start", "stop", "step"}:
            parts = [bounds.get(k) for k in ("start", "stop", "step")]
            if all(p is None or (isinstance(p, int) and not isinstance(p, bool)) for p in parts):
                if parts[2] == 0:
                    raise ShapeError(f"{op}: a slice step cannot be 0")
                return slice(*parts)
    raise NotImplementedError(
        f"{op} with an index that is not a constant int, slice, newaxis or ellipsis ({type(item).__name__})"
    )


def slice_shape(shape: tuple, spec, op: str, *, check_bounds: bool) -> tuple:
    """NumPy / TensorFlow basic indexing: an int drops its axis, a slice keeps it with the length
    range(*slice.indices(size)) has (unknown for an unknown size), null inserts an axis of 1, one
    `...` stands for every axis not named (one at the end when none is written)."""
    if isinstance(spec, dict) and spec.get("class_name") == "__tuple__":
        spec = spec.get("items") if isinstance(spec.get("items"), list) else (spec.get("config") or {}).get("value")
    items = [_slice_key(i, op) for i in (spec if isinstance(spec, list) else [spec])]
    if sum(i is _ELLIPSIS for i in items) > 1:
        raise ShapeError(f"{op}: a slice has at most one ellipsis")
    if _ELLIPSIS not in items:
        items.append(_ELLIPSIS)
    named = sum(1 for i in items if i is not _ELLIPSIS and i is not _NEWAXIS)
    if named > len(shape):
        raise ShapeError(f"{op}: {named} indices for a tensor of rank {len(shape)} {fmt_shape(shape)}")
    out, dims = [], list(shape)
    for item in items:
        if item is _ELLIPSIS:
            keep = len(dims) - sum(1 for i in items[items.index(_ELLIPSIS) + 1:] if i is not _NEWAXIS)
            out.extend(dims[:keep])
            dims = dims[keep:]
        elif item is _NEWAXIS:
            out.append(1)
        else:
            size = dims.pop(0)
            if isinstance(item, int):
                if check_bounds and size is not None and not -size <= item < size:
                    raise ShapeError(f"{op}: index {item} is out of range for an axis of size {size}")
            else:
                out.append(None if size is None else len(range(*item.indices(size))))
    return tuple(out)


def _tf_getitem(args):
    shape = _rank_known(args.get("tensor"), "__operators__.getitem")
    return slice_shape(shape, args.get("slice_spec"), "__operators__.getitem", check_bounds=True)


# ---- the TensorFlow table: TFOpLambda / SlicingOpLambda by config["function"] --------------------

_UNARY_TF = (
    "identity", "stop_gradient", "cast", "dtypes.cast", "zeros_like", "ones_like", "clip_by_norm",
    "nn.relu", "nn.relu6", "nn.elu", "nn.selu", "nn.gelu", "nn.silu", "nn.swish", "nn.leaky_relu",
    "nn.softmax", "nn.log_softmax", "nn.softplus", "nn.softsign", "nn.sigmoid", "nn.tanh", "nn.dropout",
    "nn.l2_normalize", "nn.bias_add", "nn.local_response_normalization", "math.abs", "math.negative",
    "math.sqrt", "math.rsqrt", "math.square", "math.exp", "math.expm1", "math.log", "math.log1p",
    "math.sin", "math.cos", "math.tan", "math.tanh", "math.sinh", "math.cosh", "math.asin", "math.acos",
    "math.atan", "math.sigmoid", "math.log_sigmoid", "math.sign", "math.round", "math.floor", "math.ceil",
    "math.reciprocal", "math.reciprocal_no_nan", "math.softplus", "math.softsign", "math.erf", "math.erfc",
    "math.logical_not", "math.is_nan", "math.is_inf", "math.is_finite", "math.l2_normalize",
    "math.cumsum", "math.cumprod", "math.softmax", "math.log_softmax", "math.real", "math.imag",
    "math.conj", "math.angle", "image.convert_image_dtype", "image.per_image_standardization",
    "image.adjust_brightness", "image.adjust_contrast", "image.adjust_gamma",
)
_BINARY_TF = (
    "__operators__.add", "math.add", "math.subtract", "math.multiply", "math.divide", "math.truediv",
    "math.floordiv", "compat.v1.floor_div", "math.floormod", "math.mod", "math.pow", "math.maximum",
    "math.minimum", "math.squared_difference", "math.divide_no_nan", "math.multiply_no_nan",
    "math.equal", "math.not_equal", "math.greater", "math.greater_equal", "math.less", "math.less_equal",
    "math.logical_and", "math.logical_or", "math.logical_xor", "math.xdivy", "math.xlogy",
)
_REDUCE_TF = ("mean", "sum", "max", "min", "prod", "any", "all", "logsumexp", "std", "variance", "euclidean_norm")


def _tf_table() -> dict:
    ops: dict[str, Op] = {}
    for name in _UNARY_TF:
        ops[name] = Op(("x",), _same_shape, open=True)
    for name in _BINARY_TF:
        ops[name] = Op(("x", "y", "name"), _binary("x", "y", name))
    for name in ("__operators__.eq", "__operators__.ne"):  # Tensor.__eq__(self, other)
        ops[name] = Op(("self", "other"), _binary("self", "other", name))
    ops["math.add_n"] = Op(("inputs", "name"), _add_n)
    ops["where"] = Op(("condition", "x", "y", "name"), _where("x", "y", "where"))
    ops["clip_by_value"] = Op(("t", "clip_value_min", "clip_value_max", "name"), _clip_by_value)
    ops["reshape"] = Op(("tensor", "shape", "name"), _tf_reshape)
    ops["expand_dims"] = Op(("input", "axis", "name"), _tf_expand_dims)
    ops["squeeze"] = Op(("input", "axis", "name"), _tf_squeeze)
    ops["compat.v1.squeeze"] = Op(("input", "axis", "name", "squeeze_dims"), _tf_squeeze)
    ops["transpose"] = Op(("a", "perm", "conjugate", "name"), _tf_transpose)
    ops["compat.v1.transpose"] = Op(("a", "perm", "name", "conjugate"), _tf_transpose)
    ops["concat"] = Op(("values", "axis", "name"), _tf_concat)
    ops["stack"] = Op(("values", "axis", "name"), _tf_stack)
    ops["unstack"] = Op(("value", "num", "axis", "name"), _tf_unstack, multi=True)
    ops["split"] = Op(("value", "num_or_size_splits", "axis", "num", "name"), _tf_split, multi=True)
    ops["pad"] = Op(("tensor", "paddings", "mode", "constant_values", "name"), _tf_pad)
    ops["compat.v1.pad"] = Op(("tensor", "paddings", "mode", "name", "constant_values"), _tf_pad)
    ops["tile"] = Op(("input", "multiples", "name"), _tf_tile)
    for r in _REDUCE_TF:
        ops[f"math.reduce_{r}"] = Op(("input_tensor", "axis", "keepdims", "name"), _tf_reduce(f"math.reduce_{r}"))
    for r in _REDUCE_TF[:8]:  # TF1 has no reduce_std, reduce_variance, reduce_euclidean_norm
        ops[f"compat.v1.reduce_{r}"] = Op(
            ("input_tensor", "axis", "keepdims", "name", "reduction_indices", "keep_dims"),
            _tf_reduce(f"compat.v1.reduce_{r}"),
        )
    for name in ("math.argmax", "math.argmin"):
        ops[name] = Op(("input", "axis", "output_type", "name"), _tf_arg_reduce(name))
    for name in ("compat.v1.argmax", "compat.v1.argmin"):
        ops[name] = Op(("input", "axis", "name", "dimension", "output_type"), _tf_arg_reduce(name))
    matmul_params = ("a", "b", "transpose_a", "transpose_b", "adjoint_a", "adjoint_b", "a_is_sparse",
                     "b_is_sparse", "output_type", "grad_a", "grad_b", "name")
    ops["linalg.matmul"] = Op(matmul_params, _tf_matmul)
    ops["einsum"] = Op(("equation", "inputs"), _tf_einsum, varargs="inputs")
    ops["image.resize"] = Op(("images", "size", "method", "preserve_aspect_ratio", "antialias", "name"), _tf_resize)
    ops["nn.space_to_depth"] = Op(("input", "block_size", "data_format", "name"), _block_op("nn.space_to_depth", True))
    ops["nn.depth_to_space"] = Op(("input", "block_size", "data_format", "name"), _block_op("nn.depth_to_space", False))
    ops["__operators__.getitem"] = Op(("tensor", "slice_spec", "var"), _tf_getitem)
    ops["shape"] = Op(("input", "out_type", "name"), _tf_shape)
    ops["compat.v1.shape"] = Op(("input", "name", "out_type"), _tf_shape)
    ops["gather"] = Op(("params", "indices", "validate_indices", "axis", "batch_dims", "name"), _tf_gather)
    ops["compat.v1.gather"] = Op(("params", "indices", "validate_indices", "name", "axis", "batch_dims"), _tf_gather)
    ops["one_hot"] = Op(("indices", "depth", "on_value", "off_value", "axis", "dtype", "name"), _tf_one_hot)
    ops["math.top_k"] = Op(("input", "k", "sorted", "index_type", "name"), _tf_top_k, multi=True)
    return ops


# ---- the Keras 3 table: keras.src.ops.* nodes by class name --------------------------------------
# Parameters: the call's, then the constructor's (which the node's config holds).


def _k_reshape(args):
    return _reshape_to(_rank_known(args.get("x"), "ops.reshape"), args.get("newshape"), "ops.reshape")


def _k_expand_dims(args):
    axis = args.get("axis")
    shape = _rank_known(args.get("x"), "ops.expand_dims")
    return _expand(shape, int_list(axis, "ops.expand_dims axis"), "ops.expand_dims")


def _k_squeeze(args):
    """numpy.py Squeeze: without an axis the known 1s go (an unknown size stays); a named axis must be 1."""
    shape = _rank_known(args.get("x"), "ops.squeeze")
    axis = args.get("axis")
    if axis is None:
        return tuple(d for d in shape if d != 1)
    axes = {axis_index(a, len(shape), "ops.squeeze") for a in int_list(axis, "ops.squeeze axis")}
    for a in axes:
        if shape[a] != 1:
            raise ShapeError(f"ops.squeeze cannot remove axis {a} of {fmt_shape(shape)}: its size is not 1")
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def _k_transpose(args):
    return _permute(_rank_known(args.get("x"), "ops.transpose"), args.get("axes"), "ops.transpose")


def _k_concatenate(args):
    """numpy.py Concatenate: the sizes on the axis add up; every other axis is the first input's."""
    shapes = _tensor_list(args.get("xs"), "ops.concatenate")
    axis = axis_index(args.get("axis", 0), len(shapes[0]), "ops.concatenate")
    merge_shapes(shapes, "ops.concatenate", skip_axis=axis)  # raises where known sizes differ
    sizes = [s[axis] for s in shapes]
    out = list(shapes[0])
    out[axis] = None if None in sizes else sum(sizes)
    return tuple(out)


def _k_stack(args):
    shapes = _tensor_list(args.get("x"), "ops.stack")
    merge_shapes(shapes, "ops.stack")
    out = list(shapes[0])
    rank = len(out) + 1
    axis = axis_index(args.get("axis", 0), rank, "ops.stack")
    out.insert(axis, len(shapes))
    return tuple(out)


def _k_split(args):
    """numpy.py _compute_split_output_spec: an int makes equal sections; a list gives split points."""
    shape, axis, dim = _split_axis(args.get("x"), args.get("axis", 0), "ops.split")
    sections = args.get("indices_or_sections")
    if isinstance(sections, int) and not isinstance(sections, bool):
        if sections <= 0 or (dim is not None and dim % sections):
            raise ShapeError(f"ops.split cannot cut axis {axis} of size {dim} into {sections} equal sections")
        sizes = _equal_parts(dim, sections, "ops.split")
    else:
        points = [0] + int_list(sections, "ops.split indices") + [dim]
        sizes = [None if a is None or b is None else b - a for a, b in zip(points, points[1:])]
    return _split_parts(shape, axis, sizes)


def _k_reduce(op: str):
    def compute(args):
        axis = args.get("axis")
        return reduce_dims(_rank_known(args.get("x"), op), axis, bool(args.get("keepdims")), op)

    return compute


def _k_matmul(args):
    x1, x2 = _rank_known(args.get("x1"), "ops.matmul"), _rank_known(args.get("x2"), "ops.matmul")
    return matmul_shape(x1, x2, "ops.matmul")


def _k_einsum(args):
    operands = [_rank_known(v, "ops.einsum") for v in args.get("operands") or []]
    return einsum_shape(args.get("subscripts"), operands, "ops.einsum")


def _k_take(args):
    """numpy.py Take: no axis flattens (the indices' shape is the output); else the indices' shape
    replaces the axis."""
    shape = _rank_known(args.get("x"), "ops.take")
    indices = tensor_shape(args.get("indices"), "the indices of ops.take")
    if args.get("axis") is None:
        return indices
    axis = axis_index(args.get("axis"), len(shape), "ops.take")
    return shape[:axis] + indices + shape[axis + 1:]


def _k_getitem(args):
    shape = _rank_known(args.get("x"), "ops.GetItem")
    return slice_shape(shape, args.get("key"), "ops.GetItem", check_bounds=True)


def _k_tile(args):
    shape = list(_rank_known(args.get("x"), "ops.tile"))
    repeats = int_list(args.get("repeats"), "ops.tile repeats")
    if len(shape) > len(repeats):
        repeats = [1] * (len(shape) - len(repeats)) + repeats
    else:
        shape = [1] * (len(repeats) - len(shape)) + shape
    return _tile_by(tuple(shape), repeats, "ops.tile")


def _k_pad(args):
    shape = _rank_known(args.get("x"), "ops.pad")
    width = args.get("pad_width")
    if isinstance(width, int):
        width = [[width, width]]
    elif isinstance(width, list) and width and isinstance(width[0], int):
        width = [width]
    if not isinstance(width, list):
        raise ShapeError(f"ops.pad pad_width {width!r} is not a list of pairs")
    width = [[w[0], w[0]] if isinstance(w, list) and len(w) == 1 else w for w in width]
    return _pad_to(shape, width * len(shape) if len(width) == 1 else width, "ops.pad")


def _flat_size(shape: tuple) -> tuple:
    """A tensor flattened to one axis (unknown if any size is)."""
    if None in shape:
        return (None,)
    size = 1
    for d in shape:
        size *= d
    return (size,)


def _k_cumulative(op: str):
    """numpy.py Cumsum / Cumprod: no axis flattens; an axis keeps the shape."""

    def compute(args):
        shape = _rank_known(args.get("x"), op)
        if args.get("axis") is None:
            return _flat_size(shape)
        axis_index(args.get("axis"), len(shape), op)
        return shape

    return compute


def _k_ravel(args):
    return _flat_size(_rank_known(args.get("x"), "ops.ravel"))


def _k_broadcast_to(args):
    """numpy.py BroadcastTo: the target shape, once the input is seen to broadcast to it."""
    target = tuple(int_list(args.get("shape"), "ops.broadcast_to shape"))
    broadcast(_rank_known(args.get("x"), "ops.broadcast_to"), target, "ops.broadcast_to")
    return target


def _k_repeat(args):
    """numpy.py Repeat: no axis flattens first; one count repeats every element, a list gives each
    element's count."""
    shape = list(_rank_known(args.get("x"), "ops.repeat"))
    repeats = int_list(args.get("repeats"), "ops.repeat repeats")
    if args.get("axis") is None:
        (size,) = _flat_size(tuple(shape))
        if size is None or len(repeats) == 1:
            return (None if size is None or repeats[0] is None else size * repeats[0],)
        if len(repeats) != size:
            raise ShapeError(f"ops.repeat: {len(repeats)} counts for {size} elements")
        return (None if None in repeats else sum(repeats),)
    axis = axis_index(args.get("axis"), len(shape), "ops.repeat")
    if shape[axis] is None:
        return tuple(shape)
    if len(repeats) == 1:
        shape[axis] = None if repeats[0] is None else shape[axis] * repeats[0]
    elif len(repeats) != shape[axis]:
        raise ShapeError(f"ops.repeat: {len(repeats)} counts for an axis of size {shape[axis]}")
    else:
        shape[axis] = None if None in repeats else sum(repeats)
    return tuple(shape)


def _k_swapaxes(args):
    shape = list(_rank_known(args.get("x"), "ops.swapaxes"))
    a = axis_index(args.get("axis1"), len(shape), "ops.swapaxes")
    b = axis_index(args.get("axis2"), len(shape), "ops.swapaxes")
    shape[a], shape[b] = shape[b], shape[a]
    return tuple(shape)


def _k_one_hot(args):
    """nn.py OneHot: num_classes at the end (axis -1) or at an axis in [0, rank)."""
    shape = list(_rank_known(args.get("x"), "ops.one_hot"))
    axis = int_value(args.get("axis", -1), "ops.one_hot axis")
    depth = int_value(args.get("num_classes"), "ops.one_hot num_classes")
    if axis == -1:
        shape.append(depth)
    elif axis is not None and 0 <= axis < len(shape):
        shape.insert(axis, depth)
    else:
        raise ShapeError(f"ops.one_hot axis must be -1 or in [0, {len(shape)}), got {axis}")
    return tuple(shape)


def _k_top_k(args):
    shape = _rank_known(args.get("x"), "ops.top_k")
    if not shape:
        raise ShapeError("ops.top_k of a scalar")
    out = shape[:-1] + (int_value(args.get("k"), "ops.top_k k"),)
    return [out, out]


def _k_slice(args):
    """core.py Slice: the given sizes; a -1 runs to the end from a constant start."""
    shape = _rank_known(args.get("inputs"), "ops.slice")
    sizes = int_list(args.get("shape"), "ops.slice shape")
    start = args.get("start_indices")
    if len(sizes) != len(shape):
        raise ShapeError(f"ops.slice shape {sizes} should have one size per axis of {fmt_shape(shape)}")
    starts = None if isinstance(start, Tensor) else int_list(start, "ops.slice start_indices")
    if starts is not None and len(starts) != len(shape):
        raise ShapeError(f"ops.slice start_indices {starts} should have one index per axis of {fmt_shape(shape)}")
    out = []
    for i, (d, size) in enumerate(zip(shape, sizes)):
        if size != -1:
            out.append(size)
        else:
            out.append(None if starts is None or d is None or starts[i] is None else d - starts[i])
    return tuple(out)


_UNARY_KERAS = (
    "Abs", "Absolute", "Negative", "Sqrt", "Square", "Exp", "Expm1", "Log", "Log1p", "Log2", "Log10", "Sin",
    "Cos", "Tan", "Tanh", "Sinh", "Cosh", "Arcsin", "Arccos", "Arctan", "Sign", "Round", "Floor", "Ceil",
    "Reciprocal", "LogicalNot", "Relu", "Relu6", "Sigmoid", "Softplus", "Softsign", "Silu",
    "Gelu", "Elu", "Selu", "Celu", "LeakyRelu", "HardSigmoid", "HardSilu",
    "Softmax", "LogSoftmax", "LogSigmoid", "Cast", "Erf", "Erfinv", "Rsqrt", "Clip",
    "ZerosLike", "OnesLike", "Isnan", "Isinf", "Isfinite", "NanToNum", "Real", "Imag",
    "Conjugate", "Copy", "StopGradient", "Sort", "Flip", "Roll", "Tril", "Triu",
)
_BINARY_KERAS = (
    "Add", "Subtract", "Multiply", "Divide", "TrueDivide", "FloorDivide", "Mod", "Power", "Maximum",
    "Minimum", "Equal", "NotEqual", "Greater", "GreaterEqual", "Less", "LessEqual", "LogicalAnd",
    "LogicalOr", "LogicalXor", "Arctan2", "Hypot", "DivideNoNan",
)


def _keras_table() -> dict:
    ops: dict[str, Op] = {}
    for name in _UNARY_KERAS:
        ops[name] = Op(("x",), _same_shape, open=True)
    for name in _BINARY_KERAS:
        ops[name] = Op(("x1", "x2"), _binary("x1", "x2", f"ops.{name}"))
    ops["Where"] = Op(("condition", "x1", "x2"), _where("x1", "x2", "ops.where"))
    ops["Reshape"] = Op(("x", "newshape"), _k_reshape)
    ops["ExpandDims"] = Op(("x", "axis"), _k_expand_dims)
    ops["Squeeze"] = Op(("x", "axis"), _k_squeeze)
    ops["Transpose"] = Op(("x", "axes"), _k_transpose)
    ops["Concatenate"] = Op(("xs", "axis"), _k_concatenate)
    ops["Stack"] = Op(("x", "axis"), _k_stack)
    ops["Split"] = Op(("x", "indices_or_sections", "axis"), _k_split, multi=True)
    for name in ("Mean", "Sum", "Max", "Min", "Prod", "Any", "All", "Var", "Std", "Amax", "Amin", "Logsumexp"):
        ops[name] = Op(("x", "axis", "keepdims", "initial", "dtype"), _k_reduce(f"ops.{name.lower()}"))
    for name in ("Argmax", "Argmin"):
        ops[name] = Op(("x", "axis", "keepdims"), _k_reduce(f"ops.{name.lower()}"))
    ops["Matmul"] = Op(("x1", "x2"), _k_matmul)
    ops["Einsum"] = Op(("operands", "subscripts"), _k_einsum, varargs="operands")
    ops["Take"] = Op(("x", "indices", "axis"), _k_take)
    ops["GetItem"] = Op(("x", "key"), _k_getitem)
    ops["Tile"] = Op(("x", "repeats"), _k_tile)
    ops["Pad"] = Op(("x", "constant_values", "pad_width", "mode"), _k_pad)
    ops["Cumsum"] = Op(("x", "axis", "dtype"), _k_cumulative("ops.cumsum"))
    ops["Cumprod"] = Op(("x", "axis", "dtype"), _k_cumulative("ops.cumprod"))
    ops["Ravel"] = Op(("x",), _k_ravel)
    ops["BroadcastTo"] = Op(("x", "shape"), _k_broadcast_to)
    ops["Repeat"] = Op(("x", "repeats", "axis"), _k_repeat)
    ops["Swapaxes"] = Op(("x", "axis1", "axis2"), _k_swapaxes)
    ops["OneHot"] = Op(("x", "num_classes", "axis", "dtype", "sparse"), _k_one_hot)
    ops["TopK"] = Op(("x", "k", "sorted"), _k_top_k, multi=True)
    ops["Slice"] = Op(("inputs", "start_indices", "shape"), _k_slice)
    return ops


TF_OPS: dict[str, Op] = _tf_table()
KERAS_OPS: dict[str, Op] = _keras_table()
