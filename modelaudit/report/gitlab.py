"""`check --format gitlab`: a GitLab Code Quality report (the Code Climate issue subset GitLab reads):
a JSON array of {description, check_name, fingerprint, severity, location: {path, lines: {begin}}}."""

from __future__ import annotations

import hashlib
import json

from modelaudit.report.locate import display_path, fingerprints, located_message

SEVERITIES = {"error": "critical", "warning": "major", "info": "info"}


def to_list(report) -> list[dict]:
    issues = []
    for fr in report.files:
        path = display_path(fr.path)
        # an unreadable file is its MA100 finding, below
        for text in fr.internal_errors:
            issues.append({
                "type": "issue",
                "check_name": "modelaudit/internal-error",
                "description": text,
                "categories": ["Bug Risk"],
                "severity": "blocker",
                "fingerprint": hashlib.sha256(f"{path}\0{text}".encode("utf-8")).hexdigest(),
                "location": {"path": path, "lines": {"begin": 1}},
            })
        for f, fingerprint in zip(fr.findings, fingerprints(fr)):
            issues.append({
                "type": "issue",
                "check_name": f"{f.code} {f.name}",
                "description": located_message(f),
                "categories": ["Security" if f.code.startswith("MA4") else "Bug Risk"],
                "severity": SEVERITIES[f.severity.value],
                "fingerprint": fingerprint,
                "location": {"path": path, "lines": {"begin": 1}},
            })
    return issues


def render(report, *, show_info: bool = False, color: bool = False) -> str:
    return json.dumps(to_list(report), indent=2) + "\n"
