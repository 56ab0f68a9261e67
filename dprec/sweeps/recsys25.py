"""The RecSys'25 re-evaluation's ML-100k table, reproduced cell by cell.

    python -m dprec.sweeps.recsys25 --out runs/recsys25 \\
        --their-logs EvalDenoisingRec/results/metric_records.zip \\
        [--models gmf,neumf] [--cells erm,erm_re,tce,rce,udt,dcf,dpi,dvae] [--seeds 0,1,2] \\
        [--jobs 2] [--epochs N] [--page docs/results/recsys25.md]

Each (model, cell, seed) is one ordinary `python -m dprec.main` run of the protocol preset
(`configs/recsys25.py:model=M,method=CELL`, `dprec.config.recsys25`) into OUT/M/CELL/seedS;
finished runs are reused, so a stopped reproduction resumes. ERM_RE trains exactly what ERM
trains (only the selection differs), so its rows read ERM's runs. The preset tests every
epoch, so both sides are read the same way: their per-epoch logs (`results/metric_records.zip`
of GitHub `bachml/EvalDenoisingRec`, the file or the unzipped folder) and dprec's
`metrics.jsonl`, each at the epoch their `results/process_metrics.py` picks: the smallest
validation loss (ERM_RE: the trimmed one), and for DeCA / DeCA(p) the smallest *training*
loss (their DeCA logs have no `eval_loss`, so the script falls back to `epoch_loss`). The page
shows, per model and cell, test R@20 and N@20 (mean ± std over seeds) on both sides, the
difference, and flags every cell whose R@20 differs by more than 0.01 or more than the larger
of the two seed spreads; docs/protocol.md explains the flagged cells.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import io
import json
import subprocess
import sys
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from dprec.cli import OneLineErrorParser, run_tool
from dprec.config import recsys25
from dprec.errors import UserInputError
from dprec.runs import pages, rundir
from dprec.sweeps import grid

METRICS = ("recall@20", "ndcg@20")
THEIR_COLUMNS = {"recall@20": "Recall@20", "ndcg@20": "NDCG@20"}
# A cell differs when |Δ R@20| exceeds this and the seed spread (the issue's tolerance).
TOLERANCE = 0.01
# The cells whose epoch their process_metrics.py picks by the training loss (no eval_loss).
TRAINING_LOSS_CELLS = ("dpi", "dvae")


@dataclasses.dataclass(frozen=True)
class Selected:
    """One run read at its selected epoch: the epoch (counted from 1, as dprec counts: their
    logs' epoch 0 is the first) and the test metrics there."""

    seed: int
    epoch: int
    metrics: dict[str, float]


def trained_cell(cell: str) -> str:
    """The cell whose runs a cell reads: ERM_RE reads ERM's (the same training)."""
    return "erm" if cell == "erm_re" else cell


def selection_key(cell: str) -> str:
    """dprec's metrics.jsonl key that their rule minimises for `cell`."""
    if cell == "erm_re":
        return "valid_trimmed_loss"
    return "loss" if cell in TRAINING_LOSS_CELLS else "valid_loss"


def _argmin_first(values: Sequence[float]) -> int:
    """The index of the smallest value, the earliest on ties (pandas idxmin's rule)."""
    best = 0
    for index, value in enumerate(values):
        if value < values[best]:
            best = index
    return best


# --- their side: the per-epoch logs -------------------------------------------------------


def _their_csvs(logs: Path, model: str, cell: str) -> dict[int, str]:
    """{seed: CSV text} of their ML-100k logs of (model, cell), from the zip or a folder."""
    folder = f"{recsys25.THEIR_MODELS[model]}-ml100k-{recsys25.THEIR_METHODS[cell]}-"
    found: dict[int, str] = {}
    if logs.is_dir():
        members = [
            (str(p.relative_to(logs)), p.read_text)
            for p in sorted(logs.rglob("*.csv"))
            if "__MACOSX" not in p.parts
        ]
    else:
        archive = zipfile.ZipFile(logs)
        members = [
            (name, lambda name=name: archive.read(name).decode())
            for name in sorted(archive.namelist())
            if name.endswith(".csv") and "__MACOSX" not in name
        ]
    for name, read in members:
        parts = Path(name).parts
        if len(parts) < 2 or "ml100k" not in parts or not parts[-2].startswith(folder):
            continue
        seed = parts[-2].removeprefix(folder)
        if seed.isdigit():
            found[int(seed)] = read()
    return found


def their_selected(logs: Path, model: str, cell: str) -> list[Selected]:
    """Their runs of (model, cell), each at the epoch of process_metrics.py's rule: the
    smallest `eval_loss`, else (DeCA's logs) the smallest `epoch_loss`."""
    selected = []
    for seed, text in sorted(_their_csvs(logs, model, cell).items()):
        frame = pd.read_csv(io.StringIO(text))
        column = "eval_loss" if "eval_loss" in frame.columns else "epoch_loss"
        row = frame.iloc[_argmin_first(frame[column].tolist())]
        selected.append(
            Selected(
                seed=seed,
                epoch=int(row["epoch"]) + 1,
                metrics={k: float(row[c]) for k, c in THEIR_COLUMNS.items()},
            )
        )
    return selected


# --- dprec's side: the runs -------------------------------------------------------------------


def workdir(out: Path, model: str, cell: str, seed: int) -> Path:
    return out / model / trained_cell(cell) / f"seed{seed}"


def run_seed(out: Path, model: str, cell: str, seed: int, extra: dict[str, str], jobs: int) -> int:
    """Train one seed of one cell (skipped when its results.json exists); the exit status."""
    path = workdir(out, model, cell, seed)
    if grid.is_complete(path):
        return 0
    config = grid.resolve_config(f"configs/recsys25.py:model={model},method={cell}")
    command = grid.run_command(sys.executable, config, str(path), {"seed": str(seed), **extra})
    log = out / "logs" / f"{model}-{cell}-{seed}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as handle:
        status = subprocess.call(
            command, env=grid.child_env(jobs), stdout=handle, stderr=subprocess.STDOUT
        )
    print(f"{'done' if status == 0 else 'FAILED'} {path} (log {log})", flush=True)
    return status


def epoch_records(path: Path) -> list[dict]:
    """metrics.jsonl's records, one per epoch (the last written wins after a resume)."""
    records: dict[int, dict] = {}
    for line in (path / rundir.METRICS_FILE).read_text().splitlines():
        if line.strip():
            record = json.loads(line)
            records[int(record["epoch"])] = record
    return [records[epoch] for epoch in sorted(records)]


def our_selected(out: Path, model: str, cell: str, seeds: Iterable[int]) -> list[Selected]:
    """dprec's finished runs of (model, cell), each at the epoch of their rule."""
    key = selection_key(cell)
    selected = []
    for seed in seeds:
        path = workdir(out, model, cell, seed)
        if not grid.is_complete(path):
            continue
        records = [r for r in epoch_records(path) if r.get(key) is not None and "test_paper" in r]
        if not records:
            raise UserInputError(
                f"{path}: no epoch logs {key} and test_paper; rerun it with the recsys25 preset"
            )
        record = records[_argmin_first([r[key] for r in records])]
        selected.append(
            Selected(
                seed=seed,
                epoch=int(record["epoch"]),
                metrics={k: float(record["test_paper"][k]) for k in METRICS},
            )
        )
    return selected


# --- the table ------------------------------------------------------------------------------


def compare(theirs: Sequence[Selected], ours: Sequence[Selected]) -> dict:
    """One cell: both sides' mean ± std per metric, the differences and the verdict."""
    row: dict = {"their_n": len(theirs), "our_n": len(ours)}
    for side, runs in (("their", theirs), ("our", ours)):
        row[f"{side}_epoch"] = pages.mean_std([r.epoch for r in runs])[0] if runs else None
        for metric in METRICS:
            row[f"{side}_{metric}"] = (
                pages.mean_std([r.metrics[metric] for r in runs]) if runs else None
            )
    if theirs and ours:
        their_mean, their_std = row["their_recall@20"]
        our_mean, our_std = row["our_recall@20"]
        row["diff"] = {m: row[f"our_{m}"][0] - row[f"their_{m}"][0] for m in METRICS}
        allowed = max(TOLERANCE, their_std, our_std)
        row["differs"] = abs(our_mean - their_mean) > allowed
    else:
        row["diff"], row["differs"] = None, None
    return row


def _pair(value: tuple[float, float] | None) -> str:
    return "–" if value is None else f"{value[0]:.4f} ± {value[1]:.4f}"


def markdown(rows: dict[tuple[str, str], dict]) -> str:
    """Per model: one line per cell, their and dprec's R@20 / N@20 and the differences."""
    header = [
        "cell",
        "their R@20",
        "dprec R@20",
        "Δ R@20",
        "their N@20",
        "dprec N@20",
        "Δ N@20",
        "epoch their / dprec (from 1)",
        "seeds",
        "verdict",
    ]
    parts = [
        "Test R@20 and N@20 on the clean test (rating 5) of the re-evaluation's ML-100k split, "
        "mean ± std over seeds, each run at the epoch their `process_metrics.py` selects (the "
        "smallest validation loss; ERM_RE the trimmed one; DeCA / DeCA(p) the smallest training "
        "loss). Their side: their shipped per-epoch logs (seeds 2023-2025); dprec's: the "
        f"`recsys25` preset. **differs**: |Δ R@20| > max({TOLERANCE}, either seed std)."
    ]
    for model in recsys25.MODELS:
        body = []
        for cell in recsys25.CELLS:
            row = rows.get((model, cell))
            if row is None:
                continue
            diff = row["diff"]
            epochs = " / ".join(
                "–" if row[f"{s}_epoch"] is None else f"{row[f'{s}_epoch']:.1f}"
                for s in ("their", "our")
            )
            verdict = {None: "–", True: "**differs**", False: "within"}[row["differs"]]
            body.append(
                [
                    recsys25.LABELS[cell],
                    _pair(row["their_recall@20"]),
                    _pair(row["our_recall@20"]),
                    "–" if diff is None else f"{diff['recall@20']:+.4f}",
                    _pair(row["their_ndcg@20"]),
                    _pair(row["our_ndcg@20"]),
                    "–" if diff is None else f"{diff['ndcg@20']:+.4f}",
                    epochs,
                    f"{row['their_n']} / {row['our_n']}",
                    verdict,
                ]
            )
        if body:
            table = "\n".join(rundir.markdown_table(header, body))
            parts.append(f"## {recsys25.THEIR_MODELS[model]}\n\n{table}")
    compared = [r for r in rows.values() if r["differs"] is not None]
    within = sum(1 for r in compared if not r["differs"])
    parts.append(f"{within} of {len(compared)} compared cells within the tolerance.")
    return "\n\n".join(parts) + "\n"


def _choices(text: str, allowed: Sequence[str], what: str) -> list[str]:
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    for part in chosen:
        if part not in allowed:
            raise UserInputError(f"unknown {what} {part!r}; one of {', '.join(allowed)}")
    return chosen


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog="python -m dprec.sweeps.recsys25",
        description=__doc__.splitlines()[0],
        tool="recsys25",
    )
    parser.add_argument("--out", type=Path, required=True, help="folder of dprec's runs")
    parser.add_argument(
        "--their-logs",
        type=Path,
        required=True,
        help="their results/metric_records.zip (or the unzipped folder)",
    )
    parser.add_argument("--models", default=",".join(recsys25.MODELS))
    parser.add_argument("--cells", default=",".join(recsys25.CELLS))
    parser.add_argument("--seeds", default="0,1,2", help="dprec's seeds (default %(default)s)")
    parser.add_argument("--epochs", type=int, help="override the preset's epochs (a smoke run)")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once")
    parser.add_argument("--no-train", action="store_true", help="only read finished runs")
    parser.add_argument("--page", type=Path, help="write the generated Markdown page here")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def body() -> int:
        if not args.their_logs.exists():
            raise UserInputError(
                f"--their-logs {args.their_logs} does not exist; give the path of "
                "results/metric_records.zip from GitHub bachml/EvalDenoisingRec"
            )
        models = _choices(args.models, recsys25.MODELS, "model")
        cells = _choices(args.cells, recsys25.CELLS, "cell")
        seeds = [int(s) for s in grid.parse_seeds(args.seeds)]
        extra = {"train.num_epochs": str(args.epochs)} if args.epochs else {}
        todo = sorted(
            {(m, trained_cell(c), s) for m in models for c in cells for s in seeds},
            key=lambda t: (t[2], t[0], recsys25.CELLS.index(t[1])),
        )
        failed = 0
        if not args.no_train:
            with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
                statuses = pool.map(lambda t: run_seed(args.out, *t, extra, args.jobs), todo)
                failed = sum(1 for status in statuses if status != 0)
        rows = {
            (m, c): compare(
                their_selected(args.their_logs, m, c), our_selected(args.out, m, c, seeds)
            )
            for m in models
            for c in cells
        }
        text = markdown(rows)
        print(text, end="")
        if args.page:
            pages.write_page(args.page, "The RecSys'25 ML-100k table, reproduced", text)
            print(f"wrote {args.page}")
        return 1 if failed else 0

    return run_tool("recsys25", body)


if __name__ == "__main__":
    sys.exit(main())
