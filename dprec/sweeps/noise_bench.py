"""The planted-noise benchmark: which method helps on which kind of noise, and does its noise
score find the noisy interactions?

    dprec-noise-bench --out runs/noise-bench [--kinds uniform,popularity,user] \
        [--rates 0.2,0.4] [--methods normal,tce,rce,dcf,crossdenoise,dpi,dvae] [--seeds 0,1,2] \
        [--tune TRIALS] [--model gmf] [--max-epochs 30] [--jobs 2] [--n-users 2000] \
        [--n-items 400] [--selection metric|loss|trimmed_loss] [--set KEY=VALUE ...] \
        [--worlds block,latent,real-ml100k] [--page docs/results/noise-bench.md]

For each world × kind × rate (a **cell**; the worlds are docs/worlds.md's: block, latent,
real-ml100k, real-modcloth; --n-users/--n-items go only to the worlds that take sizes), a
planted table with known truth (`dprec.data.planted`) is written to
OUT/data/WORLD-KIND-RATE.csv.gz; for each method and the **oracle** (normal training on the
truth-clean training rows only, `data.train_truth=clean`: the ceiling of a perfect denoiser
on the same split), `dprec-tune` (with --tune: TRIALS Optuna trials selected on the **noisy**
validation split, then the best rerun over --seeds) or, without it, `dprec-grid` (the
method's presets over --seeds, also selected on noisy validation) runs it into
OUT/runs/WORLD-KIND-RATE/METHOD. Both resume: rerun the same command after a kill.
`--selection loss|trimmed_loss` has every run pick its epoch (and the tuner its best trial) by
that validation loss instead of the validation metric (`eval.selection`).

With --tune, each cell then gets a **control**: normal training at the learning rate and λ0
that the cell's best method's tune chose, over the same seeds (`dprec-grid` into
OUT/runs/WORLD-KIND-RATE/control). A tune of a few trials samples normal's two parameters at
other points than a method's larger space does; where the control reaches the best method,
its gain was that setting's, not its denoising's.

OUT/noise_bench.csv and OUT/noise_bench.md (and the generated page with --page) then hold,
per cell × method, clean-test R@20 and N@20 (mean ± std over seeds; all and warm users), the
gap closed towards the oracle on R@20 (all users), the reference rankers' rows (popularity,
ItemKNN, RP3β, EASE, iALS, from the normal runs), and the noise-detection ROC AUC of every
method's score for telling clean from noisy training interactions (1 = perfect, 0.5 =
chance): P(real positive) for DPI/DVAE, exp(−ℓ*) for DCF, the weight for CrossDenoise, σ(f)
for normal training and T-CE (ranking by T-CE's loss is ranking by its σ(f)), beside the
trivial inverse item popularity. The summary at the top counts the cells where the best
method closes at least half the gap, and the no-gap cells where it does no harm
(`dprec.sweeps.noise_bench_table`). Bad input prints one line and exits with status 2.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import csv
import inspect
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dprec.data import planted
from dprec.errors import UserInputError
from dprec.evaluation import noise_scores
from dprec.references.names import REFERENCE_NAMES
from dprec.runs import finished, pages, rundir
from dprec.sweeps import grid
from dprec.sweeps.noise_bench_table import (
    CONTROL,
    CSV_COLUMNS,
    METRICS,
    NORMAL,
    ORACLE,
    POPULARITY,
    VIEWS,
    BenchRow,
    Cell,
    cell_verdict,
    index_rows,
    page_body,
    stats,
)

DEFAULT_METHODS = ("normal", "tce", "rce", "dcf", "crossdenoise", "dpi", "dvae")
CSV_FILE = "noise_bench.csv"
TABLE_FILE = "noise_bench.md"
PAGE_TITLE = "Planted-noise benchmark"
# --worlds name → (dprec.data.planted world, its options)
WORLDS = {
    "block": ("block", {}),
    "latent": ("latent", {}),
    "real-ml100k": ("real", {"dataset": "ml-100k"}),
    "real-modcloth": ("real", {"dataset": "modcloth"}),
}
DEFAULT_WORLDS = ("block", "latent", "real-ml100k")
ORACLE_SETTINGS = {"data.train_truth": "clean"}  # the oracle: train on the truth-clean rows
CONTROL_FILE = "control.json"  # in the control's folder: whose setting it reruns
CONTROL_KEYS = ("train.learning_rate", "train.l2")  # the settings normal's own tune searches


class BenchError(Exception):
    """Bad input; the message is the one line to print (exit 2)."""


def data_flags(path: Path) -> dict[str, str]:
    """The `--config.KEY=VALUE` settings that load a planted table (as its CLI prints)."""
    return {
        "data.path": str(path),
        "data.columns.rating": "rating",
        "data.columns.truth": "truth",
        "data.clean_rule": "rating",
        "data.clean_threshold": "4",
        "eval.valid_set": "noisy",  # a user has no clean labels: select on what they have
    }


def world_options(world: str, args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """The planted world of a --worlds name and its options: the sizes (`args.n_users`,
    `args.n_items`) only where the world takes them (the real world has its dataset's)."""
    name, options = WORLDS[world]
    takes = inspect.signature(planted.WORLDS[name]).parameters
    sizes = {key: getattr(args, key) for key in ("n_users", "n_items") if key in takes}
    return name, {**options, **sizes, "seed": 0}


def write_data(
    out: Path, kind: str, rate: float, args: argparse.Namespace, world: str = "block"
) -> Path:
    """OUT/data/WORLD-KIND-RATE.csv.gz (kept if it exists: a rerun resumes on the same data)."""
    path = data_path(out, Cell(world, kind, rate))
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    name, options = world_options(world, args)
    table = planted.plant(kind, rate, world=name, **options).frame
    frame = table.rename(columns={"user": "user_id", "item": "item_id"})
    rundir.write_atomic_bytes(path, frame.to_csv(index=False).encode(), gzip_compress=True)
    return path


def combo_command(
    args: argparse.Namespace, method: str, data: Path, out: Path, fixed: dict[str, str]
) -> list[str]:
    """The tune.py (with --tune) or grid.py command of one kind × rate × method."""
    config = f"configs/default.py:dataset=table,model={args.model},method={method}"
    sets = [f"{key}={value}" for key, value in {**data_flags(data), **fixed}.items()]
    selection = getattr(args, "selection", "metric")  # the default adds no flag
    if args.tune:
        command = [
            *("-m", "dprec.sweeps.tune", "--config", config, "--trials", str(args.tune)),
            *("--out", str(out), "--seeds", args.seeds, "--valid", "noisy"),
            *("--max-epochs", str(args.max_epochs)),
        ]
        if selection != "metric":  # each run's epoch and the best trial: by the loss
            command += ["--select", selection]
    else:
        sets.append(f"train.num_epochs={args.max_epochs}")
        if selection != "metric":  # each seed's run picks its epoch by the loss
            sets.append(f"eval.selection={selection}")
        command = ["-m", "dprec.sweeps.grid", "--config", config, "--out", str(out)]
        command += ["--grid", f"seed={args.seeds}"]
    for item in sets:
        command += ["--set", item]
    return [sys.executable, *command]


def oracle_command(
    args: argparse.Namespace, data: Path, out: Path, fixed: dict[str, str]
) -> list[str]:
    """The oracle's command: normal training, tuned like every method, on the truth-clean
    training rows only (the same split, validation and test)."""
    return combo_command(args, NORMAL, data, out, {**fixed, **ORACLE_SETTINGS})


def combo_dir(out: Path, cell: Cell, method: str) -> Path:
    """OUT/runs/WORLD-KIND-RATE/METHOD (METHOD `oracle` for the oracle)."""
    return out / "runs" / cell.name / method


def seed_runs(out: Path, tuned: bool) -> list[finished.FinishedRun]:
    """Each seed's finished run of one combo (tune.py's DIR/best, or grid.py's DIR)."""
    directory = out / "best" if tuned else out
    if not directory.is_dir():
        return []
    return list(finished.iter_runs(directory, recursive=False))


def popularity_auc(run_dir: Path) -> float | None:
    """AUC of inverse training popularity (rarer item = more likely clean) on a run's
    noisy-interaction table; None without the table."""
    path = run_dir / noise_scores.TABLE_FILE
    if not path.is_file():
        return None
    import pandas as pd

    return noise_scores.inverse_popularity_auc(pd.read_csv(path))


def reference_setting(runs: Sequence[finished.FinishedRun], name: str) -> str:
    """The grid point reference `name` chose on validation ("k=100, shrink=100"; "skipped"
    where it could not run), from the first run that fitted it; "" for none or no setting."""
    for run in runs:
        chosen = run.results.get("reference_settings", {}).get(name)
        if isinstance(chosen, dict):
            if "skipped" in chosen:
                return "skipped"
            hyper = chosen.get("hyper") or {}
            return ", ".join(
                f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}"
                for key, value in hyper.items()
            )
    return ""


def collect(out: Path, cell: Cell, methods: Sequence[str], tuned: bool) -> list[BenchRow]:
    """The rows of one cell: every method's and the oracle's metrics and noise AUC over its
    seed runs; from the normal runs, the reference rankers' rows (with their chosen setting)
    and the AUC of inverse popularity."""
    rows: list[BenchRow] = []

    def add(method, metric, view, values, setting="", score=""):
        head = (cell.world, cell.kind, cell.rate, method, setting, score, metric, view)
        rows.append(BenchRow(*head, *stats(values)))

    normal_runs: list[finished.FinishedRun] = []
    for method in [*methods, ORACLE, CONTROL]:
        folder = combo_dir(out, cell, method)
        if method == CONTROL and not (folder / CONTROL_FILE).is_file():
            continue  # presets mode, or the control not run yet
        setting = control_setting(folder) if method == CONTROL else ""
        runs = seed_runs(folder, tuned and method != CONTROL)  # the control is a grid
        normal_runs = runs if method == NORMAL else normal_runs
        for view in VIEWS:
            for metric in METRICS:
                add(method, metric, view, [run.metric(view, metric) for run in runs], setting)
        aucs = [run.results.get("interpretation", {}).get("noise_detection_auc") for run in runs]
        add(method, "auc", "train", aucs, score="own")
    for name in REFERENCE_NAMES:
        setting = reference_setting(normal_runs, name)
        for view in VIEWS:
            for metric in METRICS:
                values = [run.metric(f"{name}_{view}", metric) for run in normal_runs]
                add(name, metric, view, values, setting=setting)
    aucs = [popularity_auc(run.path) for run in normal_runs]
    add(POPULARITY, "auc", "train", aucs, score="inverse popularity")
    return rows


def control_setting(folder: Path) -> str:
    """The control's label text: "at DPI's learning_rate=0.00364, l2=1"."""
    chosen = json.loads((folder / CONTROL_FILE).read_text())
    values = ", ".join(
        f"{key.split('.')[-1]}={value:.3g}" for key, value in chosen["params"].items()
    )
    return f"at {chosen['label']}'s {values}"


def control_job(
    args: argparse.Namespace, out: Path, cell: Cell, methods: Sequence[str], data: Path
) -> tuple[Path, list[str], Path] | None:
    """The control of a tuned cell: normal training at the learning rate and λ0 of the cell's
    best method (by mean clean-test R@20, all users), over the seeds, as a grid into
    OUT/runs/CELL/control (its control.json names whose setting); None where the cell has no
    best method yet or its tune recorded no such setting."""
    from dprec.tools.report import METHOD_LABELS

    verdict = cell_verdict(index_rows(collect(out, cell, methods, True)), cell, methods)
    if verdict.best is None:
        return None
    summary = combo_dir(out, cell, verdict.best) / "tune.json"
    if not summary.is_file():
        return None
    params = (json.loads(summary.read_text()).get("best") or {}).get("params", {})
    chosen = {key: params[key] for key in CONTROL_KEYS if key in params}
    if not chosen:
        return None
    folder = combo_dir(out, cell, CONTROL)
    record = {"method": verdict.best, "label": METHOD_LABELS.get(verdict.best, verdict.best)}
    record["params"] = chosen
    recorded = folder / CONTROL_FILE
    if recorded.is_file() and json.loads(recorded.read_text()) != record:
        # Another best method or setting than the control already run: keep the finished
        # runs, say so, and leave the control as it is (remove the folder to redo it).
        print(f"{cell.name}/control: the best method changed since; kept the old control")
        return None
    folder.mkdir(parents=True, exist_ok=True)
    rundir.write_atomic(recorded, json.dumps(record) + "\n")
    untuned = argparse.Namespace(**{**vars(args), "tune": 0})
    fixed = {**grid.parse_set(args.set), **{key: str(value) for key, value in chosen.items()}}
    command = combo_command(untuned, NORMAL, data, folder, fixed)
    return folder, command, out / "logs" / f"{cell.name}-{CONTROL}.log"


def parse_list(text: str, name: str, kind=str) -> list:
    try:
        values = [kind(part.strip()) for part in text.split(",") if part.strip()]
    except ValueError as err:
        raise BenchError(f"bad --{name} {text!r}: {err}") from err
    if not values:
        raise BenchError(f"--{name} is empty")
    return values


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dprec-noise-bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument(
        "--worlds",
        default=",".join(DEFAULT_WORLDS),
        help=f"planted worlds, every kind × rate in each: {', '.join(WORLDS)}",
    )
    parser.add_argument("--kinds", default="uniform,popularity,user")
    parser.add_argument("--rates", default="0.2,0.4")
    parser.add_argument("--methods", default=",".join(DEFAULT_METHODS))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--tune", type=int, default=0, help="Optuna trials per method; 0: presets")
    parser.add_argument(
        "--selection",
        choices=("metric", "loss", "trimmed_loss"),
        default="metric",
        help="what picks each run's epoch (and, with --tune, the best trial): the validation "
        "metric, or the validation loss / trimmed loss (eval.selection)",
    )
    parser.add_argument("--model", default="gmf")
    parser.add_argument("--max-epochs", type=int, default=30)
    parser.add_argument("--jobs", type=int, default=1, help="method runs at once")
    parser.add_argument("--n-users", type=int, default=2000)
    parser.add_argument("--n-items", type=int, default=400)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--page", type=Path, help="also write the generated Markdown page here")
    return parser


def sizes_text(worlds: Sequence[str], args: argparse.Namespace) -> str:
    """'2000 users × 400 items in block, latent; real-ml100k at its dataset's size'."""
    sized = [world for world in worlds if "n_users" in world_options(world, args)[1]]
    parts = [f"{args.n_users} users × {args.n_items} items in {', '.join(sized)}"] if sized else []
    if len(sized) < len(worlds):
        parts.append(f"{', '.join(w for w in worlds if w not in sized)} at its dataset's size")
    return "; ".join(parts)


def check_worlds(args: argparse.Namespace) -> list[str]:
    """The --worlds names, each one of `WORLDS`."""
    worlds = parse_list(args.worlds, "worlds")
    for world in worlds:
        if world not in WORLDS:
            raise BenchError(f"unknown world {world!r}; choose from {', '.join(WORLDS)}")
    return worlds


def check_args(args: argparse.Namespace) -> tuple[list[str], list[float], list[str]]:
    from dprec.methods import METHOD_NAMES
    from dprec.models import MODEL_NAMES

    kinds = parse_list(args.kinds, "kinds")
    rates = parse_list(args.rates, "rates", float)
    methods = parse_list(args.methods, "methods")
    for kind in kinds:
        if kind not in planted.KINDS:
            raise BenchError(f"unknown noise kind {kind!r}; choose from {', '.join(planted.KINDS)}")
    if "exposure" in kinds:
        raise BenchError("--kinds exposure plants no noisy clicks to detect; bench the others")
    for rate in rates:
        if not 0.0 < rate < 1.0:
            raise BenchError(f"--rates must be in (0, 1), got {rate}")
    for method in methods:
        if method == ORACLE:
            raise BenchError("--methods: the oracle runs in every cell; leave it out")
        if method not in METHOD_NAMES:
            raise BenchError(f"unknown method {method!r}; choose from {', '.join(METHOD_NAMES)}")
    if any(key in grid.parse_set(args.set) for key in ORACLE_SETTINGS):
        raise BenchError("--set data.train_truth is the oracle's setting; leave it out")
    if "normal" not in methods:
        raise BenchError("--methods must include normal: it is the baseline every row is read by")
    if args.model not in MODEL_NAMES:
        raise BenchError(f"unknown model {args.model!r}; choose from {', '.join(MODEL_NAMES)}")
    if args.tune < 0 or args.jobs < 1 or args.max_epochs < 1:
        raise BenchError("--tune must be >= 0, --jobs and --max-epochs >= 1")
    grid.parse_seeds(args.seeds)
    grid.parse_set(args.set)
    grid.check_out(args.out)
    return kinds, rates, methods


def run_combo(command: list[str], log: Path) -> int:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as handle:
        return subprocess.call(
            command, env=grid.child_env(1), stdout=handle, stderr=subprocess.STDOUT
        )


def run_jobs(jobs: Sequence[tuple[Path, list[str], Path]], workers: int, started: float) -> int:
    """Runs (folder, command, log) jobs `workers` at a time, a progress line each; returns
    how many failed."""
    failed = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {
            pool.submit(run_combo, command, log): (combo, log) for combo, command, log in jobs
        }
        for done, future in enumerate(concurrent.futures.as_completed(futures), 1):
            combo, log = futures[future]
            rc = future.result()
            failed += rc != 0
            name = f"{combo.parent.name}/{combo.name}"
            status = "done" if rc == 0 else f"FAILED (rc {rc}, see {log})"
            elapsed = time.perf_counter() - started
            print(f"[{done}/{len(jobs)}] {name} {status} ({elapsed:.0f} s)", flush=True)
    return failed


def data_path(out: Path, cell: Cell) -> Path:
    """OUT/data/WORLD-KIND-RATE.csv.gz, the cell's planted table (written by write_data)."""
    return out / "data" / f"{cell.name}.csv.gz"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    started = time.perf_counter()
    try:
        kinds, rates, methods = check_args(args)
        worlds = check_worlds(args)
    except (BenchError, grid.GridError) as err:
        print(f"noise_bench: error: {err}", file=sys.stderr)
        return 2
    out, fixed = args.out.resolve(), grid.parse_set(args.set)
    cells = [Cell(world, kind, rate) for world in worlds for kind in kinds for rate in rates]
    jobs = []
    for cell in cells:
        try:
            data = write_data(out, cell.kind, cell.rate, args, cell.world)
        except (UserInputError, ValueError, TypeError) as err:  # a world's data or options
            print(f"noise_bench: error: {cell.name}: {err}", file=sys.stderr)
            return 2
        for method in [*methods, ORACLE]:
            combo = combo_dir(out, cell, method)
            log = out / "logs" / f"{cell.name}-{method}.log"
            command = (
                oracle_command(args, data, combo, fixed)
                if method == ORACLE
                else combo_command(args, method, data, combo, fixed)
            )
            jobs.append((combo, command, log))
    failed = run_jobs(jobs, args.jobs, started)
    if args.tune and not failed:  # the controls need every method's tune of their cell
        controls = [
            job
            for cell in cells
            if (job := control_job(args, out, cell, methods, data_path(out, cell))) is not None
        ]
        failed += run_jobs(controls, args.jobs, started)
    rows = [row for cell in cells for row in collect(out, cell, methods, bool(args.tune))]
    with open(out / CSV_FILE, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        writer.writerows(rows)
    how = (
        f"tuned on noisy validation ({args.tune} trials each)"
        if args.tune
        else "each run with its presets"
    )
    header = (
        f"Planted-noise benchmark: worlds {', '.join(worlds)} ({sizes_text(worlds, args)}); "
        f"{args.model}, "
        f"seeds {args.seeds}, every method and the oracle {how}, ≤ {args.max_epochs} epochs; "
        f"clean test, mean ± std over seeds. Wall time {time.perf_counter() - started:.0f} s."
    )
    body = page_body(rows, cells, methods, header)
    rundir.write_atomic(out / TABLE_FILE, body + "\n")
    print(f"table: {out / TABLE_FILE} (csv: {out / CSV_FILE})")
    if args.page:
        shown = ["dprec-noise-bench", *(sys.argv[1:] if argv is None else argv)]
        print(f"page: {pages.write_page(args.page, PAGE_TITLE, body, shown)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
