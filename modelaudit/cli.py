"""The command line: parsing and wiring only. Exit codes: 0 clean, 1 findings at or above
--fail-on, 2 usage, configuration or unreadable input."""

from __future__ import annotations

import os
import sys
from typing import List, Optional

import typer


app = typer.Typer(
    add_completion=True,
    no_args_is_help=True,
    help="Static auditor for saved Keras models: recomputes every layer's params and shapes from the "
    "config, compares them with the file, and flags mistakes. Never imports Keras, never executes the file.",
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        from modelaudit import __version__

        typer.echo(f"modelaudit {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(
    version: bool = typer.Option(False, "--version", "-V", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Static auditor for saved Keras models: recomputes every layer's params and shapes from the
    config, compares them with the file, and flags mistakes. Never imports Keras, never executes the file."""


def _fail(message: str) -> "typer.Exit":
    typer.echo(f"modelaudit: error: {message}", err=True)
    return typer.Exit(2)


def _write(text: str, output: Optional[str]) -> None:
    if not output:
        try:
            sys.stdout.write(text)
        except UnicodeEncodeError:
            # A name the terminal's encoding cannot show (a lone surrogate from a hostile config, or
            # any non-ASCII name on a narrow code page): escaped, never a traceback. write() encodes
            # the whole text before writing any of it, so nothing was written twice.
            encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
            sys.stdout.write(text.encode(encoding, "backslashreplace").decode(encoding))
        return
    from modelaudit.files import write_whole

    try:
        write_whole(output, text, errors="backslashreplace")
    except OSError as exc:
        raise _fail(f"cannot write {output}: {exc.strerror or exc}")


def use_color(stream, environ=os.environ) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set to anything (no-color.org)."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and not environ.get("NO_COLOR")


def _split(values: Optional[List[str]]) -> list[str]:
    out: list[str] = []
    for v in values or []:
        out.extend(p.strip() for p in v.split(",") if p.strip())
    return out


@app.command()
def check(
    paths: List[str] = typer.Argument(
        None, help="Model files, SavedModel folders, or folders to search (*.keras, *.h5, *.hdf5, *.json, "
        "SavedModels); - reads one model from standard input."),
    format: str = typer.Option("text", "--format", "--output-format",
                               help="text, concise, json, sarif, github, gitlab, markdown or html."),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="Write the report to this file."),
    select: Optional[List[str]] = typer.Option(None, "--select", help="Only these codes, prefixes or names."),
    extend_select: Optional[List[str]] = typer.Option(None, "--extend-select", help="Add these rules."),
    ignore: Optional[List[str]] = typer.Option(None, "--ignore", help="Skip these codes, prefixes or names."),
    fail_on: Optional[str] = typer.Option(None, "--fail-on", help="error, warning (default) or info."),
    exit_zero: bool = typer.Option(False, "--exit-zero", help="Exit 0 even when findings fail the run."),
    scan_weights: bool = typer.Option(False, "--scan-weights", help="Also read weight data (NaN/Inf, all-zero kernels)."),
    config: Optional[str] = typer.Option(
        None, "--config",
        help="A pyproject.toml or modelaudit.toml to use (default: the nearest pyproject.toml holding "
        "[tool.modelaudit]; flags override it).",
    ),
    show_info: bool = typer.Option(False, "--show-info", help="Show info findings in text output."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="Print findings only, no closing count."),
    exclude: Optional[List[str]] = typer.Option(
        None, "--exclude", help="Globs of files and folders a folder walk passes over, replacing the defaults "
        "(.git, .venv, venv, node_modules, __pycache__, build, dist, site-packages, .tox, ...)."),
    extend_exclude: Optional[List[str]] = typer.Option(
        None, "--extend-exclude", help="Globs to pass over besides the defaults."),
    statistics: bool = typer.Option(False, "--statistics", help="Count findings per rule instead of listing them."),
    jobs: Optional[int] = typer.Option(
        None, "--jobs", "-j", help="Check files in this many processes (default: the CPU count for 16 files "
        "or more, else 1); the output is in the same order as a serial run's."),
    baseline: Optional[str] = typer.Option(
        None, "--baseline", help="Report and fail only on findings not in this baseline file (config key: baseline); "
        "its findings fixed since are listed as resolved in JSON."),
    write_baseline: Optional[str] = typer.Option(
        None, "--write-baseline", help="Write today's findings (code, file relative to the repository, layer) to "
        "this baseline file, then report against it."),
    factory: Optional[str] = typer.Option(
        None, "--factory",
        help="package.module:function — IMPORTS AND CALLS your code to build a keras.Model, then audits it "
        "(needs the keras extra). Only for code you trust.",
    ),
) -> None:
    """Audit model files; exit 1 if a finding is at or above --fail-on."""
    from modelaudit.api import Report, audit_model, audit_paths
    from modelaudit.report.visible import visible

    jobs = _check_usage(format, statistics, jobs, paths, factory)
    settings = _check_settings(config, select, extend_select, ignore, fail_on, scan_weights, exclude, extend_exclude)

    from modelaudit.formats.scan import default_progress_stream

    progress = default_progress_stream() if settings.scan_weights and jobs in (None, 1) else None
    files = audit_paths(paths or [], settings, progress, jobs)
    if factory:
        model, name = _build_factory(factory)
        files.append(audit_model(model, settings, name))
    report = Report(files, settings)
    applied = _apply_baseline(report, baseline or settings.baseline, write_baseline)

    _echo_file_problems(report)
    text = _check_text(report, format, output, statistics, show_info, quiet)
    if applied is not None and format in ("text", "concise") and not quiet:
        from modelaudit.baseline import note

        typer.echo(visible(note(applied)), err=True)
    _write(text, output)
    raise typer.Exit(report.exit_code(exit_zero))  # a usage or config error has exited 2 before


def _check_usage(format: str, statistics: bool, jobs: Optional[int], paths, factory) -> Optional[int]:
    """`check`'s flags that go together, refused (exit 2) when they do not; returns the --jobs to use."""
    from modelaudit.report import FORMATS

    if format not in FORMATS:
        raise _fail(f"unknown format {format!r} (choose from {', '.join(FORMATS)})")
    _require_html(format)
    if format == "html" and jobs is None:
        jobs = 1  # the page draws each model's graph: a worker process sends no graph back
    if statistics and format != "text":
        raise _fail("--statistics goes with --format text")
    if jobs is not None and jobs < 1:
        raise _fail("--jobs takes a whole number of 1 or more")
    if not paths and not factory:
        raise _fail("no model files given")
    return jobs


def _check_settings(config, select, extend_select, ignore, fail_on, scan_weights, exclude, extend_exclude):
    """The configuration (--config or the nearest pyproject.toml) with the command line's flags on top;
    a bad value or an unknown rule is exit 2 before any file is read."""
    from modelaudit import config as config_mod
    from modelaudit.errors import ConfigError

    try:
        settings, _ = config_mod.load(config)
        if select:
            settings.select = _split(select)
        if extend_select:
            settings.extend_select += _split(extend_select)
        if ignore:
            settings.ignore += _split(ignore)
        if fail_on:
            settings.fail_on = config_mod.parse_fail_on(fail_on)
        if scan_weights:
            settings.scan_weights = True
        if exclude:
            settings.exclude = config_mod.globs(_split(exclude), "--exclude")
        if extend_exclude:
            settings.extend_exclude += config_mod.globs(_split(extend_exclude), "--extend-exclude")
        settings.enabled_codes()  # resolve every selector now: an unknown code is a usage error
    except ConfigError as exc:
        raise _fail(str(exc))
    return settings


def _echo_file_problems(report) -> None:
    """What is not a finding, on standard error: files skipped or unreadable, rules that crashed."""
    from modelaudit.report.visible import visible

    for fr in report.files:
        if fr.skipped:
            typer.echo(visible(f"{fr.path}: {fr.skipped}"), err=True)
        if fr.error:
            typer.echo(visible(f"{fr.path}: cannot read: {fr.error}"), err=True)
        for message in fr.internal_errors:
            typer.echo(visible(f"{fr.path}: {message}"), err=True)


def _check_text(report, format: str, output: Optional[str], statistics: bool, show_info: bool, quiet: bool) -> str:
    """The report as `check` writes it: the format's rendering, or --statistics; -q drops the count."""
    from modelaudit.report import render

    color = format in ("text", "concise") and not output and use_color(sys.stdout)
    if statistics:
        from modelaudit.report import text as text_report

        text = text_report.render_statistics(report)
    else:
        text = render(report, format, show_info=show_info, color=color)
    if quiet and format in ("text", "concise"):
        text = "".join(text.splitlines(keepends=True)[:-1])
    return text


def _require_html(format: str) -> None:
    """--format html lays the graph out with igraph, an optional extra: one line and exit 2 without it."""
    if format == "html":
        from modelaudit.report.html import missing_extra

        message = missing_extra()
        if message:
            raise _fail(message)


def _apply_baseline(report, path: Optional[str], write: Optional[str]):
    """--write-baseline (written from every finding, then applied) and --baseline: the findings a
    baseline records leave the report; None when there is no baseline."""
    from modelaudit import baseline as baseline_mod
    from modelaudit.errors import ConfigError

    try:
        if write:
            n = baseline_mod.write(write, report.files)
            typer.echo(f"modelaudit: wrote {n} finding{'s' if n != 1 else ''} to baseline {write}", err=True)
            path = write
        if not path:
            return None
        applied = baseline_mod.apply(report.files, baseline_mod.load(path), path)
    except ConfigError as exc:
        raise _fail(str(exc))
    report.baseline = applied.to_dict()
    return applied


def _installed(package: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):  # a broken install, or one an import hook hides
        return False


def _build_factory(spec: str):
    """Import package.module, call its function: (the keras.Model it returns, the name to report it
    under — the module's source file, where the model is defined, when there is one)."""
    import importlib
    import inspect

    from modelaudit.formats.live import is_keras_model

    module_name, _, func_name = spec.partition(":")
    if not module_name or not func_name:
        raise _fail(f"--factory takes package.module:function, not {spec!r}")
    keras_missing = ("--factory builds the model with Keras, which is not installed here: install the keras "
                     "extra (pip install \".[keras]\" from a checkout), or tensorflow")
    if not _installed("keras") and not _installed("tf_keras"):
        raise _fail(keras_missing)
    sys.path.insert(0, os.getcwd())
    try:
        func = getattr(importlib.import_module(module_name), func_name)
        model = func()
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] in ("keras", "tensorflow", "tf_keras"):
            raise _fail(keras_missing)
        raise _fail(f"--factory {spec}: {type(exc).__name__}: {exc}")
    except Exception as exc:
        raise _fail(f"--factory {spec}: {type(exc).__name__}: {exc}")
    if not is_keras_model(model):
        raise _fail(f"--factory {spec} returned a {type(model).__name__}, not a keras.Model")
    try:
        source = inspect.getsourcefile(func)
    except TypeError:
        source = None
    name = spec
    if source:
        rel = os.path.relpath(source)
        name = rel if not rel.startswith(os.pardir) else source
    return model, name


@app.command()
def summary(
    path: str = typer.Argument(..., help="A model file."),
    format: str = typer.Option("text", "--format", help="text, json, markdown or html."),
    formulas: bool = typer.Option(False, "--formulas", help="Show how each parameter count was computed."),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="Write to this file."),
) -> None:
    """The per-layer table: recomputed output shapes, params and MACs, like model.summary()."""
    from modelaudit import formats
    from modelaudit.api import recompute
    from modelaudit.errors import ModelReadError, one_line
    from modelaudit.report import summary as summary_report
    from modelaudit.report.visible import visible

    if format not in ("text", "json", "markdown", "html"):
        raise _fail(f"unknown format {format!r} (choose from text, json, markdown, html)")
    _require_html(format)
    from modelaudit import config as config_mod
    from modelaudit.errors import ConfigError

    try:
        config_mod.load()  # its layer-specs (a team's own specs) recompute the summary as they do check
    except ConfigError as exc:
        raise _fail(str(exc))
    try:
        graph = formats.read(path)
        inferred = recompute(graph)
    except ModelReadError as exc:
        typer.echo(visible(f"{path}: cannot read: {one_line(exc)}"), err=True)
        raise typer.Exit(2)
    if format == "json":
        text = summary_report.render_json(path, graph.format, inferred)
    elif format == "markdown":
        text = summary_report.render_markdown(path, graph.format, inferred, formulas)
    elif format == "html":
        from modelaudit.report import html as html_report

        text = html_report.render_summary(path, graph.format, inferred)
    else:
        text = summary_report.render_text(path, graph.format, inferred, formulas)
    _write(text, output)


@app.command()
def diff(
    old: str = typer.Argument(..., help="The model before: a file, a SavedModel folder, or REV:PATH read from git "
                              "(HEAD:models/net.keras; never written into the work tree)."),
    new: str = typer.Argument(..., help="The model after: the same forms."),
    format: str = typer.Option("text", "--format", help="text, json or markdown (a pull-request comment)."),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="Write the diff to this file."),
    fail_on: Optional[str] = typer.Option(None, "--fail-on", help="error, warning (default) or info: an introduced "
                                          "finding at or above it exits 1."),
    config: Optional[str] = typer.Option(None, "--config", help="A pyproject.toml or modelaudit.toml to use."),
) -> None:
    """Compare two models: layers added, removed and changed, totals, objective, findings introduced and
    resolved. Exit 1 if an introduced finding is at or above --fail-on, 2 if either side is unreadable."""
    from modelaudit import config as config_mod
    from modelaudit import diff as diff_mod
    from modelaudit.errors import ConfigError
    from modelaudit.report import diff as diff_report
    from modelaudit.report.visible import visible

    if format not in diff_report.FORMATS:
        raise _fail(f"unknown format {format!r} (choose from {', '.join(diff_report.FORMATS)})")
    try:
        settings, _ = config_mod.load(config)
        if fail_on:
            settings.fail_on = config_mod.parse_fail_on(fail_on)
    except ConfigError as exc:
        raise _fail(str(exc))
    sides = [diff_mod.load(spec, settings) for spec in (old, new)]
    broken = [side for side in sides if not side.readable]
    for side in broken:
        typer.echo(visible(f"{side.label}: cannot read: {side.problem}"), err=True)
    if broken:
        raise typer.Exit(2)
    result = diff_mod.compare(*sides)
    _write(diff_report.render(result, format), output)
    raise typer.Exit(1 if result.failing(settings.fail_on) else 0)


@app.command()
def textconv(path: str = typer.Argument(..., help="A model file or SavedModel folder (git hands a temporary copy).")) -> None:
    """A model as stable text for git's diff driver (layers, totals, objective, findings; no paths, no
    colour): `git config diff.modelaudit.textconv "modelaudit textconv"`. A file that cannot be read
    prints why and still exits 0, so that `git log -p` goes on."""
    from modelaudit import config as config_mod
    from modelaudit.api import audit_file
    from modelaudit.errors import ConfigError
    from modelaudit.report import textconv as textconv_report

    try:
        settings, _ = config_mod.load()
    except ConfigError as exc:
        raise _fail(str(exc))
    report = audit_file(path, settings)
    if report.error or report.skipped or report.inferred is None:
        _write(textconv_report.unreadable(report.error or report.skipped or "nothing to show"), None)
        return
    _write(textconv_report.render(report.format, report.inferred, report.findings), None)


@app.command()
def rules(format: str = typer.Option("text", "--format", help="text or json.")) -> None:
    """List every rule: code, name, default severity, summary."""
    from modelaudit import rule_docs

    if format not in ("text", "json"):
        raise _fail(f"unknown format {format!r} (choose from text, json)")
    sys.stdout.write(rule_docs.render_list(format))


@app.command()
def explain(rule: str = typer.Argument(..., help="A rule code (MA201) or name (softmax-with-binary-crossentropy).")) -> None:
    """Print a rule's page: what it flags, why, an example and the fix."""
    from modelaudit import rule_docs

    page = rule_docs.page(rule)
    if page is None:
        from modelaudit.engine import resolve
        from modelaudit.errors import ConfigError

        try:
            resolve(rule)  # a prefix or a near miss: its message says what was meant
        except ConfigError as exc:
            raise _fail(str(exc).replace("unknown rule code or name", "unknown rule"))
        raise _fail(f"unknown rule {rule!r}: explain takes one rule's code or name (see `modelaudit rules`)")
    sys.stdout.write(page if page.endswith("\n") else page + "\n")


def main() -> None:
    import gc

    # A run is short and its structures are acyclic: the cyclic collector only re-traverses the
    # growing graph, which made a check superlinear in layers (10,000 layers: 2.5 s -> 1.7 s without
    # it, bench/README.md). Reference counting still frees everything; `check` collects between files.
    gc.disable()
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
