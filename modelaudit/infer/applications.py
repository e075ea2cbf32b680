"""Helper layers that `keras.applications` defines for its own models: keras/src/applications/.

They are plain `Layer` subclasses saved with their module (e.g. "keras.src.applications.convnext"),
so a saved ConvNeXt or InceptionResNetV2 names them like any built-in layer.

- LayerScale (convnext.py): build() adds `gamma` of shape (projection_dim,); call() is x * gamma.
- StochasticDepth (convnext.py): drops the residual path in training; no weights, shape kept.
- CustomScaleLayer (inception_resnet_v2.py): inputs[0] + inputs[1] * scale; no weights.

None defines compute_output_shape(): Keras traces call() symbolically, so output shapes follow
ops broadcasting (keras/src/ops/operation_utils.py `broadcast_shapes`), batch axis included.
"""

from __future__ import annotations

from modelaudit.infer.registry import LayerSpec, SameShapeSpec, ShapeError, WeightSpec, fmt_shape, prod, register
from modelaudit.infer.registry import single_input


def broadcast(shape1, shape2, layer: str) -> tuple:
    """operation_utils.broadcast_shapes: right-aligned; 1 stretches; None meets d -> d (None meets 1 -> None)."""
    a, b = list(shape1), list(shape2)
    if len(a) < len(b):
        a = [1] * (len(b) - len(a)) + a
    if len(b) < len(a):
        b = [1] * (len(a) - len(b)) + b
    out = []
    for i, j in zip(a, b):
        if i == 1:
            out.append(j)
        elif i is None:
            out.append(None if j == 1 else j)
        elif j == 1 or j is None or j == i:
            out.append(i)
        else:
            raise ShapeError(f"{layer} cannot broadcast {fmt_shape(tuple(shape1))} with {fmt_shape(tuple(shape2))}")
    return tuple(out)


@register("LayerScale")
class LayerScaleSpec(LayerSpec):
    def output_shapes(self, config, input_shapes):
        shape = single_input(input_shapes, "LayerScale")
        return [broadcast(shape, (int(config["projection_dim"]),), "LayerScale")]

    def weights(self, config, input_shapes):
        return [WeightSpec("gamma", (int(config["projection_dim"]),))]

    def macs(self, config, input_shapes, output_shapes):
        return prod(output_shapes[0][1:])

    def formula(self, config, input_shapes):
        return f"projection_dim = {int(config['projection_dim'])}"


@register("StochasticDepth")
class StochasticDepthSpec(SameShapeSpec):
    pass


@register("CustomScaleLayer")
class CustomScaleLayerSpec(LayerSpec):
    def output_shapes(self, config, input_shapes):
        if len(input_shapes) != 2 or any(s is None for s in input_shapes):
            raise ShapeError(f"CustomScaleLayer expects a list of two inputs, got {len(input_shapes)}")
        return [broadcast(input_shapes[0], input_shapes[1], "CustomScaleLayer")]

    def macs(self, config, input_shapes, output_shapes):
        # One multiply-add per element: inputs[0] + inputs[1] * scale.
        return prod(output_shapes[0][1:])
