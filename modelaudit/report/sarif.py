"""`check --format sarif`: SARIF 2.1.0, as GitHub code scanning takes it (upload-sarif).

Every registered rule is described in tool.driver.rules (its page is the help). A result points at
the model file (region line 1: a binary file has no better line) and, logically, at the layer path.
Its partialFingerprints come from code + file + layer, so an alert survives retraining; they include
`primaryLocationLineHash`, which upload-sarif would otherwise compute from the file's first "line"
and which would then change with every retrained file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import quote

from modelaudit.report.locate import base_root, display_path, fingerprints, located_message, repo_path

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/keras-modelaudit/modelaudit"
LEVELS = {"error": "error", "warning": "warning", "info": "note"}
FAMILIES = {"1": "integrity", "2": "objective", "3": "architecture", "4": "security", "5": "policy"}
# GitHub ranks security alerts by this CVSS-like score (critical >= 9, high >= 7, medium >= 4)
SECURITY_SEVERITY = {"error": "8.0", "warning": "5.0", "info": "2.0"}


def _section(page: str, heading: str) -> str:
    start = page.find(heading)
    if start < 0:
        return ""
    start += len(heading)
    end = page.find("\n## ", start)
    return page[start: end if end >= 0 else len(page)].strip()


def _descriptor(code: str, rule) -> dict:
    from modelaudit import rule_docs
    from modelaudit.engine import DOCS_URL

    page = rule_docs.page(code) or ""
    what = _section(page, "## What it does") or rule.summary or rule.name
    why = _section(page, "## Why is this bad?")
    family = FAMILIES.get(code[2:3], "other")
    properties: dict = {"tags": ["keras", family], "precision": "high"}
    if family == "security":  # the tag makes GitHub show it as a security alert, ranked by the score
        properties["security-severity"] = SECURITY_SEVERITY[rule.severity.value]
    return {
        "id": code,
        "name": rule.name,
        "shortDescription": {"text": rule.summary or rule.name},
        "fullDescription": {"text": " ".join(what.split())},
        "help": {"text": what + ("\n\n" + why if why else ""), "markdown": page or what},
        "helpUri": DOCS_URL.format(code=code),
        "defaultConfiguration": {"level": LEVELS[rule.severity.value], "enabled": rule.default_enabled},
        "properties": properties,
    }


def _artifact(path: str) -> dict:
    rel = repo_path(path, base_root())
    if rel is not None:
        return {"uri": quote(rel, safe="/"), "uriBaseId": "%SRCROOT%"}
    return {"uri": Path(os.path.abspath(path)).as_uri()}  # outside the repository: an absolute file URI


def _result(finding, index: int, fingerprint: str, path: str) -> dict:
    location: dict = {"physicalLocation": {"artifactLocation": _artifact(path), "region": {"startLine": 1}}}
    if finding.layer:
        location["logicalLocations"] = [{
            "name": finding.layer.rpartition("/")[2], "fullyQualifiedName": finding.layer, "kind": "object",
        }]
    return {
        "ruleId": finding.code,
        "ruleIndex": index,
        "level": LEVELS[finding.severity.value],
        "message": {"text": located_message(finding)},
        "locations": [location],
        "partialFingerprints": {
            "modelaudit/v1": fingerprint,
            "primaryLocationLineHash": f"{fingerprint[:16]}:1",
        },
    }


def to_dict(report) -> dict:
    from modelaudit import __version__
    from modelaudit.engine import all_rules

    rules = all_rules()
    codes = list(rules)
    results = []
    notifications = []
    for fr in report.files:
        if fr.error or fr.internal_errors:
            for text in ([f"cannot read: {fr.error}"] if fr.error else []) + fr.internal_errors:
                notifications.append({
                    "level": "error",
                    "message": {"text": f"{display_path(fr.path)}: {text}"},
                    "locations": [{"physicalLocation": {"artifactLocation": _artifact(fr.path)}}],
                })
        if fr.skipped:
            notifications.append({
                "level": "note",
                "message": {"text": f"{display_path(fr.path)}: {fr.skipped}"},
                "locations": [{"physicalLocation": {"artifactLocation": _artifact(fr.path)}}],
            })
        for finding, fingerprint in zip(fr.findings, fingerprints(fr)):
            results.append(_result(finding, codes.index(finding.code), fingerprint, fr.path))
    run = {
        "tool": {"driver": {
            "name": "modelaudit",
            "version": __version__,
            "semanticVersion": __version__,
            "informationUri": INFORMATION_URI,
            "rules": [_descriptor(code, rules[code]) for code in codes],
        }},
        "invocations": [{"executionSuccessful": not report.unreadable, "toolExecutionNotifications": notifications}],
        "originalUriBaseIds": {"%SRCROOT%": {"uri": Path(base_root()).as_uri().rstrip("/") + "/"}},
        "results": results,
        "columnKind": "unicodeCodePoints",
    }
    return {"$schema": SCHEMA, "version": "2.1.0", "runs": [run]}


def render(report, *, show_info: bool = False, color: bool = False) -> str:
    return json.dumps(to_dict(report), indent=2) + "\n"
