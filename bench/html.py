"""What `--format html` costs next to the check itself, and what the page costs a browser.

For each model (bench/models.py builds them into the bench workdir): in one fresh process, the audit
(read, recompute, rules) and then the HTML rendering (igraph's import and layout included), each
timed; the page's size; then Chromium (headless, one start) loading the page and painting a
screenshot. Medians of --rounds runs.

    python bench/html.py [--workdir DIR] [--rounds 5] [--only resnet50 synthetic_1000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from models import default_workdir, path_of  # noqa: E402

CASES = ("resnet50", "efficientnetv2l", "synthetic_1000", "synthetic_10000")

# One fresh process per round: the audit, then the rendering (its first igraph import included).
CHILD = """
import json, sys, time
t0 = time.perf_counter()
from modelaudit.api import audit
report = audit(sys.argv[1])
t1 = time.perf_counter()
from modelaudit.report import html
page = html.render(report)
t2 = time.perf_counter()
open(sys.argv[2], "w", encoding="utf-8").write(page)
print(json.dumps({"check": t1 - t0, "render": t2 - t1, "bytes": len(page.encode()),
                  "layers": report.stats["layers"]}))
"""

CHROMIUM = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--hide-scrollbars", "--window-size=1280,900"]


def browser(page: str) -> float:
    """Seconds for one Chromium start to load the page, run its script and paint a screenshot."""
    folder = tempfile.mkdtemp(prefix="modelaudit-html-bench-")
    try:
        start = time.perf_counter()
        done = subprocess.run([shutil.which("chromium") or "/usr/bin/chromium", *CHROMIUM,
                               f"--user-data-dir={folder}/profile", f"--screenshot={folder}/shot.png",
                               "--dump-dom", "file://" + page], capture_output=True, text=True, timeout=300)
        elapsed = time.perf_counter() - start
        if 'data-ready="1"' not in done.stdout:
            raise SystemExit(f"Chromium did not finish the page {page}")
        return elapsed
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", default=default_workdir())
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", nargs="*", default=list(CASES))
    args = parser.parse_args(argv)
    env = dict(os.environ, PYTHONPATH=os.path.dirname(HERE))
    out = tempfile.mkdtemp(prefix="modelaudit-html-pages-")
    print("| model | layers | check (s) | HTML rendering (s) | page | Chromium load + paint (s) |")
    print("|---|---:|---:|---:|---:|---:|")
    for case in args.only:
        model = path_of(args.workdir, case)
        if not os.path.exists(model):
            print(f"| {case} | not built (python bench/models.py) | | | | |")
            continue
        page = os.path.join(out, f"{case}.html")
        runs = []
        for _ in range(args.rounds):
            done = subprocess.run([sys.executable, "-c", CHILD, model, page], capture_output=True, text=True,
                                  env=env, check=True)
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
        loads = [browser(page) for _ in range(min(args.rounds, 3))]
        check = statistics.median(r["check"] for r in runs)
        render = statistics.median(r["render"] for r in runs)
        print(f"| {case} | {runs[0]['layers']:,} | {check:.3f} | {render:.3f} | "
              f"{runs[0]['bytes'] / 1e6:.2f} MB | {statistics.median(loads):.2f} |")
    shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
