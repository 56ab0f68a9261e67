"""Replays the bad inputs, first-run probes and stops of issues 11 and 23; one line per probe.

    python tests/probe_inputs.py [--keep DIR]

Each line: the exit status, the number of stderr lines, the files left in the workdir (or
'results kept' / 'results LOST' where a finished run was rerun), the probe's name and the
first stderr line. Every probe expects exit 2 with one line, except where it says otherwise.
Not collected by pytest (tests/test_reliability.py asserts each case); this is the tool to
look at them all at once.
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
TINY = "--config=configs/tiny.py"


def cli(*args: str, module: str = "dprec.main") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=REPO, capture_output=True, text=True
    )


def report(name: str, proc: subprocess.CompletedProcess, left: str) -> None:
    lines = proc.stderr.strip().splitlines()
    first = lines[0] if lines else (proc.stdout.strip().splitlines() or [""])[0]
    print(f"rc={proc.returncode} lines={len(lines):<3} {left:<22} {name}: {first[:110]}")


def files_left(workdir: Path) -> str:
    if not workdir.exists():
        return "nothing written"
    return f"left {sorted(p.name for p in workdir.iterdir())}"


def results_state(workdir: Path, before: bytes) -> str:
    path = workdir / "results.json"
    return "results kept" if path.exists() and path.read_bytes() == before else "results LOST"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", help="keep the probe files in this folder")
    args = parser.parse_args()
    root = Path(args.keep or tempfile.mkdtemp(prefix="dprec-probe-"))
    root.mkdir(parents=True, exist_ok=True)

    rng = np.random.default_rng(0)
    n = 2424
    users = rng.integers(0, 300, n).astype(object)
    items = rng.integers(0, 80, n).astype(object)
    users[:268], items[268:536] = np.nan, ""
    blanks = root / "blank_ids.csv"
    pd.DataFrame({"user_id": users, "item_id": items}).to_csv(blanks, index=False)
    rows = "".join(f"{u},{i}\n" for u, i in rng.integers(0, 999, (5000, 2)))
    whole = gzip.compress(("user_id,item_id\n" + rows).encode())
    truncated = root / "truncated.csv.gz"
    truncated.write_bytes(whole[: len(whole) // 2])
    no_truth = root / "no_truth.csv"
    pd.DataFrame({"uid": rng.integers(0, 200, 3000), "sku": rng.integers(0, 60, 3000)}).to_csv(
        no_truth, index=False
    )

    def fresh(name: str) -> str:
        return f"--workdir={root / name}"

    simple = [
        ("learning_rate=nan", [TINY, "--config.train.learning_rate=nan"]),
        ("method.c1=inf", [TINY, "--config.method.c1=inf"]),
        (
            "blank ids above the threshold",
            [TINY, "--config.data.name=table", f"--config.data.path={blanks}"],
        ),
        (
            "truncated .csv.gz",
            [TINY, "--config.data.name=table", f"--config.data.path={truncated}"],
        ),
        ("missing --config file", ["--config=configs/nope.py"]),
        ("unwritable workdir", [TINY]),
        ("unknown config key", [TINY, "--config.train.nonexistent=1"]),
        ("num_epochs=0", [TINY, "--config.train.num_epochs=0"]),
        ("eval.ks=20,20 (a repeated K)", [TINY, "--config.eval.ks=20,20"]),
    ]
    for name, argv in simple:
        workdir = "--workdir=/proc/dprec-probe" if "unwritable" in name else fresh(name)
        proc = cli(*argv, workdir)
        report(name, proc, files_left(root / name))

    proc = cli("--help")
    report("--help (expect rc=0)", proc, f"{len(proc.stdout.splitlines())} stdout lines")
    proc = cli("--config_help")
    report("--config_help (expect rc=0)", proc, f"{len(proc.stdout.splitlines())} stdout lines")
    proc = cli(
        "--config=configs/default.py:dataset=table,method=dpi",
        f"--config.data.path={no_truth}",
        "--config.data.columns.user=uid",
        "--config.data.columns.item=sku",
        "--dry_run",
        fresh("own csv"),
    )
    report("own CSV without truth (expect rc=0)", proc, files_left(root / "own csv"))

    finished = root / "finished"
    proc = cli(TINY, "--config.train.checkpoint_every=1", f"--workdir={finished}")
    report("tiny run (expect rc=0, a few lines)", proc, proc.stderr.strip().splitlines()[-1][-40:])
    before = (finished / "results.json").read_bytes()
    for name, corrupt in (
        ("corrupt checkpoint chunk", "chunks"),
        ("truncated checkpoint metadata", "metadata"),
    ):
        workdir = root / name
        shutil.copytree(finished, workdir)
        step = workdir / "checkpoints" / "3"
        if corrupt == "chunks":
            for chunk in (step / "state").rglob("ocdbt.process_0/d/*"):
                chunk.write_bytes(rng.bytes(chunk.stat().st_size))
        else:
            metadata = step / "meta" / "metadata"
            metadata.write_bytes(metadata.read_bytes()[:10])
        proc = cli(TINY, "--config.train.checkpoint_every=1", f"--workdir={workdir}")
        report(name, proc, results_state(workdir, before))
    stops_and_misuse(root, no_truth)
    if not args.keep:
        shutil.rmtree(root)


def _wait_for_epoch(workdir: Path, proc: subprocess.Popen, epochs: int = 1) -> None:
    metrics = workdir / "metrics.jsonl"
    while proc.poll() is None:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= epochs:
            return
        time.sleep(0.2)


def stops_and_misuse(root: Path, table: Path) -> None:
    """Issue 23's probes: --dry_run without a workdir, changed data under a finished run, two
    runs on one workdir, SIGTERM, tools on an unfinished run, a full disk."""
    own = [TINY, "--config.data.name=table", "--config.data.columns.user=uid"]
    own += ["--config.data.columns.item=sku", "--config.data.clean_rule=none"]
    proc = cli(TINY, "--dry_run")
    report("--dry_run without --workdir (expect rc=0)", proc, "nothing written")

    data = root / "edited.csv"
    shutil.copy(table, data)
    workdir = root / "edited data"
    argv = [*own, f"--config.data.path={data}", f"--workdir={workdir}"]
    cli(*argv)
    before = {p.name: p.read_bytes() for p in workdir.iterdir() if p.is_file()}
    with open(data, "a") as handle:
        handle.write("7,7\n")
    proc = cli(*argv)
    after = {p.name: p.read_bytes() for p in workdir.iterdir() if p.is_file()}
    report("data edited under a finished run", proc, "run kept" if after == before else "CHANGED")

    workdir = root / "two runs"
    command = [sys.executable, "-m", "dprec.main", TINY, f"--workdir={workdir}"]
    both = [
        subprocess.Popen(
            command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    done = []
    for process in both:
        out, err = process.communicate()
        done.append(subprocess.CompletedProcess(command, process.returncode, out, err))
    status = sorted(p.returncode for p in done)
    loser = next((p for p in done if p.returncode != 0), done[0])
    report(f"two runs on one workdir (statuses {status}, expect [0, 2])", loser, "")

    workdir = root / "sigterm"
    command = [sys.executable, "-m", "dprec.main", TINY, "--config.train.num_epochs=200"]
    command.append(f"--workdir={workdir}")
    running = subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    _wait_for_epoch(workdir, running)
    running.send_signal(signal.SIGTERM)
    out, err = running.communicate()
    proc = subprocess.CompletedProcess(command, running.returncode, out, err)
    report("SIGTERM mid-run (expect rc=143)", proc, files_left(workdir)[:22])
    for tool in ("dprec.tools.recommend", "dprec.tools.denoise_report"):
        proc = cli(f"--workdir={workdir}", module=tool)
        report(f"{tool.rsplit('.', 1)[1]} on the unfinished run", proc, "")

    disk = root / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(disk)], capture_output=True
    )
    if mounted.returncode != 0:
        print("skipped: full disk (cannot mount a 3 MB tmpfs here; tests/test_safe_stops.py)")
        return
    try:
        # 3,000 users: checkpoints larger than the disk (tests/test_safe_stops.py's setting).
        flags = ("--config.data.synthetic.n_users=3000", "--config.data.synthetic.n_items=400")
        proc = cli(TINY, *flags, "--config.train.checkpoint_every=1", f"--workdir={disk / 'run'}")
        report("a 3 MB disk", proc, files_left(disk / "run")[:22])
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


if __name__ == "__main__":
    main()
