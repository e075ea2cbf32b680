"""Core layers: keras/src/layers/core/ (InputLayer, Dense, EinsumDense, Embedding, Identity, Masking, Lambda)."""

from __future__ import annotations

from modelaudit.infer.registry import (
    LayerSpec,
    ShapeError,
    WeightSpec,
    fmt_shape,
    prod,
    register,
    single_input,
    use_bias,
)


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
        if use_bias(config):
            return f"({shape[-1]} + 1)·{units} = {(shape[-1] + 1) * units}"
        return f"{shape[-1]}·{units} = {shape[-1] * units}"
