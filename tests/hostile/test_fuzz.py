"""Fuzzed and malicious files never crash, hang, exhaust memory or change anything.

Hypothesis mutates real saved models (Keras 3 `.keras`, legacy `.h5` from both writers, JSON configs
from both) at each level — the JSON config, the zip archive, the HDF5 file, the raw bytes — and every
mutated file is audited by modelaudit's command line, each command in a fresh forked child limited to
512 MiB of address space and 5 s of CPU (tests/hostile/mutations.py). For every input: exit code 0, 1 or 2; an unreadable file gives
exactly one line `PATH: cannot read: ...`; no traceback; nothing else on stderr; the input's bytes
unchanged.

CI runs a fixed, bounded set of examples (derandomize=True: 316 inputs over the four levels, a smoke
test of the generator and the invariants; the depth is the long run's 10,000); MODELAUDIT_FUZZ_SCALE
multiplies them for a deeper local run. The long run is bench/fuzz.py (bench/FUZZ.md); everything it found is kept
below as a regression case, each made from a real file by a recorded, structural mutation.
"""

from __future__ import annotations

import os
import random
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings

from tests.hostile import mutations as m

SCALE = float(os.environ.get("MODELAUDIT_FUZZ_SCALE", "1"))


def _examples(n: int) -> int:
    return max(1, int(n * SCALE))


# Inputs at the reader's size bounds take seconds each: the regression cases below hold them at and
# past each bound; the long run (bench/fuzz.py) draws them at random too.
CI_EXCLUDE = ("json_bounds",)

FUZZ = dict(derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck),
            phases=[Phase.explicit, Phase.generate, Phase.shrink])


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> dict:
    """The seed models, saved by real Keras (3 and 2) once for the module."""
    return m.build_seeds(tmp_path_factory.mktemp("seeds"))


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    h = m.Harness(tmp_path_factory.mktemp("worker"))
    h.start()
    yield h
    h.close()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("inputs")


def _audit(case: m.Case, seeds, harness, inputs: Path) -> m.Result:
    path = inputs / f"input{Path(case.seed).suffix}"
    m.make(case, seeds, path, tmp=inputs.parent)
    try:
        return harness.check(path)
    finally:
        path.unlink()


def _hold(case: m.Case, seeds, harness, inputs: Path) -> None:
    result = _audit(case, seeds, harness, inputs)
    assert not result.violations, (
        f"{case}\n  " + "\n  ".join(result.violations)
        + "\n(replay: Case.from_json(" + repr(case.to_json()) + "))"
    )


# ---- hypothesis, level by level -----------------------------------------------------------------


def test_json_level(seeds, harness, inputs):
    """Wrong types, negative and huge numbers, deleted keys, deep nesting, cycles and dangling
    references in inbound_nodes, unicode and path-like names, in the configs of every kind of file."""

    @settings(max_examples=_examples(100), **FUZZ)
    @given(m.cases_strategy(levels=("json",), exclude=CI_EXCLUDE))
    def run(case):
        _hold(case, seeds, harness, inputs)

    run()


def test_zip_level(seeds, harness, inputs):
    """Truncation, duplicate members, bombs, odd member names, a weights member that is not HDF5,
    damaged headers, unsupported compression, encryption flags."""

    @settings(max_examples=_examples(72), **FUZZ)
    @given(m.cases_strategy(levels=("zip",), seeds=[n for n, k in m.SEED_KINDS.items() if k == "keras"]))
    def run(case):
        _hold(case, seeds, harness, inputs)

    run()


def test_hdf5_level(seeds, harness, inputs):
    """Truncation, flipped bytes, soft, external and hard links (cycles), datasets declaring absurd
    shapes, odd dtypes and attributes, damaged global heaps — in legacy .h5 files and in the weights
    member of .keras files."""

    @settings(max_examples=_examples(72), **FUZZ)
    @given(m.cases_strategy(levels=("hdf5",)))
    def run(case):
        _hold(case, seeds, harness, inputs)

    run()


def test_any_level(seeds, harness, inputs):
    """Several mutations at once, raw bytes included."""

    @settings(max_examples=_examples(72), **FUZZ)
    @given(m.cases_strategy(max_steps=3, exclude=CI_EXCLUDE))
    def run(case):
        _hold(case, seeds, harness, inputs)

    run()


# ---- regression cases: what the long run found (bench/FUZZ.md), and the named attacks ------


def _edit_config(seed: str, edit):
    """A maker: `seed` with its model config changed by edit(config) (in place)."""

    def make(seeds, ctx):
        data = Path(seeds[seed]).read_bytes()
        kind = m.SEED_KINDS[seed]
        return m.with_json(data, kind, _FirstSlot(), ctx, lambda obj, rng: (edit(obj), obj)[1], limit=64 << 20)

    return make


class _FirstSlot(random.Random):
    """with_json picks the model config (its first slot) when random() is below 0.85."""

    def random(self):
        return 0.0


def _layers(cfg):
    return m._layers(cfg)


def _rename_all(name_of):
    """Every layer renamed name_of(old), references included: the names reach every report."""

    def edit(cfg):
        names = {}
        for layer in _layers(cfg):
            old = m._layer_name(layer)
            if isinstance(old, str):
                names[old] = name_of(old)
                layer["config"]["name"] = names[old]
                if "name" in layer:
                    layer["name"] = names[old]
        for ref in m._refs(cfg):
            if ref and ref[0] in names:
                ref[0] = names[ref[0]]
        for _, _, value in m._nodes(cfg):
            if isinstance(value, dict):
                for old in [k for k in value if k in names and isinstance(value[k], (list, str))]:
                    value[names[old]] = value.pop(old)

    return edit


def _duplicate_first_name(name: str):
    def edit(cfg):
        layers = cfg["config"]["layers"]  # two layers of the same (top-level) model
        for layer in layers[:2]:
            layer["config"]["name"] = name
            if "name" in layer:
                layer["name"] = name

    return edit


def _layer(cfg, name: str) -> dict:
    return next(x for x in cfg["config"]["layers"] if m._layer_name(x) == name)


def _repeat_calls(name: str, times: int):
    def edit(cfg):
        layer = _layer(cfg, name)
        layer["inbound_nodes"] = layer["inbound_nodes"] * times

    return edit


def _copies(name: str, n: int):
    """n more layers like `name` (same inbound references), named copy_0, copy_1, ..."""

    def edit(cfg):
        layer = _layer(cfg, name)
        for i in range(n):
            cfg["config"]["layers"].append(dict(layer, name=f"copy_{i}", config=dict(layer["config"], name=f"copy_{i}")))

    return edit


def _set_config(class_name: str, key: str, value):
    def edit(cfg):
        for layer in _layers(cfg):
            if layer["class_name"] == class_name:
                layer["config"][key] = value

    return edit


def _bulk(token: bytes, n: int):
    """A config value that is a list of n tiny tokens (`[],` is 3 bytes of text, 64 of memory)."""

    def make(seeds, ctx):
        seed = "k3_functional.json"
        data = Path(seeds[seed]).read_bytes()
        head, sep, tail = data.partition(b'"config": {')
        return head + sep + b'"bulk": [' + token * n + b"0], " + tail

    return make


def _h5_bytes(seed: str, fn):
    """A maker: fn(bytes of the seed's HDF5 file or .keras weights member) -> bytes."""

    def make(seeds, ctx):
        data = Path(seeds[seed]).read_bytes()
        return m.with_hdf5(data, m.SEED_KINDS[seed], fn)

    return make


def _h5_edit(seed: str, edit):
    def make(seeds, ctx):
        data = Path(seeds[seed]).read_bytes()
        return m.with_hdf5(data, m.SEED_KINDS[seed], lambda payload: m.h5_edit(payload, edit, ctx))

    return make


def _links_to_root(n: int):
    def edit(h5):
        group = h5["model_weights"] if "model_weights" in h5 else h5["layers"] if "layers" in h5 else h5
        for i in range(n):
            group[f"loop{i}"] = h5["/"]

    return edit


def _many_members(n: int, copies: int = 1):
    def make(seeds, ctx):
        data = Path(seeds["mnist_classifier.keras"]).read_bytes()
        for _ in range(copies):
            data = m.OPS["zip_many_members"].fn(data, "keras", _Fixed(n), ctx)
        return data

    return make


class _Fixed(random.Random):
    """choice() returns `value` when it is one of the choices."""

    def __init__(self, value):
        super().__init__(0)
        self.value = value

    def choice(self, seq):
        return self.value if self.value in seq else super().choice(seq)


def _case(seed: str, *steps):
    def make(seeds, ctx):
        path = ctx.tmp / f"case{Path(seed).suffix}"
        m.make(m.Case(seed, tuple(steps)), seeds, path, tmp=ctx.tmp)
        return path.read_bytes()

    return make


# (id, seed whose suffix the input takes, maker(seeds, ctx) -> bytes, what the bug was)
REGRESSIONS = [
    # Found by bench/fuzz.py: the HDF5 library loops forever on a global heap object of size 0
    # (modelaudit/formats/h5guard.py). Every legacy .h5 keeps model_config in one.
    ("global-heap-object-zeroed-keras2", "mnist_classifier_keras2.h5",
     _h5_bytes("mnist_classifier_keras2.h5", lambda b: m.global_heap_damage(b, 0, random.Random(1)))),
    ("global-heap-object-zeroed-keras3-writer", "k3_functional.h5",
     _h5_bytes("k3_functional.h5", lambda b: m.global_heap_damage(b, 0, random.Random(2)))),
    ("global-heap-past-end-of-file", "k2_functional.h5",
     _h5_bytes("k2_functional.h5", lambda b: m.global_heap_damage(b, 1, random.Random(3)))),
    ("global-heap-object-overruns", "k2_rich.h5",
     _h5_bytes("k2_rich.h5", lambda b: m.global_heap_damage(b, 2, random.Random(4)))),
    ("global-heap-free-space-size-0", "mnist_classifier_keras2.h5",
     _h5_bytes("mnist_classifier_keras2.h5", lambda b: m.global_heap_damage(b, 3, random.Random(5)))),
    # Found by bench/fuzz.py: a lone surrogate in a layer name crashed the text reports
    # (UnicodeEncodeError writing to stdout: cli._write).
    ("layer-name-lone-surrogate", "mnist_classifier.keras",
     _edit_config("mnist_classifier.keras", _rename_all(lambda old: old + "\ud800"))),
    ("layer-name-lone-surrogate-h5", "k2_functional.h5",
     _edit_config("k2_functional.h5", _rename_all(lambda old: "\udcff" + old))),
    # A newline (or any line separator) in a name that reaches a `cannot read` reason or an internal
    # error: the one line must stay one line (errors.one_line).
    ("duplicate-layer-name-with-newline", "multi_input_functional.keras",
     _edit_config("multi_input_functional.keras", _duplicate_first_name("evil\nPATH: cannot read: forged"))),
    ("duplicate-layer-name-with-line-separator", "k3_functional.json",
     _edit_config("k3_functional.json", _duplicate_first_name("a\u2028b\x85c\rd"))),
    ("layer-names-with-control-characters", "k3_functional.keras",
     _edit_config("k3_functional.keras", _rename_all(lambda old: f"{old}\n\x1b[31m\x00"))),
    # Found by bench/fuzz.py: hard links back to the root group made the HDF5 walk exponential
    # (20 s and 340 MB on a 17 MB file: formats/hdf5.walk now refuses a group linked twice).
    ("hdf5-hard-links-to-root", "k2_rich.h5", _h5_edit("k2_rich.h5", _links_to_root(8))),
    ("hdf5-hard-links-to-root-keras-weights", "k3_functional.keras", _h5_edit("k3_functional.keras", _links_to_root(8))),
    ("hdf5-hard-links-to-root-many-objects", "k2_rich.h5",
     _case("k2_rich.h5", ("hdf5_links", 406), ("hdf5_many", 53))),
    # Found by bench/fuzz.py: 132,000 zip members, half of them duplicates, took minutes
    # (keras_v3.read bounds the members at MAX_MEMBERS).
    ("zip-132000-members", "mnist_classifier.keras", _many_members(70000, copies=2)),
    ("zip-4000-duplicate-members", "mnist_classifier.keras", _many_members(2000, copies=2)),
    # Found by bench/fuzz.py: one layer called 90,601 times (inbound_nodes duplicated) took 5 s, and its
    # summary row was a 600 KB-wide table cell padded onto every row: MemoryError under 512 MiB
    # (json_config.MAX_CALLS; summary cells cut at MAX_CELL).
    ("layer-called-90601-times", "multi_input_functional.keras",
     _edit_config("multi_input_functional.keras", _repeat_calls("kind", 90601))),
    ("layer-called-49000-times", "multi_input_functional.keras",
     _edit_config("multi_input_functional.keras", _repeat_calls("kind", 49000))),
    ("layer-name-of-2-MB", "k3_functional.keras",
     _edit_config("k3_functional.keras", _rename_all(lambda old: old * (1_000_000 // len(old)) if old == "o1" else old))),
    # Found by measuring the bounds: 16 MiB of `[],` is 430 MiB of lists (json_config.MAX_JSON_VALUES),
    # and 80,000 layers took 8.6 s and 505 MiB (json_config.MAX_LAYERS, now 15,000).
    ("json-5-million-empty-lists", "k3_functional.json", _bulk(b"[],", 5_000_000)),
    ("json-1.9-million-floats", "k3_functional.json", _bulk(b"0.5,", 1_900_000)),
    # Found by the first attempt at the recorded run (input #1192): units of 10**300 and more gave more
    # params than a float holds, and the summary's footer ("Total params: ... (... GB)") raised
    # OverflowError (report/summary._human_bytes).
    ("params-beyond-a-float", "mnist_classifier_keras2.h5",
     _edit_config("mnist_classifier_keras2.h5", _set_config("Dense", "units", 2**1100))),
    ("params-beyond-a-float-keras3", "mnist_classifier.keras",
     _edit_config("mnist_classifier.keras", _set_config("Dense", "units", 10**400))),
    # Found by bench/fuzz.py (seed 20261201): a layer nested so deep that its summary indent was wider
    # than the fitted "Layer (type)" column; wrap() then cut no character per pass and looped, growing
    # without bound (7 GB in a minute)
    ("summary-indent-wider-than-its-column", "k3_functional.json",
     _case("k3_functional.json", ("json_class", 1601), ("json_number", 1601), ("json_delete_key", 1601))),
    # Found by bench/fuzz.py (seed 20261201): MA304 added two Dense layers' params when one count was unknown
    ("linear-stack-with-an-unknown-count", "k2_functional.json",
     _case("k2_functional.json", ("json_inbound_nodes", 1261), ("json_class", 2677), ("json_shape", 390725))),
    # Found by bench/fuzz.py (seed 20261201, input #7633): a 13 MB config of 2 million values took 5.04 s of
    # CPU in `check`, half of it in the security walk (checks/security._Walk.run: strings already seen
    # under the same key are not looked at again, and a list's callable slot is decided once)
    ("config-at-the-value-bound", "k3_npz.keras",
     _case("k3_npz.keras", ("json_bounds", 273170), ("hdf5_dtype", 95792253))),
    # Found by bench/fuzz.py (seed 20261201, input #314): a nested Sequential called 49,000 times took 4.6 s
    # of CPU: the propagation walked it once per call (infer/propagate._walk now reuses the outputs of
    # a call on the same shapes) and the graph view joined its inputs' lists per call (infer/wiring)
    ("nested-model-called-49000-times", "k2_functional.h5",
     _case("k2_functional.h5", ("json_splice", 50104), ("json_bounds", 138216), ("json_splice", 50104))),
    ("layers-at-the-bound", "multi_input_functional.keras",
     _edit_config("multi_input_functional.keras", _copies("label", 14_990))),
    ("layers-past-the-bound", "multi_input_functional.keras",
     _edit_config("multi_input_functional.keras", _copies("label", 15_001))),
]

# The heavy ones run their first two commands only (a few seconds each); the rest run every command.
HEAVY = {"layers-at-the-bound", "layers-past-the-bound", "layer-called-49000-times", "layer-called-90601-times",
         "zip-132000-members", "zip-4000-duplicate-members", "hdf5-hard-links-to-root-many-objects",
         "json-1.9-million-floats", "config-at-the-value-bound",
         "nested-model-called-49000-times"}


@pytest.mark.parametrize("make", [r[2] for r in REGRESSIONS], ids=[r[0] for r in REGRESSIONS])
def test_regression(make, seeds, harness, inputs, tmp_path):
    case_id = next(r for r in REGRESSIONS if r[2] is make)
    data = make(seeds, m.Context(seeds, tmp_path))
    path = inputs / f"input{Path(case_id[1]).suffix}"
    path.write_bytes(data)
    try:
        # every command in turn (check in each format, summary, --scan-weights), not just two
        for variant in range(0, 2 if case_id[0] in HEAVY else len(m.COMMANDS), 2):
            result = harness.check(path, variant=variant)
            assert not result.violations, f"{case_id[0]}:\n  " + "\n  ".join(result.violations)
    finally:
        path.unlink()


def test_regression_outcomes(seeds, tmp_path):
    """What the fixed inputs now give, beyond the invariant: the reason a user reads."""
    from typer.testing import CliRunner

    from modelaudit.cli import app

    ctx = m.Context(seeds, tmp_path)
    by_id = {r[0]: r for r in REGRESSIONS}
    expect = {
        "global-heap-object-zeroed-keras2": "damaged HDF5 global heap",
        "global-heap-past-end-of-file": "damaged HDF5 global heap",
        "hdf5-hard-links-to-root": "a second link to a group already read",
        "zip-132000-members": "more than the 4096-member bound",
        "duplicate-layer-name-with-newline": "evil\\nPATH: cannot read: forged",
        "layer-called-90601-times": "more than 50000 layer calls",
        "json-5-million-empty-lists": "holds more than 2,000,000 values",
        "layers-past-the-bound": "more than 15000 layers",
    }
    runner = CliRunner()
    for case_id, reason in expect.items():
        _, seed, make, *_ = by_id[case_id]
        path = tmp_path / f"{case_id}{Path(seed).suffix}"
        path.write_bytes(make(seeds, ctx))
        result = runner.invoke(app, ["check", str(path)])
        assert result.exit_code == 2, (case_id, result.output)
        assert result.stderr.count("\n") == 1, (case_id, result.stderr)
        assert result.stderr.startswith(f"{path}: cannot read: ") and reason in result.stderr, (case_id, result.stderr)
    # a lone surrogate in every layer name: read, reported, escaped on a UTF-8 stdout
    path = tmp_path / "surrogate.keras"
    path.write_bytes(by_id["layer-name-lone-surrogate"][2](seeds, ctx))
    result = runner.invoke(app, ["summary", str(path)])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("case", m.hostile_cases(), ids=str)
def test_named_attacks(case, seeds, harness, inputs):
    """The attacks the issue names, one fixed case each (from mutations.hostile_cases)."""
    _hold(case, seeds, harness, inputs)


# ---- the checker itself: it must catch what it is for ----------------------------------------------


def _reply(**kw):
    base = {"code": 0, "timeout": False, "seconds": 0.1, "stdout": "report\n", "stderr": "", "c_output": ""}
    base.update(kw)
    return base


@pytest.mark.parametrize("reply,needle", [
    ({"hang": True, "where": []}, "hung"),
    ({"died": -11}, "died"),
    (_reply(timeout="cpu"), "longer than 5 s of CPU time"),
    (_reply(timeout="wall", cpu_seconds=0.2), "waited past 15 s of wall clock (0.2 s of CPU)"),
    (_reply(code=3), "exit code 3"),
    (_reply(code=1, stderr="Traceback (most recent call last):\n  boom\n"), "traceback"),
    (_reply(code=2, stderr="P: cannot read: a\nP: cannot read: b\n"), "2 `cannot read` lines"),
    (_reply(code=2, stderr="P: cannot read: a\nsecond line\n"), "more than the one line"),
    (_reply(code=2, stderr=""), "exit 2 without saying why"),
    (_reply(code=1, stderr="P: cannot read: x\n"), "unreadable but exit 1"),
    (_reply(code=2, stderr="P: cannot read: structure too large to read\n"), "memory bound"),
    (_reply(code=2, stderr="P: internal error in MA1 x: KeyError: 1 (please report)\n"), "a rule raised"),
    (_reply(c_output="HDF5-DIAG: Error detected"), "C code wrote"),
    (_reply(code=0, stdout=""), "no report"),
])
def test_invariants_catch_violations(reply, needle):
    problems = m.invariants(reply, "P", ["check", "P"], 5.0)
    assert any(needle in p for p in problems), problems


def test_invariants_pass_a_clean_run():
    assert m.invariants(_reply(), "P", ["check", "P"], 5.0) == []
    assert m.invariants(_reply(code=2, stdout="", stderr="P: cannot read: empty file\n"), "P",
                        ["summary", "P"], 5.0) == []


def test_worker_limits_hold(harness, tmp_path):
    """Every command runs in a fresh child under the address-space limit, and reports its costs."""
    reply = harness.run(["check", str(tmp_path / "missing.keras")])
    assert reply["code"] == 2 and ": cannot read: " in reply["stderr"]
    assert reply["rlimit_as"] == m.MEMORY_LIMIT
    assert 0 < reply["maxrss_kb"] <= reply["vmpeak_kb"] < m.MEMORY_LIMIT // 1024
    assert reply["cpu_seconds"] <= reply["seconds"] + 0.05


@pytest.fixture(scope="module")
def quick_harness(tmp_path_factory):
    """0.2 s of CPU per command, and a wall clock far beyond it (so that a spin on a busy machine is
    caught by the CPU limit, which is what it tests)."""
    h = m.Harness(tmp_path_factory.mktemp("quick"), time_limit=0.2, wall_factor=50, workers=1)
    h.start()
    yield h
    h.close()


@pytest.mark.parametrize("what,needle", [
    ("crash", "died (signal 11)"),
    ("spin", "longer than 0.2 s of CPU time"),
    ("allocate", "memory bound"),
])
def test_harness_catches_misbehaviour(what, needle, harness, quick_harness):
    """The checks are not vacuous: a crash, a spin and a 4 GiB allocation in a command are failures."""
    h = quick_harness if what == "spin" else harness
    argv = ["__selftest__", what]
    problems = m.invariants(h.run(argv), "P", argv, h.time_limit)
    assert any(needle in p for p in problems), problems


def test_both_workers_run_an_inputs_commands(harness, tmp_path):
    """An input's two commands run at once, one per worker process, each in its own child."""
    replies = harness.run_all([["check", str(tmp_path / "a.keras")], ["check", str(tmp_path / "b.keras")]])
    assert [r["code"] for r in replies] == [2, 2]
    assert "a.keras: cannot read" in replies[0]["stderr"] and "b.keras: cannot read" in replies[1]["stderr"]
    assert len({w.proc.pid for w in harness.workers}) == 2


def test_harness_catches_hangs(tmp_path):
    """A wait past the wall clock, and one no signal can interrupt (a hang in C code), are failures;
    the worker survives both (with a short limit: 0.2 s of CPU, 0.6 s of wall clock)."""
    h = m.Harness(tmp_path / "worker", time_limit=0.2)
    h.start()
    try:
        for what, needle in (("sleep", "waited past 0.6 s of wall clock"), ("blocked", "hung")):
            argv = ["__selftest__", what]
            problems = m.invariants(h.run(argv), "P", argv, h.time_limit)
            assert any(needle in p for p in problems), (what, problems)
        assert h.restarts == 0
        assert h.run(["check", str(tmp_path / "missing.keras")])["code"] == 2
    finally:
        h.close()


def test_zip_fixture_sanity(seeds):
    """The seeds are what the suite claims: real Keras files of each kind."""
    for name, kind in m.SEED_KINDS.items():
        data = Path(seeds[name]).read_bytes()
        if kind == "keras":
            with zipfile.ZipFile(seeds[name]) as zf:
                names = set(zf.namelist())
                assert {"config.json", "metadata.json"} <= names and names & {"model.weights.h5", "model.weights.npz"}
        elif kind == "h5":
            assert data.startswith(b"\x89HDF\r\n\x1a\n") and b"GCOL" in data
        elif kind == "savedmodel":  # saved_model.pb, beside the rest of the folder tf_keras wrote
            assert (Path(seeds[name]).parent / "variables" / "variables.index").is_file()
        else:
            assert data.lstrip().startswith(b"{")
