"""Larq layers (larq 0.14.0, on Keras 2 / tf_keras): the float layers they subclass.

Larq's quantizers (input_quantizer, kernel_quantizer, depthwise_/pointwise_quantizer: "ste_sign",
{"class_name": "DoReFa", ...}) wrap the kernel in a QuantizedVariable and add no weight; `pad_values`
builds the conv on the padded input with 'valid' padding, which gives the same kernel and the same
'same' output. So each spec is the float spec under the Larq class name (larq/layers.py,
layers_base.py). Keras 3 has no LocallyConnected layers: their specs follow tf_keras
layers/locally_connected/locally_connected{1,2}d.py.
"""

from __future__ import annotations

from modelaudit.infer import conv, core  # noqa: F401  (the float specs the aliases below name)
from modelaudit.infer.geometry import POOL_PADDINGS, conv_geometry, join_channels, spatial_input
from modelaudit.infer.registry import LayerSpec, ShapeError, WeightSpec, alias, fmt_shape, prod, register, use_bias


alias("Dense", "QuantDense")
alias("Conv1D", "QuantConv1D")
alias("Conv2D", "QuantConv2D")
alias("Conv3D", "QuantConv3D")
alias("Conv2DTranspose", "QuantConv2DTranspose")
alias("Conv3DTranspose", "QuantConv3DTranspose")
alias("DepthwiseConv2D", "QuantDepthwiseConv2D")
alias("SeparableConv1D", "QuantSeparableConv1D")
alias("SeparableConv2D", "QuantSeparableConv2D")


# ---- LocallyConnected1D / 2D (tf_keras) -------------------------------------------------------


def _connections(n: int, out: int, kernel: int, stride: int, pad: str) -> int:
    """(output position, input position) pairs along one axis: conv_utils.conv_connected_inputs,
    the sparse kernel of implementation 3."""
    left, right = kernel // 2, kernel - kernel // 2
    total = 0
    for o in range(out):
        center = o * stride + (left if pad == "valid" else 0)
        total += max(0, min(n, center + right) - max(0, center - left))
    return total


class LocallyConnectedSpec(LayerSpec):
    # build(): implementation 1 kernel (positions, prod(kernel)·in, filters); 2 a dense masked kernel
    # spatial + (in,) + out_spatial + (filters,) (channels_first: (in,) + spatial + (filters,) +
    # out_spatial); 3 a sparse kernel, one value per connection. bias out_spatial + (filters,).
    rank = 1  # spatial axes

    def _geometry(self, config, input_shapes):
        # tf_keras conv_utils.conv_output_length (dilation 1): the forward conv's lengths
        shape, fmt, spatial, channels = spatial_input(config, input_shapes, self.rank, self.name)
        win = conv_geometry(config, self.rank, self.name)
        out = win.output_spatial(spatial, self.name, POOL_PADDINGS)
        return shape, fmt, spatial, channels, win.taps, win.strides, win.padding, out

    def output_shapes(self, config, input_shapes):
        shape, fmt, _, _, _, _, _, out = self._geometry(config, input_shapes)
        return [join_channels(shape[0], out, int(config["filters"]), fmt)]

    def _kernel_shape(self, config, geometry) -> tuple:
        shape, fmt, spatial, channels, kernel, strides, pad, out = geometry
        filters = int(config["filters"])
        implementation = int(config.get("implementation") or 1)
        if implementation == 1:
            return (prod(out), prod(kernel) * channels, filters)
        if implementation == 2:
            if fmt == "channels_first":
                return (channels,) + spatial + (filters,) + out
            return spatial + (channels,) + out + (filters,)
        if implementation == 3:
            pairs = prod(_connections(n, o, k, s, pad) for n, o, k, s in zip(spatial, out, kernel, strides))
            return (pairs * channels * filters,)
        raise ShapeError(f"{self.name}: implementation must be 1, 2 or 3, got {implementation}")

    def weights(self, config, input_shapes):
        geometry = self._geometry(config, input_shapes)
        shape, _, spatial, channels, _, _, _, out = geometry
        if channels is None or None in spatial:
            raise ShapeError(f"{self.name} needs known input dimensions to build its kernel, got {fmt_shape(shape)}")
        if any(d <= 0 for d in out):
            raise ShapeError(f"{self.name}: the kernel leaves no output position on input {fmt_shape(shape)}")
        filters = int(config["filters"])
        specs = [WeightSpec("kernel", self._kernel_shape(config, geometry))]
        if use_bias(config):
            specs.append(WeightSpec("bias", out + (filters,)))
        return specs

    def macs(self, config, input_shapes, output_shapes):
        # each output position has its own kernel: one product per kernel tap, input channel, filter
        _, _, _, channels, kernel, _, _, out = self._geometry(config, input_shapes)
        positions = prod(out)
        if positions is None or channels is None:
            return None
        return positions * prod(kernel) * int(channels) * int(config["filters"])


@register("LocallyConnected1D", "QuantLocallyConnected1D")
class LocallyConnected1DSpec(LocallyConnectedSpec):
    rank = 1


@register("LocallyConnected2D", "QuantLocallyConnected2D")
class LocallyConnected2DSpec(LocallyConnectedSpec):
    rank = 2
