"""`check --format markdown`: a report to post as a pull-request comment. Per file: its status, a
short parameter summary, and its findings in a table (info findings folded away)."""

from __future__ import annotations

from modelaudit.report.locate import display_path
from modelaudit.report.visible import visible

ICONS = {"failing": "❌", "passing": "✅", "unreadable": "⚠️"}


def _cell(text: str) -> str:
    """Safe inside a table cell: no pipes, no line breaks, no code spans or HTML, no control or bidi
    characters (report/visible.py)."""
    return (" ".join(visible(text).split()).replace("\\", "\\\\").replace("|", "\\|")
            .replace("`", "\\`").replace("<", "&lt;").replace(">", "&gt;"))


def _code_span(text: str) -> str:
    # inside a code span a backslash escapes nothing: a backtick is dropped, a pipe stays escaped
    # (GitHub splits table cells on it even there)
    safe = " ".join(visible(text).split()).replace("`", "").replace("|", "\\|")
    return f"`{safe}`"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 or word == 'info' else 's'}"


def _table(findings) -> list[str]:
    out = ["| Severity | Rule | Layer | Message |", "|---|---|---|---|"]
    for f in findings:
        layer = _code_span(f.layer) if f.layer else "(model)"
        out.append(f"| {f.severity.value} | [{f.code}]({f.url}) {_code_span(f.name)} | {layer} | {_cell(f.message)} |")
    return out


def _stats(fr) -> str:
    stats = fr.stats
    if not stats:
        return ""
    return (f"{fr.format} · {stats['layers']} layers · **{_count(stats['total_params'])} params** "
            f"({_count(stats['trainable_params'])} trainable, {_count(stats['non_trainable_params'])} non-trainable)")


def _count(n) -> str:
    return "unknown" if n is None else f"{n:,}"


def render(report, *, show_info: bool = False, color: bool = False) -> str:
    counts = report.counts
    failing = {id(f) for f in report.failing}
    files = len(report.files)
    out = [f"## modelaudit: {_plural(counts['error'], 'error')}, {_plural(counts['warning'], 'warning')}, "
           f"{_plural(counts['info'], 'info')} in {_plural(files, 'file')}", ""]
    for fr in report.files:
        path = display_path(fr.path)
        if fr.error:
            out += [f"### {ICONS['unreadable']} {_code_span(path)}", "", f"Cannot read: {_cell(fr.error)}", ""]
            continue
        state = "failing" if any(id(f) in failing for f in fr.findings) or fr.internal_errors else "passing"
        out += [f"### {ICONS[state]} {_code_span(path)}", ""]
        if _stats(fr):
            out += [_stats(fr), ""]
        out += [f"> {_cell(text)}" for text in fr.internal_errors]
        shown = [f for f in fr.findings if f.severity.value != "info"]
        info = [f for f in fr.findings if f.severity.value == "info"]
        if shown:
            out += _table(shown) + [""]
        if info:
            out += [f"<details><summary>{_plural(len(info), 'info')}</summary>", ""] + _table(info) + ["", "</details>", ""]
        if not fr.findings:
            out += ["No findings.", ""]
    return "\n".join(out).rstrip("\n") + "\n"
