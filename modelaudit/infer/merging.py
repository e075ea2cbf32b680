"""Merge layers: keras/src/layers/merging/.

Add, Subtract, Multiply, Average, Maximum, Minimum broadcast like base_merge.py; Concatenate joins on
one axis; Dot contracts one axis of each of two inputs. None has weights. `input_shapes` holds one
shape per input tensor; an input whose whole shape is unknown (None) makes the output unknown ([None]).
"""

from __future__ import annotations

from modelaudit.infer.registry import LayerSpec, ShapeError, fmt_shape, register, register_each


def _shapes(input_shapes, layer: str) -> list:
    if not input_shapes:
        raise ShapeError(f"{layer} expects a list of inputs, got none")
    return [None if s is None else tuple(s) for s in input_shapes]


def _fmt_all(shapes) -> str:
    return ", ".join(fmt_shape(s) for s in shapes)


def _elementwise(shape1, shape2, layer: str, all_shapes) -> tuple:
    """base_merge.py `_compute_elemwise_op_output_shape`: right-aligned broadcasting, batch excluded."""
    if len(shape1) < len(shape2):
        shape1, shape2 = shape2, shape1
    if not shape2:
        return shape1
    out = list(shape1[: -len(shape2)])
    for i, j in zip(shape1[-len(shape2) :], shape2):
        if i is None or j is None:
            out.append(None)
        elif i == 1:
            out.append(j)
        elif j == 1:
            out.append(i)
        elif i != j:
            raise ShapeError(
                f"{layer} inputs have incompatible shapes {_fmt_all(all_shapes)}: "
                f"{i} and {j} neither match nor broadcast"
            )
        else:
            out.append(i)
    return tuple(out)


@register_each("Add", "Multiply", "Average", "Maximum", "Minimum")
@register("Subtract", exact_inputs=2)
class ElementwiseMergeSpec(LayerSpec):
    exact_inputs = None  # Subtract takes exactly two

    def output_shapes(self, config, input_shapes):
        shapes = _shapes(input_shapes, self.name)
        if self.exact_inputs is not None and len(shapes) != self.exact_inputs:
            raise ShapeError(f"{self.name} expects exactly {self.exact_inputs} inputs, got {len(shapes)}")
        if any(s is not None and len(s) < 1 for s in shapes):
            raise ShapeError(f"{self.name} inputs need a batch dimension, got {_fmt_all(shapes)}")
        batch_sizes = {s[0] for s in shapes if s is not None} - {None}
        if len(batch_sizes) > 1:
            raise ShapeError(f"{self.name} cannot merge inputs with different batch sizes: {_fmt_all(shapes)}")
        if any(s is None for s in shapes):
            return [None]
        out = shapes[0][1:]
        for s in shapes[1:]:
            out = _elementwise(out, s[1:], self.name, shapes)
        batch = next(iter(batch_sizes)) if batch_sizes else None
        return [(batch,) + out]


@register("Concatenate")
class ConcatenateSpec(LayerSpec):
    # concatenate.py build() validates; compute_output_shape sums the concat axis (None if any is None)
    # and takes every other axis from the first input.
    def output_shapes(self, config, input_shapes):
        shapes = _shapes(input_shapes, "Concatenate")
        if any(s is None for s in shapes):
            return [None]
        axis = int(config.get("axis", -1))
        ranks = {len(s) for s in shapes}
        for s in shapes:
            if not -len(s) <= axis < len(s):
                raise ShapeError(f"Concatenate axis {axis} is out of range for an input {fmt_shape(s)}")
        if len(ranks) != 1:
            raise ShapeError(f"Concatenate inputs must have the same rank, got {_fmt_all(shapes)}")
        rank = ranks.pop()
        concat_axis = axis % rank
        for i in range(rank):
            if i == concat_axis:
                continue
            known = {s[i] for s in shapes if s[i] is not None}
            if len(known) > 1:
                raise ShapeError(
                    f"Concatenate on axis {axis} needs inputs of matching shapes except on that axis, "
                    f"got {_fmt_all(shapes)} (axis {i} differs: {sorted(known)})"
                )
        out = list(shapes[0])
        for s in shapes[1:]:
            if out[concat_axis] is None or s[concat_axis] is None:
                out[concat_axis] = None
                break
            out[concat_axis] += s[concat_axis]
        return [tuple(out)]


def _dot_axes(config, shape1, shape2) -> tuple[int, int]:
    """dot.py: an int axis applies to both inputs (negative counts from each input's end); a pair is one per input."""
    axes = config.get("axes", -1)
    if isinstance(axes, int):
        pair = (axes % len(shape1), axes % len(shape2)) if axes < 0 else (axes, axes)
    elif isinstance(axes, (list, tuple)) and len(axes) == 2:
        pair = (int(axes[0]), int(axes[1]))
    else:
        raise ShapeError(f"Dot axes should be an int or a pair of ints, got {axes!r}")
    for a, s in zip(pair, (shape1, shape2)):
        if not -len(s) <= a < len(s):
            raise ShapeError(f"Dot axis {a} is out of range for an input {fmt_shape(s)}")
    return (pair[0] % len(shape1), pair[1] % len(shape2))


@register("Dot")
class DotSpec(LayerSpec):
    # dot.py compute_output_shape: drop the contracted axis of each input and the batch axis of the
    # second, then join; a lone (batch,) becomes (batch, 1). build() requires the contracted sizes to be
    # equal; here only two known, different sizes are an error (an unknown size may be fine in the file).
    def output_shapes(self, config, input_shapes):
        shapes = _shapes(input_shapes, "Dot")
        if len(shapes) != 2:
            raise ShapeError(f"Dot expects exactly 2 inputs, got {len(shapes)}")
        if any(s is None for s in shapes):
            return [None]
        shape1, shape2 = shapes
        if len(shape1) < 2 or len(shape2) < 2:
            raise ShapeError(f"Dot inputs need rank >= 2 (batch included), got {_fmt_all(shapes)}")
        a1, a2 = _dot_axes(config, shape1, shape2)
        d1, d2 = shape1[a1], shape2[a2]
        if d1 is not None and d2 is not None and d1 != d2:
            raise ShapeError(
                f"Dot contracts axis {a1} of {fmt_shape(shape1)} (size {d1}) with axis {a2} of "
                f"{fmt_shape(shape2)} (size {d2}): the sizes must be equal"
            )
        left = list(shape1)
        right = list(shape2)
        left.pop(a1)
        right.pop(a2)
        right.pop(0)
        out = left + right
        if len(out) == 1:
            out.append(1)
        return [tuple(out)]
