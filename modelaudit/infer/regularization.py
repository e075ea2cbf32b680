"""Regularization layers: keras/src/layers/regularization/.

Dropout, GaussianNoise, GaussianDropout, AlphaDropout and ActivityRegularization keep their input's
shape and have no weights. The SpatialDropout layers do too, but their InputSpec fixes the rank.
"""

from __future__ import annotations

from modelaudit.infer.geometry import SpatialSpec
from modelaudit.infer.registry import SameShapeSpec, register, register_each


@register_each("Dropout", "GaussianNoise", "GaussianDropout", "AlphaDropout", "ActivityRegularization")
class PassThroughSpec(SameShapeSpec):
    pass


@register("SpatialDropout1D", rank=1)
@register("SpatialDropout2D", rank=2)
@register("SpatialDropout3D", rank=3)
class SpatialDropoutSpec(SpatialSpec):
    def output_shapes(self, config, input_shapes):
        return [self._shape(input_shapes)]
