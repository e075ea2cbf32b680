"""A rule's options: declared on the rule, validated here, in one place (as yamllint's CONF/DEFAULT).

A rule declares `options = {"name": default}`; where a default's type is not all a value must be, the
entry is an `Option(default, check)`, whose check returns the value as the rule reads it or raises
ValueError saying what it must be. A rule may add a cross-option check (`validate_options`, as
yamllint's VALIDATE). `validate` runs all of it for the configuration (config.py, at load, so a bad
value is exit 2 before any file) and for a rule built directly (`Rule.__init__`); a rule's
`__init__` checks nothing itself, and `rule.opts` holds the checked values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Optional


@dataclass(frozen=True)
class Option:
    """An option's default, and what a value must be beyond the default's type."""

    default: Any
    check: Optional[Callable[[Any], Any]] = None


def defaults(rule_class) -> dict:
    """The options a rule runs with when none is configured."""
    return {k: v.default if isinstance(v, Option) else v for k, v in rule_class.options.items()}


def kebab(name: str) -> str:
    return name.replace("_", "-")


def validate(rule_class, given: dict, source: Optional[str] = None, key: Optional[str] = None) -> dict:
    """The rule's options, the given ones checked and merged over the defaults. A bad one is a
    ConfigError naming the rule, and for the configuration file (`source`, the rule's table `key`)
    where it stands."""
    from modelaudit.errors import ConfigError

    declared = rule_class.options
    rule = f"rule {rule_class.code} ({rule_class.name})"
    prefix = f"{source}: " if source else ""
    where = f"{prefix}rules.{key}" if key else None
    opts = defaults(rule_class)
    for name, value in given.items():
        if name not in declared:
            known = [kebab(k) for k in declared] or ["none"]
            raise ConfigError(f"{prefix}{rule} has no option {kebab(name)!r} (its options: {', '.join(known)})")
        spec = declared[name]
        default = spec.default if isinstance(spec, Option) else spec
        if not _type_ok(default, value):
            what = f"{where}.{kebab(name)}" if where else f"{rule}: option {kebab(name)}"
            kind = type(default).__name__
            raise ConfigError(f"{what} must be {'an' if kind[0] in 'aeiou' else 'a'} {kind}, not {value!r}")
        if isinstance(spec, Option) and spec.check is not None:
            try:
                value = spec.check(value)
            except ValueError as exc:
                raise ConfigError(f"{prefix}{rule}: option {kebab(name)} must be {exc}, not {value!r}") from None
        opts[name] = value
    problem = rule_class.validate_options(opts)
    if problem:
        raise ConfigError(f"{prefix}{rule}: {problem}")
    return opts


def _type_ok(default: Any, value: Any) -> bool:
    if default is None:
        return True
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, (list, tuple)):
        return isinstance(value, list)
    return isinstance(value, type(default))


# ---- checks the rules' options share ------------------------------------------------------------


def fraction(value) -> float:
    """A number above 0 and at most 1 (a share, a rate)."""
    if not _finite(value) or not 0 < value <= 1:
        raise ValueError("a number above 0 and at most 1")
    return float(value)


def non_negative(value) -> float:
    if not _finite(value) or value < 0:
        raise ValueError("a non-negative number")
    return float(value)


def positive(value) -> float:
    if not _finite(value) or value <= 0:
        raise ValueError("a positive number")
    return float(value)


def whole(value) -> int:
    """A whole number, 0 or more (a count of params, of bytes)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("a non-negative integer")
    return value


def table_of(check: Callable[[Any], Any], keys: str) -> Callable[[dict], dict]:
    """A table of `keys` (lower-cased names) -> values each passing `check`."""

    def table(value) -> dict:
        if not isinstance(value, dict):
            raise ValueError(f"a table of {keys}")
        out = {}
        for key, item in value.items():
            try:
                out[str(key).lower()] = check(item)
            except ValueError as exc:
                raise ValueError(f"a table of {keys}, each {exc} ({key} = {item!r})") from None
        return out

    return table


def _finite(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
