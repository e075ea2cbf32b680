"""`check --format github`: GitHub Actions workflow commands, one per finding, which the runner turns
into annotations on the pull request:

    ::error file=models/clf.keras,line=1,title=MA201 softmax-with-binary-crossentropy::Dense 'dense': ...

Escaped as @actions/core escapes them: `%`, CR and LF in the message; also `:` and `,` in properties.
"""

from __future__ import annotations

from modelaudit.report.locate import display_path, located_message
from modelaudit.report.visible import visible

COMMANDS = {"error": "error", "warning": "warning", "info": "notice"}


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(kind: str, message: str, **properties: str) -> str:
    props = ",".join(f"{key}={escape_property(str(value))}" for key, value in properties.items())
    return f"::{kind} {props}::{escape_data(message)}"


def render(report, *, show_info: bool = False, color: bool = False) -> str:
    lines = []
    for fr in report.files:
        path = display_path(fr.path)
        for text in fr.internal_errors:
            lines.append(command("error", text, file=path, title="modelaudit: internal error"))
        for f in fr.findings:
            if f.severity.value == "info" and not show_info:
                continue  # a stock ResNet50 has dozens of info findings: notices only when asked
            lines.append(command(COMMANDS[f.severity.value], visible(located_message(f), newlines=False),
                                 file=path, line="1", title=f"{f.code} {f.name}"))
    return "".join(line + "\n" for line in lines)
