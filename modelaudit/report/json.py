"""`check --format json`, schema 1 (DESIGN.md). Every finding is listed, info included."""

from __future__ import annotations

import json

# The JSON contracts' version (README, "JSON output"): raised when a key changes meaning or goes away,
# not when one is added.
SCHEMA_VERSION = 1


def render(report, *, show_info: bool = False, color: bool = False) -> str:
    from modelaudit import __version__

    files = []
    for fr in report.files:
        error = fr.error
        if not error and fr.internal_errors:
            # The file was read, but a rule crashed: its findings are missing, so the audit is not
            # complete. `error` says so (a consumer that only looks at `error` does not take the file
            # for clean); `internal_errors` lists every crashed rule.
            more = len(fr.internal_errors) - 1
            error = fr.internal_errors[0] + (f" (and {more} more internal error{'s' if more > 1 else ''})" if more else "")
        files.append({
            "path": fr.path,
            "format": fr.format,
            "error": error,
            "skipped": fr.skipped,
            "stats": fr.stats,
            "findings": [f.to_dict() for f in fr.findings],
            "internal_errors": list(fr.internal_errors),
        })
    doc = {"schema_version": SCHEMA_VERSION, "tool": {"name": "modelaudit", "version": __version__},
           "files": files, "counts": report.counts}
    if getattr(report, "baseline", None) is not None:  # check --baseline: what it hid, what was fixed since
        doc["baseline"] = report.baseline
    return json.dumps(doc, indent=2) + "\n"
