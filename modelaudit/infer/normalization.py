"""Normalization layers: keras/src/layers/normalization/ and the preprocessing Normalization
(keras/src/layers/preprocessing/normalization.py). They keep their input's shape.

MACs stay 0 (the base default): the per-element scale and shift are not weight products.
"""

from __future__ import annotations

from modelaudit.infer.conv import dot
from modelaudit.infer.registry import SameShapeSpec, ShapeError, WeightSpec, fmt_shape, prod, register, single_input


def _axes(value, default=-1) -> list[int]:
    """An axis config (int, list, or missing) as a list of ints, in the order written."""
    if value is None:
        value = default
    if isinstance(value, (list, tuple)):
        return [int(a) for a in value]
    return [int(value)]


def _check_axes(axes, shape, layer: str) -> list[int]:
    """The axes as non-negative indices; ShapeError if one is out of range."""
    rank = len(shape)
    out = []
    for a in axes:
        if a >= rank or a < -rank:
            raise ShapeError(f"{layer}: axis {a} is out of bounds for input {fmt_shape(shape)}")
        out.append(a + rank if a < 0 else a)
    return out


def _known(shape, axes, layer: str) -> tuple:
    dims = tuple(shape[a] for a in axes)
    if any(d is None for d in dims):
        raise ShapeError(
            f"{layer} needs known dimensions on axis {axes} to build its weights, "
            f"got {fmt_shape(shape)}"
        )
    return tuple(int(d) for d in dims)


def _per_vector(specs) -> str | None:
    """'n·dims = total' for a list of equally shaped vectors."""
    if not specs:
        return None
    shape = specs[0].shape
    total = sum(w.size for w in specs)
    return f"{dot(len(specs), *shape)} = {total}" if shape else f"{len(specs)} = {total}"


def _gamma_beta(config: dict, param: tuple, rms: bool = False) -> list[WeightSpec]:
    """gamma when scale (or rms_scaling) is on, beta when center is (and rms_scaling is not)."""
    specs = []
    if config.get("scale", True) or rms:
        specs.append(WeightSpec("gamma", param))
    if config.get("center", True) and not rms:
        specs.append(WeightSpec("beta", param))
    return specs


class _AxisCheckedSpec(SameShapeSpec):
    # compute_output_shape of every normalization layer: check axis bounds, return the input shape

    def _checked_axes(self, config, shape) -> list[int]:
        """The layer's axes as non-negative indices into the input; ShapeError if one is out of range."""
        return _check_axes(_axes(config.get("axis")), shape, self.name)

    def check_input(self, config, shape):
        self._checked_axes(config, shape)

    def formula(self, config, input_shapes):
        try:
            return _per_vector(self.weights(config, input_shapes))
        except ShapeError:
            return None


@register("BatchNormalization")
class BatchNormalizationSpec(_AxisCheckedSpec):
    # batch_normalization.py build(): gamma (scale), beta (center) trainable; moving_mean,
    # moving_variance non-trainable; with renorm also moving_stddev, renorm_mean, renorm_stddev.
    # Keras 3 takes one int axis -> shape (dim,). Keras 2 (tf_keras) also allowed several axes; its
    # params then have the input's rank with 1 off the axes, and virtual_batch_size inserts a 1 at
    # position 1 and shifts the saved (built, non-negative) axes by one.

    def _checked_axes(self, config, shape) -> list[int]:
        raw = config.get("axis", -1)
        axes = _axes(raw)
        # a built Keras 2 layer always saves non-negative axes (the dialect may have unlisted one)
        if config.get("virtual_batch_size") and all(a > 0 for a in axes):
            axes = [a - 1 for a in axes]
        return _check_axes(axes, shape, self.name)

    def _param_shape(self, config, shape) -> tuple:
        axes = self._checked_axes(config, shape)
        _known(shape, axes, self.name)
        if len(axes) == 1 and not config.get("virtual_batch_size"):
            return (int(shape[axes[0]]),)
        param = [int(shape[i]) if i in axes else 1 for i in range(len(shape))]
        if config.get("virtual_batch_size"):
            param.insert(1, 1)
        return tuple(param)

    def weights(self, config, input_shapes):
        shape = single_input(input_shapes, self.name)
        param = self._param_shape(config, shape)
        specs = _gamma_beta(config, param)
        specs.append(WeightSpec("moving_mean", param, trainable=False))
        specs.append(WeightSpec("moving_variance", param, trainable=False))
        if config.get("renorm", False):
            for name in ("moving_stddev", "renorm_mean", "renorm_stddev"):
                specs.append(WeightSpec(name, param, trainable=False))
        return specs


@register("LayerNormalization")
class LayerNormalizationSpec(_AxisCheckedSpec):
    # layer_normalization.py build(): a list axis is sorted by value (negative values first),
    # shape = the input dims on those axes. gamma if scale or rms_scaling; beta if center and not
    # rms_scaling. Keras 3 saves the built, already sorted list; Keras 2 (tf_keras) saves a
    # non-negative list in the order the user gave and shapes gamma in that order. So an unsorted
    # non-negative list is Keras 2's and keeps its order.

    def weights(self, config, input_shapes):
        shape = single_input(input_shapes, self.name)
        raw = _axes(config.get("axis"))
        axes = raw if all(a >= 0 for a in raw) else sorted(raw)
        positive = _check_axes(axes, shape, self.name)
        param = _known(shape, positive, self.name)
        return _gamma_beta(config, param, rms=bool(config.get("rms_scaling", False)))


@register("RMSNormalization")
class RMSNormalizationSpec(_AxisCheckedSpec):
    # rms_normalization.py build(): scale, shaped like LayerNormalization's gamma

    def weights(self, config, input_shapes):
        shape = single_input(input_shapes, self.name)
        raw = _axes(config.get("axis"))
        axes = sorted(raw) if isinstance(config.get("axis"), list) else raw
        return [WeightSpec("scale", _known(shape, _check_axes(axes, shape, self.name), self.name))]


@register("GroupNormalization")
class GroupNormalizationSpec(_AxisCheckedSpec):
    # group_normalization.py build(): the axis dim must be known and a multiple of groups
    # (groups=-1 means one group per channel); gamma (dim,), beta (dim,).

    def weights(self, config, input_shapes):
        shape = single_input(input_shapes, self.name)
        axis = self._checked_axes(config, shape)[0]
        (dim,) = _known(shape, [axis], self.name)
        groups = int(config.get("groups", 32))
        if groups == -1:
            groups = dim
        if groups <= 0:
            raise ShapeError(f"GroupNormalization: groups must be positive or -1, got {groups}")
        if dim < groups:
            raise ShapeError(f"GroupNormalization: {groups} groups is more than the {dim} channels on axis {axis}")
        if dim % groups:
            raise ShapeError(
                f"GroupNormalization: the {dim} channels on axis {axis} are not divisible by groups={groups}"
            )
        specs = []
        if config.get("scale", True):
            specs.append(WeightSpec("gamma", (dim,)))
        if config.get("center", True):
            specs.append(WeightSpec("beta", (dim,)))
        return specs


@register("UnitNormalization")
class UnitNormalizationSpec(_AxisCheckedSpec):

    def formula(self, config, input_shapes):
        return None


@register("Normalization")
class NormalizationSpec(_AxisCheckedSpec):
    # preprocessing/normalization.py build(): axis None -> (), int -> (axis,); the kept axes,
    # sorted non-negative, give mean and variance their shape; count is a scalar. All are
    # non-trainable and exist only when mean/variance were not passed in the config.

    def _checked_axes(self, config, shape) -> list[int]:
        axis = config.get("axis", -1)
        axes = [] if axis is None else _axes(axis)
        return sorted(_check_axes(axes, shape, self.name))

    def weights(self, config, input_shapes):
        shape = single_input(input_shapes, self.name)
        kept = self._checked_axes(config, shape)
        if config.get("mean") is not None:
            return []
        stat = _known(shape, kept, self.name)
        return [
            WeightSpec("mean", stat, trainable=False),
            WeightSpec("variance", stat, trainable=False),
            WeightSpec("count", (), trainable=False),
        ]

    def formula(self, config, input_shapes):
        try:
            specs = self.weights(config, input_shapes)
        except ShapeError:
            return None
        if not specs:
            return None
        shape = specs[0].shape
        n = prod(shape)
        return f"{dot(2, *shape)} + 1 = {2 * n + 1}"
