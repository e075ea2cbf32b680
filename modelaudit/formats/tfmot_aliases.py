"""Variables a tf_keras `.keras` file lists twice for a tensorflow-model-optimization wrapper.

tf_keras's saving_lib writes each layer's own `_trainable_weights + _non_trainable_weights` (under
`layers/<key>/vars`) and then its wrapped layer's (`layers/<key>/layer/vars`). tfmot's wrappers also
track some of the wrapped layer's variables as their own, so the same variable is written twice:

- PruneLowMagnitude: assigning `self.prunable_weights` makes the wrapper track each prunable weight
  (pruning_wrapper.py build()), so its vars are those k weights, then k (mask, threshold) pairs, then
  pruning_step; the wrapped layer still lists every weight.
- QuantizeWrapperV2: build() extends the wrapper's trainable list with the wrapped layer's trainable
  weights T, then appends each quantized weight Q again; call() replaces the quantized attributes
  on the wrapped layer, which then lists only T minus Q, then its non-trainable weights.

QuantizeWrapper (v1) and ClusterWeights list each variable once. Here the copies are dropped, by
position and shape only (the data is never read), so a wrapped kernel counts once, as Keras counts it.
"""

from __future__ import annotations

from typing import Optional

from modelaudit.graph import Weight

_SCALAR = ()


def drop_aliases(class_name: str, own: list[Weight], inner: list[Weight]) -> Optional[list[Weight]]:
    """The wrapper's variables once each (own, then inner), or None where the layout is not the
    one described above (then nothing is dropped)."""
    if class_name == "PruneLowMagnitude":
        return _pruned(own, inner)
    if class_name == "QuantizeWrapperV2":
        return _quantized_v2(own, inner)
    return None


def _pruned(own: list[Weight], inner: list[Weight]) -> Optional[list[Weight]]:
    k, rest = divmod(len(own) - 1, 3)
    if k < 0 or rest or tuple(own[-1].shape) != _SCALAR:
        return None
    for i in range(k):
        mask, threshold = own[k + 2 * i], own[k + 2 * i + 1]
        if tuple(mask.shape) != tuple(own[i].shape) or tuple(threshold.shape) != _SCALAR:
            return None
    if not _is_sub_multiset([w.shape for w in own[:k]], [w.shape for w in inner]):
        return None
    return own[k:] + inner


def _quantized_v2(own: list[Weight], inner: list[Weight]) -> Optional[list[Weight]]:
    # own = T + Q + [optimizer_step (a scalar), quantizer variables...]; inner = (T - Q) + the
    # wrapped layer's non-trainable weights. Try each scalar as optimizer_step and the fewest
    # quantized weights first: the first split whose shapes agree is the layout.
    shapes = [tuple(w.shape) for w in own]
    inner_shapes = [tuple(w.shape) for w in inner]
    for step in (i for i, s in enumerate(shapes) if s == _SCALAR):
        for q in range(step // 2 + 1):
            t = step - q
            left = _remove_subsequence(shapes[:t], shapes[t:step])
            if left is not None and inner_shapes[: len(left)] == left:
                return own[:t] + own[step:] + inner[len(left):]
    return None


def _remove_subsequence(items: list, sub: list) -> Optional[list]:
    """`items` without the elements of `sub`, matched in order; None if `sub` is not in it."""
    out, j = [], 0
    for item in items:
        if j < len(sub) and item == sub[j]:
            j += 1
        else:
            out.append(item)
    return out if j == len(sub) else None


def _is_sub_multiset(part: list, whole: list) -> bool:
    left = [tuple(s) for s in whole]
    for s in part:
        if tuple(s) not in left:
            return False
        left.remove(tuple(s))
    return True
