"""Pooling layers: keras/src/layers/pooling/. No weights, no multiply-accumulates.

Window pooling follows keras/src/ops/operation_utils.py `compute_pooling_output_shape`; Keras raises
on a length <= 0 for 'valid', we return it for a later rule to flag.
"""

from __future__ import annotations

from modelaudit.infer.conv import data_format, join_channels, padding, split_channels
from modelaudit.infer.registry import LayerSpec, ShapeError, as_tuple, register, require_rank, single_input

# Keras's own serializer writes the class name (MaxPooling2D); the short aliases (MaxPool2D ...)
# resolve too when a config names them with module "keras.layers".


class PoolingSpec(LayerSpec):
    # base_pooling.py: strides default to pool_size; padding 'valid' or 'same'
    dims = 2
    name = "MaxPooling2D"

    def output_shapes(self, config, input_shapes):
        shape = single_input(input_shapes, self.name)
        require_rank(shape, self.dims + 2, self.name)
        fmt = data_format(config)
        pool = as_tuple(config.get("pool_size") or 2, self.dims)
        strides = config.get("strides")
        strides = pool if strides is None else as_tuple(strides, self.dims)
        pad = padding(config)
        spatial, channels = split_channels(shape, fmt)
        out = []
        for n, p, s in zip(spatial, pool, strides):
            if n is None:
                out.append(None)
            elif pad == "valid":
                out.append((n - p) // s + 1)
            elif pad == "same":
                out.append((n - 1) // s + 1)
            else:
                raise ShapeError(f"{self.name}: padding must be 'valid' or 'same', got {pad!r}")
        return [join_channels(shape[0], tuple(out), channels, fmt)]


def _pooling(dims: int, cls_name: str, *aliases: str):
    return register(cls_name, *aliases)(type(f"{cls_name}Spec", (PoolingSpec,), {"dims": dims, "name": cls_name}))


for _d in (1, 2, 3):
    _pooling(_d, f"MaxPooling{_d}D", f"MaxPool{_d}D")
    _pooling(_d, f"AveragePooling{_d}D", f"AvgPool{_d}D")


class GlobalPoolingSpec(LayerSpec):
    # base_global_pooling.py compute_output_shape: drop (or keep as 1) every spatial axis
    dims = 2
    name = "GlobalAveragePooling2D"

    def output_shapes(self, config, input_shapes):
        shape = single_input(input_shapes, self.name)
        require_rank(shape, self.dims + 2, self.name)
        fmt = data_format(config)
        _, channels = split_channels(shape, fmt)
        spatial = (1,) * self.dims if config.get("keepdims", False) else ()
        return [join_channels(shape[0], spatial, channels, fmt)]


def _global(dims: int, cls_name: str, *aliases: str):
    return register(cls_name, *aliases)(
        type(f"{cls_name}Spec", (GlobalPoolingSpec,), {"dims": dims, "name": cls_name})
    )


for _d in (1, 2, 3):
    _global(_d, f"GlobalMaxPooling{_d}D", f"GlobalMaxPool{_d}D")
    _global(_d, f"GlobalAveragePooling{_d}D", f"GlobalAvgPool{_d}D")


class AdaptivePoolingSpec(LayerSpec):
    # base_adaptive_pooling.py: the spatial axes become output_size
    dims = 2
    name = "AdaptiveAveragePooling2D"

    def output_shapes(self, config, input_shapes):
        shape = single_input(input_shapes, self.name)
        require_rank(shape, self.dims + 2, self.name)
        fmt = data_format(config)
        _, channels = split_channels(shape, fmt)
        size = config.get("output_size")
        if size is None:
            raise ShapeError(f"{self.name}: the config has no 'output_size'")
        return [join_channels(shape[0], as_tuple(size, self.dims), channels, fmt)]


for _d in (1, 2, 3):
    for _kind in ("Average", "Max"):
        _n = f"Adaptive{_kind}Pooling{_d}D"
        register(_n)(type(f"{_n}Spec", (AdaptivePoolingSpec,), {"dims": _d, "name": _n}))
