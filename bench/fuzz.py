"""The long fuzz run: hypothesis-generated mutations of real saved models, each audited by modelaudit's
CLI in a worker process limited to 512 MiB and 5 s per input, held to the hostile-input invariants.

    python bench/fuzz.py --inputs 10000 --seed 20250101

See bench/FUZZ.md for what it does, the recorded runs, and what they found. The mutations and the
invariants are tests/hostile/mutations.py, shared with the CI suite (tests/hostile/test_fuzz.py).
Failing inputs are kept in WORKDIR/failures/ with their case (seed + steps) to replay:

    python bench/fuzz.py --replay WORKDIR/failures/cases.jsonl
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from tests.hostile import mutations as m  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--inputs", type=int, default=10_000, help="how many mutated inputs (default 10000)")
    ap.add_argument("--seed", type=int, default=20250101, help="hypothesis seed (default 20250101)")
    ap.add_argument("--levels", default="", help="only these operator levels: json,zip,hdf5,proto,bytes (default all)")
    ap.add_argument("--max-steps", type=int, default=3, help="operators per input, at most (default 3)")
    ap.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "modelaudit-fuzz"),
                    help="seeds, scratch files and failures (default $TMPDIR/modelaudit-fuzz)")
    ap.add_argument("--time-limit", type=float, default=m.TIME_LIMIT, help="CPU seconds per command (default 5)")
    ap.add_argument("--wall-factor", type=float, default=m.WALL_FACTOR,
                    help="a command waiting (no CPU) is stopped at this many times the time limit, wall clock "
                         "(default 3; raise it on a machine shared with other jobs: the CPU limit is the bound)")
    ap.add_argument("--memory-mb", type=int, default=m.MEMORY_LIMIT >> 20, help="address-space limit (default 512)")
    ap.add_argument("--generator-mb", type=int, default=4096,
                    help="address-space limit of this process, which makes the inputs (default 4096)")
    ap.add_argument("--json", help="write the results here as JSON")
    ap.add_argument("--trace", action="store_true", help="print every case before making it")
    ap.add_argument("--replay", help="a cases.jsonl: audit exactly these cases instead of generating")
    args = ap.parse_args(argv)

    work = Path(args.workdir)
    # The seeds are saved by Keras in a child process, so that this one never loads TensorFlow and
    # can limit itself: a mutation that would grow without bound fails here (and is skipped) instead
    # of taking the machine's memory.
    subprocess.run([sys.executable, "-c", "import sys; from tests.hostile.mutations import build_seeds; "
                    "build_seeds(sys.argv[1])", str(work / "seeds")], cwd=str(ROOT), check=True)
    seeds = m.build_seeds(work / "seeds")
    resource.setrlimit(resource.RLIMIT_AS, (args.generator_mb << 20, args.generator_mb << 20))
    run_dir = work / "run"
    shutil.rmtree(run_dir, ignore_errors=True)
    (run_dir / "in").mkdir(parents=True)
    failures_dir = work / "failures"
    if not args.replay:
        shutil.rmtree(failures_dir, ignore_errors=True)
    failures_dir.mkdir(parents=True, exist_ok=True)
    harness = m.Harness(run_dir / "worker", time_limit=args.time_limit, memory_limit=args.memory_mb << 20,
                        wall_factor=args.wall_factor)
    harness.start()

    stats = collections.defaultdict(lambda: collections.Counter())
    generator_failures: list = []
    failures = []
    slowest = []
    started = time.time()
    n = [0]

    def one(case: m.Case, variant=None) -> None:
        i = n[0]
        n[0] += 1
        suffix = Path(case.seed).suffix
        path = m.input_path(case.seed, run_dir / "in")  # a SavedModel seed's: in/input_savedmodel/saved_model.pb
        path.parent.mkdir(parents=True, exist_ok=True)
        if args.trace:
            print(f"#{i} {case}", flush=True)
        t0 = time.perf_counter()
        trouble = make_isolated(case, seeds, path, run_dir)
        made = time.perf_counter() - t0
        if trouble:  # the generator's problem, not the tool's: noted, and the case does not count
            generator_failures.append(f"{case}: {trouble}")
            print(f"generator: {case}: {trouble}", flush=True)
            n[0] -= 1
            return
        result = harness.check(path, variant=i if variant is None else variant)
        level = m.OPS[case.steps[0][0]].level
        for op, _ in case.steps:
            stats[op]["inputs"] += 1
            stats[op]["unreadable" if result.unreadable else "read"] += 1
            if result.violations:
                stats[op]["failures"] += 1
        stats["level:" + level]["inputs"] += 1
        stats["all"]["inputs"] += 1
        stats["all"]["unreadable" if result.unreadable else "read"] += 1
        for code in result.codes:
            stats["exit"][str(code)] += 1
        slowest.append((result.seconds, str(case)))
        slowest.sort(reverse=True)
        del slowest[5:]
        stats["all"]["bytes"] += path.stat().st_size
        stats["time"]["make_ms"] += int(made * 1000)
        if result.violations:
            stats["all"]["failures"] += 1
            keep = failures_dir / f"{'replay-' if args.replay else ''}{len(failures):04d}{suffix}"
            shutil.copyfile(path, keep)
            failures.append({"case": case.to_json(), "variant": i if variant is None else variant, "file": str(keep),
                             "violations": result.violations})
            with open(failures_dir / ("replay.jsonl" if args.replay else "cases.jsonl"), "a") as f:
                f.write(json.dumps(failures[-1]) + "\n")
            print(f"FAIL #{i} {case}\n  " + "\n  ".join(result.violations), flush=True)
        path.unlink()
        if n[0] % 250 == 0:
            rate = n[0] / (time.time() - started)
            print(f"{n[0]} inputs, {len(failures)} failures, {rate:.1f}/s, {harness.restarts} worker restarts",
                  flush=True)

    if args.replay:
        lines = Path(args.replay).read_text().splitlines()
        for line in lines:
            if line.strip():
                record = json.loads(line)
                one(m.Case.from_json(record["case"]), record.get("variant"))
    else:
        from hypothesis import HealthCheck, Phase, given, seed, settings

        levels = [x for x in args.levels.split(",") if x] or None
        # every seed, the SavedModel folders too (the CI suite's default leaves those out)
        strategy = m.cases_strategy(levels=levels, seeds=list(m.SEED_KINDS), max_steps=args.max_steps)
        passes = 0
        # Hypothesis may end a pass short of max_examples (it stops when it runs out of new
        # examples); another pass with the next seed tops the count up.
        while n[0] < args.inputs:

            @seed(args.seed + passes)
            @settings(max_examples=args.inputs - n[0], deadline=None, database=None, phases=[Phase.generate],
                      suppress_health_check=list(HealthCheck))
            @given(strategy)
            def fuzz(case):
                if n[0] < args.inputs:
                    one(case)

            fuzz()
            passes += 1
    harness.close()
    elapsed = time.time() - started

    report = {
        "inputs": n[0], "seed": args.seed, "levels": args.levels or "all", "seconds": round(elapsed, 1),
        "failures": len(failures), "worker_restarts": harness.restarts,
        "max_wall_seconds": round(harness.max_wall, 2), "max_cpu_seconds": round(harness.max_cpu, 2),
        "time_limit": args.time_limit, "wall_limit": args.time_limit * args.wall_factor,
        "generator_failures": generator_failures,
        "unreadable": stats["all"]["unreadable"], "read": stats["all"]["read"],
        "exit_codes": dict(stats["exit"]), "slowest": slowest,
        "per_operator": {k: dict(v) for k, v in sorted(stats.items()) if k in m.OPS},
        "per_level": {k[6:]: v["inputs"] for k, v in sorted(stats.items()) if k.startswith("level:")},
        "python": sys.version.split()[0],
    }
    print(render(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 1 if failures else 0


def make_isolated(case, seeds, path: Path, tmp: Path, timeout: float = 120.0):
    """m.make in a forked child: the HDF5 library can crash editing a file, and a mutation can run
    away; either costs one case, not the run. None when the input was made, else what went wrong."""
    if not hasattr(os, "fork"):
        m.make(case, seeds, path, tmp=tmp)
        return None
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            m.make(case, seeds, path, tmp=tmp)
            code = 0
        except BaseException:
            code = 3
        os._exit(code)
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            return f"making the input took over {timeout:g} s"
        time.sleep(0.002)
    if os.WIFSIGNALED(status):
        return f"the generator crashed (signal {os.WTERMSIG(status)})"
    if os.WEXITSTATUS(status) != 0 or not path.exists():
        return "the generator failed"
    return None


def render(report: dict) -> str:
    lines = [
        f"inputs: {report['inputs']}  seed: {report['seed']}  levels: {report['levels']}  "
        f"time: {report['seconds']} s  failures: {report['failures']}  worker restarts: {report['worker_restarts']}  "
        f"slowest command: {report.get('max_cpu_seconds')} s of CPU (limit {report.get('time_limit')} s), "
        f"{report['max_wall_seconds']} s of wall clock (limit {report.get('wall_limit')} s)",
        f"unreadable (exit 2, one line): {report['unreadable']}  read and audited: {report['read']}  "
        f"exit codes over all commands: {report['exit_codes']}",
        "",
        "| operator | level | inputs | read | unreadable | failures |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for name, c in report["per_operator"].items():
        lines.append(f"| {name} | {m.OPS[name].level} | {c.get('inputs', 0)} | {c.get('read', 0)} | "
                     f"{c.get('unreadable', 0)} | {c.get('failures', 0)} |")
    lines.append("")
    lines.append(f"cases the generator could not make (skipped, not counted): {len(report['generator_failures'])}")
    lines.extend(f"  {g}" for g in report["generator_failures"])
    lines.append("slowest inputs (CPU seconds of the slower command, case):")
    lines.extend(f"  {s:.2f}  {case}" for s, case in report["slowest"])
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
