"""`--format concise`: one line per finding, `path: layer: CODE [severity] message` (the whole message,
fix included), then the closing count; for grep and scripts that read the layout before 0.2."""

from __future__ import annotations

from modelaudit.report.text import COLORS, RESET, closing_count, shown
from modelaudit.report.visible import visible


def render(report, *, show_info: bool = False, color: bool = False) -> str:
    lines = []
    for fr, f in shown(report, show_info):
        sev = f"[{f.severity.value}]"
        if color:
            sev = f"{COLORS[f.severity.value]}{sev}{RESET}"
        lines.append(f"{visible(fr.path)}: {visible(f.layer or '-')}: {f.code} {sev} {visible(f.message)}")
    lines.append(closing_count(report, show_info))
    return "\n".join(lines) + "\n"
