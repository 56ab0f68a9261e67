"""The planted-noise benchmark: which method helps on which kind of noise, and does its noise
score find the noisy interactions?

    dprec-noise-bench --out runs/noise-bench [--kinds uniform,popularity,user] \
        [--rates 0.2,0.4] [--methods normal,tce,rce,dcf,crossdenoise,dpi,dvae] [--seeds 0,1,2] \
        [--tune TRIALS] [--model gmf] [--max-epochs 30] [--jobs 2] [--n-users 2000] \
        [--n-items 400] [--set KEY=VALUE ...]

For each kind × rate, a planted table with known truth (`dprec.data.planted`) is written to
OUT/data; for each method, `dprec-tune` (with --tune: TRIALS Optuna trials selected on
the **noisy** validation split, then the best rerun over --seeds) or, without it,
`dprec-grid` (the method's presets over --seeds, also selected on noisy validation) runs it
into OUT/runs/KIND-RATE/METHOD. Both resume: rerun the same command after a kill.

OUT/noise_bench.csv and OUT/noise_bench.md then hold, per kind × rate × method, clean-test
R@20 and N@20 (mean ± std over seeds; all and warm users), the popularity ranker's row, and
the noise-detection ROC AUC of every method's score for telling clean from noisy training
interactions (1 = perfect, 0.5 = chance): P(real positive) for DPI/DVAE, exp(−ℓ*) for DCF,
the weight for CrossDenoise, σ(f) for normal training and T-CE (ranking by T-CE's loss is
ranking by its σ(f)), and the trivial inverse item popularity. Bad input prints one line and
exits with status 2.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import csv
import math
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dprec.data import planted
from dprec.evaluation import noise_scores
from dprec.runs import finished, rundir
from dprec.sweeps import grid

DEFAULT_METHODS = ("normal", "tce", "rce", "dcf", "crossdenoise", "dpi", "dvae")
METRICS = ("recall@20", "ndcg@20")
VIEWS = ("paper", "warm")
CSV_FILE = "noise_bench.csv"
TABLE_FILE = "noise_bench.md"
CSV_COLUMNS = ["kind", "rate", "method", "score", "metric", "view", "mean", "std", "n"]
POPULARITY = "popularity"  # the model-free ranker's row, and the trivial noise score


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


def write_data(out: Path, kind: str, rate: float, args: argparse.Namespace) -> Path:
    """OUT/data/KIND-RATE.csv.gz (kept if it exists: a rerun resumes on the same data)."""
    path = out / "data" / f"{kind}-{rate:g}.csv.gz"
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    table = planted.plant(kind, rate, n_users=args.n_users, n_items=args.n_items, seed=0).frame
    frame = table.rename(columns={"user": "user_id", "item": "item_id"})
    rundir.write_atomic_bytes(path, frame.to_csv(index=False).encode(), gzip_compress=True)
    return path


def combo_command(
    args: argparse.Namespace, method: str, data: Path, out: Path, fixed: dict[str, str]
) -> list[str]:
    """The tune.py (with --tune) or grid.py command of one kind × rate × method."""
    config = f"configs/default.py:dataset=table,model={args.model},method={method}"
    sets = [f"{key}={value}" for key, value in {**data_flags(data), **fixed}.items()]
    if args.tune:
        command = [
            *("-m", "dprec.sweeps.tune", "--config", config, "--trials", str(args.tune)),
            *("--out", str(out), "--seeds", args.seeds, "--valid", "noisy"),
            *("--max-epochs", str(args.max_epochs)),
        ]
    else:
        sets.append(f"train.num_epochs={args.max_epochs}")
        command = ["-m", "dprec.sweeps.grid", "--config", config, "--out", str(out)]
        command += ["--grid", f"seed={args.seeds}"]
    for item in sets:
        command += ["--set", item]
    return [sys.executable, *command]


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

    table = pd.read_csv(path)
    popularity = table.groupby("item")["item"].transform("size").to_numpy()
    return noise_scores.roc_auc(-popularity, table["truth"].to_numpy() == 1)


def _stats(values: Sequence[float | None]) -> tuple[float, float, int]:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return math.nan, math.nan, 0
    mean = sum(finite) / len(finite)
    var = sum((v - mean) ** 2 for v in finite) / (len(finite) - 1) if len(finite) > 1 else 0.0
    return mean, math.sqrt(var), len(finite)


def collect(out: Path, kind: str, rate: float, methods: Sequence[str], tuned: bool) -> list:
    """CSV rows of one kind × rate: every method's metrics and AUC, the popularity ranker."""
    rows, popularity_metrics, popularity_aucs = [], {}, []
    for method in methods:
        combo = out / "runs" / f"{kind}-{rate:g}" / method
        runs = seed_runs(combo, tuned)
        for view in VIEWS:
            for metric in METRICS:
                values = [run.metric(view, metric) for run in runs]
                rows.append([kind, rate, method, "", metric, view, *_stats(values)])
        aucs = [run.results.get("interpretation", {}).get("noise_detection_auc") for run in runs]
        rows.append([kind, rate, method, "own", "auc", "train", *_stats(aucs)])
        for run in runs:
            for metric in METRICS:
                value = run.metric(f"{POPULARITY}_paper", metric)
                if value is not None:
                    popularity_metrics.setdefault(metric, value)
        if method == "normal":
            popularity_aucs = [popularity_auc(run.path) for run in runs]
    for metric in METRICS:
        value = popularity_metrics.get(metric)
        rows.append([kind, rate, POPULARITY, "", metric, "paper", *_stats([value])])
    rows.append([kind, rate, POPULARITY, "inverse popularity", "auc", "train",
                 *_stats(popularity_aucs)])  # fmt: skip
    return rows


def _cell(mean: float, std: float, n: int) -> str:
    if n == 0:
        return "–"
    return f"{mean:.4f} ± {std:.4f}" if n > 1 else f"{mean:.4f}"


def markdown(rows: list[list[Any]], methods: Sequence[str], header: str) -> str:
    """One table per kind × rate: a row per method, the popularity ranker last."""
    index = {(r[0], r[1], r[2], r[4], r[5]): r[6:9] for r in rows}
    from dprec.tools.report import METHOD_LABELS

    labels = {**METHOD_LABELS, POPULARITY: "Popularity (AUC: inverse popularity)"}
    labels |= {"normal": "Normal (AUC: σ(f))", "tce": "T-CE (AUC: its loss)"}
    lines = [header, ""]
    combos = list(dict.fromkeys((r[0], r[1]) for r in rows))
    columns = ["R@20 all", "N@20 all", "R@20 warm", "N@20 warm", "noise AUC"]
    keys = [("recall@20", "paper"), ("ndcg@20", "paper"), ("recall@20", "warm")]
    keys += [("ndcg@20", "warm"), ("auc", "train")]
    for kind, rate in combos:
        best_recall = max(
            (index[(kind, rate, m, "recall@20", "paper")][0] for m in methods),
            key=lambda v: -math.inf if math.isnan(v) else v,
        )
        body = []
        for method in [*methods, POPULARITY]:
            cells = [labels.get(method, method)]
            for metric, view in keys:
                stats = index.get((kind, rate, method, metric, view))
                cell = _cell(*stats) if stats else "–"
                if (metric, view) == ("recall@20", "paper") and stats and stats[0] == best_recall:
                    cell = f"**{cell}**"
                cells.append(cell)
            body.append(cells)
        lines += [f"### {kind} noise, rate {rate:g}", ""]
        lines += [*rundir.markdown_table(["method", *columns], body), ""]
    return "\n".join(lines)


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
    parser.add_argument("--kinds", default="uniform,popularity,user")
    parser.add_argument("--rates", default="0.2,0.4")
    parser.add_argument("--methods", default=",".join(DEFAULT_METHODS))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--tune", type=int, default=0, help="Optuna trials per method; 0: presets")
    parser.add_argument("--model", default="gmf")
    parser.add_argument("--max-epochs", type=int, default=30)
    parser.add_argument("--jobs", type=int, default=1, help="method runs at once")
    parser.add_argument("--n-users", type=int, default=2000)
    parser.add_argument("--n-items", type=int, default=400)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    return parser


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
        if method not in METHOD_NAMES:
            raise BenchError(f"unknown method {method!r}; choose from {', '.join(METHOD_NAMES)}")
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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    started = time.perf_counter()
    try:
        kinds, rates, methods = check_args(args)
    except (BenchError, grid.GridError) as err:
        print(f"noise_bench: error: {err}", file=sys.stderr)
        return 2
    out, fixed = args.out.resolve(), grid.parse_set(args.set)
    jobs = []
    for kind in kinds:
        for rate in rates:
            data = write_data(out, kind, rate, args)
            for method in methods:
                combo = out / "runs" / f"{kind}-{rate:g}" / method
                log = out / "logs" / f"{kind}-{rate:g}-{method}.log"
                jobs.append((combo, combo_command(args, method, data, combo, fixed), log))
    failed = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
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
    rows = [
        row
        for kind in kinds
        for rate in rates
        for row in collect(out, kind, rate, methods, bool(args.tune))
    ]
    with open(out / CSV_FILE, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        writer.writerows(rows)
    how = f"tuned on noisy validation ({args.tune} trials each)" if args.tune else "presets"
    header = (
        f"Planted-noise benchmark: {args.model}, {args.n_users} users × {args.n_items} items, "
        f"seeds {args.seeds}, {how}, ≤ {args.max_epochs} epochs; clean test, mean ± std. "
        f"Wall time {time.perf_counter() - started:.0f} s."
    )
    rundir.write_atomic(out / TABLE_FILE, markdown(rows, methods, header) + "\n")
    print(f"table: {out / TABLE_FILE} (csv: {out / CSV_FILE})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
