"""Reshaping layers: keras/src/layers/reshaping/.

Flatten, Reshape, Permute, RepeatVector, UpSampling1D/2D/3D, ZeroPadding1D/2D/3D, Cropping1D/2D/3D.
None has weights. A missing `data_format` takes Keras's default, channels_last.
"""

from __future__ import annotations

from modelaudit.infer.geometry import SpatialSpec
from modelaudit.infer.registry import LayerSpec, ShapeError, as_tuple, fmt_shape, prod, register, require_rank
from modelaudit.infer.registry import register_by_rank, single_input


def _channels_first(config) -> bool:
    return config.get("data_format") == "channels_first"


def _spatial_start(config) -> int:
    """Index of the first spatial axis (batch included): after the channels in channels_first."""
    return 2 if _channels_first(config) else 1


def _resize_spatial_axes(shape, config, per_axis, new_size) -> list:
    """The input's shape with spatial axis i (counted from `_spatial_start`) of size
    new_size(axis, per_axis[i]): UpSampling, ZeroPadding and Cropping, one value per spatial axis."""
    out = list(shape)
    start = _spatial_start(config)
    for i, value in enumerate(per_axis):
        out[start + i] = new_size(start + i, value)
    return [tuple(out)]


def _pairs(value, n: int, key: str, layer: str) -> tuple:
    """ZeroPadding and Cropping: an int, or n entries each an int or a (before, after) pair (the 1D
    layers: the one pair itself)."""
    if isinstance(value, int):
        return tuple((value, value) for _ in range(n))
    if n == 1 and isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return (tuple(value),)
    if not isinstance(value, (list, tuple)) or len(value) != n:
        raise ShapeError(f"{layer} {key} should be an int or {n} entries, got {value!r}")
    return tuple(as_tuple(v, 2) for v in value)


def _batched(input_shapes, layer: str, expected: str) -> tuple:
    """The single input, which must have at least its batch axis."""
    shape = single_input(input_shapes, layer)
    if len(shape) < 1:
        raise ShapeError(f"{layer} expects {expected}")
    return shape


@register("Flatten")
class FlattenSpec(LayerSpec):
    # flatten.py compute_output_shape: (batch, product of the rest), None if any is unknown, 1 if
    # there is no rest. data_format only changes the order of the elements, not the shape.
    def output_shapes(self, config, input_shapes):
        shape = _batched(input_shapes, "Flatten", "an input of rank >= 1")
        rest = shape[1:]
        return [(shape[0], prod(rest) if rest else 1)]


@register("Reshape")
class ReshapeSpec(LayerSpec):
    # reshape.py compute_output_shape -> ops/operation_utils.py compute_reshape_output_shape
    def output_shapes(self, config, input_shapes):
        shape = _batched(input_shapes, "Reshape", "an input with a batch dimension")
        raw = config.get("target_shape")
        if not isinstance(raw, (list, tuple)):
            raise ShapeError(f"Reshape target_shape should be a list, got {raw!r}")
        target = tuple(d if isinstance(d, int) and not isinstance(d, bool) else None for d in raw)
        if any(d is not None and d < -1 for d in target):
            raise ShapeError(f"Reshape target_shape {list(raw)} has a negative dimension other than -1")
        if target.count(-1) > 1:
            raise ShapeError(f"Reshape target_shape {list(raw)} has more than one -1")
        rest = shape[1:]
        if None in rest or None in target:
            return [(shape[0],) + tuple(None if d == -1 else d for d in target)]
        size = prod(rest)
        if -1 not in target:
            if size != prod(target):
                raise ShapeError(
                    f"Reshape cannot turn {fmt_shape(shape)} ({size} elements per sample) into target_shape "
                    f"{fmt_shape(target)} ({prod(target)} elements): the element count must not change"
                )
            return [(shape[0],) + target]
        known = prod(d for d in target if d != -1)
        if known == 0 or size % known != 0:
            raise ShapeError(
                f"Reshape cannot turn {fmt_shape(shape)} ({size} elements per sample) into target_shape "
                f"{list(raw)}: {size} is not divisible by {known}"
            )
        return [(shape[0],) + tuple(size // known if d == -1 else d for d in target)]


@register("Permute")
class PermuteSpec(LayerSpec):
    # permute.py: dims is a permutation of 1..rank-1; output[i + 1] = input[dims[i]]
    def output_shapes(self, config, input_shapes):
        shape = single_input(input_shapes, "Permute")
        if not isinstance(config.get("dims"), (list, tuple)):
            raise ShapeError(f"Permute records no dims list, got {config.get('dims')!r}")
        dims = [int(d) for d in config["dims"]]
        if sorted(dims) != list(range(1, len(dims) + 1)):
            raise ShapeError(f"Permute dims {dims} should be a permutation of 1..{len(dims)}")
        require_rank(shape, len(dims) + 1, "Permute")
        return [(shape[0],) + tuple(shape[d] for d in dims)]


@register("RepeatVector")
class RepeatVectorSpec(LayerSpec):
    # repeat_vector.py: (batch, features) -> (batch, n, features)
    def output_shapes(self, config, input_shapes):
        shape = single_input(input_shapes, "RepeatVector")
        require_rank(shape, 2, "RepeatVector")
        if config.get("n") is None:
            raise ShapeError("RepeatVector records no n")
        return [(shape[0], int(config["n"]), shape[1])]


def _scale(dim, factor):
    return None if dim is None else dim * factor


def _pad(dim, padding):
    before, after = padding
    return None if dim is None else dim + before + after


# up_sampling1d.py: steps (axis 1) times size, no data_format; the 2D and 3D layers: each spatial axis
@register_by_rank("UpSampling1D", "UpSampling2D", "UpSampling3D")
class UpSamplingSpec(SpatialSpec):
    def output_shapes(self, config, input_shapes):
        shape = self._shape(input_shapes)
        size = as_tuple(config.get("size", 2), self.rank)
        factors = [size[i] for i in range(self.rank)]
        return _resize_spatial_axes(shape, config, factors, lambda axis, factor: _scale(shape[axis], factor))


# zero_padding1d.py: an int or (left, right) on axis 1 (2 in channels_first; Keras 2 has no data_format)
@register_by_rank("ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D")
class ZeroPaddingSpec(SpatialSpec):
    def output_shapes(self, config, input_shapes):
        shape = self._shape(input_shapes)
        padding = _pairs(config.get("padding", 1), self.rank, "padding", self.name)
        return _resize_spatial_axes(shape, config, padding, lambda axis, pair: _pad(shape[axis], pair))


def _crop(shape, axis, pair, layer, cropping):
    before, after = pair
    dim = shape[axis]
    if dim is None:
        return None
    left = dim - before - after
    if left <= 0:
        raise ShapeError(
            f"{layer} cropping {cropping} removes all of axis {axis} (size {dim}) of the input {fmt_shape(shape)}"
        )
    return left


# cropping1d.py: axis 1, no data_format, default (1, 1); cropping2d.py: default ((0, 0), (0, 0));
# cropping3d.py: default ((1, 1), (1, 1), (1, 1))
@register("Cropping1D", rank=1, default=1)
@register("Cropping2D", rank=2, default=0)
@register("Cropping3D", rank=3, default=1)
class CroppingSpec(SpatialSpec):
    default = 0

    def output_shapes(self, config, input_shapes):
        shape = self._shape(input_shapes)
        cropping = _pairs(config.get("cropping", self.default), self.rank, "cropping", self.name)
        spelled = [list(c) for c in cropping]
        return _resize_spatial_axes(
            shape, config, cropping, lambda axis, pair: _crop(shape, axis, pair, self.name, spelled)
        )
