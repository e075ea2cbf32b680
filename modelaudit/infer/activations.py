"""Activation layers: keras/src/layers/activations/ (Activation, ReLU, LeakyReLU, PReLU, ELU, Softmax).

All keep their input's shape (compute_output_shape returns input_shape). Only PReLU has a weight.
"""

from __future__ import annotations

from modelaudit.infer.registry import LayerSpec, SameShapeSpec, ShapeError, WeightSpec, fmt_shape, prod, register
from modelaudit.infer.registry import register_each, single_input


@register_each("Activation", "ReLU", "LeakyReLU", "ELU", "Softmax")
class ElementwiseActivationSpec(SameShapeSpec):
    pass


def _shared_axes(config) -> list:
    axes = config.get("shared_axes")
    if axes is None:
        return []
    if not isinstance(axes, (list, tuple)):
        return [int(axes)]
    return [int(a) for a in axes]


@register("PReLU")
class PReLUSpec(LayerSpec):
    # prelu.py build(): alpha has shape input_shape[1:] with each shared axis i set to 1 at index i - 1
    # (Keras indexes the list literally, so a negative axis lands at i - 1 from the end too).
    def output_shapes(self, config, input_shapes):
        return [single_input(input_shapes, "PReLU")]

    def _alpha_shape(self, config, input_shapes) -> tuple:
        shape = single_input(input_shapes, "PReLU")
        param = list(shape[1:])
        for axis in _shared_axes(config):
            if not -len(param) <= axis - 1 < len(param):
                raise ShapeError(f"PReLU shared axis {axis} is out of range for an input {fmt_shape(shape)}")
            param[axis - 1] = 1
        # An unknown, unshared dim stays None (Keras cannot build that); propagation then reports the
        # weights as not recomputable, since the dim may be known to Keras but not to us.
        return tuple(param)

    def weights(self, config, input_shapes):
        return [WeightSpec("alpha", self._alpha_shape(config, input_shapes))]

    def macs(self, config, input_shapes, output_shapes):
        # One multiply by alpha per element.
        shape = single_input(input_shapes, "PReLU")
        return prod(shape[1:])

    def formula(self, config, input_shapes):
        alpha = self._alpha_shape(config, input_shapes)
        if None in alpha:
            return None
        return f"{'·'.join(str(d) for d in alpha) or '1'} = {prod(alpha)}"
