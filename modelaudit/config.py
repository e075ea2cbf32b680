"""[tool.modelaudit] in pyproject.toml: the nearest one holding that table, from the working
directory upwards, or --config FILE (a pyproject.toml, or a modelaudit.toml with the keys at top level).

Unknown keys and bad values are refused with a message naming them (exit 2). Command-line flags are
applied on top of the Settings this returns, by the CLI.
"""

from __future__ import annotations

import difflib
import os
from typing import Any, Optional

from modelaudit.engine import Settings, Severity, all_rules, resolve
from modelaudit.errors import ConfigError

KEYS = ("select", "extend-select", "ignore", "per-file-ignores", "severity", "fail-on", "scan-weights", "exclude",
        "extend-exclude", "rules", "policy", "layer-specs", "baseline")
LEVELS = ("error", "warning", "info")


def _toml():
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ModuleNotFoundError:
            raise ConfigError("reading TOML needs Python 3.11+ or the tomli package") from None
    return tomllib


def _load_toml(path: str) -> dict:
    tomllib = _toml()
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML ({exc})") from None


def _table_of(data: dict) -> Optional[dict]:
    tool = data.get("tool")
    return tool.get("modelaudit") if isinstance(tool, dict) else None


def _mentions_us(path: str) -> bool:
    # A cheap look before parsing: an unrelated pyproject.toml is never parsed (nor can it fail the run).
    try:
        with open(path, "rb") as f:
            return b"modelaudit" in f.read()
    except OSError:
        return False


def find_pyproject(start: str = ".") -> Optional[str]:
    """The nearest pyproject.toml, from `start` upwards, that holds [tool.modelaudit] (as ruff does:
    a sub-project's pyproject.toml without the table does not hide the one above it)."""
    d = os.path.abspath(start)
    while True:
        candidate = os.path.join(d, "pyproject.toml")
        if _mentions_us(candidate) and _table_of(_load_toml(candidate)) is not None:
            return candidate
        parent = os.path.dirname(d)
        if parent == d:
            return None
        d = parent


def load(config_file: Optional[str] = None) -> tuple[Settings, Optional[str]]:
    """Settings from --config FILE or the nearest pyproject.toml; defaults when there is none."""
    from modelaudit import plugins

    plugins.load_entry_points()  # installed spec plugins: a broken one is a config error, before any file
    path = os.fspath(config_file) if config_file else find_pyproject()
    if path is None:
        return Settings(), None
    data = _load_toml(path)
    table = _table_of(data)
    if table is None:
        # a dedicated modelaudit.toml holds the keys at top level; a pyproject.toml without the table
        # holds nothing for us
        table = {} if os.path.basename(path) == "pyproject.toml" or "tool" in data else data
    settings = settings_from_table(table, source=path)
    settings.root = os.path.dirname(os.path.abspath(path))
    if settings.baseline:  # relative to the configuration's folder, as per-file-ignores globs are
        settings.baseline = os.path.join(settings.root, settings.baseline)
    return settings, path


def _unknown(key: str, known, where: str, source: str) -> ConfigError:
    close = difflib.get_close_matches(key, list(known), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(known)})"
    return ConfigError(f"{source}: unknown key {key!r} in {where}{hint}")


def _codes(value: Any, key: str, source: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{source}: {key} must be a list of rule codes, prefixes or names")
    for v in value:
        try:
            resolve(v)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {key}: {exc}") from None
    return value


def settings_from_table(table: dict, source: str = "config") -> Settings:
    """[tool.modelaudit] (a dict, as TOML gives it) -> Settings, every key and value checked."""
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: [tool.modelaudit] must be a table")
    for key in table:
        if key not in KEYS:
            raise _unknown(key, KEYS, "[tool.modelaudit]", source)
    s = Settings()
    if "select" in table:
        s.select = _codes(table["select"], "select", source)
    if "extend-select" in table:
        s.extend_select = _codes(table["extend-select"], "extend-select", source)
    if "ignore" in table:
        s.ignore = _codes(table["ignore"], "ignore", source)

    pfi = table.get("per-file-ignores", {})
    if not isinstance(pfi, dict):
        raise ConfigError(f"{source}: per-file-ignores must be a table of \"glob\" = [codes]")
    s.per_file_ignores = {g: _codes(v, f"per-file-ignores.{g!r}", source) for g, v in pfi.items()}

    s.severity = _severity(table.get("severity", {}), source)
    if "fail-on" in table:
        s.fail_on = parse_fail_on(table["fail-on"], f"{source}: fail-on")
    if "scan-weights" in table:
        # a bool, not a truthy value: "false" as a string would otherwise turn the scan on
        if not isinstance(table["scan-weights"], bool):
            raise ConfigError(f"{source}: scan-weights must be true or false, not {table['scan-weights']!r}")
        s.scan_weights = table["scan-weights"]
    if "exclude" in table:
        s.exclude = globs(table["exclude"], f"{source}: exclude")
    if "extend-exclude" in table:
        s.extend_exclude = globs(table["extend-exclude"], f"{source}: extend-exclude")
    if "baseline" in table:
        if not isinstance(table["baseline"], str) or not table["baseline"]:
            raise ConfigError(f"{source}: baseline must be the path of a baseline file (written by `modelaudit "
                              f"check PATHS --write-baseline FILE`), not {table['baseline']!r}")
        s.baseline = table["baseline"]
    s.rule_options = _rule_options(table.get("rules", {}), source)
    s.policy = _policy(table.get("policy", {}), source)
    if "layer-specs" in table:
        # trusted code the configuration names (never a model file): imported once every key is valid
        from modelaudit import plugins

        plugins.load_layer_specs(plugins.module_names(table["layer-specs"], source), source)
    return s


def _severity(table: Any, source: str) -> dict[str, str]:
    """{selector: level} -> {code: level}. A prefix applies to every code under it; a longer (more
    specific) selector wins over a shorter one, whatever the order in the file."""
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: severity must be a table of code = \"error|warning|info\"")
    out: dict[str, tuple[int, str]] = {}
    for selector, level in table.items():
        if level not in LEVELS:
            raise ConfigError(f"{source}: severity.{selector} must be error, warning or info, not {level!r}")
        try:
            codes = resolve(selector)
        except ConfigError as exc:
            raise ConfigError(f"{source}: severity: {exc}") from None
        weight = 99 if len(codes) == 1 else 0 if selector.upper() == "ALL" else len(selector)
        for code in codes:
            if code not in out or out[code][0] <= weight:
                out[code] = (weight, level)
    return {code: level for code, (_, level) in out.items()}


def _rule_options(table: Any, source: str) -> dict[str, dict]:
    """[tool.modelaudit.rules.<rule>] tables, each checked by modelaudit/options.py against what the
    rule declares."""
    from modelaudit import options as rule_options

    if not isinstance(table, dict) or not all(isinstance(v, dict) for v in table.values()):
        raise ConfigError(f"{source}: rules must hold one [tool.modelaudit.rules.<name>] table per rule")
    rules = all_rules()
    out: dict[str, dict] = {}
    for key, options in table.items():
        try:
            codes = resolve(key)
        except ConfigError as exc:
            raise ConfigError(f"{source}: rules.{key}: {exc}") from None
        if len(codes) != 1:
            raise ConfigError(f"{source}: rules.{key} must name one rule, not a prefix")
        opts = {k.replace("-", "_"): v for k, v in options.items()}
        rule_options.validate(rules[codes[0]], opts, source, key)
        out[codes[0]] = opts
    return out


def _policy(table: Any, source: str) -> dict:
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: [tool.modelaudit.policy] must be a table")
    from modelaudit.checks.policy import POLICY_KEYS

    for key, value in table.items():
        if key not in POLICY_KEYS:
            raise _unknown(key, list(POLICY_KEYS), "[tool.modelaudit.policy]", source)
        try:
            POLICY_KEYS[key].parse(value)
        except ValueError as exc:
            raise ConfigError(f"{source}: policy.{key}: {exc}") from None
    return dict(table)


def globs(value: Any, source: str) -> list[str]:
    """A list of folder-walk globs (`exclude`, `extend-exclude`)."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{source} must be a list of glob patterns, not {value!r}")
    return value


def parse_fail_on(value: Any, source: str = "--fail-on") -> Severity:
    if not isinstance(value, str) or value not in LEVELS:
        raise ConfigError(f"{source} must be error, warning or info, not {value!r}")
    return Severity(value)
