"""Text a model file chose (layer and class names, config values quoted in messages, file names found
in a folder) shown so that it cannot steer a terminal or a CI log: a layer named `x\\n::error::pwn`
cannot start a workflow-command line, `\\x1b[31m` cannot reach the terminal, and a right-to-left
override cannot reorder what a reviewer reads. Each such character is shown as a visible escape."""

from __future__ import annotations

import re

# C0 and C1 controls (ESC, BEL, CR, LF, TAB ...), DEL, line/paragraph separators and the Unicode
# bidirectional controls (embeddings, overrides, isolates, marks)
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match) -> str:
    c = match.group()
    return _NAMED.get(c) or (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")


def visible(text, *, newlines: bool = True) -> str:
    """`text` with every control and bidi character as a visible escape (`\\x1b`, `\\n`, `\\u202e`).
    newlines=False leaves CR and LF to a format that encodes them itself (GitHub's `%0A`)."""
    text = str(text)
    if not _UNSAFE.search(text):
        return text
    if newlines:
        return _UNSAFE.sub(_escape, text)
    return _UNSAFE.sub(lambda m: m.group() if m.group() in "\r\n" else _escape(m), text)
