"""Regularization layers: keras/src/layers/regularization/.

Dropout, GaussianNoise, GaussianDropout, AlphaDropout and ActivityRegularization keep their input's
shape and have no weights. The SpatialDropout layers do too, but their InputSpec fixes the rank.
"""

from __future__ import annotations

from modelaudit.infer.registry import LayerSpec, register, require_rank, single_input


@register("Dropout", "GaussianNoise", "GaussianDropout", "AlphaDropout", "ActivityRegularization")
class PassThroughSpec(LayerSpec):
    def output_shapes(self, config, input_shapes):
        return [single_input(input_shapes, "regularization layer")]


class _SpatialDropoutSpec(LayerSpec):
    name = ""
    rank = 0

    def output_shapes(self, config, input_shapes):
        shape = single_input(input_shapes, self.name)
        require_rank(shape, self.rank, self.name)
        return [shape]


@register("SpatialDropout1D")
class SpatialDropout1DSpec(_SpatialDropoutSpec):
    name, rank = "SpatialDropout1D", 3


@register("SpatialDropout2D")
class SpatialDropout2DSpec(_SpatialDropoutSpec):
    name, rank = "SpatialDropout2D", 4


@register("SpatialDropout3D")
class SpatialDropout3DSpec(_SpatialDropoutSpec):
    name, rank = "SpatialDropout3D", 5
