"""[tool.modelaudit] in pyproject.toml: found from the working directory upwards, or --config FILE.

Unknown keys and bad values are refused with a message naming them (exit 2).
"""

from __future__ import annotations

import os
from typing import Any, Optional

from modelaudit.engine import Settings, Severity, resolve
from modelaudit.errors import ConfigError

KEYS = {"select", "extend-select", "ignore", "per-file-ignores", "severity", "fail-on", "rules", "policy"}


def find_pyproject(start: str = ".") -> Optional[str]:
    d = os.path.abspath(start)
    while True:
        candidate = os.path.join(d, "pyproject.toml")
        if os.path.isfile(candidate):
            return candidate
        parent = os.path.dirname(d)
        if parent == d:
            return None
        d = parent


def _load_toml(path: str) -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ModuleNotFoundError:
            raise ConfigError(f"{path}: reading TOML needs Python 3.11+ or the tomli package") from None
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML ({exc})") from None


def load(config_file: Optional[str] = None) -> tuple[Settings, Optional[str]]:
    """Settings from --config FILE or the nearest pyproject.toml; defaults when there is none."""
    path = config_file or find_pyproject()
    if path is None:
        return Settings(), None
    data = _load_toml(path)
    if config_file and os.path.basename(path) != "pyproject.toml" and "tool" not in data:
        table = data  # a dedicated modelaudit.toml holding the keys at top level
    else:
        table = data.get("tool", {}).get("modelaudit", {})
    return settings_from_table(table, source=path), path


def _codes(value: Any, key: str, source: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{source}: {key} must be a list of rule codes or names")
    for v in value:
        resolve(v)  # raises ConfigError naming the unknown code
    return value


def settings_from_table(table: dict, source: str = "config") -> Settings:
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: [tool.modelaudit] must be a table")
    unknown = set(table) - KEYS
    if unknown:
        raise ConfigError(f"{source}: unknown key {sorted(unknown)[0]!r} in [tool.modelaudit]")
    s = Settings()
    if "select" in table:
        s.select = _codes(table["select"], "select", source)
    if "extend-select" in table:
        s.extend_select = _codes(table["extend-select"], "extend-select", source)
    if "ignore" in table:
        s.ignore = _codes(table["ignore"], "ignore", source)
    pfi = table.get("per-file-ignores", {})
    if not isinstance(pfi, dict):
        raise ConfigError(f"{source}: per-file-ignores must be a table of glob = [codes]")
    s.per_file_ignores = {g: _codes(v, f"per-file-ignores.{g}", source) for g, v in pfi.items()}
    sev = table.get("severity", {})
    if not isinstance(sev, dict):
        raise ConfigError(f"{source}: severity must be a table of code = \"error|warning|info\"")
    for code, level in sev.items():
        resolve(code)
        if level not in ("error", "warning", "info"):
            raise ConfigError(f"{source}: severity.{code} must be error, warning or info, not {level!r}")
    s.severity = dict(sev)
    if "fail-on" in table:
        s.fail_on = parse_fail_on(table["fail-on"], source)
    rules = table.get("rules", {})
    if not isinstance(rules, dict) or not all(isinstance(v, dict) for v in rules.values()):
        raise ConfigError(f"{source}: [tool.modelaudit.rules.<name>] tables hold rule options")
    from modelaudit.engine import all_rules

    for key, options in rules.items():
        codes = resolve(key)
        if len(codes) != 1:
            raise ConfigError(f"{source}: rules.{key} must name one rule")
        cls = all_rules()[codes[0]]
        cls(**{k.replace("-", "_"): v for k, v in options.items()})  # validates option names
        s.rule_options[codes[0]] = {k.replace("-", "_"): v for k, v in options.items()}
    policy = table.get("policy", {})
    if not isinstance(policy, dict):
        raise ConfigError(f"{source}: [tool.modelaudit.policy] must be a table")
    s.policy = dict(policy)
    return s


def parse_fail_on(value: Any, source: str = "--fail-on") -> Severity:
    if value not in ("error", "warning", "info"):
        raise ConfigError(f"{source}: fail-on must be error, warning or info, not {value!r}")
    return Severity(value)
