"""Pooling layers: keras/src/layers/pooling/. No weights, no multiply-accumulates.

Window pooling reads its window with infer/geometry.py (`compute_pooling_output_shape`); Keras
raises on a length <= 0 for 'valid', we return it for a later rule to flag.

Keras's own serializer writes the class name (MaxPooling2D); the short aliases (MaxPool2D ...)
resolve too when a config names them with module "keras.layers".
"""

from __future__ import annotations

from modelaudit.infer.geometry import Geometry, join_channels, pool_geometry, spatial_input
from modelaudit.infer.registry import LayerSpec, ShapeError, as_tuple, register


class _Spatial(LayerSpec):
    rank = 2  # spatial axes

    def _input(self, config, input_shapes):
        return spatial_input(config, input_shapes, self.rank, self.name)


# ---- MaxPooling / AveragePooling (base_pooling.py): strides default to pool_size --------------------


class PoolingSpec(_Spatial):
    def window(self, config) -> Geometry:
        return pool_geometry(config, self.rank)

    def output_shapes(self, config, input_shapes):
        shape, fmt, spatial, channels = self._input(config, input_shapes)
        out = self.window(config).output_spatial(spatial, self.name)
        return [join_channels(shape[0], out, channels, fmt)]


@register("MaxPooling1D", "MaxPool1D")
class MaxPooling1DSpec(PoolingSpec):
    rank = 1


@register("MaxPooling2D", "MaxPool2D")
class MaxPooling2DSpec(PoolingSpec):
    rank = 2


@register("MaxPooling3D", "MaxPool3D")
class MaxPooling3DSpec(PoolingSpec):
    rank = 3


@register("AveragePooling1D", "AvgPool1D")
class AveragePooling1DSpec(PoolingSpec):
    rank = 1


@register("AveragePooling2D", "AvgPool2D")
class AveragePooling2DSpec(PoolingSpec):
    rank = 2


@register("AveragePooling3D", "AvgPool3D")
class AveragePooling3DSpec(PoolingSpec):
    rank = 3


# ---- GlobalMaxPooling / GlobalAveragePooling (base_global_pooling.py) --------------------------------


class GlobalPoolingSpec(_Spatial):
    # compute_output_shape: drop (or keep as 1) every spatial axis
    def output_shapes(self, config, input_shapes):
        shape, fmt, _, channels = self._input(config, input_shapes)
        spatial = (1,) * self.rank if config.get("keepdims", False) else ()
        return [join_channels(shape[0], spatial, channels, fmt)]


@register("GlobalMaxPooling1D", "GlobalMaxPool1D")
class GlobalMaxPooling1DSpec(GlobalPoolingSpec):
    rank = 1


@register("GlobalMaxPooling2D", "GlobalMaxPool2D")
class GlobalMaxPooling2DSpec(GlobalPoolingSpec):
    rank = 2


@register("GlobalMaxPooling3D", "GlobalMaxPool3D")
class GlobalMaxPooling3DSpec(GlobalPoolingSpec):
    rank = 3


@register("GlobalAveragePooling1D", "GlobalAvgPool1D")
class GlobalAveragePooling1DSpec(GlobalPoolingSpec):
    rank = 1


@register("GlobalAveragePooling2D", "GlobalAvgPool2D")
class GlobalAveragePooling2DSpec(GlobalPoolingSpec):
    rank = 2


@register("GlobalAveragePooling3D", "GlobalAvgPool3D")
class GlobalAveragePooling3DSpec(GlobalPoolingSpec):
    rank = 3


# ---- AdaptiveMaxPooling / AdaptiveAveragePooling (base_adaptive_pooling.py) --------------------------


class AdaptivePoolingSpec(_Spatial):
    # the spatial axes become output_size
    def output_shapes(self, config, input_shapes):
        shape, fmt, _, channels = self._input(config, input_shapes)
        size = config.get("output_size")
        if size is None:
            raise ShapeError(f"{self.name}: the config has no 'output_size'")
        return [join_channels(shape[0], as_tuple(size, self.rank), channels, fmt)]


@register("AdaptiveMaxPooling1D")
class AdaptiveMaxPooling1DSpec(AdaptivePoolingSpec):
    rank = 1


@register("AdaptiveMaxPooling2D")
class AdaptiveMaxPooling2DSpec(AdaptivePoolingSpec):
    rank = 2


@register("AdaptiveMaxPooling3D")
class AdaptiveMaxPooling3DSpec(AdaptivePoolingSpec):
    rank = 3


@register("AdaptiveAveragePooling1D")
class AdaptiveAveragePooling1DSpec(AdaptivePoolingSpec):
    rank = 1


@register("AdaptiveAveragePooling2D")
class AdaptiveAveragePooling2DSpec(AdaptivePoolingSpec):
    rank = 2


@register("AdaptiveAveragePooling3D")
class AdaptiveAveragePooling3DSpec(AdaptivePoolingSpec):
    rank = 3
