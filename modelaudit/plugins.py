"""A team's own layer specs: modules that register LayerSpecs for its custom classes.

Two ways in, both chosen by whoever runs modelaudit, never by a model file:
- `[tool.modelaudit] layer-specs = ["mypkg.modelaudit_specs"]`: imported once the configuration is read;
- the entry point group `modelaudit.layers` of an installed package (`mypkg = "mypkg.modelaudit_specs"`):
  imported with the spec families, on the first spec lookup.

Each module registers its specs with `modelaudit.infer.registry.register("MyLayer")`. Importing a
module runs its code, as a flake8 plugin's does: name only code you trust. A module a model file
names is never imported (security rules report it instead).
"""

from __future__ import annotations

import importlib
import re

from modelaudit.errors import ConfigError

ENTRY_POINT_GROUP = "modelaudit.layers"
MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
MAX_MODULES = 100  # a configuration naming more is a mistake, not a plugin set

_imported: set[str] = set()
_entry_points_loaded = False


def module_names(value, source: str) -> list[str]:
    """The `layer-specs` value: a list of dotted module names (a single string is one module)."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{source}: layer-specs must be a list of module names, not {value!r}")
    if len(value) > MAX_MODULES:
        raise ConfigError(f"{source}: layer-specs names {len(value)} modules (at most {MAX_MODULES})")
    for name in value:
        if not MODULE_NAME.fullmatch(name):
            raise ConfigError(f"{source}: layer-specs: {name!r} is not a module name (like 'mypkg.modelaudit_specs')")
    return value


def _import(name: str, what: str):
    try:
        return importlib.import_module(name)
    except BaseException as exc:  # noqa: BLE001 - any failure of trusted code is one line, not a traceback
        if isinstance(exc, KeyboardInterrupt):
            raise
        reason = str(exc).splitlines()[0] if str(exc) else ""
        raise ConfigError(f"{what}: cannot import {name!r}: {type(exc).__name__}{': ' + reason if reason else ''}") from None


def load_layer_specs(names: list[str], source: str) -> None:
    """Import the configured spec modules (each once per process), after Keras's own specs, so that a
    team's spec for a class name wins."""
    from modelaudit.infer import registry

    registry.known_classes()
    for name in names:
        if name not in _imported:
            _import(name, f"{source}: layer-specs")
            _imported.add(name)


def load_entry_points() -> None:
    """Import every installed `modelaudit.layers` entry point's module, once per process."""
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        module = ep.value.split(":")[0].strip()
        if module not in _imported:
            _import(module, f"entry point {ep.name!r} ({ENTRY_POINT_GROUP})")
            _imported.add(module)
