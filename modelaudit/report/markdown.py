"""`check --format markdown`: a report to post as a pull-request comment. Per file: its status, a
short parameter summary, its findings in a table (info findings folded away), and a Mermaid chart of
its layer graph (report/mermaid.py: the whole model when small, else each finding's neighbourhood),
drawn only in the room the findings leave."""

from __future__ import annotations

from modelaudit.report.locate import display_path
from modelaudit.report.visible import visible

ICONS = {"failing": "❌", "passing": "✅", "unreadable": "⚠️", "skipped": "➖"}


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


# GitHub refuses a comment body over 65,536 characters; the tail says where the rest is.
MAX_CHARS = 65_536
RESERVE = 400  # room for the closing line


def _state(fr, failing: set) -> str:
    if fr.error:
        return "unreadable"
    if fr.skipped:
        return "skipped"
    return "failing" if any(id(f) in failing for f in fr.findings) or fr.internal_errors else "passing"


def _files_table(report, failing: set) -> list[str]:
    out = ["| File | Status | Params | Errors | Warnings | Info |", "|---|---|---|---|---|---|"]
    for fr in report.files:
        n = {s: sum(1 for f in fr.findings if f.severity.value == s) for s in ("error", "warning", "info")}
        params = _count(fr.stats["total_params"]) if fr.stats else "-"
        state = _state(fr, failing)
        out.append(f"| {_code_span(display_path(fr.path))} | {ICONS[state]} {state} | {params} | {n['error']} | "
                   f"{n['warning']} | {n['info']} |")
    return out


def _section(fr, failing: set) -> list[tuple[list[str], int]]:
    """A file's section as pieces (lines, findings they list): the heading and stats, then a piece per
    finding row, so that the comment can stop between any two of them."""
    path = display_path(fr.path)
    state = _state(fr, failing)
    if fr.skipped:
        return [([f"### {ICONS[state]} {_code_span(path)}", "", _cell(fr.skipped), ""], 0)]
    if fr.error:  # its one finding, MA100, is this section
        return [([f"### {ICONS[state]} {_code_span(path)}", "", f"Cannot read: {_cell(fr.error)}", ""],
                 len(fr.findings))]
    head = [f"### {ICONS[state]} {_code_span(path)}", ""]
    if _stats(fr):
        head += [_stats(fr), ""]
    head += [f"> {_cell(text)}" for text in fr.internal_errors]
    pieces = [(head, 0)]
    shown = [f for f in fr.findings if f.severity.value != "info"]
    info = [f for f in fr.findings if f.severity.value == "info"]
    if shown:
        table = _table(shown)
        pieces += [(table[:3], 1)] + [([row], 1) for row in table[3:]] + [([""], 0)]
    if info:
        table = _table(info)
        pieces += [([f"<details><summary>{_plural(len(info), 'info')}</summary>", ""] + table[:3], 1)]
        pieces += [([row], 1) for row in table[3:]] + [(["", "</details>", ""], 0)]
    if not fr.findings:
        pieces.append((["No findings.", ""], 0))
    if fr.inferred is not None:
        pieces.append(_Diagram(fr))
    return pieces


class _Diagram:
    """A file's layer graph: drawn last, in the room left once every finding of every file is placed."""

    def __init__(self, fr):
        self.fr = fr

    def lines(self, room: int) -> list[str]:
        from modelaudit.report import mermaid

        frame = ["<details><summary>Layer graph</summary>", "", "", "", "</details>", ""]
        room -= sum(len(line) + 1 for line in frame) + 40
        if room < 200:
            return []
        findings = self.fr.findings
        chart = mermaid.flowchart(self.fr.inferred, mermaid.finding_focus(findings),
                                  marks=mermaid.severity_marks(findings), max_chars=min(mermaid.MAX_CHARS, room))
        if not chart:
            return []
        what = "the neighbourhood of each finding" if "more layers not drawn" in chart else "the whole model"
        return [f"<details><summary>Layer graph ({what})</summary>", "", chart, "", "</details>", ""]


def render(report, *, show_info: bool = False, color: bool = False) -> str:
    counts = report.counts
    failing = {id(f) for f in report.failing}
    files = len(report.files)
    out = [f"## modelaudit: {_plural(counts['error'], 'error')}, {_plural(counts['warning'], 'warning')}, "
           f"{_plural(counts['info'], 'info')} in {_plural(files, 'file')}", ""]
    if files > 1:
        out += _files_table(report, failing) + [""]
    size = sum(len(line) + 1 for line in out)
    left = sum(len(fr.findings) for fr in report.files)
    pieces = [piece for fr in report.files for piece in _section(fr, failing)]
    # what the findings after each piece need: a chart only takes room they leave
    needed = [0] * (len(pieces) + 1)
    for i in range(len(pieces) - 1, -1, -1):
        piece = pieces[i]
        needed[i] = needed[i + 1] + (0 if isinstance(piece, _Diagram) else sum(len(line) + 1 for line in piece[0]))
    for i, piece in enumerate(pieces):
        if isinstance(piece, _Diagram):
            lines = piece.lines(MAX_CHARS - RESERVE - size - needed[i + 1])
            out += lines
            size += sum(len(line) + 1 for line in lines)
            continue
        lines, listed = piece
        cost = sum(len(line) + 1 for line in lines)
        if size + cost > MAX_CHARS - RESERVE:
            if out[-1]:
                out.append("")
            out.append(f"{left:,} more finding{'s' if left != 1 else ''}: see the SARIF/JSON artifact "
                       f"(a pull-request comment holds at most {MAX_CHARS:,} characters)")
            return "\n".join(out) + "\n"
        out += lines
        size += cost
        left -= listed
    return "\n".join(out).rstrip("\n") + "\n"
