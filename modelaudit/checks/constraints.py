"""MA314: a weight constraint and a weight regularizer swapped between their slots.

Keras accepts any callable as a `*_regularizer` or a `*_constraint` argument, so a constraint in a
regularizer slot, or the reverse, builds and is saved: the layer calls it in the role of its slot and
computes something else (or fit() fails on the shape), and load_model refuses the saved layer. The slots and the classes are read from the layer's config as
the file writes it (a serialized object or a name); a class from outside Keras is left alone.
"""

from __future__ import annotations

import re
from typing import Iterator, Optional

from modelaudit.engine import Finding, Rule, Severity, register

# keras.constraints and keras.regularizers, by class name and by the names keras.*.get() accepts,
# compared without case and underscores.
CONSTRAINTS = {"maxnorm": "MaxNorm", "nonneg": "NonNeg", "unitnorm": "UnitNorm", "minmaxnorm": "MinMaxNorm",
               "radialconstraint": "RadialConstraint"}
REGULARIZERS = {"l1": "L1", "l2": "L2", "l1l2": "L1L2", "orthogonalregularizer": "OrthogonalRegularizer"}
KERAS_MODULES = ("keras", "tf_keras", "tensorflow")
WRAPPED = ("layer", "forward_layer", "backward_layer", "cell")  # wrappers and RNNs hold their inner layer here
MAX_WRAPPING = 8  # Bidirectional(RNN(cell)) is 3; a bound against a hostile config


def _keras_class(value) -> Optional[str]:
    """The class name of a Keras constraint or regularizer in a config slot, else None."""
    if isinstance(value, str):
        name = value
    elif isinstance(value, dict):
        module, name = value.get("module"), value.get("class_name")
        registered = value.get("registered_name")
        if isinstance(module, str) and not module.startswith(KERAS_MODULES):
            return None
        if isinstance(registered, str) and ">" in registered:
            return None  # a registered custom class that happens to share a name
    else:
        return None
    if not isinstance(name, str):
        return None
    key = re.sub(r"[_\s]", "", name).lower()
    return CONSTRAINTS.get(key) or REGULARIZERS.get(key)


def _slots(model) -> Iterator[tuple]:
    """(row, slot, class name, where) of every regularizer or constraint slot holding a Keras class,
    in every layer's config, the layers a wrapper holds included."""
    for row, config in model.layer_configs():
        todo = [(config, row.where(), 0)]
        while todo:
            cfg, at, depth = todo.pop()
            for key, value in cfg.items():
                if isinstance(key, str) and key.endswith(("_regularizer", "_constraint")):
                    cls = _keras_class(value)
                    if cls is not None:
                        yield row, key, cls, at
            if depth < MAX_WRAPPING:
                for key in WRAPPED:
                    inner = cfg.get(key)
                    if isinstance(inner, dict) and isinstance(inner.get("config"), dict):
                        todo.append((inner["config"], f"{at}'s {key} {inner.get('class_name')}", depth + 1))


@register
class ConstraintAsRegularizer(Rule):
    code = "MA314"
    name = "constraint-as-regularizer"
    severity = Severity.ERROR
    summary = "A weight constraint in a *_regularizer slot, or a regularizer in a *_constraint slot"

    def check(self, model) -> Iterator[Finding]:
        for row, slot, cls, at in _slots(model):
            swapped = _swapped(slot, cls)
            if swapped is not None:
                message, fix = swapped
                yield self.finding(row.path, f"{at} has {message}", fix=fix)


def _swapped(slot: str, cls: str) -> Optional[tuple[str, str]]:
    """What Keras does with a constraint in a regularizer slot or the reverse, and the fix; None when
    the class suits its slot."""
    if slot.endswith("_regularizer") and cls in CONSTRAINTS.values():
        return (f"the constraint {cls} as its {slot}: Keras 3 calls it as a regularizer and trains, adding the "
                "sum of the weights it returns to the loss, a penalty that pushes the weights down instead of "
                "keeping them in bounds (tf_keras fails in fit()); the weights are never constrained, and "
                "load_model cannot read the layer back", _constraint_fix(slot, cls))
    if slot.endswith("_constraint") and cls in REGULARIZERS.values():
        return (f"the regularizer {cls} as its {slot}: Keras calls it as a constraint, after the first update, "
                "and assigns what it returns, the penalty (one number), to the weights, so fit() fails on the "
                "shape; nothing is regularized, and load_model cannot read the layer back",
                f"pass it as {slot.replace('_constraint', '_regularizer')}={cls}(...)")
    return None


def _constraint_fix(slot: str, cls: str) -> str:
    if slot == "activity_regularizer":  # constraints act on weights: there is no activity_constraint
        return f"a constraint holds weights: pass it as kernel_constraint={cls}(...)"
    return f"pass it as {slot.replace('_regularizer', '_constraint')}={cls}(...)"
