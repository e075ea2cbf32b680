"""Baselines, for adopting the gate on a repository full of old models: `check --write-baseline FILE`
records today's findings; `check --baseline FILE` (or the `baseline` config key) then reports and
fails only on findings not in it, and lists the baseline's findings fixed since as resolved.

A finding is recorded as its code, its file relative to the repository's root (report/locate.py, as
SARIF names it) and its layer path: never its message or anything of the weights, so that a retrained
model, re-saved with the same architecture, still matches its baseline. An unreadable file (MA100) is
never baselined: it is not a finding to live with.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Optional

from modelaudit.errors import ConfigError
from modelaudit.files import write_whole

BASELINE_VERSION = 1
MAX_BASELINE_BYTES = 64 << 20  # a baseline of a million findings is about 100 MB: refused, not read
UNREADABLE = "MA100"


def key(code: str, path: str, layer: Optional[str]) -> tuple:
    return code, path, layer or ""


def _file_key(fr) -> str:
    from modelaudit.report.locate import display_path

    return display_path(fr.path)


def entries(files) -> list[dict]:
    """The baseline entries of a run's file reports, in a stable order."""
    out = []
    for fr in files:
        if fr.error:
            continue
        path = _file_key(fr)
        for f in fr.findings:
            if f.code != UNREADABLE:
                out.append({"code": f.code, "name": f.name, "path": path, "layer": f.layer})
    out.sort(key=lambda e: (e["path"], e["code"], e["layer"] or ""))
    return out


def dumps(items: list[dict]) -> str:
    """One entry a line, so that a baseline shrinking reads as lines removed in a code review."""
    lines = [json.dumps(e, ensure_ascii=False) for e in items]
    body = ",\n".join(f"  {line}" for line in lines)
    return (f'{{"schema_version": {BASELINE_VERSION}, "tool": "modelaudit", "findings": [\n{body}\n]}}\n'
            if lines else f'{{"schema_version": {BASELINE_VERSION}, "tool": "modelaudit", "findings": []}}\n')


def load(path: str) -> list[tuple]:
    """The keys a baseline file holds (a key once per finding it records). ConfigError, one line, for
    a file that is missing or is no modelaudit baseline."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_BASELINE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"baseline {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_BASELINE_BYTES:
        raise ConfigError(f"baseline {path}: larger than {MAX_BASELINE_BYTES >> 20} MiB")
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise ConfigError(f"baseline {path}: not JSON ({' '.join(str(exc).split())[:200]})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("findings"), list):
        raise ConfigError(f"baseline {path}: not a modelaudit baseline (no \"findings\" list); "
                          "write one with `modelaudit check PATHS --write-baseline FILE`")
    out = []
    for i, e in enumerate(doc["findings"]):
        if not (isinstance(e, dict) and isinstance(e.get("code"), str) and isinstance(e.get("path"), str)
                and isinstance(e.get("layer"), (str, type(None)))):
            raise ConfigError(f"baseline {path}: entry {i + 1} needs a code, a path and a layer (a string or null)")
        out.append(key(e["code"], e["path"], e["layer"]))
    return out


@dataclass
class Applied:
    """What a baseline did to a run: findings it matched (no longer reported) and its entries whose
    file was checked and that no finding matched any more (fixed since: the baseline can shrink)."""

    path: str
    matched: int = 0
    resolved: list = field(default_factory=list)  # entries, as in the file

    def to_dict(self) -> dict:
        return {"path": self.path, "matched": self.matched, "resolved": list(self.resolved)}


def apply(files, keys: list[tuple], path: str) -> Applied:
    """Drop from each file report the findings the baseline records (each entry matches once)."""
    left = Counter(keys)
    result = Applied(path)
    checked = set()
    for fr in files:
        if fr.error or fr.skipped:
            continue
        name = _file_key(fr)
        checked.add(name)
        kept = []
        for f in fr.findings:
            k = key(f.code, name, f.layer)
            if f.code != UNREADABLE and left[k] > 0:
                left[k] -= 1
                result.matched += 1
            else:
                kept.append(f)
        fr.findings = kept
    for (code, file, layer), n in sorted(left.items()):
        if n > 0 and file in checked:
            result.resolved += [{"code": code, "path": file, "layer": layer or None}] * n
    return result


def write(path: str, files) -> int:
    """Write the run's findings as a baseline, whole or not at all; the number of entries."""
    items = entries(files)
    try:
        write_whole(path, dumps(items))
    except OSError as exc:
        raise ConfigError(f"cannot write baseline {path}: {exc.strerror or exc}") from None
    return len(items)


def note(applied: Applied) -> str:
    """The line text output adds (on stderr): how much the baseline hid, and what it can lose."""
    text = f"baseline {applied.path}: {applied.matched} known finding{'s' if applied.matched != 1 else ''} not shown"
    if applied.resolved:
        n = len(applied.resolved)
        text += (f"; {n} fixed since (resolved): run with --write-baseline {applied.path} to drop "
                 f"{'them' if n != 1 else 'it'}")
    return text
