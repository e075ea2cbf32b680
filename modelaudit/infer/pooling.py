"""Pooling layers: keras/src/layers/pooling/. No weights, no multiply-accumulates.

Window pooling reads its window with infer/geometry.py (`compute_pooling_output_shape`); Keras
raises on a length <= 0 for 'valid', we return it for a later rule to flag.

Each spec is registered once per Keras class, with its number of spatial axes (rank 1, 2, 3: the
order `register_by_rank` names them in). Keras's own serializer writes the class name (MaxPooling2D);
the short aliases (MaxPool2D ...) resolve too when a config names them with module "keras.layers".
"""

from __future__ import annotations

from modelaudit.infer.geometry import Geometry, SpatialSpec, join_channels, pool_geometry, spatial_input
from modelaudit.infer.registry import ShapeError, as_tuple, register_by_rank


class _Spatial(SpatialSpec):
    def _input(self, config, input_shapes):
        return spatial_input(config, input_shapes, self.rank, self.name)


# ---- MaxPooling / AveragePooling (base_pooling.py): strides default to pool_size --------------------


@register_by_rank("MaxPooling1D", "MaxPooling2D", "MaxPooling3D",
                  aliases=("MaxPool1D", "MaxPool2D", "MaxPool3D"))
@register_by_rank("AveragePooling1D", "AveragePooling2D", "AveragePooling3D",
                  aliases=("AvgPool1D", "AvgPool2D", "AvgPool3D"))
class PoolingSpec(_Spatial):
    def window(self, config) -> Geometry:
        return pool_geometry(config, self.rank)

    def output_shapes(self, config, input_shapes):
        shape, fmt, spatial, channels = self._input(config, input_shapes)
        out = self.window(config).output_spatial(spatial, self.name)
        return [join_channels(shape[0], out, channels, fmt)]


# ---- GlobalMaxPooling / GlobalAveragePooling (base_global_pooling.py) --------------------------------


@register_by_rank("GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D",
                  aliases=("GlobalMaxPool1D", "GlobalMaxPool2D", "GlobalMaxPool3D"))
@register_by_rank("GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D",
                  aliases=("GlobalAvgPool1D", "GlobalAvgPool2D", "GlobalAvgPool3D"))
class GlobalPoolingSpec(_Spatial):
    # compute_output_shape: drop (or keep as 1) every spatial axis
    def output_shapes(self, config, input_shapes):
        shape, fmt, _, channels = self._input(config, input_shapes)
        spatial = (1,) * self.rank if config.get("keepdims", False) else ()
        return [join_channels(shape[0], spatial, channels, fmt)]


# ---- AdaptiveMaxPooling / AdaptiveAveragePooling (base_adaptive_pooling.py) --------------------------


@register_by_rank("AdaptiveMaxPooling1D", "AdaptiveMaxPooling2D", "AdaptiveMaxPooling3D")
@register_by_rank("AdaptiveAveragePooling1D", "AdaptiveAveragePooling2D", "AdaptiveAveragePooling3D")
class AdaptivePoolingSpec(_Spatial):
    # the spatial axes become output_size
    def output_shapes(self, config, input_shapes):
        shape, fmt, _, channels = self._input(config, input_shapes)
        size = config.get("output_size")
        if size is None:
            raise ShapeError(f"{self.name}: the config has no 'output_size'")
        return [join_channels(shape[0], as_tuple(size, self.rank), channels, fmt)]
