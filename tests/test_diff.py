"""`modelaudit diff OLD NEW` on real Keras models: layers added, removed and changed (by path, nested
too), totals, the objective, findings introduced and resolved, REV:PATH through a real git repository,
renamed files, unreadable sides. The truth is Keras's own count_params() and output shapes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from modelaudit.cli import app
from tests.review_models import review  # noqa: F401  (the session fixture)


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def diff_json(old, new):
    result = run("diff", old, new, "--format", "json")
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout), result.exit_code


def test_layers_added_removed_and_changed(review):
    """conv's kernel 3 -> 5, out's units 10 -> 1 and softmax -> sigmoid, `hidden` added, `drop` removed."""
    base, changed = review["base"], review["changed"]
    doc, code = diff_json(base.path, changed.path)
    assert code == 0  # sigmoid + binary cross-entropy on one unit: nothing introduced
    assert doc["schema_version"] == 1 and doc["old"] == base.path and doc["new"] == changed.path
    assert doc["layers"]["added"] == ["hidden"]
    assert doc["layers"]["removed"] == ["drop"]
    by_path = {c["path"]: c for c in doc["layers"]["changed"]}
    assert set(by_path) == {"conv", "flat", "out"}  # flat: same config, a smaller input
    assert by_path["conv"]["config"] == {"kernel_size": [[3, 3], [5, 5]]}
    assert by_path["out"]["config"] == {"units": [10, 1], "activation": ["softmax", "sigmoid"]}
    assert by_path["flat"]["config"] == {}
    assert by_path["out"]["inbound"] == [["drop"], ["hidden"]]  # the layer before it, as the test built them
    assert by_path["conv"]["inbound"][0] == by_path["conv"]["inbound"][1]
    for path in ("conv", "flat", "out"):
        assert by_path[path]["params"] == [base.params[path], changed.params[path]]
        assert by_path[path]["output_shapes"] == [base.shapes[path], changed.shapes[path]]
    totals = doc["totals"]
    assert totals["total_params"] == [base.total, changed.total]
    assert totals["trainable_params"] == [base.trainable, changed.trainable]
    assert totals["non_trainable_params"] == [0, 0]
    assert totals["file_size"] == [os.path.getsize(base.path), os.path.getsize(changed.path)]
    # MACs by hand: Conv2D outputs·k·k·cin·filters, Dense inputs·units
    assert totals["macs"] == [6 * 6 * 9 * 4 + 144 * 10, 4 * 4 * 25 * 4 + 64 * 16 + 16 * 1]
    assert doc["objective"]["changed"] == {"loss": ["categorical_crossentropy", "binary_crossentropy"]}
    assert doc["objective"]["old"]["optimizer"] == "Adam" and doc["objective"]["new"]["metrics"] == ["accuracy"]
    assert doc["findings"] == {"introduced": [], "resolved": []}


def test_a_loss_change_introduces_MA201_and_the_fix_resolves_it(review):
    base, bce = review["base"], review["bce"]
    doc, code = diff_json(base.path, bce.path)
    assert code == 1
    assert [(f["code"], f["layer"], f["severity"]) for f in doc["findings"]["introduced"]] == [("MA201", "out", "error")]
    assert doc["findings"]["resolved"] == []
    assert doc["layers"] == {"added": [], "removed": [], "changed": []}
    assert doc["objective"]["changed"] == {"loss": ["categorical_crossentropy", "binary_crossentropy"]}

    doc, code = diff_json(bce.path, base.path)
    assert code == 0
    assert doc["findings"]["introduced"] == []
    assert [(f["code"], f["layer"]) for f in doc["findings"]["resolved"]] == [("MA201", "out")]

    text = run("diff", base.path, bce.path)
    assert text.exit_code == 1
    assert "loss: categorical_crossentropy -> binary_crossentropy" in text.stdout
    assert "  + out: MA201 [error]" in text.stdout
    assert run("diff", base.path, bce.path, "--fail-on", "error").exit_code == 1
    # the finding is an error; nothing introduced is "at or above info" in the reverse direction
    assert run("diff", bce.path, base.path, "--fail-on", "info").exit_code == 0


def test_a_nested_layer_is_matched_by_its_path(review):
    a, b = review["nested_a"], review["nested_b"]
    doc, _ = diff_json(a.path, b.path)
    by_path = {c["path"]: c for c in doc["layers"]["changed"]}
    inner = by_path["block/inner"]
    assert inner["config"] == {"units": [8, 12], "activation": ["relu", "tanh"]}
    assert inner["params"] == [a.params["block/inner"], b.params["block/inner"]]
    assert inner["output_shapes"] == [a.shapes["block/inner"], b.shapes["block/inner"]]
    assert by_path["head"]["params"] == [a.params["head"], b.params["head"]] and by_path["head"]["config"] == {}
    assert doc["layers"]["added"] == doc["layers"]["removed"] == []


def test_markdown_is_a_pull_request_comment_within_its_limit(review):
    from modelaudit import diff as diff_mod
    from modelaudit.api import settings_from
    from modelaudit.report.diff import render_markdown

    result = run("diff", review["base"].path, review["changed"].path, "--format", "markdown")
    assert result.exit_code == 0
    md = result.stdout
    assert "| Total params |" in md and "#### Layers" in md
    assert "| ✏️ | `out` | Dense |" in md and "`units`: 10 → 1" in md and "| ➕ | `hidden` |" in md
    chart = md.split("```mermaid", 1)[1]  # issue 19's chart of the changed layers' neighbourhood
    assert '"hidden' in chart.replace("#", "") or "hidden" in chart

    sides = [diff_mod.load(p, settings_from(None)) for p in (review["base"].path, review["changed"].path)]
    short = render_markdown(diff_mod.compare(*sides), max_chars=1200)
    assert len(short) <= 1200
    assert "more rows not shown" in short and "| Total params |" in short
    # a cut comment keeps the introduced finding (the gate's reason) before any layer row
    sides = [diff_mod.load(p, settings_from(None)) for p in (review["changed"].path, review["bce"].path)]
    cut = render_markdown(diff_mod.compare(*sides), max_chars=1600)
    assert len(cut) <= 1600 and "more rows not shown" in cut
    assert "[MA201](" in cut
    assert "#### Layers" not in cut or cut.index("#### Findings introduced") < cut.index("#### Layers")


def test_an_unreadable_side_is_one_line_and_exit_2(review, tmp_path):
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    result = run("diff", review["base"].path, broken)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{broken}: cannot read: ")
    assert result.stdout == ""
    assert run("diff", tmp_path / "absent.keras", review["base"].path).exit_code == 2
    assert run("diff", review["base"].path, review["base"].path, "--format", "html").exit_code == 2


# ---- REV:PATH, through a real git repository -------------------------------------------------------

GIT_ID = ["-c", "user.name=modelaudit tests", "-c", "user.email=tests@example.invalid"]


def git(repo, *args):
    return subprocess.run(["git", *GIT_ID, *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def modelaudit(repo, *args):
    return subprocess.run([sys.executable, "-m", "modelaudit", *args], cwd=repo, capture_output=True, text=True,
                          env={**os.environ, "NO_COLOR": "1"})


@pytest.fixture(scope="module")
def repo(review, tmp_path_factory):
    """models/net.keras committed (base), then renamed to models/renamed.keras in a second commit; the
    work tree's copy then overwritten with the binary cross-entropy version (MA201), uncommitted. A
    textconv driver is configured, which reading a revision must never run."""
    root = tmp_path_factory.mktemp("repo")
    git(root, "init", "-q")
    git(root, "config", "diff.modelaudit.textconv", "false")  # would fail the read if it ran
    (root / ".gitattributes").write_text("*.keras diff=modelaudit\n")
    (root / "models").mkdir()
    shutil.copy(review["base"].path, root / "models" / "net.keras")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "net")
    git(root, "mv", "models/net.keras", "models/renamed.keras")
    git(root, "commit", "-q", "-m", "rename")
    shutil.copy(review["bce"].path, root / "models" / "renamed.keras")
    return root


def test_rev_path_against_the_work_tree(repo):
    before = git(repo, "status", "--porcelain", "--untracked-files=all")
    proc = modelaudit(repo, "diff", "HEAD:models/renamed.keras", "models/renamed.keras", "--format", "json")
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["old"] == "HEAD:models/renamed.keras" and doc["new"] == "models/renamed.keras"
    assert [(f["code"], f["layer"]) for f in doc["findings"]["introduced"]] == [("MA201", "out")]
    assert doc["objective"]["changed"] == {"loss": ["categorical_crossentropy", "binary_crossentropy"]}
    # read into memory: nothing was written into the work tree
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == before == " M models/renamed.keras\n"


def test_a_renamed_file_between_two_revisions_is_the_same_model(repo, review):
    proc = modelaudit(repo, "diff", "HEAD~1:models/net.keras", "HEAD:models/renamed.keras", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["layers"] == {"added": [], "removed": [], "changed": []}
    assert doc["findings"] == {"introduced": [], "resolved": []}
    size = os.path.getsize(review["base"].path)
    assert doc["totals"]["file_size"] == [size, size]
    assert doc["totals"]["total_params"] == [review["base"].total] * 2


def test_a_revision_that_lacks_the_file_is_one_line_and_exit_2(repo):
    proc = modelaudit(repo, "diff", "HEAD:models/missing.keras", "models/renamed.keras")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("HEAD:models/missing.keras: cannot read: ")
    assert "does not exist" in lines[0] or "not exist" in lines[0]
    assert modelaudit(repo, "diff", "nosuchrev:models/net.keras", "models/renamed.keras").returncode == 2


def test_a_savedmodel_folder_at_a_revision(tmp_path):
    """A tf_keras SavedModel committed, then saved again with 5 units instead of 3: `HEAD:sm` is the
    committed folder (its files in a private temporary folder, removed afterwards)."""
    import tempfile

    import tf_keras

    def build(units):
        model = tf_keras.Sequential([tf_keras.Input((4,)), tf_keras.layers.Dense(units, activation="softmax", name="out")])
        model.compile("adam", "categorical_crossentropy")
        return model

    git(tmp_path, "init", "-q")
    old = build(3)
    old.save(tmp_path / "sm")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "sm")
    shutil.rmtree(tmp_path / "sm")
    new = build(5)
    new.save(tmp_path / "sm")
    temporary = set(os.listdir(tempfile.gettempdir()))
    proc = modelaudit(tmp_path, "diff", "HEAD:sm", "sm", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    [out] = doc["layers"]["changed"]
    assert out["path"] == "out" and out["config"]["units"] == [3, 5]
    assert out["params"] == [old.get_layer("out").count_params(), new.get_layer("out").count_params()]
    assert doc["totals"]["total_params"] == [old.count_params(), new.count_params()]
    assert not [n for n in set(os.listdir(tempfile.gettempdir())) - temporary if n.startswith("modelaudit-rev-")]


def test_help_shows_the_review_commands_and_options():
    top = run("--help").stdout
    assert "diff " in top and "textconv " in top
    assert "REV:PATH" in run("diff", "--help").stdout
    check = run("check", "--help").stdout
    assert "--baseline" in check and "--write-baseline" in check


def test_a_dtype_policy_reads_the_same_in_both_dialects(tmp_path):
    """Keras 3 writes {"class_name": "DTypePolicy", "config": {"name": "float32"}}, tf_keras "float32":
    the same model saved by each differs in no layer's dtype."""
    import keras
    import tf_keras

    for k, name in ((keras, "k3.keras"), (tf_keras, "k2.h5")):
        model = k.Sequential([k.Input((4,)), k.layers.Dense(3, activation="softmax", name="out")])
        model.save(tmp_path / name)
    doc, _ = diff_json(tmp_path / "k3.keras", tmp_path / "k2.h5")
    assert not [c for c in doc["layers"]["changed"] if any(key.startswith("dtype") for key in c["config"])]


def test_a_retrained_model_is_no_change(review):
    """The same model after a step of training (other weights, other bytes): nothing to review."""
    doc, code = diff_json(review["bce"].path, review["bce_retrained"].path)
    assert code == 0
    assert doc["layers"] == {"added": [], "removed": [], "changed": []}
    assert doc["objective"]["changed"] == {} and doc["findings"] == {"introduced": [], "resolved": []}
    assert doc["totals"]["total_params"] == [review["bce"].total, review["bce_retrained"].total]
    assert "No change in layers, totals, objective or findings." in run("diff", review["bce"].path,
                                                                        review["bce_retrained"].path).stdout


def test_a_blob_past_the_size_bound_is_refused(repo, monkeypatch):
    from modelaudit import diff as diff_mod
    from modelaudit import revision
    from modelaudit.api import settings_from

    monkeypatch.chdir(repo)
    monkeypatch.setattr(revision, "MAX_BLOB_BYTES", 1000)
    side = diff_mod.load("HEAD:models/renamed.keras", settings_from(None))
    assert not side.readable and "more than 1,000 bytes" in side.problem
