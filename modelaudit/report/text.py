"""Findings for people, laid out like ruff's: a headline `path:layer: CODE [severity] what is wrong`,
then `help: the fix`, each wrapped to the terminal's width; grouped by file, then a closing count.
`--format concise` (report/concise.py) keeps one line per finding, for grep."""

from __future__ import annotations

import os
import shutil
import sys
from typing import Optional

from modelaudit.report.visible import visible

COLORS = {"error": "\033[31m", "warning": "\033[33m", "info": "\033[36m"}
RESET = "\033[0m"

DEFAULT_WIDTH = 100  # not a terminal (a CI log, a pipe) and no COLUMNS
MIN_WIDTH = 60  # below this a headline's location alone fills the line
INDENT = "  "  # a headline's continuation lines
HELP = INDENT + "help: "


def terminal_width(stream=None) -> int:
    """COLUMNS when set to a whole number, else the terminal's width when `stream` (stdout) is one,
    else 100; never below 60."""
    stream = sys.stdout if stream is None else stream
    width = None
    columns = os.environ.get("COLUMNS", "").strip()
    if columns.isdigit() and int(columns) > 0:
        width = int(columns)
    else:
        isatty = getattr(stream, "isatty", None)
        if isatty is not None and isatty():
            width = shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns or None
    return max(MIN_WIDTH, width or DEFAULT_WIDTH)


def wrap(words: list[str], width: int, first: str = "", rest: str = INDENT) -> list[str]:
    """Words filled greedily into lines of at most `width` columns, the first line starting with
    `first`, the others with `rest`. A word too long for a line of its own (a path) is cut."""
    if len(rest) >= width:  # an indent as wide as the line (a model nested deep, a narrow cell) is dropped
        rest = ""
    lines, line, fresh = [], first, True  # fresh: nothing after the prefix yet
    for word in filter(None, words):
        while True:
            gap = "" if fresh else " "
            room = width - len(line) - len(gap)
            if len(word) <= room:
                line, fresh = line + gap + word, False
                break
            if fresh or (len(word) > width - len(rest) and room >= 8):
                room = max(room, 1)  # every pass cuts at least one character: the loop ends
                line, word = line + gap + word[:room], word[room:]
            lines.append(line)
            line, fresh = rest, True
    return lines + [line]


def finding_lines(path: str, f, width: int, color: bool = False) -> list[str]:
    """One finding: its headline, wrapped, then its help line, wrapped; every line at most `width`."""
    sev = f"[{f.severity.value}]"
    # model text is escaped by visible(), so it never holds a NUL: the placeholder marks the severity
    # word through the wrapping, to be coloured after it (colour codes take no columns)
    mark = "\0" * len(sev) if color else sev
    location = f"{visible(path)}:{visible(f.layer or '-')}:"
    out = wrap([location, f.code, mark] + visible(f.problem).split(" "), width)
    if color:
        out = [line.replace(mark, f"{COLORS[f.severity.value]}{sev}{RESET}", 1) for line in out]
    if f.fix:
        out += wrap(visible(f.fix).split(" "), width, HELP, " " * len(HELP))
    return out


def shown(report, show_info: bool):
    """(file report, finding) for every finding a person's format shows: info only with show_info,
    nothing of an unreadable file (its `PATH: cannot read: REASON` goes to stderr)."""
    for fr in report.files:
        if fr.error:
            continue
        for f in fr.findings:
            if show_info or f.severity.value != "info":
                yield fr, f


def render(report, *, show_info: bool = False, color: bool = False, width: Optional[int] = None) -> str:
    width = terminal_width() if width is None else max(MIN_WIDTH, width)
    lines = [line for fr, f in shown(report, show_info) for line in finding_lines(fr.path, f, width, color)]
    lines.append(closing_count(report, show_info))
    return "\n".join(lines) + "\n"


def closing_count(report, show_info: bool) -> str:
    """`2 files checked, 1 unreadable, 1 skipped: 1 error, 0 warnings, 3 info (hidden; --show-info)`"""
    counts = report.counts
    checked = len(report.checked)
    unreadable = sum(1 for fr in report.files if fr.error)
    skipped = sum(1 for fr in report.files if fr.skipped)
    parts = [f"{counts['error']} error{'s' if counts['error'] != 1 else ''}",
             f"{counts['warning']} warning{'s' if counts['warning'] != 1 else ''}"]
    info = f"{counts['info']} info" + ("" if show_info or not counts["info"] else " (hidden; --show-info)")
    parts.append(info)
    tail = f"{checked} file{'s' if checked != 1 else ''} checked"
    if unreadable:
        tail += f", {unreadable} unreadable"
    if skipped:
        tail += f", {skipped} skipped"
    return f"{tail}: " + ", ".join(parts)


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
    return "\n".join(lines + [closing_count(report, show_info=True)]) + "\n"
