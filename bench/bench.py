"""modelaudit against what a user would otherwise run, on the same machine in the same run.

    python bench/bench.py                      # build missing models, run everything, print the tables
    python bench/bench.py --runs 5 --write-readme
    python bench/bench.py --only resnet50 convnextbase --skip-keras

For every model: `modelaudit check`, `modelaudit summary` and, as the baseline, a fresh Python process
running `keras.models.load_model(path)` then `model.summary()` (Keras 3 for the `.keras` models,
tf_keras for the legacy `.h5` and the SavedModel, which tf_keras writes). The commands are interleaved: each
round runs every command once, so a change in the machine's load touches all of them alike. Each
figure is the median wall time over the rounds, with the peak RSS of the process (the median of
the rounds' peaks, from wait4's ru_maxrss).

Models are built by bench/models.py into --workdir (default ~/.cache/modelaudit-bench), outside the
repository. Child processes run with bytecode caching on (PYTHONPYCACHEPREFIX in the workdir, as an
installed package has its .pyc files) and TensorFlow on the CPU with its logs silenced.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import tempfile
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import models as bench_models  # noqa: E402

# What is benchmarked, in table order: (case, model name in bench/models.py, what the row says)
MODEL_CASES = [
    ("resnet50", "resnet50", "ResNet50 `.keras`"),
    ("resnet50_h5", "resnet50_h5", "ResNet50 legacy `.h5` (tf_keras)"),
    ("resnet50_savedmodel", "resnet50_savedmodel", "ResNet50 SavedModel (tf_keras)"),
    ("efficientnetv2l", "efficientnetv2l", "EfficientNetV2L `.keras`"),
    ("convnextbase", "convnextbase", "ConvNeXtBase `.keras`"),
    ("convnextxlarge", "convnextxlarge", "ConvNeXtXLarge `.keras`"),
    ("synthetic_1000", "synthetic_1000", "synthetic, 1,000 layers"),
    ("synthetic_2000", "synthetic_2000", "synthetic, 2,000 layers"),
    ("synthetic_5000", "synthetic_5000", "synthetic, 5,000 layers"),
    ("synthetic_10000", "synthetic_10000", "synthetic, 10,000 layers"),
    ("small200", "small200", "folder of 200 small `.keras`"),
]
SCAN_CASES = [("scan_convnextxlarge", "convnextxlarge"), ("scan_resnet50", "resnet50")]
# `modelaudit diff OLD NEW` against the two `check` runs it replaces: (case, old model, new model)
DIFF_CASES = [("diff_resnet50", "resnet50", "resnet50_head10")]
STARTUP = [("help", ["--help"]), ("rules", ["rules"]), ("explain", ["explain", "MA201"])]
ALL_CASES = [c for c, _, _ in MODEL_CASES] + [c for c, _ in SCAN_CASES] + [c for c, _, _ in DIFF_CASES] + ["startup"]

KERAS_ONE = (
    "import sys, keras\n"
    "model = keras.models.load_model(sys.argv[1])\n"
    "model.summary()\n"
)
# The legacy .h5 and the SavedModel: tf_keras, which wrote them (Keras 3 loads no SavedModel).
TF_KERAS_ONE = (
    "import sys, tf_keras\n"
    "model = tf_keras.models.load_model(sys.argv[1])\n"
    "model.summary()\n"
)
# A folder: one process loads every model in it, as a script checking a folder would.
KERAS_FOLDER = (
    "import os, sys, keras\n"
    "for name in sorted(os.listdir(sys.argv[1])):\n"
    "    model = keras.models.load_model(os.path.join(sys.argv[1], name))\n"
    "    model.summary()\n"
)


def child_env(workdir: str, root: str | None = None) -> dict:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = os.path.join(workdir, "pycache")
    env["MODELAUDIT_BENCH_CWD"] = workdir
    env.update(TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow", CUDA_VISIBLE_DEVICES="", NO_COLOR="1")
    if root:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH", "")]))
    return env


def modelaudit_cmd() -> list[str]:
    """modelaudit's CLI, as its console script runs it, from the source tree given by PYTHONPATH
    (`child_env(..., root)`): always the tree being measured, never whatever happens to be installed."""
    return [sys.executable, "-c", "import sys; from modelaudit.cli import main; sys.argv[0] = 'modelaudit'; main()"]


def run_once(cmd: list[str], env: dict, ok_codes=(0,)) -> tuple[float, int, str]:
    """(wall seconds, peak RSS in KiB, error or '') of one process, its output thrown away."""
    with open(os.devnull, "wb") as devnull, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        # cwd outside the repository: `python -c` puts the working directory first on sys.path
        proc = subprocess.Popen(cmd, stdout=devnull, stderr=err, stdin=subprocess.DEVNULL, env=env,
                                cwd=env.get("MODELAUDIT_BENCH_CWD") or None)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        problem = ""
        if proc.returncode not in ok_codes:
            err.seek(0)
            tail = err.read().decode("utf-8", "replace").strip().splitlines()[-3:]
            problem = f"exit {proc.returncode}: {' | '.join(tail)}"
        return wall, usage.ru_maxrss, problem


class Command:
    def __init__(self, case: str, tool: str, argv: list[str], env: dict, ok_codes=(0,), nbytes: int = 0):
        self.case, self.tool, self.argv, self.env, self.ok_codes, self.nbytes = case, tool, argv, env, ok_codes, nbytes
        self.walls: list[float] = []
        self.rss: list[int] = []
        self.errors: list[str] = []

    def run(self):
        wall, rss, problem = run_once(self.argv, self.env, self.ok_codes)
        self.walls.append(wall)
        self.rss.append(rss)
        if problem:
            self.errors.append(problem)

    @property
    def median(self) -> float:
        return statistics.median(self.walls) if self.walls else float("nan")

    @property
    def rss_mib(self) -> float:
        return statistics.median(self.rss) / 1024 if self.rss else float("nan")

    def to_dict(self) -> dict:
        return {"case": self.case, "tool": self.tool, "argv": self.argv, "walls": self.walls,
                "median_s": self.median, "peak_rss_mib": self.rss_mib, "errors": self.errors,
                "bytes": self.nbytes}


def weights_bytes(path: str) -> int:
    """Bytes of the weights member (what --scan-weights reads), else the file's size."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as zf:
            return zf.getinfo("model.weights.h5").file_size
    except (zipfile.BadZipFile, KeyError, OSError):
        return os.path.getsize(path)


def du(path: str) -> int:
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)
    return os.path.getsize(path)


def build_commands(args) -> list[Command]:
    env = child_env(args.workdir)  # Keras's
    ma, ma_env = modelaudit_cmd(), child_env(args.workdir, ROOT)
    before_env = child_env(args.workdir, args.before) if args.before else None
    before = modelaudit_cmd() if args.before else None
    cmds: list[Command] = []
    wanted = set(args.only or ALL_CASES)
    for case, name, _ in MODEL_CASES:
        if case not in wanted:
            continue
        path = bench_models.build(name, args.workdir)
        folder = name == bench_models.FOLDER  # `summary` takes one model: a folder is only checked
        cmds.append(Command(case, "check", ma + ["check", "-q", path], ma_env, (0, 1)))
        if not folder:
            cmds.append(Command(case, "summary", ma + ["summary", path], ma_env))
        if before:
            cmds.append(Command(case, "check (before)", before + ["check", "-q", path], before_env, (0, 1)))
            if not folder:
                cmds.append(Command(case, "summary (before)", before + ["summary", path], before_env))
        if not args.skip_keras:
            script = KERAS_FOLDER if folder else TF_KERAS_ONE if name in bench_models.TF_KERAS else KERAS_ONE
            cmds.append(Command(case, "keras", [sys.executable, "-c", script, path], env))
    for case, name in SCAN_CASES:
        if case not in wanted:
            continue
        path = bench_models.build(name, args.workdir)
        cmds.append(Command(case, "check --scan-weights",
                            ma + ["check", "-q", "--scan-weights", path], ma_env, (0, 1), weights_bytes(path)))
    for case, old, new in DIFF_CASES:
        if case not in wanted:
            continue
        a, b = bench_models.build(old, args.workdir), bench_models.build(new, args.workdir)
        cmds.append(Command(case, "diff", ma + ["diff", a, b], ma_env, (0, 1)))
        cmds.append(Command(case, "check old", ma + ["check", "-q", a], ma_env, (0, 1)))
        cmds.append(Command(case, "check new", ma + ["check", "-q", b], ma_env, (0, 1)))
    if "startup" in wanted:
        for label, argv in STARTUP:
            cmds.append(Command("startup", label, ma + argv, ma_env))
            if before:
                cmds.append(Command("startup", f"{label} (before)", before + argv, before_env))
    return cmds


def machine() -> dict:
    info = {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"model name\s*:\s*(.+)", f.read())
            info["cpu"] = m.group(1).strip() if m else platform.processor()
    except OSError:
        info["cpu"] = platform.processor()
    try:
        with open("/proc/meminfo") as f:
            m = re.search(r"MemTotal:\s*(\d+)", f.read())
            info["memory_gib"] = round(int(m.group(1)) / 1024 / 1024, 1) if m else None
    except OSError:
        pass
    for mod in ("keras", "tf_keras", "tensorflow", "h5py", "numpy"):
        try:
            out = subprocess.run([sys.executable, "-c", f"import {mod}; print({mod}.__version__)"],
                                 capture_output=True, text=True, env=child_env(bench_models.default_workdir()),
                                 timeout=120)
            info[mod] = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else "?"
        except (subprocess.TimeoutExpired, IndexError):
            info[mod] = "?"
    return info


def loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


# ---- the tables ---------------------------------------------------------------------------------------


def _fmt_s(x: float) -> str:
    return "—" if x != x else (f"{x:.3f} s" if x < 10 else f"{x:.1f} s")


def _fmt_mib(x: float) -> str:
    return "—" if x != x else f"{x:.0f} MiB"


def _ratio(base: float, x: float) -> str:
    return "—" if base != base or x != x or x == 0 else f"{base / x:.1f}×"


def tables(cmds: list[Command], meta: dict, workdir: str) -> str:
    by = {(c.case, c.tool): c for c in cmds}
    out = []
    labels = {case: label for case, _, label in MODEL_CASES}
    names = {case: name for case, name, _ in MODEL_CASES}
    has_before = any(t.endswith("(before)") for _, t in by)
    header = "| model | size | `check` | RSS | `summary` | RSS | load_model + summary | RSS | check: × faster | summary: × faster |"
    if any((case, "check") in by for case, _, _ in MODEL_CASES):  # not for a run of --only diff_resnet50
        out.append(header)
        out.append("|" + "---|" * (header.count("|") - 1))
    for case, _, _ in MODEL_CASES:
        if (case, "check") not in by:
            continue
        c, s, k = by[(case, "check")], by.get((case, "summary")), by.get((case, "keras"))
        size = du(bench_models.path_of(workdir, names[case]))
        kt = k.median if k else float("nan")
        km = k.rss_mib if k else float("nan")
        st, sm = (s.median, s.rss_mib) if s else (float("nan"), float("nan"))
        out.append(f"| {labels[case]} | {size / 1e6:,.0f} MB | {_fmt_s(c.median)} | {_fmt_mib(c.rss_mib)} | "
                   f"{_fmt_s(st)} | {_fmt_mib(sm)} | {_fmt_s(kt)} | {_fmt_mib(km)} | "
                   f"{_ratio(kt, c.median)} | {_ratio(kt, st)} |")
    if has_before:
        out.append("")
        out.append("Before and after the fixes in this run (same machine, same models, interleaved):")
        out.append("")
        out.append("| model | `check` before | after | `summary` before | after |")
        out.append("|---|---|---|---|---|")
        for case, _, _ in MODEL_CASES:
            if (case, "check (before)") not in by:
                continue
            sb, sa = by.get((case, "summary (before)")), by.get((case, "summary"))
            out.append(f"| {labels[case]} | {_fmt_s(by[(case, 'check (before)')].median)} | "
                       f"{_fmt_s(by[(case, 'check')].median)} | {_fmt_s(sb.median if sb else float('nan'))} | "
                       f"{_fmt_s(sa.median if sa else float('nan'))} |")
        for label, _ in STARTUP:
            if ("startup", f"{label} (before)") in by:
                out.append(f"| `modelaudit {label}` | {_fmt_s(by[('startup', f'{label} (before)')].median)} | "
                           f"{_fmt_s(by[('startup', label)].median)} | | |")
    scans = [c for c in cmds if c.tool == "check --scan-weights"]
    if scans:
        out.append("")
        out.append("| `check --scan-weights` | weights read | time | throughput | RSS |")
        out.append("|---|---|---|---|---|")
        for c in scans:
            out.append(f"| {c.case.replace('scan_', '')} | {c.nbytes / 1e6:,.0f} MB | {_fmt_s(c.median)} | "
                       f"{c.nbytes / 1e6 / c.median:,.0f} MB/s | {_fmt_mib(c.rss_mib)} |")
    diffs = [case for case, _, _ in DIFF_CASES if (case, "diff") in by]
    if diffs:
        out.append("")
        out.append("| `modelaudit diff` | diff | RSS | `check` old | `check` new | the two checks |")
        out.append("|---|---|---|---|---|---|")
        for case in diffs:
            d, a, b = by[(case, "diff")], by[(case, "check old")], by[(case, "check new")]
            out.append(f"| {case.replace('diff_', '')} | {_fmt_s(d.median)} | {_fmt_mib(d.rss_mib)} | "
                       f"{_fmt_s(a.median)} | {_fmt_s(b.median)} | {_fmt_s(a.median + b.median)} |")
    starts = [c for c in cmds if c.case == "startup" and not c.tool.endswith("(before)")]
    if starts:
        out.append("")
        out.append("| start-up | time | RSS |")
        out.append("|---|---|---|")
        for c in starts:
            out.append(f"| `modelaudit {' '.join(STARTUP_ARGS[c.tool])}` | {_fmt_s(c.median)} | {_fmt_mib(c.rss_mib)} |")
    out.append("")
    out.extend(targets(by))
    errors = [(c, e) for c in cmds for e in c.errors]
    if errors:
        out.append("")
        out.append("Errors:")
        for c, e in errors[:20]:
            out.append(f"- {c.case} {c.tool}: {e}")
    return "\n".join(out) + "\n"


STARTUP_ARGS = dict(STARTUP)


def targets(by: dict) -> list[str]:
    """The issue's targets, each computed from this run's figures."""
    rows = []

    def get(case, tool):
        c = by.get((case, tool))
        return c.median if c else float("nan")

    def mib(case, tool):
        c = by.get((case, tool))
        return c.rss_mib if c else float("nan")

    def row(what, value, ok):
        mark = "—" if ok is None else ("met" if ok else "**not met**")
        rows.append(f"| {what} | {value} | {mark} |")

    k = get("resnet50", "keras")
    for tool in ("check", "summary"):
        t = get("resnet50", tool)
        if t == t:
            ok = (k / t >= 15) if k == k else None
            row(f"ResNet50 `.keras` `{tool}` ≥ 15× faster than load_model + summary", _ratio(k, t), ok)
            m = mib("resnet50", tool)
            row(f"ResNet50 `.keras` `{tool}` peak RSS ≤ 120 MiB", _fmt_mib(m), m <= 120)
    for case, label in (("resnet50_h5", "legacy `.h5`"), ("resnet50_savedmodel", "SavedModel")):
        k = get(case, "keras")
        for tool in ("check", "summary"):
            t = get(case, tool)
            if t == t:
                ok = (k / t >= 25) if k == k else None
                row(f"ResNet50 {label} `{tool}` ≥ 25× faster than tf_keras load_model + summary", _ratio(k, t), ok)
                m = mib(case, tool)
                row(f"ResNet50 {label} `{tool}` peak RSS < 100 MiB", _fmt_mib(m), m < 100)
    base, xl = get("convnextbase", "check"), get("convnextxlarge", "check")
    if base == base and xl == xl:
        row("ConvNeXtXLarge `check` within ±20% of ConvNeXtBase (4× the weights)",
            f"{xl / base:.2f}× ({_fmt_s(xl)} vs {_fmt_s(base)})", abs(xl / base - 1) <= 0.20)
    sizes = [(n, get(f"synthetic_{n}", "check")) for n in (1000, 2000, 5000, 10000)]
    sizes = [(n, t) for n, t in sizes if t == t]
    if len(sizes) >= 3:
        # linear: the cost of each further 1,000 layers stays the same (within a factor of 1.5)
        steps = [(t2 - t1) / (n2 - n1) * 1000 for (n1, t1), (n2, t2) in zip(sizes, sizes[1:])]
        ok = max(steps) <= 1.5 * min(steps) if min(steps) > 0 else None
        row("Growth linear in layers (each further 1,000 layers costs the same, ±50%)",
            ", ".join(f"{s:.3f} s" for s in steps) + " per 1,000 layers", ok)
    t = get("synthetic_10000", "check")
    if t == t:
        row("10,000 layers `check` under 3 s", _fmt_s(t), t < 3)
    t = get("synthetic_10000", "summary")
    if t == t:
        row("10,000 layers `summary` under 3 s", _fmt_s(t), t < 3)
    t = get("small200", "check")
    if t == t:
        row("200 files in one run under 10 s", _fmt_s(t), t < 10)
    for case, _, _ in DIFF_CASES:
        d, a, b = get(case, "diff"), get(case, "check old"), get(case, "check new")
        if d == d:
            row(f"`diff` of two {case.replace('diff_', '')} `.keras` ≤ two `check` runs",
                f"{_fmt_s(d)} vs {_fmt_s(a + b)}", d <= a + b)
    for label, argv in STARTUP:
        t = get("startup", label)
        if t == t:
            row(f"`modelaudit {' '.join(argv)}` under 0.2 s", _fmt_s(t), t < 0.2)
    c = by.get(("scan_convnextxlarge", "check --scan-weights"))
    if c and c.walls:
        rate = c.nbytes / 1e6 / c.median
        row("`--scan-weights` on ConvNeXtXLarge ≥ 300 MB/s", f"{rate:,.0f} MB/s", rate >= 300)
        row("`--scan-weights` on ConvNeXtXLarge peak RSS ≤ 300 MiB", _fmt_mib(c.rss_mib), c.rss_mib <= 300)
    if not rows:
        return []
    return ["| target | this run | |", "|---|---|---|"] + rows


def write_readme(text: str, meta_line: str) -> None:
    path = os.path.join(HERE, "README.md")
    with open(path, encoding="utf-8") as f:
        readme = f.read()
    start, end = "<!-- results:start -->", "<!-- results:end -->"
    if start not in readme or end not in readme:
        raise SystemExit(f"{path} has no {start} ... {end} section to replace")
    head, rest = readme.split(start, 1)
    _, tail = rest.split(end, 1)
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"{head}{start}\n{meta_line}\n\n{text}{end}{tail}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", default=bench_models.default_workdir(), help="where the models are built")
    parser.add_argument("--runs", type=int, default=5, help="rounds; each figure is the median (default 5)")
    parser.add_argument("--only", nargs="*", choices=ALL_CASES, help="only these cases")
    parser.add_argument("--skip-keras", action="store_true", help="no Keras baseline")
    parser.add_argument("--keras-runs", type=int, help="rounds that also run the Keras baseline (default: --runs)")
    parser.add_argument("--before", metavar="DIR", help="also run the modelaudit of this source tree (before/after)")
    parser.add_argument("--json", metavar="FILE", help="write every measurement to FILE")
    parser.add_argument("--write-readme", action="store_true", help="replace the results section of bench/README.md")
    args = parser.parse_args(argv)
    args.workdir = os.path.abspath(args.workdir)

    cmds = build_commands(args)
    # warm-up: one untimed run of each modelaudit command fills the page cache and the bytecode cache
    load_before = loadavg()
    print(f"load average before: {load_before}", file=sys.stderr)
    warmed_keras = False
    for c in list(cmds):  # Keras once (its bytecode cache); the model files are warmed by modelaudit's runs
        if c.tool == "keras":
            if warmed_keras:
                continue
            warmed_keras = True
        _, _, problem = run_once(c.argv, c.env, c.ok_codes)
        if problem and c.tool.endswith("(before)"):  # the older tree lacks a reader: no "before" figure
            print(f"warm-up: {c.case} {c.tool}: {problem}; left out", file=sys.stderr)
            cmds.remove(c)
        elif problem:  # a broken command would cost the whole run (20 minutes) for nothing: stop now
            print(f"warm-up: {c.case} {c.tool}: {problem}", file=sys.stderr)
            return 2
    t0 = time.perf_counter()
    keras_runs = args.runs if args.keras_runs is None else args.keras_runs
    for r in range(args.runs):
        for c in cmds:
            if c.tool == "keras" and r >= keras_runs:
                continue
            c.run()
        print(f"round {r + 1}/{args.runs} done ({time.perf_counter() - t0:.0f} s), load {loadavg()}", file=sys.stderr)
    load_after = loadavg()
    meta = machine()
    meta.update(runs=args.runs, load_before=load_before, load_after=load_after,
                date=time.strftime("%Y-%m-%d %H:%M %Z"), workdir=args.workdir)
    text = tables(cmds, meta, args.workdir)
    meta_line = (f"Run of {meta['date']}: {meta['cpus']} CPUs ({meta.get('cpu', '?')}), "
                 f"{meta.get('memory_gib', '?')} GiB, Python {meta['python']}, Keras {meta['keras']}, "
                 f"tf_keras {meta['tf_keras']} (TensorFlow {meta['tensorflow']}, CPU), h5py {meta['h5py']}, "
                 f"numpy {meta['numpy']}; "
                 f"median of {args.runs} interleaved rounds after a warm-up round"
                 f"{'' if keras_runs == args.runs else f' ({keras_runs} for the Keras baseline)'}; "
                 f"1/5/15-min load average {load_before} before, {load_after} after.")
    print(meta_line + "\n")
    print(text)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"meta": meta, "commands": [c.to_dict() for c in cmds]}, f, indent=1)
    if args.write_readme:
        write_readme(text, meta_line)
    return 1 if any(c.errors for c in cmds) else 0


if __name__ == "__main__":
    sys.exit(main())
