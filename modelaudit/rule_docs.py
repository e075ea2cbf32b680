"""The rule catalogue as users read it: `modelaudit rules` and `modelaudit explain`.

Pages live in rules/ at the top of the repository and ship in the wheel as modelaudit/_rules.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

SECTIONS = ("## What it does", "## Why is this bad?", "## Example", "## Use instead", "## References")


def rules_dir() -> Path:
    here = Path(__file__).resolve().parent
    shipped = here / "_rules"
    return shipped if shipped.is_dir() else here.parent / "rules"


def page_path(code: str) -> Path:
    return rules_dir() / f"{code}.md"


def page(selector: str) -> Optional[str]:
    from modelaudit.engine import all_rules

    rules = all_rules()
    sel = selector.strip()
    code = sel.upper() if sel.upper() in rules else next((c for c, r in rules.items() if r.name == sel.lower()), None)
    if code is None:
        return None
    path = page_path(code)
    if path.is_file():
        return path.read_text(encoding="utf-8")
    rule = rules[code]
    return f"# {code} {rule.name} ({rule.severity.value})\n\n{rule.summary}\n"


def render_list(fmt: str) -> str:
    from modelaudit.engine import all_rules

    rows = [
        {"code": code, "name": r.name, "severity": r.severity.value, "summary": r.summary,
         "default": "on" if r.default_enabled else "off"}
        for code, r in all_rules().items()
    ]
    if fmt == "json":
        return json.dumps(rows, indent=2) + "\n"
    from tabulate import tabulate

    table = [[r["code"], r["name"], r["severity"], r["default"], r["summary"]] for r in rows]
    return tabulate(table, headers=["Code", "Name", "Severity", "Default", "What it flags"], tablefmt="simple") + "\n"
