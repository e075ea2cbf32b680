"""The rule registry and the run: which rules apply, at what severity, and what fails the run.

Rules yield findings through `Rule.finding`, which stamps the rule's code, name and severity (or the
severity the rule grades that finding at); the engine adds the file's path, applies the configured
severity override, contains a rule that crashes, and applies select / ignore / per-file ignores.
"""

from __future__ import annotations

import enum
import fnmatch
import importlib
import os
from dataclasses import dataclass, field, replace
from typing import Any, Iterator, Optional

RULE_FAMILIES = ("integrity", "objective", "architecture", "constraints", "security", "policy")
DOCS_URL = "https://github.com/keras-modelaudit/modelaudit/blob/main/rules/{code}.md"
UNREADABLE = "MA100"  # the finding a file that cannot be read gets (api.unreadable), not a rule's check()


class Severity(str, enum.Enum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return {"info": 0, "warning": 1, "error": 2}[self.value]


@dataclass(frozen=True)
class Finding:
    code: str
    name: str
    severity: Severity
    layer: Optional[str]
    message: str  # the whole sentence: what is wrong, then "; " and the fix when there is one
    path: str = ""
    fix: Optional[str] = None  # the fix clause, the tail of `message`; None when the rule names none

    def __post_init__(self):
        # `message` stays the full text every machine format prints; `fix` only marks where it starts
        if self.fix is not None and not self.message.endswith("; " + self.fix):
            raise ValueError(f"{self.code}: the fix {self.fix!r} is not the tail of the message")

    @property
    def problem(self) -> str:
        """What is wrong: the message without its fix clause (text output's headline)."""
        return self.message[: -len(self.fix) - 2] if self.fix is not None else self.message

    @property
    def url(self) -> str:
        return DOCS_URL.format(code=self.code)

    def to_dict(self) -> dict:
        return {
            "code": self.code, "name": self.name, "severity": self.severity.value,
            "layer": self.layer, "message": self.message, "fix": self.fix, "url": self.url,
        }


class Rule:
    """One rule: a code, a kebab-case name, a default severity, typed options, and check().

    `options` declares each option with its default (its type is the option's type) or an
    `options.Option(default, check)`; modelaudit/options.py validates them, for the configuration and
    for a rule built here, and `self.opts` holds the checked values."""

    code: str = ""
    name: str = ""
    severity: Severity = Severity.WARNING
    summary: str = ""  # one line, for `modelaudit rules` and SARIF shortDescription
    options: dict[str, Any] = {}
    default_enabled: bool = True  # policy rules are off until configured

    def __init__(self, **options: Any):
        from modelaudit import options as rule_options

        self.opts = rule_options.validate(type(self), options)

    @classmethod
    def validate_options(cls, opts: dict) -> Optional[str]:
        """A check across options (yamllint's VALIDATE): what is wrong with them together, or None."""
        return None

    @classmethod
    def configured_options(cls, settings: "Settings") -> dict:
        """Options the configuration gives the rule outside [tool.modelaudit.rules] (a policy value)."""
        return {}

    def check(self, model) -> Iterator["Finding"]:  # model: infer.propagate.Inferred
        raise NotImplementedError

    def finding(self, layer: Optional[str], message: str, severity: Optional[Severity] = None, *,
                fix: Optional[str] = None) -> Finding:
        """`message` says what is wrong; `fix`, when given, how to fix it (joined as "message; fix")."""
        full = f"{message}; {fix}" if fix else message
        return Finding(self.code, self.name, severity or self.severity, layer, full, fix=fix or None)


RULES: dict[str, type[Rule]] = {}


def register(cls: type[Rule]) -> type[Rule]:
    if cls.code in RULES:
        raise RuntimeError(f"rule code {cls.code} registered twice")
    RULES[cls.code] = cls
    return cls


_loaded = False


def all_rules() -> dict[str, type[Rule]]:
    global _loaded
    if not _loaded:
        _loaded = True
        for family in RULE_FAMILIES:  # every family exists: a renamed one fails loudly, never drops its rules
            importlib.import_module(f"modelaudit.checks.{family}")
    return dict(sorted(RULES.items()))


def resolve(selector: str) -> list[str]:
    """A code, a code prefix (MA2) or a rule name -> the codes it means."""
    rules = all_rules()
    sel = selector.strip()
    by_name = [code for code, cls in rules.items() if cls.name == sel.lower()]
    if by_name:
        return by_name
    if sel.upper() == "ALL":
        return list(rules)
    codes = [code for code in rules if code.startswith(sel.upper())]
    if not codes:
        import difflib

        from modelaudit.errors import ConfigError

        if sel[:2].upper() == "MA":  # a code: letters typed for the digits they look like first
            typed = sel.upper()
            look_alike = "MA" + typed[2:].translate(str.maketrans("OIL", "011"))
            close = ([look_alike] if look_alike in rules else []) + difflib.get_close_matches(typed, list(rules), n=3)
        else:
            close = difflib.get_close_matches(sel.lower(), [cls.name for cls in rules.values()], n=3)
        close = list(dict.fromkeys(close))[:3]
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else " (see `modelaudit rules`)"
        raise ConfigError(f"unknown rule code or name: {selector!r}{hint}")
    return codes


@dataclass
class Settings:
    select: Optional[list[str]] = None  # None: every rule enabled by default
    extend_select: list[str] = field(default_factory=list)
    ignore: list[str] = field(default_factory=list)
    per_file_ignores: dict[str, list[str]] = field(default_factory=dict)
    severity: dict[str, str] = field(default_factory=dict)
    fail_on: Severity = Severity.WARNING
    rule_options: dict[str, dict] = field(default_factory=dict)  # by code or name
    policy: dict = field(default_factory=dict)
    scan_weights: bool = False
    exclude: Optional[list[str]] = None  # folder-walk globs; None: discover.DEFAULT_EXCLUDES
    extend_exclude: list[str] = field(default_factory=list)
    root: Optional[str] = None  # the configuration file's folder: per-file-ignores globs are relative to it
    baseline: Optional[str] = None  # a baseline file (baseline.py): only findings not in it are reported

    def excludes(self) -> tuple[str, ...]:
        from modelaudit.discover import DEFAULT_EXCLUDES

        return tuple(DEFAULT_EXCLUDES if self.exclude is None else self.exclude) + tuple(self.extend_exclude)

    def enabled_codes(self) -> list[str]:
        rules = all_rules()
        if self.select is None:
            codes = {c for c, cls in rules.items() if cls.default_enabled or self._configured(cls)}
        else:
            codes = {c for s in self.select for c in resolve(s)}
        codes |= {c for s in self.extend_select for c in resolve(s)}
        codes -= {c for s in self.ignore for c in resolve(s)}
        return sorted(codes)

    def _configured(self, cls: type[Rule]) -> bool:
        return bool(getattr(cls, "enabled_by", None) and cls.enabled_by(self))

    def ignored_for(self, path: str) -> set[str]:
        # A glob matches the path as given, relative to the config's folder or to the working
        # directory, or (as in ruff) the file name alone.
        candidates = {path, os.path.basename(path)}
        for base in filter(None, (self.root, os.getcwd())):
            try:
                candidates.add(os.path.relpath(os.path.abspath(path), base))
            except ValueError:  # another drive on Windows
                pass
        candidates |= {c.replace("\\", "/") for c in candidates}
        out: set[str] = set()
        for pattern, selectors in self.per_file_ignores.items():
            if any(fnmatch.fnmatchcase(c, pattern) for c in candidates):
                out |= {c for s in selectors for c in resolve(s)}
        return out

    def severity_of(self, finding: Finding, default: Optional[Severity] = None) -> Severity:
        """The finding's severity under the configured override of its rule. The override replaces the
        rule's severity; a finding the rule itself grades below its `default` (MA310's rate 0 is info)
        is never raised by it."""
        override = self.severity.get(finding.code) or self.severity.get(finding.name)
        if not override:
            return finding.severity
        wanted = Severity(override)
        if default is not None and finding.severity.rank < default.rank and finding.severity.rank < wanted.rank:
            return finding.severity
        return wanted

    def instantiate(self, code: str) -> Rule:
        cls = all_rules()[code]
        options = dict(self.rule_options.get(code, {}))
        options.update(self.rule_options.get(cls.name, {}))
        options.update(cls.configured_options(self))
        return cls(**options)


# A hostile file can make one rule fire on each of its thousands of layers; every reporter pays for
# every finding (SARIF: about 10 KB of memory each). Past this, one finding says how many more.
MAX_FINDINGS_PER_RULE = 1000


def run_rules(model, settings: Settings, path: str) -> tuple[list[Finding], list[str]]:
    """Every enabled rule over one inferred model. Returns (findings, internal errors).

    A rule that raises is contained: its error is reported and the other rules still run.
    """
    findings: list[Finding] = []
    internal: list[str] = []
    skip = settings.ignored_for(path)
    for code in settings.enabled_codes():
        if code in skip:
            continue
        rule = settings.instantiate(code)
        try:
            produced: list[Finding] = []
            unlisted: list[Finding] = []
            for f in rule.check(model):
                f = replace(f, code=rule.code, name=rule.name, path=path)
                f = replace(f, severity=settings.severity_of(f, rule.severity))
                (produced if len(produced) < MAX_FINDINGS_PER_RULE else unlisted).append(f)
            if unlisted:
                top = max(unlisted, key=lambda f: f.severity.rank)  # the most severe, first of them
                produced.append(replace(
                    top, layer=None, fix=None,
                    message=f"and {len(unlisted):,} more {rule.code} findings in this file, not listed: a file "
                    f"lists at most {MAX_FINDINGS_PER_RULE:,} per rule (one of them: {top.layer or '-'}: "
                    f"{top.message[:200]})",
                ))
        except Exception as exc:  # containment: one broken rule never hides the others
            from modelaudit.errors import one_line

            text = " ".join(one_line(exc).split())[:300] or "no message"
            internal.append(f"internal error in {code} {rule.name}: {type(exc).__name__}: {text} (please report)")
            continue
        findings.extend(produced)
    findings.sort(key=lambda f: (-f.severity.rank, f.code, f.layer or ""))
    return findings, internal
