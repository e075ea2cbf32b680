"""Keras 3's own quantization (`model.quantize(mode)`): the variables a quantized Dense, EinsumDense or
Embedding builds instead of its float ones.

A quantized layer's config carries its dtype policy (`QuantizedDTypePolicy` int8, `Int4DTypePolicy`
"int4/<block>", `QuantizedFloat8DTypePolicy`, `GPTQDTypePolicy` "gptq/<bits>/<group>",
`AWQDTypePolicy` "awq/4/<group>") and its `quantization_config`. The float specs in core.py ask
`of(config)` first and, when it answers, take their weights from here. Layouts follow Keras 3.15's
keras/src/layers/core/dense.py, einsum_dense.py and embedding.py: `build()` calls `quantized_build()`
first (its `_int8_build`, `_int4_build`, `_float8_build`, `_gptq_build`, `_awq_build`), then adds the
float kernel only for float8, then the bias; every quantized variable but float8's scales is frozen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from modelaudit.infer.registry import ShapeError, WeightSpec

MODES = ("int8", "float8", "int4", "gptq", "awq")  # keras/src/dtype_policies/dtype_policy.py
_DEFAULT_AMAX_HISTORY = 1024  # QuantizedFloat8DTypePolicy.default_amax_history_length


@dataclass(frozen=True)
class Quantization:
    """What a layer's dtype policy and quantization config say about its quantized variables."""

    mode: str
    block_size: Optional[int] = None  # int4: None is per-channel, else sub-channel groups
    weight_bits: int = 4  # gptq / awq
    group_size: int = -1  # gptq / awq: -1 is one group
    amax_history_length: int = _DEFAULT_AMAX_HISTORY  # float8


def of(config: dict) -> Optional[Quantization]:
    """The layer's quantization, None for a float layer (the common case: one dict lookup)."""
    dtype = config.get("dtype")
    if isinstance(dtype, str):
        name, policy = dtype, {}
    elif isinstance(dtype, dict) and isinstance(dtype.get("config"), dict):
        policy = dtype["config"]
        if dtype.get("class_name") == "DTypePolicyMap":
            raise NotImplementedError("a layer whose dtype is a DTypePolicyMap is not modelled")
        name = policy.get("mode") or policy.get("name")
    else:
        return None
    if not isinstance(name, str) or not name.startswith(MODES):
        return None
    return _parse(name.split("_from_", 1)[0], policy, _quantization_config(config))


def _quantization_config(config: dict) -> dict:
    value = config.get("quantization_config")
    if isinstance(value, dict) and isinstance(value.get("config"), dict):
        return value["config"]
    return {}


def _int(value, what: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ShapeError(f"quantization {what} {value!r} is not an integer") from None


def _parse(mode_text: str, policy: dict, qconfig: dict) -> Quantization:
    """Keras reads the quantization config first and the dtype policy's mode string second
    (quantization_config.py get_block_size_for_layer, gptq_core.py / awq_core.py getters)."""
    parts = mode_text.split("/")
    mode = parts[0]
    if mode not in MODES:
        raise ShapeError(f"unknown quantization mode {mode_text!r}")
    if mode == "int4":
        block = qconfig.get("block_size", parts[1] if len(parts) > 1 else None)
        block = None if block is None else _int(block, "block_size")
        return Quantization(mode, block_size=None if block is None or block == -1 else block)
    if mode in ("gptq", "awq"):
        bits = qconfig.get("weight_bits", parts[1] if len(parts) > 1 else 4)
        group = qconfig.get("group_size", parts[2] if len(parts) > 2 else 128)
        return Quantization(mode, weight_bits=_int(bits, "weight_bits"), group_size=_int(group, "group_size"))
    if mode == "float8":
        length = policy.get("amax_history_length", _DEFAULT_AMAX_HISTORY)
        return Quantization(mode, amax_history_length=_int(length, "amax_history_length"))
    return Quantization(mode)


def _listed(specs: list[WeightSpec]) -> list[WeightSpec]:
    """In `layer.weights` order: Keras lists the trainable variables first, each group in creation order."""
    return [w for w in specs if w.trainable] + [w for w in specs if not w.trainable]


def _frozen(name: str, shape) -> WeightSpec:
    return WeightSpec(name, tuple(shape), trainable=False)


def _float8_scales(q: Quantization) -> list[WeightSpec]:
    # _float8_build: trainable (their gradients overwrite them), in this order
    history = (q.amax_history_length,)
    return [WeightSpec(name, shape) for prefix in ("inputs", "kernel", "outputs_grad")
            for name, shape in ((f"{prefix}_scale", ()), (f"{prefix}_amax_history", history))]


def _groups(n: int, size: Optional[int]) -> int:
    return 1 if size is None or size == -1 else math.ceil(n / size)


def _packed(n: int) -> int:
    """Two int4 values per byte."""
    return (n + 1) // 2


def _int4_scales(q: Quantization, prefix: str, scale_shape, rows: int) -> list[WeightSpec]:
    # sub-channel int4 is asymmetric: a zero point per group and each row's group index
    scale = _frozen(f"{prefix}_scale", scale_shape)
    if q.block_size is None:
        return [scale]
    return [scale, _frozen(f"{prefix}_zero", scale_shape), _frozen("g_idx", (rows,))]


def _grouped(q: Quantization, rows: int, columns: int, zero: str) -> list[WeightSpec]:
    """_gptq_build / _awq_build on a (rows, columns) kernel: packed transposed kernel, per-group scale
    and zero point, (awq) per-row activation scales, then the group index."""
    if q.mode == "gptq" and q.weight_bits not in (2, 3, 4, 8):
        raise ShapeError(f"GPTQ weight_bits must be 2, 3, 4 or 8, got {q.weight_bits}")
    stored_columns = _packed(columns) if q.mode == "awq" or q.weight_bits == 4 else columns
    groups = _groups(rows, q.group_size)
    specs = [
        _frozen("kernel", (stored_columns, rows)),
        _frozen("kernel_scale", (columns, groups)),
        _frozen(zero, (columns, groups)),
    ]
    if q.mode == "awq":
        specs.append(_frozen("awq_scales", (rows,)))
    specs.append(_frozen("g_idx", (rows,)))
    return specs


# ---- Dense ------------------------------------------------------------------------------------


def dense_weights(q: Quantization, input_dim, units: int, bias: bool) -> list[WeightSpec]:
    """dense.py build() under a quantized policy, kernel (input_dim, units)."""
    if q.mode == "int8":
        specs = [_frozen("kernel", (input_dim, units)), _frozen("kernel_scale", (units,))]
    elif q.mode == "int4":
        scale = (units,) if q.block_size is None else (_groups(input_dim, q.block_size), units)
        specs = [_frozen("kernel", (input_dim, _packed(units)))] + _int4_scales(q, "kernel", scale, input_dim)
    elif q.mode == "float8":
        specs = _float8_scales(q) + [WeightSpec("kernel", (input_dim, units))]
    else:
        specs = _grouped(q, input_dim, units, "kernel_zero")
    if bias:
        specs.append(WeightSpec("bias", (units,)))
    return _listed(specs)


def dense_formula(specs: list[WeightSpec], q: Quantization) -> str:
    terms = " + ".join("·".join(str(d) for d in w.shape) or "1" for w in specs)
    return f"{q.mode}: {terms} = {sum(w.size for w in specs)}"


# ---- EinsumDense ------------------------------------------------------------------------------


def einsum_weights(q: Quantization, equation: str, input_spec: str, weight_spec: str, output_spec: str,
                   kernel_shape: tuple, bias_shape: Optional[tuple]) -> list[WeightSpec]:
    """einsum_dense.py build() under a quantized policy, from the analysed equation."""
    if q.mode != "float8" and "..." in equation:
        # _set_quantization_info passes the input rank (an int) where a shape is expected: Keras 3.15
        # raises TypeError for an elided equation, so it writes no such file
        raise NotImplementedError(f"EinsumDense {equation!r} quantized to {q.mode} is not modelled")
    reduced = [i for i, label in enumerate(weight_spec) if label not in output_spec]
    rows = math.prod(kernel_shape[i] for i in reduced)
    columns = math.prod(d for i, d in enumerate(kernel_shape) if i not in reduced)
    if q.mode == "int8":
        scale = _einsum_scale_shape(weight_spec, output_spec, kernel_shape, reduced)
        specs = [_frozen("kernel", kernel_shape), _frozen("kernel_scale", scale)]
    elif q.mode == "int4":
        # the kernel flattened to (reduced axes, the others), packed along the columns
        scale = (columns,) if q.block_size is None else (_groups(rows, q.block_size), columns)
        specs = [_frozen("kernel", (rows, _packed(columns)))] + _int4_scales(q, "kernel", scale, rows)
    elif q.mode == "float8":
        specs = _float8_scales(q) + [WeightSpec("kernel", kernel_shape)]
    else:
        rows, columns = _gptq_split(kernel_shape, q.mode)
        specs = _grouped(q, rows, columns, "zero_point")
    if bias_shape is not None:
        specs.append(WeightSpec("bias", bias_shape))
    return _listed(specs)


def _gptq_split(kernel_shape: tuple, mode: str) -> tuple[int, int]:
    """_gptq_build / _awq_build: a 3-D kernel is a QKV projection (model dim first) or an attention
    output (model dim last), by where its largest axis is."""
    if len(kernel_shape) == 2:
        return kernel_shape[0], kernel_shape[1]
    if len(kernel_shape) != 3:
        raise NotImplementedError(f"EinsumDense quantized to {mode} with a {len(kernel_shape)}-D kernel")
    first, second, third = kernel_shape
    if list(kernel_shape).index(max(kernel_shape)) == 0:
        return first, second * third
    return first * second, third


def _einsum_scale_shape(weight_spec: str, output_spec: str, kernel_shape: tuple, reduced: list) -> tuple:
    """einsum_dense.py `_analyze_quantization_info` (kernel side) and `_get_kernel_scale_shape`:
    the reduced axes kept as 1s, moved to the output's axis order, padded or squeezed to its rank."""
    expand = [i for i, label in enumerate(output_spec) if label not in weight_spec]
    transpose = [weight_spec.index(label) for label in output_spec if label in weight_spec]
    squeeze = []
    index = None
    for axis in reduced:
        if expand:
            index = expand.pop(0)
        else:
            squeeze.append(axis)
        if index is None:  # Keras's own loop fails here (its `index` is unbound)
            raise NotImplementedError(f"EinsumDense weight spec {weight_spec!r} cannot be quantized to int8")
        # as Keras does: when nothing is left to expand, the previous index is used again
        transpose.insert(index, axis)
    shape = [1 if i in reduced else d for i, d in enumerate(kernel_shape)]
    shape = [shape[i] for i in transpose]
    for axis in sorted(expand):
        shape.insert(axis, 1)
    for axis in sorted(squeeze, reverse=True):
        shape.pop(axis)
    return tuple(shape)


# ---- Embedding --------------------------------------------------------------------------------


def embedding_weights(q: Quantization, input_dim: int, output_dim: int) -> list[WeightSpec]:
    """embedding.py build() under a quantized policy: one scale per row (per group of a row)."""
    if q.mode == "int8":
        return [_frozen("embeddings", (input_dim, output_dim)), _frozen("embeddings_scale", (input_dim,))]
    if q.mode == "int4":
        scale = (input_dim,) if q.block_size is None else (input_dim, _groups(output_dim, q.block_size))
        packed = _frozen("embeddings", (input_dim, _packed(output_dim)))
        return [packed] + _int4_scales(q, "embeddings", scale, output_dim)
    # Embedding.quantized_build raises for any other mode: Keras writes no such file
    raise NotImplementedError(f"Embedding quantized to {q.mode} is not modelled (Keras cannot build it)")


def reverse_embedding_weights(q: Quantization, input_dim: int, output_dim: int) -> list[WeightSpec]:
    """reversible_embedding.py `_int8_build` / `_int4_build` of an untied ReversibleEmbedding: after
    Embedding's variables, the (output_dim, input_dim) reverse projection quantized per column
    (int4: packed along output_dim, one scale and zero point per block of output_dim rows)."""
    if q.mode == "int8":
        return [_frozen("reverse_embeddings", (output_dim, input_dim)),
                _frozen("reverse_embeddings_scale", (input_dim,))]
    if q.mode == "int4":
        packed = _frozen("reverse_embeddings", (_packed(output_dim), input_dim))
        if q.block_size is None:
            return [packed, _frozen("reverse_embeddings_scale", (input_dim,))]
        scale = (_groups(output_dim, q.block_size), input_dim)
        return [packed, _frozen("reverse_embeddings_scale", scale), _frozen("reverse_embeddings_zero", scale)]
    raise NotImplementedError(f"ReversibleEmbedding quantized to {q.mode} is not modelled (Keras cannot build it)")
