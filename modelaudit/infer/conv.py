"""Convolution layers: keras/src/layers/convolutional/ and keras/src/layers/rnn/conv_lstm*.py.

The window (kernel, strides, dilation, padding, data format) and the output lengths are read by
infer/geometry.py, as for the pooling layers and the rules that judge a window.
"""

from __future__ import annotations

from typing import Optional

from modelaudit.infer.geometry import Geometry
from modelaudit.infer.geometry import conv_geometry, data_format, join_channels, spatial_input, split_channels
from modelaudit.infer.geometry import transpose_length
from modelaudit.infer.registry import LayerSpec, ShapeError, WeightSpec, as_tuple, fmt_shape, prod, register
from modelaudit.infer.registry import require_rank, single_input, use_bias


def dot(*terms) -> str:
    return "·".join(str(t) for t in terms)


def _positions(spatial) -> Optional[int]:
    """Number of positions of a spatial shape; None if unknown or non-positive (no sensible count)."""
    n = prod(spatial)
    if n is None or any(d <= 0 for d in spatial):
        return None
    return n


def _filters(config: dict, layer: str) -> int:
    value = config.get("filters")  # no Keras default
    if value is None:
        raise ShapeError(f"{layer}: the config has no 'filters'")
    return int(value)


def _with_bias(config: dict, specs: list, shape: tuple) -> list:
    """The weights, then the bias of that shape when use_bias is on (Keras's default)."""
    return specs + [WeightSpec("bias", shape)] if use_bias(config) else specs


def _spelled_kernel(config: dict, fan_in: str, weights: int, units: tuple) -> tuple[str, int]:
    """A kernel of `weights` weights read as fan_in per output unit, 'fan_in·units' in words, and
    '(fan_in + 1)·units' with its bias (one per unit) when use_bias is on; and the count."""
    if use_bias(config):
        return f"({fan_in} + 1)·{dot(*units)}", weights + prod(units)
    return f"{fan_in}·{dot(*units)}", weights


def _known_channels(channels, layer: str, shape) -> int:
    if channels is None:
        raise ShapeError(f"{layer} needs a known channel dimension to build its kernel, got {fmt_shape(shape)}")
    return int(channels)


# ---- Conv1D / Conv2D / Conv3D (base_conv.py) ----------------------------------------------------

# Each spec below is registered once per Keras class, with its number of spatial axes (rank). Keras
# never writes the Convolution* aliases itself, but it resolves them when a config names them with
# module "keras.layers", so a hand-edited or converted file may carry them.


@register("Conv1D", "Convolution1D", rank=1)
@register("Conv2D", "Convolution2D", rank=2)
@register("Conv3D", "Convolution3D", rank=3)
class ConvSpec(LayerSpec):
    # base_conv.py build(): kernel kernel_size + (in // groups, filters), bias (filters,);
    # with lora_rank, enable_lora() adds lora_kernel_a kernel[:-1] + (r,), lora_kernel_b (r, filters)
    # and freezes the kernel.
    rank = 2  # spatial axes
    macs_at_input = False  # MACs counted at each output position (a transposed conv: at each input one)

    def _input(self, config, input_shapes):
        """(input shape, data format, spatial dims, channels) of the single input."""
        return spatial_input(config, input_shapes, self.rank, self.name)

    def _channels(self, config, input_shapes) -> int:
        """The input's channel count, which the kernel's shape needs known."""
        shape, _, _, channels = self._input(config, input_shapes)
        return _known_channels(channels, self.name, shape)

    def window(self, config) -> Geometry:
        return conv_geometry(config, self.rank, self.name)

    def _groups(self, config) -> int:
        return int(config.get("groups") or 1)

    def _filters(self, config) -> int:
        return _filters(config, self.name)

    def _kernel(self, config) -> tuple:
        return self.window(config).taps

    def _out_spatial(self, config, spatial) -> tuple:
        return self.window(config).output_spatial(spatial, self.name)

    def macs(self, config, input_shapes, output_shapes):
        _, fmt, spatial, channels = self._input(config, input_shapes)
        positions = _positions(spatial if self.macs_at_input else split_channels(tuple(output_shapes[0]), fmt)[0])
        if positions is None or channels is None:
            return None
        return self._position_macs(config, int(channels), prod(self._kernel(config))) * positions

    def formula(self, config, input_shapes):
        channels = self._input(config, input_shapes)[3]
        if channels is None:
            return None
        return self._spelled(config, int(channels), self._kernel(config), input_shapes)

    def output_shapes(self, config, input_shapes):
        shape, fmt, spatial, _ = self._input(config, input_shapes)
        return [join_channels(shape[0], self._out_spatial(config, spatial), self._filters(config), fmt)]

    def _in_per_group(self, config, input_shapes) -> tuple[int, int, int]:
        shape, _, _, channels = self._input(config, input_shapes)
        channels = _known_channels(channels, self.name, shape)
        groups = self._groups(config)
        filters = self._filters(config)
        if groups <= 0:
            raise ShapeError(f"{self.name}: groups must be a positive integer, got {groups}")
        if channels % groups:
            raise ShapeError(
                f"{self.name}: the input's {channels} channels are not divisible by groups={groups} "
                f"(input {fmt_shape(shape)})"
            )
        if filters % groups:
            raise ShapeError(f"{self.name}: filters={filters} is not divisible by groups={groups}")
        return channels, groups, channels // groups

    def weights(self, config, input_shapes):
        _, _, per_group = self._in_per_group(config, input_shapes)
        filters = self._filters(config)
        kernel = self._kernel(config)
        kernel_shape = kernel + (per_group, filters)
        lora = int(config.get("lora_rank") or 0)
        specs = [WeightSpec("kernel", kernel_shape, trainable=not lora)]
        if use_bias(config):
            specs.append(WeightSpec("bias", (filters,)))
        if lora:
            specs.append(WeightSpec("lora_kernel_a", kernel_shape[:-1] + (lora,)))
            specs.append(WeightSpec("lora_kernel_b", (lora, filters)))
        return specs

    def _position_macs(self, config, channels: int, kernel: int) -> int:
        """Multiply-accumulates at one position, for `channels` input channels and `kernel` taps."""
        return kernel * (channels // self._groups(config)) * self._filters(config)

    def _spelled(self, config, channels: int, kernel: tuple, input_shapes) -> Optional[str]:
        """The formula of the parameter count, for known input channels."""
        try:
            channels, groups, per_group = self._in_per_group(config, input_shapes)
        except ShapeError:
            return None
        filters = self._filters(config)
        fan_in = dot(*kernel, per_group if groups == 1 else f"({channels}/{groups})")
        text, total = _spelled_kernel(config, fan_in, prod(kernel) * per_group * filters, (filters,))
        lora = int(config.get("lora_rank") or 0)
        if lora:
            text += f" + {dot(*kernel, per_group, lora)} + {lora}·{filters}"
            total += prod(kernel) * per_group * lora + lora * filters
        return f"{text} = {total}"


# ---- Conv*DTranspose (base_conv_transpose.py) ---------------------------------------------------


@register("Conv1DTranspose", "Convolution1DTranspose", rank=1)
@register("Conv2DTranspose", "Convolution2DTranspose", rank=2)
@register("Conv3DTranspose", "Convolution3DTranspose", rank=3)
class ConvTransposeSpec(ConvSpec):
    # build(): kernel kernel_size + (filters, in), bias (filters,). No groups.
    macs_at_input = True  # each input position scatters kernel·filters products per input channel

    def _groups(self, config) -> int:
        return 1

    def output_shapes(self, config, input_shapes):
        shape, fmt, spatial, _ = self._input(config, input_shapes)
        filters = self._filters(config)
        win = self.window(config)
        if win.padding not in ("valid", "same"):
            raise ShapeError(f"{self.name}: padding must be 'valid' or 'same', got {win.padding!r}")
        op = config.get("output_padding")
        out_pad = (None,) * self.rank if op is None else as_tuple(op, self.rank)
        out = tuple(
            transpose_length(n, k, s, d, win.padding, p)
            for n, k, s, d, p in zip(spatial, win.taps, win.strides, win.dilation, out_pad)
        )
        return [join_channels(shape[0], out, filters, fmt)]

    def weights(self, config, input_shapes):
        channels = self._channels(config, input_shapes)
        filters = self._filters(config)
        specs = [WeightSpec("kernel", self._kernel(config) + (filters, channels))]
        return _with_bias(config, specs, (filters,))

    def _position_macs(self, config, channels: int, kernel: int) -> int:
        return kernel * channels * self._filters(config)

    def _spelled(self, config, channels: int, kernel: tuple, input_shapes) -> str:
        filters = self._filters(config)
        text, total = _spelled_kernel(config, dot(*kernel, channels), prod(kernel) * channels * filters, (filters,))
        return f"{text} = {total}"


# ---- DepthwiseConv1D / 2D (base_depthwise_conv.py) ----------------------------------------------


@register("DepthwiseConv1D", rank=1)
@register("DepthwiseConv2D", rank=2)
class DepthwiseConvSpec(ConvSpec):
    # build(): kernel kernel_size + (in, depth_multiplier), bias (in * depth_multiplier,).
    # Keras 2 names the kernel depthwise_kernel; the shapes agree.
    def _multiplier(self, config) -> int:
        return int(config.get("depth_multiplier") or 1)

    def output_shapes(self, config, input_shapes):
        shape, fmt, spatial, channels = self._input(config, input_shapes)
        out = self._out_spatial(config, spatial)
        out_channels = None if channels is None else self._multiplier(config) * int(channels)
        return [join_channels(shape[0], out, out_channels, fmt)]

    def weights(self, config, input_shapes):
        channels = self._channels(config, input_shapes)
        dm = self._multiplier(config)
        specs = [WeightSpec("kernel", self._kernel(config) + (channels, dm))]
        return _with_bias(config, specs, (channels * dm,))

    def _position_macs(self, config, channels: int, kernel: int) -> int:
        return kernel * channels * self._multiplier(config)

    def _spelled(self, config, channels: int, kernel: tuple, input_shapes) -> str:
        dm = self._multiplier(config)
        # one kernel slice per input channel and multiplier; a bias per output channel
        text, total = _spelled_kernel(config, dot(*kernel), prod(kernel) * channels * dm, (channels, dm))
        return f"{text} = {total}"


# ---- SeparableConv1D / 2D (base_separable_conv.py) ----------------------------------------------


@register("SeparableConv1D", "SeparableConvolution1D", rank=1)
@register("SeparableConv2D", "SeparableConvolution2D", rank=2)
class SeparableConvSpec(DepthwiseConvSpec):
    # build(): depthwise_kernel kernel_size + (in, dm), pointwise_kernel (1,)*rank + (in*dm, filters),
    # bias (filters,).
    def output_shapes(self, config, input_shapes):
        return ConvSpec.output_shapes(self, config, input_shapes)

    def weights(self, config, input_shapes):
        channels = self._channels(config, input_shapes)
        dm = self._multiplier(config)
        filters = self._filters(config)
        specs = [
            WeightSpec("depthwise_kernel", self._kernel(config) + (channels, dm)),
            WeightSpec("pointwise_kernel", (1,) * self.rank + (channels * dm, filters)),
        ]
        return _with_bias(config, specs, (filters,))

    def _position_macs(self, config, channels: int, kernel: int) -> int:
        # the depthwise step, then a 1x1 conv over in*dm channels
        dm = self._multiplier(config)
        return kernel * channels * dm + channels * dm * self._filters(config)

    def _spelled(self, config, channels: int, kernel: tuple, input_shapes) -> str:
        dm = self._multiplier(config)
        filters = self._filters(config)
        total = prod(kernel) * channels * dm + channels * dm * filters
        text = f"{dot(*kernel, channels, dm)} + {dot(channels, dm, filters)}"
        if use_bias(config):
            text, total = f"{text} + {filters}", total + filters
        return f"{text} = {total}"


# ---- ConvLSTM1D / 2D / 3D (rnn/conv_lstm.py) ----------------------------------------------------


@register("ConvLSTM1D", rank=1)
@register("ConvLSTM2D", rank=2)
@register("ConvLSTM3D", rank=3)
class ConvLSTMSpec(ConvSpec):
    # ConvLSTMCell.build(): kernel kernel_size + (in, 4·filters), recurrent_kernel
    # kernel_size + (filters, 4·filters), bias (4·filters,); the 4 gates i, f, c, o are split from
    # the last axis. Input is (batch, time, ...step...); the step is convolved like ConvND.
    def _step(self, config, input_shapes):
        shape = single_input(input_shapes, self.name)
        require_rank(shape, self.rank + 3, self.name)
        fmt = data_format(config)
        step = (shape[0],) + tuple(shape[2:])
        spatial, channels = split_channels(step, fmt)
        return shape, fmt, spatial, channels

    def output_shapes(self, config, input_shapes):
        shape, fmt, spatial, _ = self._step(config, input_shapes)
        state = join_channels(None, self._out_spatial(config, spatial), self._filters(config), fmt)[1:]
        batch, steps = shape[0], shape[1]
        if config.get("return_sequences", False):
            out = (batch, steps) + state
        else:
            out = (batch,) + state
        if config.get("return_state", False):
            return [out, (batch,) + state, (batch,) + state]
        return [out]

    def weights(self, config, input_shapes):
        shape, _, _, channels = self._step(config, input_shapes)
        channels = _known_channels(channels, self.name, shape)
        filters = self._filters(config)
        kernel = self._kernel(config)
        specs = [
            WeightSpec("kernel", kernel + (channels, 4 * filters)),
            WeightSpec("recurrent_kernel", kernel + (filters, 4 * filters)),
        ]
        return _with_bias(config, specs, (4 * filters,))

    def macs(self, config, input_shapes, output_shapes):
        # Per time step: the input conv (strided, padded as configured) and the recurrent conv on
        # the state ('same', stride 1), both at every state position, for 4 gates.
        shape, fmt, _, channels = self._step(config, input_shapes)
        steps = shape[1]
        state = output_shapes[0][2:] if config.get("return_sequences", False) else output_shapes[0][1:]
        positions = _positions(split_channels((None,) + tuple(state), fmt)[0])
        if positions is None or channels is None or steps is None:
            return None
        filters = self._filters(config)
        kernel = prod(self._kernel(config))
        return steps * positions * kernel * (int(channels) + filters) * 4 * filters

    def formula(self, config, input_shapes):
        shape, _, _, channels = self._step(config, input_shapes)
        if channels is None:
            return None
        filters = self._filters(config)
        kernel = self._kernel(config)
        k = prod(kernel)
        total = k * (channels + filters) * 4 * filters
        parts = f"{dot(*kernel, channels)} + {dot(*kernel, filters)}"
        if use_bias(config):
            parts, total = parts + " + 1", total + 4 * filters
        return f"({parts})·4·{filters} = {total}"


