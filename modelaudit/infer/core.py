"""Core layers: keras/src/layers/core/ (InputLayer, Dense, EinsumDense, Embedding, ReversibleEmbedding, Identity, Masking, Lambda)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from modelaudit.graph import is_shape
from modelaudit.infer import quantized
from modelaudit.infer.registry import LayerSpec, ShapeError, WeightSpec, fmt_shape, prod, register
from modelaudit.infer.registry import SameShapeSpec, single_input, use_bias


@register("InputLayer")
class InputLayerSpec(LayerSpec):
    def output_shapes(self, config, input_shapes):
        shape = config.get("batch_shape") or config.get("batch_input_shape")
        if shape is None and config.get("shape") is not None:
            shape = [config.get("batch_size")] + list(config["shape"])
        if shape is None:
            raise ShapeError("InputLayer records no shape")
        return [tuple(shape)]


@register("Dense")
class DenseSpec(LayerSpec):
    # dense.py build(): kernel (input_shape[-1], units), bias (units,)
    def output_shapes(self, config, input_shapes):
        shape = single_input(input_shapes, "Dense")
        if len(shape) < 2:
            raise ShapeError(f"Dense expects an input of rank >= 2, got {fmt_shape(shape)}")
        return [shape[:-1] + (int(config["units"]),)]

    def weights(self, config, input_shapes):
        shape = single_input(input_shapes, "Dense")
        units = int(config["units"])
        q = quantized.of(config)
        if q is not None:  # model.quantize(): other variables, infer/quantized.py
            return quantized.dense_weights(q, shape[-1], units, use_bias(config))
        specs = [WeightSpec("kernel", (shape[-1], units))]
        if use_bias(config):
            specs.append(WeightSpec("bias", (units,)))
        return specs

    def macs(self, config, input_shapes, output_shapes):
        shape = single_input(input_shapes, "Dense")
        positions = prod(shape[1:-1]) if len(shape) > 2 else 1
        if positions is None or shape[-1] is None:
            return None
        return positions * shape[-1] * int(config["units"])

    def formula(self, config, input_shapes):
        shape = single_input(input_shapes, "Dense")
        units = int(config["units"])
        q = quantized.of(config)
        if q is not None:
            return quantized.dense_formula(self.weights(config, input_shapes), q)
        if use_bias(config):
            return f"({shape[-1]} + 1)·{units} = {(shape[-1] + 1) * units}"
        return f"{shape[-1]}·{units} = {shape[-1] * units}"


# ---- EinsumDense ------------------------------------------------------------------------------

# einsum_dense.py `_analyze_einsum_string`: "..." is replaced by "0" and the equation must match one of
# these three forms (re.match, as Keras does: trailing text is not checked). The flag is `left_elided`.
_EINSUM_FORMS = (
    (re.compile(r"([a-zA-Z]+),([a-zA-Z]+)->([a-zA-Z]+)"), False),
    (re.compile(r"0([a-zA-Z]+),([a-zA-Z]+)->0([a-zA-Z]+)"), True),
    (re.compile(r"([a-zA-Z]{2,})0,([a-zA-Z]+)->([a-zA-Z]+)0"), False),
)


@dataclass(frozen=True)
class _Einsum:
    input_spec: str
    weight_spec: str
    output_spec: str
    left_elided: bool
    elided: int
    kernel_shape: tuple
    bias_shape: Optional[tuple]
    output_shape: tuple


def _einsum_output_shape_arg(config) -> list:
    value = config.get("output_shape")
    if value is None:
        raise ShapeError("EinsumDense records no output_shape")
    if isinstance(value, int):
        return [value]
    return [None if d is None else int(d) for d in value]


def _analyze_einsum(config, input_shapes) -> _Einsum:
    """einsum_dense.py `_analyze_einsum_string` + `_analyze_split_string`, step by step."""
    shape = single_input(input_shapes, "EinsumDense")
    input_spec, weight_spec, output_spec, left_elided, elided = _einsum_specs(config, shape)
    output_shape = _einsum_full_output(config, shape, elided, left_elided)
    kernel_shape = _einsum_kernel(config, shape, (input_spec, weight_spec, output_spec), output_shape,
                                  left_elided, elided)
    bias_shape = _einsum_bias(config, output_spec, output_shape, left_elided, elided)
    return _Einsum(
        input_spec,
        weight_spec,
        output_spec,
        left_elided,
        elided,
        tuple(kernel_shape),
        None if bias_shape is None else tuple(bias_shape),
        tuple(output_shape),
    )


def _einsum_specs(config, shape) -> tuple:
    """(input spec, weight spec, output spec, left elided?, elided axes count) of the equation."""
    equation = str(config.get("equation", ""))
    replaced = re.sub(r"\.\.\.", "0", equation)
    for pattern, left_elided in _EINSUM_FORMS:
        match = pattern.match(replaced)
        if match:
            break
    else:
        raise ShapeError(
            f"EinsumDense equation {equation!r} is not of the form "
            "[X],[Y]->[Z], ...[X],[Y]->...[Z] or [X]...,[Y]->[Z]..."
        )
    input_spec, weight_spec, output_spec = match.group(1), match.group(2), match.group(3)
    elided = len(shape) - len(input_spec)
    if elided < 0:
        raise ShapeError(
            f"EinsumDense equation {equation!r} names {len(input_spec)} input axes "
            f"but the input {fmt_shape(shape)} has rank {len(shape)}"
        )
    return input_spec, weight_spec, output_spec, left_elided, elided


def _einsum_full_output(config, shape, elided: int, left_elided: bool) -> list:
    """output_shape with the batch axis and the elided axes put back."""
    output_shape = _einsum_output_shape_arg(config)
    output_shape.insert(0, shape[0])
    if elided > 0 and left_elided:
        # Inserting each at index 1 reverses the elided axes: Keras 3's symbolic shape (what its files
        # record and later layers are built on) has this order, though the computed tensor does not.
        for i in range(1, elided):
            output_shape.insert(1, shape[i])
    elif elided > 0 and not left_elided:
        for i in range(len(shape) - elided, len(shape)):
            output_shape.append(shape[i])
    return output_shape


def _einsum_kernel(config, shape, specs: tuple, output_shape: list, left_elided: bool, elided: int) -> list:
    """The kernel's shape, each axis from the input or the output it is shared with."""
    input_spec, weight_spec, output_spec = specs
    if left_elided:
        input_dim_map = {dim: (i + elided) - len(shape) for i, dim in enumerate(input_spec)}
        output_dim_map = {dim: i + elided for i, dim in enumerate(output_spec)}
    else:
        input_dim_map = {dim: i for i, dim in enumerate(input_spec)}
        output_dim_map = {dim: i for i, dim in enumerate(output_spec)}

    def out_at(dim):
        index = output_dim_map[dim]
        if index >= len(output_shape):
            raise ShapeError(
                f"EinsumDense output_shape {config.get('output_shape')} is too short "
                f"for the output spec {output_spec!r}"
            )
        return output_shape[index]

    for dim in input_spec:
        if dim in output_dim_map:
            out_dim, in_dim = out_at(dim), shape[input_dim_map[dim]]
            if out_dim is not None and out_dim != in_dim:
                raise ShapeError(
                    f"EinsumDense input and output_shape disagree at shared axis {dim!r}: "
                    f"input {in_dim}, output {out_dim}"
                )
    for dim in output_spec:
        if dim not in input_spec and dim not in weight_spec:
            raise ShapeError(f"EinsumDense output axis {dim!r} is in neither the input nor the weight spec")

    kernel_shape = []
    for dim in weight_spec:
        if dim in output_dim_map:
            kernel_shape.append(out_at(dim))
        elif dim in input_dim_map:
            kernel_shape.append(shape[input_dim_map[dim]])
        else:
            raise ShapeError(f"EinsumDense weight axis {dim!r} is in neither the input nor the output spec")
    return kernel_shape


def _einsum_bias(config, output_spec: str, output_shape: list, left_elided: bool, elided: int) -> Optional[list]:
    bias_axes = config.get("bias_axes")
    if not bias_axes:  # Keras tests `is not None`; "" is not a valid value there (min() of nothing fails)
        return None
    offset = elided if left_elided else 0
    idx_map = {char: output_shape[i + offset] for i, char in enumerate(output_spec)}
    for char in bias_axes:
        if char not in output_spec:
            raise ShapeError(f"EinsumDense bias axis {char!r} is not in the output spec {output_spec!r}")
    first = min(output_spec.find(char) for char in bias_axes)
    bias_shape = [idx_map[char] if char in bias_axes else 1 for char in output_spec[first:]]
    if not left_elided:
        bias_shape.extend([1] * elided)
    return bias_shape


def _required_int(config, key: str, layer: str) -> int:
    """A config value Keras has no default for; its absence is reported, not a KeyError."""
    value = config.get(key)
    if value is None:
        raise ShapeError(f"{layer} records no {key}")
    return int(value)


def _lora_rank(config) -> int:
    return int(config.get("lora_rank") or 0)


def _product(shape) -> str:
    return "·".join(str(d) for d in shape) if shape else "1"


@register("EinsumDense")
class EinsumDenseSpec(LayerSpec):
    # einsum_dense.py build(): kernel, then bias (if bias_axes); with lora_rank, enable_lora() then adds
    # lora_kernel_a (kernel[:-1] + (rank,)) and lora_kernel_b (rank, kernel[-1]) and freezes the kernel.
    # Quantized dtype policies (int8, int4, float8, gptq, awq) create other variables: infer/quantized.py.
    def output_shapes(self, config, input_shapes):
        return [_analyze_einsum(config, input_shapes).output_shape]

    def weights(self, config, input_shapes):
        # A None left in a weight shape (from an unknown input dim) is passed on: propagation reports
        # the weights as not recomputable rather than the layer as broken.
        e = _analyze_einsum(config, input_shapes)
        kernel = e.kernel_shape
        q = quantized.of(config)
        if q is not None:  # model.quantize(): other variables, infer/quantized.py
            return quantized.einsum_weights(q, str(config.get("equation", "")), e.input_spec, e.weight_spec,
                                            e.output_spec, kernel, e.bias_shape)
        rank = _lora_rank(config)
        specs = [WeightSpec("kernel", kernel, trainable=not rank)]
        if e.bias_shape is not None:
            specs.append(WeightSpec("bias", e.bias_shape))
        if rank:
            specs.append(WeightSpec("lora_kernel_a", kernel[:-1] + (rank,)))
            specs.append(WeightSpec("lora_kernel_b", (rank, kernel[-1])))
        return specs

    def macs(self, config, input_shapes, output_shapes):
        # One multiply-accumulate per point of the full index space of the einsum: every named axis
        # (input, weight or output) and every elided axis, once each, except the batch axis. The LoRA
        # merge (a_kernel @ b_kernel) runs once per call, not per sample: not counted.
        e = _analyze_einsum(config, input_shapes)
        shape = single_input(input_shapes, "EinsumDense")
        sizes = {}
        if e.left_elided:
            batch_letter = None
            elided_dims = list(shape[1 : e.elided])  # shape[0], the batch, is inside the ellipsis
            for i, dim in enumerate(e.input_spec):
                sizes[dim] = shape[e.elided + i]
        else:
            batch_letter = e.input_spec[0]
            elided_dims = list(shape[len(shape) - e.elided :]) if e.elided else []
            for i, dim in enumerate(e.input_spec):
                sizes[dim] = shape[i]
        for i, dim in enumerate(e.weight_spec):
            sizes.setdefault(dim, e.kernel_shape[i])
        offset = e.elided if e.left_elided else 0
        for i, dim in enumerate(e.output_spec):
            sizes.setdefault(dim, e.output_shape[i + offset])
        dims = [size for dim, size in sizes.items() if dim != batch_letter] + elided_dims
        return prod(dims)

    def formula(self, config, input_shapes):
        specs = self.weights(config, input_shapes)
        if any(d is None for w in specs for d in w.shape):
            return None
        # a bias over some output axes is stored with 1s for the others: written without them
        terms = [
            _product([d for d in w.shape if d != 1] or [1]) if w.name == "bias" else _product(w.shape)
            for w in specs
        ]
        return f"{' + '.join(terms)} = {sum(w.size for w in specs)}"


# ---- Embedding, Identity, Masking, Lambda --------------------------------------------------------


@register("Embedding")
class EmbeddingSpec(LayerSpec):
    # embedding.py build(): embeddings (input_dim, output_dim); with lora_rank, enable_lora() adds
    # lora_embeddings_a (input_dim, rank), lora_embeddings_b (rank, output_dim) and freezes embeddings.
    # compute_output_shape: (*input_shape, output_dim). Keras 2's `input_length` is ignored: Keras 2's
    # symbolic output comes from running the lookup, which gives the same (*input_shape, output_dim).
    def output_shapes(self, config, input_shapes):
        shape = single_input(input_shapes, "Embedding")
        return [shape + (_required_int(config, "output_dim", "Embedding"),)]

    def weights(self, config, input_shapes):
        input_dim = _required_int(config, "input_dim", "Embedding")
        output_dim = _required_int(config, "output_dim", "Embedding")
        q = quantized.of(config)
        if q is not None:  # model.quantize(): other variables, infer/quantized.py
            return quantized.embedding_weights(q, input_dim, output_dim)
        rank = _lora_rank(config)
        specs = [WeightSpec("embeddings", (input_dim, output_dim), trainable=not rank)]
        if rank:
            specs.append(WeightSpec("lora_embeddings_a", (input_dim, rank)))
            specs.append(WeightSpec("lora_embeddings_b", (rank, output_dim)))
        return specs

    def macs(self, config, input_shapes, output_shapes):
        # A lookup (ops.take): rows are copied, nothing is multiplied.
        return 0

    def formula(self, config, input_shapes):
        specs = self.weights(config, input_shapes)
        return f"{' + '.join(_product(w.shape) for w in specs)} = {sum(w.size for w in specs)}"


@register("ReversibleEmbedding")
class ReversibleEmbeddingSpec(LayerSpec):
    # reversible_embedding.py (keras_hub's ReversibleEmbedding subclasses it unchanged): Embedding's
    # variables, plus reverse_embeddings (output_dim, input_dim) unless tie_weights (quantized:
    # _int8_build / _int4_build, infer/quantized.py). call(inputs, reverse=False): the lookup gives
    # (*input, output_dim); reverse=True projects the last axis (output_dim) to input_dim logits.
    layer = "ReversibleEmbedding"
    call_arguments = ("reverse",)

    def output_shapes(self, config, input_shapes):
        if not config.get("reverse"):
            return EmbeddingSpec().output_shapes(config, input_shapes)
        shape = single_input(input_shapes, self.layer)
        output_dim = _required_int(config, "output_dim", self.layer)
        if not shape or shape[-1] not in (None, output_dim):
            raise ShapeError(f"{self.layer}(reverse=True) expects a last dimension of output_dim {output_dim}, "
                             f"got {fmt_shape(shape)}")
        return [tuple(shape[:-1]) + (_required_int(config, "input_dim", self.layer),)]

    def weights(self, config, input_shapes):
        specs = EmbeddingSpec().weights(config, input_shapes)
        if config.get("tie_weights", True):
            return specs
        input_dim = _required_int(config, "input_dim", self.layer)
        output_dim = _required_int(config, "output_dim", self.layer)
        q = quantized.of(config)
        if q is not None:  # all frozen, after Embedding's own
            return specs + quantized.reverse_embedding_weights(q, input_dim, output_dim)
        return specs + [WeightSpec("reverse_embeddings", (output_dim, input_dim))]

    def macs(self, config, input_shapes, output_shapes):
        if not config.get("reverse"):
            return 0
        positions = prod(single_input(input_shapes, self.layer)[1:-1])
        if positions is None:
            return None
        return positions * _required_int(config, "output_dim", self.layer) * _required_int(config, "input_dim", self.layer)

    def formula(self, config, input_shapes):
        specs = self.weights(config, input_shapes)
        return f"{' + '.join(_product(w.shape) for w in specs)} = {sum(w.size for w in specs)}"


@register("Identity")
class IdentitySpec(LayerSpec):
    # identity.py: returns its inputs, whatever their structure (several tensors stay several).
    def output_shapes(self, config, input_shapes):
        if not input_shapes:
            raise ShapeError("Identity expects at least one input")
        return [None if s is None else tuple(s) for s in input_shapes]


@register("Masking")
class MaskingSpec(SameShapeSpec):
    # masking.py compute_output_shape: the input shape; no weights.
    pass


@register("Lambda")
class LambdaSpec(LayerSpec):
    """lambda_layer.py compute_output_shape, for the one case that needs no code: a literal `output_shape`.

    A literal output_shape excludes the batch dimension; Keras prefixes the batch size of the first
    input. A list of literal shapes means several outputs. When the shape is a function (Keras 3 writes
    a dict, Keras 2 sets `output_shape_type` to "lambda" or "function") or absent, Keras would have to
    run code to know it, so this spec returns `[None]`: one output of unknown shape. It never raises
    for that: an unknown shape is not an error, and `opaque_shape` tells propagation to take the
    shapes the file records instead.
    """

    opaque_shape = True

    def output_shapes(self, config, input_shapes):
        value = config.get("output_shape")
        if config.get("output_shape_type", "raw") != "raw" or not isinstance(value, (list, tuple)):
            return [None]
        batch = None
        for s in input_shapes:
            if s is not None and len(s) > 0:
                batch = s[0]
                break
        if is_shape(value):
            return [(batch,) + tuple(value)]
        if all(is_shape(v) for v in value):
            return [(batch,) + tuple(v) for v in value]
        return [None]
