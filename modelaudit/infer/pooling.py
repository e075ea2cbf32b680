"""Pooling layers: keras/src/layers/pooling/. No weights, no multiply-accumulates.

Window pooling reads its window with infer/geometry.py (`compute_pooling_output_shape`); Keras
raises on a length <= 0 for 'valid', we return it for a later rule to flag.

Each spec is registered once per Keras class, with its number of spatial axes (rank). Keras's own
serializer writes the class name (MaxPooling2D); the short aliases (MaxPool2D ...) resolve too when
a config names them with module "keras.layers".
"""

from __future__ import annotations

from modelaudit.infer.geometry import Geometry, SpatialSpec, join_channels, pool_geometry, spatial_input
from modelaudit.infer.registry import ShapeError, as_tuple, register


class _Spatial(SpatialSpec):
    def _input(self, config, input_shapes):
        return spatial_input(config, input_shapes, self.rank, self.name)


# ---- MaxPooling / AveragePooling (base_pooling.py): strides default to pool_size --------------------


@register("MaxPooling1D", "MaxPool1D", rank=1)
@register("MaxPooling2D", "MaxPool2D", rank=2)
@register("MaxPooling3D", "MaxPool3D", rank=3)
@register("AveragePooling1D", "AvgPool1D", rank=1)
@register("AveragePooling2D", "AvgPool2D", rank=2)
@register("AveragePooling3D", "AvgPool3D", rank=3)
class PoolingSpec(_Spatial):
    def window(self, config) -> Geometry:
        return pool_geometry(config, self.rank)

    def output_shapes(self, config, input_shapes):
        shape, fmt, spatial, channels = self._input(config, input_shapes)
        out = self.window(config).output_spatial(spatial, self.name)
        return [join_channels(shape[0], out, channels, fmt)]


# ---- GlobalMaxPooling / GlobalAveragePooling (base_global_pooling.py) --------------------------------


@register("GlobalMaxPooling1D", "GlobalMaxPool1D", rank=1)
@register("GlobalMaxPooling2D", "GlobalMaxPool2D", rank=2)
@register("GlobalMaxPooling3D", "GlobalMaxPool3D", rank=3)
@register("GlobalAveragePooling1D", "GlobalAvgPool1D", rank=1)
@register("GlobalAveragePooling2D", "GlobalAvgPool2D", rank=2)
@register("GlobalAveragePooling3D", "GlobalAvgPool3D", rank=3)
class GlobalPoolingSpec(_Spatial):
    # compute_output_shape: drop (or keep as 1) every spatial axis
    def output_shapes(self, config, input_shapes):
        shape, fmt, _, channels = self._input(config, input_shapes)
        spatial = (1,) * self.rank if config.get("keepdims", False) else ()
        return [join_channels(shape[0], spatial, channels, fmt)]


# ---- AdaptiveMaxPooling / AdaptiveAveragePooling (base_adaptive_pooling.py) --------------------------


@register("AdaptiveMaxPooling1D", rank=1)
@register("AdaptiveMaxPooling2D", rank=2)
@register("AdaptiveMaxPooling3D", rank=3)
@register("AdaptiveAveragePooling1D", rank=1)
@register("AdaptiveAveragePooling2D", rank=2)
@register("AdaptiveAveragePooling3D", rank=3)
class AdaptivePoolingSpec(_Spatial):
    # the spatial axes become output_size
    def output_shapes(self, config, input_shapes):
        shape, fmt, _, channels = self._input(config, input_shapes)
        size = config.get("output_size")
        if size is None:
            raise ShapeError(f"{self.name}: the config has no 'output_size'")
        return [join_channels(shape[0], as_tuple(size, self.rank), channels, fmt)]
