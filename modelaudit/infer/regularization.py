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


@register("SpatialDropout1D", rank=1)
@register("SpatialDropout2D", rank=2)
@register("SpatialDropout3D", rank=3)
class SpatialDropoutSpec(LayerSpec):
    rank = 1  # spatial axes: the input has rank + 2 (batch and channels)

    def output_shapes(self, config, input_shapes):
        shape = single_input(input_shapes, self.name)
        require_rank(shape, self.rank + 2, self.name)
        return [shape]
