"""The Python API: audit a file or an in-memory keras.Model, get a Report back."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Optional

from modelaudit.engine import Finding, Settings, run_rules
from modelaudit.errors import ModelReadError, NotAModel, NotKerasJSON, exception_text, one_line

@dataclass
class FileReport:
    path: str
    format: Optional[str] = None
    error: Optional[str] = None
    findings: list[Finding] = field(default_factory=list)
    internal_errors: list[str] = field(default_factory=list)
    inferred: Any = None  # infer.propagate.Inferred, for the summary and the reporters' stats
    # the stats of a report made in a worker process (--jobs), which sends no Inferred back
    sent_stats: Optional[dict] = None
    skipped: Optional[str] = None  # why the file holds nothing to audit (a weights checkpoint); not an error
    not_keras: bool = False  # a JSON file that is no Keras config: passed over when a folder walk found it

    @property
    def stats(self) -> Optional[dict]:
        if self.inferred is None:
            return self.sent_stats
        inf = self.inferred
        return {
            "layers": len(inf.visible_rows()),
            "total_params": inf.total_params,
            "trainable_params": inf.trainable_params,
            "non_trainable_params": inf.non_trainable_params,
        }


@dataclass
class Report:
    files: list[FileReport]
    settings: Settings = field(default_factory=Settings)
    baseline: Optional[dict] = None  # what --baseline did (baseline.Applied.to_dict()), for the JSON report

    @property
    def findings(self) -> list[Finding]:
        return [f for fr in self.files for f in fr.findings]

    @property
    def counts(self) -> dict[str, int]:
        counts = {"error": 0, "warning": 0, "info": 0}
        for f in self.findings:
            counts[f.severity.value] += 1
        return counts

    @property
    def unreadable(self) -> bool:
        return any(fr.error or fr.internal_errors for fr in self.files)

    @property
    def checked(self) -> list[FileReport]:
        """The files that were read and audited: neither unreadable nor skipped."""
        return [fr for fr in self.files if not fr.error and not fr.skipped]

    @property
    def failing(self) -> list[Finding]:
        return [f for f in self.findings if f.severity.rank >= self.settings.fail_on.rank]

    @property
    def ok(self) -> bool:
        """Something was audited, every file was read, and no finding is at or above fail-on."""
        return bool(self.files) and not self.failing and not self.unreadable

    @property
    def stats(self) -> dict:
        """Layers and params summed over the files read (for one model: that model's)."""
        out = {"files": len(self.files), "layers": 0, "total_params": 0, "trainable_params": 0,
               "non_trainable_params": 0}
        for fr in self.files:
            for key, value in (fr.stats or {}).items():
                out[key] = None if out[key] is None or value is None else out[key] + value
        return out

    def exit_code(self, exit_zero: bool = False) -> int:
        """0, 1 (findings at or above fail-on) or 2 (unreadable input, or a rule that crashed).
        `exit_zero` (--exit-zero) turns findings and unreadable files into 0, never a crashed rule:
        an audit with a rule missing is not a result to pass on."""
        if not self.files or any(fr.internal_errors for fr in self.files):
            return 2
        if exit_zero:
            return 0
        if any(fr.error for fr in self.files):  # a run whose files were all skipped is not empty: 0
            return 2
        return 1 if self.failing else 0


def settings_from(config: Any) -> Settings:
    """None (the defaults), a dict shaped like [tool.modelaudit], the path of a pyproject.toml or
    modelaudit.toml, or Settings. The API never looks for a pyproject.toml on its own."""
    if config is None:
        return Settings()
    if isinstance(config, Settings):
        return config
    from modelaudit import config as config_mod

    if isinstance(config, dict):
        return config_mod.settings_from_table(config, source="config")
    if isinstance(config, (str, os.PathLike)):
        return config_mod.load(os.fspath(config))[0]
    raise TypeError("config must be None, a dict like [tool.modelaudit], a path to a pyproject.toml, or a Settings")


def audit(target: Any, config: Any = None) -> Report:
    """Audit a model file, a folder, a list of paths, or an in-memory keras.Model."""
    settings = settings_from(config)
    from modelaudit.formats.live import is_keras_model

    if is_keras_model(target):
        return Report([audit_model(target, settings)], settings)
    paths = [target] if isinstance(target, (str, os.PathLike)) else list(target)
    return Report(audit_paths(paths, settings), settings)


STDIN = "-"
MAX_STDIN_BYTES = 2 << 30  # a model piped in (`git show REV:model.keras | modelaudit check -`)
MANY_FILES = 16  # from this many files on, --jobs defaults to the CPU count


def audit_paths(paths: Iterable, settings: Settings, progress: Any = None, jobs: Optional[int] = None) -> list:
    """Every file and folder in `paths` (`-`: one model from standard input), in order. `jobs`: worker
    processes (None: the CPU count for many files, else one); the reports come back in the same order
    as a serial run's."""
    from modelaudit.discover import expand

    items = expand(paths, settings.excludes(), settings.root)
    if jobs is None:
        jobs = (os.cpu_count() or 1) if len(items) >= MANY_FILES else 1
    jobs = max(1, min(jobs, len(items)))
    if jobs > 1 and all(item.path != STDIN for item in items):
        return [fr for fr in _in_workers(items, settings, jobs) if fr is not None]
    files = []
    for i, item in enumerate(items, 1):
        report = _audit_item(item, settings, progress)
        if report is not None:
            files.append(report)
        if i % 64 == 0:  # the CLI runs with the cyclic collector off (cli.main)
            import gc

            gc.collect()
    return files


def _audit_item(item, settings: Settings, progress: Any = None) -> Optional[FileReport]:
    """One discover.Item's report; None for a JSON file found by walking that is no Keras config."""
    if item.error:
        return unreadable(item.path, item.error, settings)
    if item.path == STDIN:
        return _audit_stdin(settings)
    report = audit_file(item.path, settings, progress)
    if item.found and report.not_keras:
        return None
    return report


def _audit_stdin(settings: Settings) -> FileReport:
    """Standard input spooled to a private temporary file (the readers seek and map byte ranges),
    audited, and reported as `-`."""
    import shutil
    import sys
    import tempfile
    from dataclasses import replace as replace_

    folder = tempfile.mkdtemp(prefix="modelaudit-stdin-")
    try:
        tmp = os.path.join(folder, "stdin")
        copied = 0
        with open(tmp, "wb") as out:
            source = sys.stdin.buffer
            while True:
                chunk = source.read(1 << 20)
                if not chunk:
                    break
                copied += len(chunk)
                if copied > MAX_STDIN_BYTES:
                    return unreadable(STDIN, f"standard input holds more than {MAX_STDIN_BYTES >> 30} GiB", settings)
                out.write(chunk)
        report = audit_file(tmp, settings)
        report.path = STDIN
        report.findings = [replace_(f, path=STDIN) for f in report.findings]
        return report
    finally:
        shutil.rmtree(folder, ignore_errors=True)


_worker_settings: Optional[Settings] = None


def _worker_init(settings: Settings) -> None:
    global _worker_settings
    _worker_settings = settings


def _worker_audit(item) -> Optional[FileReport]:
    report = _audit_item(item, _worker_settings)
    if report is not None:
        report.sent_stats, report.inferred = report.stats, None  # an Inferred is large to send back
    return report


def _in_workers(items: list, settings: Settings, jobs: int) -> list:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from modelaudit.infer import registry

    registry.known_classes()  # every spec family imported once, before the workers fork
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else None
    context = multiprocessing.get_context(method)
    with ProcessPoolExecutor(jobs, mp_context=context, initializer=_worker_init, initargs=(settings,)) as pool:
        return list(pool.map(_worker_audit, items, chunksize=max(1, len(items) // (jobs * 4))))


def audit_model(model: Any, settings: Settings, name: Optional[str] = None) -> FileReport:
    from modelaudit.formats import live

    name = name or f"<{type(model).__name__} {getattr(model, 'name', '')}>"
    try:
        graph = live.read(model)
    except ModelReadError as exc:
        return unreadable(name, one_line(exc), settings)
    return _check_graph(name, graph, settings)


def audit_file(path: str, settings: Settings, progress: Any = None, name: Optional[str] = None) -> FileReport:
    """`progress`: a terminal stream for --scan-weights' progress bar (the CLI passes stderr). `name`:
    what the report calls the file and per-file ignores match, when `path` is only where its bytes are
    (a git revision's blob in memory, revision.py)."""
    from modelaudit import formats

    path = str(path)
    label = path if name is None else name
    scan = None
    if wants_scan(settings, label):
        from modelaudit.formats.scan import WeightScan

        scan = WeightScan(progress=progress, label=label)
    with _collector_paused():
        try:
            graph = formats.read(path, scan)
        except NotAModel as exc:
            return FileReport(label, skipped=one_line(exc))
        except NotKerasJSON as exc:
            report = unreadable(label, one_line(exc), settings)
            report.not_keras = True
            return report
        except ModelReadError as exc:
            return unreadable(label, one_line(exc), settings)
        return _check_graph(label, graph, settings, scan)


@contextlib.contextmanager
def _collector_paused():
    """Python's cyclic garbage collector off while one file is read and checked, as the CLI runs
    (cli.main): a config's millions of objects are acyclic, and each collection pass re-traverses all
    of them (a 2-million-value config: 3.5 s with it paused, over 5 s without). Restored after."""
    import gc

    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def unreadable(path: str, error: str, settings: Settings, format: Optional[str] = None) -> FileReport:
    """The report of a file that cannot be read: its `error`, and the MA100 finding that carries it to
    every output format. Like ruff's io-error, it is reported whatever --select says, unless ignored
    by name (--ignore, per-file-ignores). The file is unreadable either way: the run exits 2 (0 with
    --exit-zero)."""
    from modelaudit.engine import UNREADABLE, Finding, Severity, resolve

    findings = []
    ignored = {c for s in settings.ignore for c in resolve(s)} | settings.ignored_for(path)
    if UNREADABLE not in ignored:
        finding = Finding(UNREADABLE, "unreadable-file", Severity.ERROR, None, f"cannot read: {error}", path)
        findings.append(replace(finding, severity=settings.severity_of(finding)))
    return FileReport(path, format=format, error=error, findings=findings)


SCAN_RULES = ("MA108", "MA110")  # the rules that read weight data


def wants_scan(settings: Settings, path: str) -> bool:
    """--scan-weights, and a rule that reads the scan is enabled for this file: else nothing is read."""
    if not settings.scan_weights:
        return False
    enabled = set(settings.enabled_codes()) - settings.ignored_for(path)
    return any(code in enabled for code in SCAN_RULES)


def recompute(graph):
    """infer.propagate(graph); every failure is a ModelReadError with one line, never a traceback."""
    from modelaudit.infer.propagate import propagate

    try:
        return propagate(graph)
    except ModelReadError:
        raise
    except RecursionError:
        raise ModelReadError("structure nested too deeply") from None
    except MemoryError:
        raise ModelReadError("structure too large to recompute") from None
    except Exception as exc:  # fail closed: a config value no spec foresaw
        raise ModelReadError(f"the config cannot be recomputed ({type(exc).__name__}: {exception_text(exc)})") from None


def _check_graph(path: str, graph, settings: Settings, scan=None) -> FileReport:
    try:
        inferred = recompute(graph)
    except ModelReadError as exc:
        return unreadable(path, one_line(exc), settings, graph.format)
    inferred.weight_scan = scan
    findings, internal = run_rules(inferred, settings, path)
    return FileReport(path, graph.format, None, findings, internal, inferred)


class ModelAuditError(AssertionError):
    """Raised by assert_clean: the message lists every finding at or above fail-on."""


def assert_clean(target: Any, config: Any = None, fail_on: str | None = None) -> Report:
    """For test suites: audit, and raise AssertionError (ModelAuditError) listing every finding at or
    above fail-on (default: the config's, else warning) and every unreadable file. Returns the Report."""
    from dataclasses import replace

    settings = settings_from(config)
    if fail_on:
        from modelaudit.config import parse_fail_on

        settings = replace(settings, fail_on=parse_fail_on(fail_on, "fail_on"))
    report = audit(target, settings)
    if not report.ok:
        lines = [] if report.files else ["  nothing to audit"]
        for fr in report.files:
            if fr.error:
                lines.append(f"  {fr.path}: cannot read: {fr.error}")
            lines.extend(f"  {fr.path}: {e}" for e in fr.internal_errors)
            lines.extend(f"  {fr.path}: {f.layer or '-'}: {f.code} {f.name} [{f.severity.value}] {f.message}"
                         for f in fr.findings if f.severity.rank >= report.settings.fail_on.rank)
        count = len(lines)
        raise ModelAuditError(
            f"modelaudit found {count} problem{'s' if count != 1 else ''} (fail-on: {report.settings.fail_on.value}):\n"
            + "\n".join(lines) + "\n`modelaudit explain CODE` says what a rule flags and how to fix it."
        )
    return report
