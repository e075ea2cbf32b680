"""Conv and pool geometry, read from a layer's config once: kernel (or pool) size, strides, dilation,
padding and data format as one normalized `Geometry`, and the output length along a spatial axis.

Keras normalizes these once, in the layer's `__init__` (`standardize_tuple`, `standardize_padding`,
`standardize_data_format` in keras/src/layers/convolutional/base_conv.py and
pooling/base_pooling.py); the conv and pooling specs and the rules that judge a window (MA306, MA307)
read the same object. Output lengths follow keras/src/ops/operation_utils.py
`compute_conv_output_shape` / `compute_pooling_output_shape` and
keras/src/backend/common/backend_utils.py `_get_output_shape_given_tf_padding` (transposed convs).
Keras raises on a length <= 0; we return it, so that a later rule can name the layer that shrank
the input away.

`rank` is always the number of spatial axes (2 for Conv2D); the input has rank + 2 axes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from modelaudit.infer.registry import LayerSpec, ShapeError, as_tuple, require_rank, single_input

CONV_PADDINGS = ("valid", "same", "causal")
POOL_PADDINGS = ("valid", "same")
AXIS_NAMES = {1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width")}


def data_format(config: dict) -> str:
    # A missing or null data_format means Keras's default image_data_format, channels_last.
    return config.get("data_format") or "channels_last"


def padding(config: dict, default: str = "valid") -> str:
    return str(config.get("padding") or default).lower()


def split_channels(shape: tuple, fmt: str) -> tuple[tuple, Optional[int]]:
    """(spatial dims, channel dim) of a (batch, ..., channels) or (batch, channels, ...) shape."""
    if fmt == "channels_first":
        return tuple(shape[2:]), shape[1]
    return tuple(shape[1:-1]), shape[-1]


def join_channels(batch, spatial: tuple, channels, fmt: str) -> tuple:
    if fmt == "channels_first":
        return (batch, channels) + tuple(spatial)
    return (batch,) + tuple(spatial) + (channels,)


def spatial_axes(input_rank: int, fmt: str) -> list:
    """The spatial axes of an input of `input_rank` axes (batch and channels excluded)."""
    return list(range(2, input_rank)) if fmt == "channels_first" else list(range(1, input_rank - 1))


def spatial_input(config: dict, input_shapes: list, rank: int, layer: str) -> tuple:
    """(shape, data format, spatial dims, channels) of the single input of a layer with `rank`
    spatial axes (so rank + 2 axes, batch and channels included)."""
    shape = single_input(input_shapes, layer)
    require_rank(shape, rank + 2, layer)
    fmt = data_format(config)
    spatial, channels = split_channels(shape, fmt)
    return shape, fmt, spatial, channels


class SpatialSpec(LayerSpec):
    """A layer over `rank` spatial axes: its single input has rank + 2 axes (batch, channels)."""

    rank = 2

    def _shape(self, input_shapes: list) -> tuple:
        shape = single_input(input_shapes, self.name)
        require_rank(shape, self.rank + 2, self.name)
        return shape


def _choices(allowed: tuple) -> str:
    quoted = [repr(p) for p in allowed]
    return ", ".join(quoted[:-1]) + " or " + quoted[-1]


def conv_length(n, kernel: int, stride: int, dilation: int, pad: str, layer: str,
                allowed: tuple = CONV_PADDINGS) -> Optional[int]:
    """The conv output size (or a pool's) along one spatial axis, for a forward convolution (floor
    division, as Keras's np.floor)."""
    if n is None:
        return None
    if pad not in allowed:
        raise ShapeError(f"{layer}: padding must be {_choices(allowed)}, got {pad!r}")
    if pad == "valid":
        return (n - dilation * (kernel - 1) - 1) // stride + 1
    return (n - 1) // stride + 1


def transpose_length(n, kernel: int, stride: int, dilation: int, pad: str, out_pad) -> Optional[int]:
    """backend_utils._get_output_shape_given_tf_padding."""
    if n is None:
        return None
    k = (kernel - 1) * dilation + 1
    if pad == "valid":
        extra = max(k, stride) - k if out_pad is None else out_pad
        return (n - 1) * stride + k + extra
    if out_pad is None:
        return n * stride
    return (n - 1) * stride + k % 2 + out_pad


@dataclass(frozen=True)
class Geometry:
    """One conv's or pool's window along its spatial axes, normalized."""

    rank: int  # number of spatial axes
    taps: tuple  # kernel_size or pool_size
    strides: tuple
    dilation: tuple
    padding: str  # lower case
    data_format: str  # "channels_last" or "channels_first"
    kind: str  # "kernel" or "pool", in the rules' messages

    @property
    def extent(self) -> tuple:
        """The input span one window covers, dilation included."""
        return tuple(d * (k - 1) + 1 for k, d in zip(self.taps, self.dilation))

    @property
    def axes(self) -> list:
        """The spatial axes of the layer's input (rank + 2 axes)."""
        return spatial_axes(self.rank + 2, self.data_format)

    def axis_name(self, i: int) -> str:
        names = AXIS_NAMES.get(self.rank, ())
        return names[i] if i < len(names) else f"axis {self.axes[i]}"

    def split(self, shape: tuple) -> tuple[tuple, Optional[int]]:
        return split_channels(shape, self.data_format)

    def join(self, batch, spatial: tuple, channels) -> tuple:
        return join_channels(batch, spatial, channels, self.data_format)

    def output_spatial(self, spatial: tuple, layer: str, allowed: Optional[tuple] = None) -> tuple:
        """The output length along each spatial axis of an input of these spatial dims (`allowed`:
        the paddings the layer takes, when not its kind's)."""
        allowed = allowed or (POOL_PADDINGS if self.kind == "pool" else CONV_PADDINGS)
        return tuple(conv_length(n, k, s, d, self.padding, layer, allowed)
                     for n, k, s, d in zip(spatial, self.taps, self.strides, self.dilation))


def _whole(value, n: int) -> bool:
    """An int, or a list of 1 or n ints (no bool): what a rule trusts enough to judge."""
    items = value if isinstance(value, (list, tuple)) else [value]
    return len(items) in (1, n) and all(isinstance(v, int) and not isinstance(v, bool) for v in items)


def _read(rank: int, kind: str, taps, strides, dilation, config: dict, strict: bool) -> Optional[Geometry]:
    if strict and not all(_whole(v, rank) for v in (taps, strides, dilation)):
        return None
    geometry = Geometry(rank, as_tuple(taps, rank), as_tuple(strides, rank), as_tuple(dilation, rank),
                        padding(config), data_format(config), kind)
    if strict and min(geometry.taps + geometry.strides + geometry.dilation) < 1:
        return None
    return geometry


def conv_geometry(config: dict, rank: int, layer: str, *, strict: bool = False) -> Optional[Geometry]:
    """A convolution's geometry (base_conv.py __init__). strict: None for anything but whole
    positive sizes, instead of Keras's error (a rule stays quiet where a spec reports the error)."""
    kernel = config.get("kernel_size")
    if kernel is None:
        if strict:
            return None
        raise ShapeError(f"{layer}: the config has no 'kernel_size'")  # no Keras default
    return _read(rank, "kernel", kernel, config.get("strides") or 1, config.get("dilation_rate") or 1, config,
                 strict)


def pool_geometry(config: dict, rank: int, *, strict: bool = False) -> Optional[Geometry]:
    """A window pool's geometry (base_pooling.py __init__): strides default to pool_size."""
    pool = config.get("pool_size") or 2
    strides = config.get("strides")
    return _read(rank, "pool", pool, pool if strides is None else strides, 1, config, strict)
