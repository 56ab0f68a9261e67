"""How long the command line takes to report a bad input: `python -m dprec.main` with a few
bad inputs, each run in a fresh process, median wall seconds, and whether JAX was imported.

    python benchmarks/bench_cli_errors.py [--repeats 5]

Every case must exit with status 2 and one error line. A user sees this latency on every
mistake, and the test suite pays it in each of its command-line error tests.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from page_option import add_page_option, printed_page

REPO = Path(__file__).resolve().parents[1]
TINY = "configs/tiny.py"

# case → the arguments of `python -m dprec.main` (the workdir is appended)
CASES = {
    "unknown dataset": ["--config=configs/default.py:dataset=nope"],
    "bad field value": [f"--config={TINY}", "--config.train.num_epochs=0"],
    "unknown field": [f"--config={TINY}", "--config.train.nonexistent=1"],
    "unknown method name": [f"--config={TINY}", "--config.method.name=nope"],
    "bad --num_processes": [f"--config={TINY}", "--num_processes=0"],
}

# Runs dprec.main as `python -m` would, then reports whether JAX was imported.
_PROBE = """
import runpy, sys
sys.argv = ["dprec.main", *sys.argv[1:]]
try:
    runpy.run_module("dprec.main", run_name="__main__")
except SystemExit as exit:
    print("exit", exit.code, "jax-imported", "jax" in sys.modules, file=sys.stderr)
"""


def time_case(args: list[str], workdir: str) -> tuple[float, str]:
    """Wall seconds of one bad-input run, and its last stderr line (the probe's)."""
    tic = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, *args, f"--workdir={workdir}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    seconds = time.perf_counter() - tic
    lines = proc.stderr.strip().splitlines()
    if len(lines) != 2 or not lines[0].startswith("dprec: error:") or "exit 2" not in lines[1]:
        raise SystemExit(f"{args}: expected one error line and exit 2, got:\n{proc.stderr}")
    return seconds, lines[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    add_page_option(parser)
    args = parser.parse_args()
    with printed_page(args.page, "Bad-input latency"):
        print(f"load {os.getloadavg()[0]:.2f}; median of {args.repeats} fresh processes")
        with tempfile.TemporaryDirectory() as tmp:
            for name, case in CASES.items():
                runs = [time_case(case, os.path.join(tmp, "run")) for _ in range(args.repeats)]
                median = statistics.median(seconds for seconds, _ in runs)
                jax_imported = runs[-1][1].endswith("True")
                print(
                    f"{name:22s} {median:6.2f} s  JAX imported: {'yes' if jax_imported else 'no'}"
                )


if __name__ == "__main__":
    main()
