"""`check --format json`, schema 1 (DESIGN.md). Every finding is listed, info included."""

from __future__ import annotations

import json


def render(report, *, show_info: bool = False, color: bool = False) -> str:
    from modelaudit import __version__

    files = []
    for fr in report.files:
        error = fr.error
        if not error and fr.internal_errors:
            error = fr.internal_errors[0]
        files.append({
            "path": fr.path,
            "format": fr.format,
            "error": error,
            "stats": fr.stats,
            "findings": [f.to_dict() for f in fr.findings],
        })
    doc = {"tool": {"name": "modelaudit", "version": __version__}, "files": files, "counts": report.counts}
    return json.dumps(doc, indent=2) + "\n"
