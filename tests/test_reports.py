"""Every output format of `modelaudit check`, read back the way its consumer reads it: SARIF against
the official 2.1.0 schema and GitHub's code-scanning requirements, workflow commands parsed and
unescaped as the Actions runner does, the GitLab Code Quality array checked field by field."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from typer.testing import CliRunner

from modelaudit.api import FileReport, Report
from modelaudit.cli import app, use_color
from modelaudit.engine import Finding, Severity, all_rules
from modelaudit.report import FORMATS, render
from tests import integration_models as im

SCHEMA = Path(__file__).parent / "data" / "sarif-schema-2.1.0.json"


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A clean model, the same model broken, a retrained broken twin, an info-only JSON, and junk."""
    folder = tmp_path_factory.mktemp("reports")
    good = im.save_classifier(folder / "good.keras", seed=1)
    broken = im.broken_copy(good, folder / "broken.keras")
    retrained = im.broken_copy(im.save_classifier(folder / "retrained_src.keras", seed=2), folder / "retrained.keras")
    custom = im.unknown_layer_json(folder / "custom.json")
    junk = folder / "junk.keras"
    junk.write_bytes(b"PK\x03\x04 not a zip")
    return {"folder": folder, "good": good, "broken": broken, "retrained": retrained, "custom": custom,
            "junk": str(junk)}


@pytest.fixture
def in_folder(files, monkeypatch):
    """Run from the models' folder, as CI runs from the repository root: paths come out relative."""
    monkeypatch.chdir(files["folder"])
    return files["folder"]


def check(*args):
    # Only the rules these files are made to trigger: other rules may flag them too, and the
    # counts asserted here are the formats', not the rules'.
    result = run("check", "--select", "MA101,MA107", *args)
    assert result.exit_code in (0, 1, 2), result.output
    return result


def hand_made_report(path="models/a,b:c.keras"):
    """Findings whose text holds every character the formats must escape."""
    findings = [
        Finding("MA101", "weight-shape-mismatch", Severity.ERROR, "outer/dense", "50% of\nrows: a, b | c <x>", path),
        Finding("MA107", "unknown-layer", Severity.INFO, None, "model-level note", path),
    ]
    return Report([FileReport(path, "keras-v3", None, findings)])


# --- text -------------------------------------------------------------------------------------

def test_text_lines_grouped_by_file_with_closing_count(files, in_folder):
    result = check("good.keras", "broken.keras", "custom.json")
    lines = result.stdout.splitlines()
    assert result.exit_code == 1
    assert lines[-1] == "3 files checked: 2 errors, 0 warnings, 1 info (hidden; --show-info)"
    # a headline per finding, then its continuation and help lines, indented
    headlines = [line for line in lines[:-1] if not line.startswith(" ")]
    assert len(headlines) == 2 and all(re.match(r"^broken\.keras:probs: MA101 \[error\] ", h) for h in headlines)
    assert all(line.startswith("  ") for line in lines[:-1] if line not in headlines)
    failing_info = check("custom.json", "--fail-on", "info").stdout.splitlines()
    assert failing_info[0].startswith("custom.json:") and " MA107 [info] " in failing_info[0]
    shown = check("good.keras", "broken.keras", "custom.json", "--show-info").stdout.splitlines()
    assert "custom.json:proj: MA107 [info] " in "\n".join(shown)
    assert shown[-1].endswith("1 info")
    paths = [line.split(":")[0] for line in shown[:-1] if not line.startswith(" ")]
    assert paths == sorted(paths, key=["broken.keras", "custom.json"].index)  # grouped by file, in order


def test_text_colour_only_on_a_terminal_without_no_color(files, in_folder):
    assert "\033[" not in check("broken.keras").stdout  # CliRunner's stdout is not a terminal
    assert "\033[31m[error]\033[0m" in render(hand_made_report(), "text", color=True)

    class Tty:
        def isatty(self):
            return True

    assert use_color(Tty(), {}) is True
    assert use_color(Tty(), {"NO_COLOR": "1"}) is False
    assert use_color(Tty(), {"NO_COLOR": ""}) is True  # no-color.org: set and non-empty
    assert use_color(open(os.devnull, "w"), {}) is False


def test_quiet_drops_the_closing_count(files, in_folder):
    assert check("good.keras", "-q").stdout == ""


# --- json -------------------------------------------------------------------------------------

def test_json_lists_every_finding_info_included(files, in_folder):
    doc = json.loads(check("broken.keras", "custom.json", "junk.keras", "--format", "json").stdout)
    by_path = {f["path"]: f for f in doc["files"]}
    assert by_path["junk.keras"]["error"] and by_path["junk.keras"]["stats"] is None
    assert [f["code"] for f in by_path["custom.json"]["findings"]] == ["MA107"]
    assert doc["counts"] == {"error": 3, "warning": 0, "info": 1}  # MA101 twice, and MA100 for junk.keras
    assert [f["code"] for f in by_path["junk.keras"]["findings"]] == ["MA100"]


# --- sarif ------------------------------------------------------------------------------------

def sarif_of(*args) -> dict:
    return json.loads(check(*args, "--format", "sarif").stdout)


def validate_sarif(doc):
    import jsonschema

    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft4Validator(schema).validate(doc)


def test_sarif_validates_against_the_official_schema(files, in_folder):
    validate_sarif(sarif_of("good.keras", "broken.keras", "custom.json", "junk.keras"))
    validate_sarif(json.loads(render(hand_made_report(), "sarif")))
    validate_sarif(sarif_of("good.keras"))  # no results at all


def test_sarif_has_what_github_code_scanning_needs(files, in_folder):
    doc = sarif_of("broken.keras", "custom.json")
    assert doc["version"] == "2.1.0" and doc["$schema"]
    (run_,) = doc["runs"]
    driver = run_["tool"]["driver"]
    assert driver["name"] == "modelaudit" and driver["version"]
    rules = driver["rules"]
    assert [r["id"] for r in rules] == list(all_rules())
    for rule in rules:
        assert rule["name"] and rule["shortDescription"]["text"] and rule["fullDescription"]["text"]
        assert rule["help"]["text"] and rule["help"]["markdown"]
        assert urlparse(rule["helpUri"]).scheme == "https" and rule["helpUri"].endswith(f"{rule['id']}.md")
        assert rule["defaultConfiguration"]["level"] in ("error", "warning", "note")
    ma101 = rules[[r["id"] for r in rules].index("MA101")]
    assert "Recomputes the shape" in ma101["fullDescription"]["text"]  # from its page, rules/MA101.md

    results = run_["results"]
    assert sorted(r["ruleId"] for r in results) == ["MA101", "MA101", "MA107"]
    for result in results:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["level"] in ("error", "warning", "note")
        (location,) = result["locations"]
        physical = location["physicalLocation"]
        assert physical["artifactLocation"]["uri"] in ("broken.keras", "custom.json")
        assert physical["artifactLocation"]["uriBaseId"] == "%SRCROOT%"
        assert physical["region"] == {"startLine": 1}
        (logical,) = location["logicalLocations"]
        layer = logical["fullyQualifiedName"]
        assert layer in ("probs", "proj") and f"'{layer}'" in result["message"]["text"]
        assert set(result["partialFingerprints"]) == {"modelaudit/v1", "primaryLocationLineHash"}
    info = next(r for r in results if r["ruleId"] == "MA107")
    assert info["level"] == "note"
    assert run_["originalUriBaseIds"]["%SRCROOT%"]["uri"] == Path.cwd().as_uri() + "/"


def _fingerprints(doc):
    return [(r["ruleId"], r["partialFingerprints"]["modelaudit/v1"]) for r in doc["runs"][0]["results"]]


def test_sarif_fingerprints_survive_retraining(files, in_folder):
    """Same code, file and layer: same fingerprint, though the retrained file's bytes all differ."""
    assert Path("broken.keras").read_bytes() != Path("retrained.keras").read_bytes()
    os.makedirs("run1", exist_ok=True)
    os.makedirs("run2", exist_ok=True)
    Path("run1/model.keras").write_bytes(Path("broken.keras").read_bytes())
    Path("run2/model.keras").write_bytes(Path("retrained.keras").read_bytes())
    os.chdir("run1")
    first = sarif_of("model.keras")
    os.chdir("../run2")
    second = sarif_of("model.keras")
    assert _fingerprints(first) == _fingerprints(second)
    prints = [p for _, p in _fingerprints(first)]
    assert len(set(prints)) == len(prints)  # two MA101 on one layer are still two alerts
    os.chdir("..")
    elsewhere = sarif_of("run1/model.keras")  # another file: other fingerprints
    assert not set(prints) & {p for _, p in _fingerprints(elsewhere)}


def test_sarif_reports_unreadable_files_as_tool_notifications(files, in_folder):
    doc = sarif_of("junk.keras", "good.keras")
    validate_sarif(doc)
    (invocation,) = doc["runs"][0]["invocations"]
    assert invocation["executionSuccessful"] is False
    (note,) = invocation["toolExecutionNotifications"]
    assert note["level"] == "error" and note["message"]["text"].startswith("junk.keras: cannot read: ")
    # ... and as an MA100 result, which code scanning shows as an alert
    (result,) = [r for r in doc["runs"][0]["results"] if r["ruleId"] == "MA100"]
    assert result["level"] == "error" and result["message"]["text"].startswith("cannot read: ")
    assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "junk.keras"


def test_sarif_uris_are_encoded_relative_references(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    doc = json.loads(render(hand_made_report("models/my model,v2.keras"), "sarif"))
    uri = doc["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert " " not in uri and unquote(uri) == "models/my model,v2.keras"
    outside = json.loads(render(hand_made_report(str(tmp_path.parent / "x.keras")), "sarif"))
    uri = outside["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri.startswith("file:///")


# --- github -----------------------------------------------------------------------------------

COMMAND = re.compile(r"^::(?P<kind>error|warning|notice) (?P<props>[^:]*)::(?P<message>.*)$")


def _unescape(text: str, prop: bool) -> str:
    pairs = [("%0D", "\r"), ("%0A", "\n")] + ([("%3A", ":"), ("%2C", ",")] if prop else [])
    for escaped, char in pairs:
        text = text.replace(escaped, char)
    return text.replace("%25", "%")


def parse_workflow_commands(text: str) -> list[dict]:
    """As the Actions runner reads them: one command a line, properties split on `,` then `=`."""
    out = []
    for line in text.splitlines():
        match = COMMAND.match(line)
        assert match, f"not a workflow command: {line!r}"
        props = dict(p.split("=", 1) for p in match["props"].split(","))
        out.append({"kind": match["kind"], "message": _unescape(match["message"], False),
                    **{k: _unescape(v, True) for k, v in props.items()}})
    return out


def test_github_commands_parse_back(files, in_folder):
    commands = parse_workflow_commands(check("good.keras", "broken.keras", "custom.json", "junk.keras",
                                             "--format", "github", "--show-info").stdout)
    kinds = [(c["kind"], c["file"], c["title"]) for c in commands]
    assert kinds.count(("error", "broken.keras", "MA101 weight-shape-mismatch")) == 2
    assert ("notice", "custom.json", "MA107 unknown-layer") in kinds
    assert ("error", "junk.keras", "MA100 unreadable-file") in kinds  # reported whatever --select says
    assert all(c["line"] == "1" for c in commands if c["title"].startswith("MA"))
    assert all("'probs'" in c["message"] for c in commands if c["file"] == "broken.keras")
    # without --show-info, no notices: only what a reviewer must act on becomes an annotation
    quiet = parse_workflow_commands(check("broken.keras", "custom.json", "--format", "github").stdout)
    assert [c["kind"] for c in quiet] == ["error", "error"]
    # ... unless info findings fail the run: then they are shown, whatever the flag says
    failing = parse_workflow_commands(check("custom.json", "--format", "github", "--fail-on", "info").stdout)
    assert [(c["kind"], c["title"]) for c in failing] == [("notice", "MA107 unknown-layer")]


def test_github_escaping_round_trips(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (error, notice) = parse_workflow_commands(render(hand_made_report(), "github", show_info=True))
    assert error["file"] == "models/a,b:c.keras"
    assert error["message"] == "layer 'outer/dense': 50% of\nrows: a, b | c <x>"
    assert notice["kind"] == "notice" and notice["message"] == "model-level note"


# --- gitlab -----------------------------------------------------------------------------------

def test_gitlab_code_quality_report(files, in_folder):
    issues = json.loads(check("good.keras", "broken.keras", "custom.json", "junk.keras", "--format", "gitlab").stdout)
    assert isinstance(issues, list) and len(issues) == 4
    for issue in issues:
        assert isinstance(issue["description"], str) and issue["description"]
        assert isinstance(issue["check_name"], str) and issue["check_name"]
        assert re.fullmatch(r"[0-9a-f]{64}", issue["fingerprint"])
        assert issue["severity"] in ("info", "minor", "major", "critical", "blocker")
        assert not os.path.isabs(issue["location"]["path"])
        assert issue["location"]["lines"]["begin"] == 1
    assert len({i["fingerprint"] for i in issues}) == len(issues)
    by_check = {}
    for issue in issues:
        by_check.setdefault(issue["check_name"], []).append(issue)
    assert [i["severity"] for i in by_check["MA101 weight-shape-mismatch"]] == ["critical", "critical"]
    assert by_check["MA107 unknown-layer"][0]["severity"] == "info"
    assert by_check["MA100 unreadable-file"][0]["location"]["path"] == "junk.keras"
    sarif = sarif_of("broken.keras")  # one fingerprint per finding, the same in both formats
    assert sorted(p for _, p in _fingerprints(sarif)) == sorted(
        i["fingerprint"] for i in by_check["MA101 weight-shape-mismatch"])


# --- markdown ---------------------------------------------------------------------------------

def test_markdown_pull_request_comment(files, in_folder):
    text = check("good.keras", "broken.keras", "custom.json", "junk.keras", "--format", "markdown").stdout
    assert text.startswith("## modelaudit: 3 errors, 0 warnings, 1 info in 4 files")  # MA100 counts
    assert "### ✅ `good.keras`" in text and "### ❌ `broken.keras`" in text and "### ⚠️ `junk.keras`" in text
    assert "keras-v3 · 2 layers · **51 params** (51 trainable, 0 non-trainable)" in text  # (8+1)·4 + (4+1)·3
    row = next(line for line in text.splitlines() if line.startswith("| error |"))
    assert "[MA101](https://" in row and "`probs`" in row
    assert "<details><summary>1 info</summary>" in text


def test_markdown_escapes_table_cells(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = render(hand_made_report(), "markdown")
    row = next(line for line in text.splitlines() if line.startswith("| error |"))
    assert "a, b \\| c &lt;x&gt;" in row and row.count(" | ") == 3


# --- --output ---------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
def test_output_file_is_written_whole(fmt, files, in_folder, tmp_path):
    out = tmp_path / f"report.{fmt}"
    result = check("broken.keras", "--format", fmt, "--output", out)
    assert result.exit_code == 1 and result.stdout == ""
    assert out.read_text(encoding="utf-8") == check("broken.keras", "--format", fmt).stdout
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_output_that_cannot_be_written_leaves_nothing(files, in_folder, tmp_path):
    out = tmp_path / "missing-dir" / "report.sarif"
    result = check("broken.keras", "--format", "sarif", "--output", out)
    assert result.exit_code == 2 and "cannot write" in result.stderr
    assert not out.parent.exists()


# --- the README's integration commands work as written ------------------------------------------

def test_readme_integration_commands_work(tmp_path, monkeypatch):
    """Every `modelaudit check ...` the README's Integrations section shows, run as written (a shell
    redirection is left to the shell) in a repository with a clean model in models/ and the
    README's mypkg.models:build_classifier; and its pytest example, run."""
    import shlex
    import sys

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Integrations"):]
    commands = re.findall(r"modelaudit check [^`\n]*", section)
    assert len(commands) >= 5, commands

    (tmp_path / "models").mkdir()
    im.save_classifier(tmp_path / "models" / "classifier.keras")
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "__init__.py").write_text("")
    (tmp_path / "mypkg" / "models.py").write_text(
        "from tests.integration_models import classifier as build_classifier\n")
    (tmp_path / "pyproject.toml").write_text("[tool.modelaudit]\nfail-on = \"warning\"\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        for command in commands:
            args = shlex.split(command, comments=True)[2:]
            args = args[: next((i for i, a in enumerate(args) if a in (">", ">>")), len(args))]
            result = run("check", *args)
            assert result.exit_code == 0, (command, result.output)
            if "--output" in args:
                assert Path(args[args.index("--output") + 1]).read_text(), command
        example = re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)
        scope: dict = {}
        exec(compile(example, "<README example>", "exec"), scope)
        scope["test_classifier_passes_the_audit"]()
    finally:
        for name in [m for m in sys.modules if m == "mypkg" or m.startswith("mypkg.")]:
            del sys.modules[name]
