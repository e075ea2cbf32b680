"""`path: layer: CODE [severity] message`, grouped by file, then a closing count."""

from __future__ import annotations

from modelaudit.report.visible import visible

COLORS = {"error": "\033[31m", "warning": "\033[33m", "info": "\033[36m"}
RESET = "\033[0m"


def render(report, *, show_info: bool = False, color: bool = False) -> str:
    lines = []
    for fr in report.files:
        if fr.error:
            continue  # unreadable files go to stderr as `PATH: cannot read: REASON`
        for f in fr.findings:
            if f.severity.value == "info" and not show_info:
                continue
            sev = f"[{f.severity.value}]"
            if color:
                sev = f"{COLORS[f.severity.value]}{sev}{RESET}"
            lines.append(f"{visible(fr.path)}: {visible(f.layer or '-')}: {f.code} {sev} {visible(f.message)}")
    counts = report.counts
    checked = sum(1 for fr in report.files if not fr.error)
    unreadable = sum(1 for fr in report.files if fr.error)
    parts = [f"{counts['error']} error{'s' if counts['error'] != 1 else ''}",
             f"{counts['warning']} warning{'s' if counts['warning'] != 1 else ''}"]
    info = f"{counts['info']} info" + ("" if show_info or not counts["info"] else " (hidden; --show-info)")
    parts.append(info)
    tail = f"{checked} file{'s' if checked != 1 else ''} checked"
    if unreadable:
        tail += f", {unreadable} unreadable"
    lines.append(f"{tail}: " + ", ".join(parts))
    return "\n".join(lines) + "\n"


def render_statistics(report) -> str:
    """`check --statistics`: one line per rule that fired, most frequent first (as ruff prints it),
    then the closing count. Unreadable files count as MA100."""
    counts: dict[tuple, int] = {}
    for f in report.findings:
        key = (f.code, f.name, f.severity.value)
        counts[key] = counts.get(key, 0) + 1
    rows = sorted(counts.items(), key=lambda item: (-item[1], item[0][0]))
    width = max((len(f"{n:,}") for _, n in rows), default=1)
    lines = [f"{n:>{width},}  {code}  {name} [{severity}]" for (code, name, severity), n in rows]
    tail = render(report, show_info=True).splitlines()[-1]
    return "\n".join(lines + [tail]) + "\n"
