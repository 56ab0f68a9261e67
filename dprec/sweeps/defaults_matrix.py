"""Every method × model × dataset at its defaults: does it learn, and where does it stand?

    python -m dprec.sweeps.defaults_matrix --out runs/defaults \\
        [--datasets ml-100k,modcloth,ml-100k-recsys25,synthetic] [--methods normal,tce,...] \\
        [--models gmf:3,neumf:3,mf:1,cdae:1,lightgcn:1] [--epochs N] [--jobs 2] \\
        [--page docs/results/defaults-matrix.md] [--method-pages docs/methods]
    python -m dprec.sweeps.defaults_matrix --tiny --out /tmp/m   # CI: tiny data, a few epochs

Each cell is one ordinary `python -m dprec.main` run per seed of the (dataset, model, method)
presets (`configs/default.py:dataset=D,model=M,method=X`, reference recommenders off), into
OUT/D/M/X/seedS; finished runs are reused, so a stopped matrix resumes. The page shows, per
dataset, test R@20 at the selected epoch and at the last epoch (mean ± std over seeds), the
popularity ranker on the same users, and the collapse guard's verdict (results.json
"health"); under it, the checks of the issue's goal: no collapse, last ≥ 0.9 × selected, T-CE
and DCF within one std of normal training, every method at or above popularity.
`ml-100k-recsys25` is the RecSys'25 re-evaluation's ML-100k split (../shared/data) read as an
own table in the DenoisingRec layout. `--tiny` trains every method on a tiny synthetic table
for a few epochs, one run after the other in this process, and exits 1 if a run's loss did
not fall or a run collapsed.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from dprec.cli import OneLineErrorParser, run_tool
from dprec.data.registry import data_dir
from dprec.errors import UserInputError
from dprec.methods.cards import METHOD_NAMES
from dprec.runs import pages, rundir
from dprec.runs.finished import FinishedRun, iter_runs
from dprec.sweeps import grid

METRIC = "recall@20"
DATASETS = ("ml-100k", "modcloth", "ml-100k-recsys25", "synthetic")
MODELS = "gmf:3,neumf:3,mf:1,cdae:1,lightgcn:1"
TINY_MODELS = "gmf:1"


@dataclasses.dataclass(frozen=True)
class Cell:
    """One (dataset, model, method) of the matrix and the seeds it runs."""

    dataset: str
    model: str
    method: str
    seeds: tuple[int, ...]

    def workdir(self, out: Path, seed: int) -> Path:
        return out / self.dataset / self.model / self.method / f"seed{seed}"


def dataset_config(dataset: str) -> tuple[str, dict[str, str]]:
    """(the preset's dataset name, its extra `--config.KEY=VALUE` settings)."""
    if dataset == "ml-100k-recsys25":
        prefix = data_dir() / "ml-100k-evaldenoisingrec" / "ml100k"
        return "table", {
            "data.name": "table",
            "data.format": "denoisingrec",
            "data.split": "column",
            "data.path": str(prefix),
            "data.clean_rule": "rating",
        }
    return dataset, {}


# The tiny matrix's settings (typed: `--tiny` trains in this process).
TINY_SETTINGS: dict[str, object] = {
    "data.synthetic.n_users": 300,
    "data.synthetic.n_items": 80,
    "train.num_epochs": 5,
    # ~16 steps an epoch at a larger rate: 20 steps of 1e-3 (batch 256) move the tables too
    # little for a loss whose start is set by the data (PD's popularity term) to fall.
    "train.batch_size": 64,
    "train.learning_rate": 0.01,
}


def tiny_settings() -> dict[str, str]:
    """`TINY_SETTINGS` as `--config.KEY=VALUE` strings."""
    return {key: str(value) for key, value in TINY_SETTINGS.items()}


def run_tiny_in_process(cell: Cell, seed: int, out: Path) -> int:
    """One tiny run in this process (CI's matrix: one JAX start for all runs, not one per run);
    the exit status a subprocess would give: 0, or 1 with the error printed."""
    from dprec import train  # JAX starts here, in this mode only
    from dprec.config.presets import build_config
    from dprec.config.recsys25 import set_dotted

    workdir = cell.workdir(out, seed)
    if (workdir / rundir.RESULTS_FILE).is_file():
        return 0
    config = build_config(f"dataset={cell.dataset},model={cell.model},method={cell.method}")
    set_dotted(config, {**TINY_SETTINGS, "seed": seed, "eval.references": ()})
    try:
        train.train_and_evaluate(config, str(workdir))
    except Exception as err:  # a failed cell is a line of the report, not the end of the matrix
        print(f"FAILED {workdir}: {type(err).__name__}: {err}", flush=True)
        return 1
    print(f"done {workdir}", flush=True)
    return 0


def run_cell_seed(cell: Cell, seed: int, out: Path, extra: dict[str, str]) -> tuple[Cell, int, int]:
    """Run one seed of one cell (skipped when its results.json exists); (cell, seed, status)."""
    workdir = cell.workdir(out, seed)
    if (workdir / rundir.RESULTS_FILE).is_file():
        return cell, seed, 0
    name, settings = dataset_config(cell.dataset)
    config = grid.resolve_config(
        f"configs/default.py:dataset={name},model={cell.model},method={cell.method}"
    )
    overrides = {**settings, "seed": str(seed), "eval.references": "()", **extra}
    command = grid.run_command(sys.executable, config, str(workdir), overrides)
    log = out / "logs" / f"{cell.dataset}-{cell.model}-{cell.method}-{seed}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as handle:
        status = subprocess.call(
            command, env=grid.child_env(2), stdout=handle, stderr=subprocess.STDOUT
        )
    print(f"{'done' if status == 0 else 'FAILED'} {workdir} (log {log})", flush=True)
    return cell, seed, status


def collect(out: Path) -> dict[tuple[str, str, str], list[FinishedRun]]:
    """{(dataset, model, method): the finished runs under OUT/dataset/model/method}."""
    cells: dict[tuple[str, str, str], list[FinishedRun]] = {}
    for run in iter_runs(out):
        dataset, model, method = run.path.relative_to(out).parts[:3]
        cells.setdefault((dataset, model, method), []).append(run)
    return cells


def _values(runs: Sequence[FinishedRun], key: str, view: str = "paper") -> list[float]:
    values = [run.results.get(key, {}).get(view, {}).get(METRIC) for run in runs]
    return [v for v in values if v is not None]


def summarize(cells: dict[tuple[str, str, str], list[FinishedRun]]) -> list[dict]:
    """One row per cell: selected and last R@20 over seeds, popularity, collapses."""
    rows = []
    for (dataset, model, method), runs in sorted(cells.items()):
        selected, last = _values(runs, "test"), _values(runs, "test_last")
        popularity = [
            run.results["test"]["popularity_paper"][METRIC]
            for run in runs
            if "popularity_paper" in run.results.get("test", {})
        ]
        collapsed = [
            run.seed for run in runs if run.results.get("health", {}).get("status") == "collapsed"
        ]
        rows.append(
            {
                "dataset": dataset,
                "model": model,
                "method": method,
                "n": len(runs),
                "selected": selected,
                "last": last,
                "popularity": popularity[0] if popularity else None,
                "collapsed": collapsed,
            }
        )
    return rows


def goal_checks(rows: list[dict]) -> list[str]:
    """The issue's goal, cell by cell: the lines that say where it fails."""
    lines = []
    by_key = {(r["dataset"], r["model"], r["method"]): r for r in rows}
    for row in rows:
        name = f"{row['dataset']} {row['model']} {row['method']}"
        if row["collapsed"]:
            lines.append(f"- {name}: collapsed (seeds {row['collapsed']})")
        if row["selected"] and row["last"]:
            sel, last = pages.mean_std(row["selected"])[0], pages.mean_std(row["last"])[0]
            if last < 0.9 * sel:
                lines.append(f"- {name}: last epoch {last:.4f} < 0.9 × selected {sel:.4f}")
        popularity = row["popularity"]
        if (
            popularity is not None
            and row["selected"]
            and pages.mean_std(row["selected"])[0] < popularity
        ):
            lines.append(f"- {name}: below popularity ({row['popularity']:.4f})")
        normal = by_key.get((row["dataset"], row["model"], "normal"))
        if row["method"] in ("tce", "dcf") and normal and normal["selected"] and row["selected"]:
            mean, _ = pages.mean_std(row["selected"])
            normal_mean, normal_std = pages.mean_std(normal["selected"])
            if mean < normal_mean - max(normal_std, 1e-12):
                lines.append(
                    f"- {name}: {mean:.4f} more than one std below normal "
                    f"({normal_mean:.4f} ± {normal_std:.4f})"
                )
    return lines


def markdown(rows: list[dict]) -> str:
    """Per dataset: a table of methods × models, "selected / last (health)" cells."""
    parts = [
        f"Test {METRIC} (paper view) at the epoch selected on validation and at the last epoch,"
        " mean ± std over seeds; ⚠ collapsed: the collapse guard flagged the run (results.json"
        " `health`). Popularity: the training-popularity ranker on the same users."
    ]
    for dataset in sorted({r["dataset"] for r in rows}):
        part = [r for r in rows if r["dataset"] == dataset]
        models = sorted({r["model"] for r in part}, key=lambda m: (m not in ("gmf", "neumf"), m))
        methods = [m for m in METHOD_NAMES if any(r["method"] == m for r in part)]
        methods += sorted({r["method"] for r in part} - set(methods))
        header = ["method"] + [f"{m} selected / last (n)" for m in models]
        body = []
        for method in methods:
            cells = [method]
            for model in models:
                row = next((r for r in part if r["model"] == model and r["method"] == method), None)
                if row is None:
                    cells.append("–")
                    continue
                flag = f" ⚠ collapsed ×{len(row['collapsed'])}" if row["collapsed"] else ""
                selected, last = pages.cell_text(row["selected"]), pages.cell_text(row["last"])
                cells.append(f"{selected} / {last} ({row['n']}){flag}")
            body.append(cells)
        popularity = ["popularity"] + [
            next(
                (f"{r['popularity']:.4f}" for r in part if r["model"] == m and r["popularity"]),
                "–",
            )
            for m in models
        ]
        body.append(popularity)
        parts.append(f"## {dataset}\n\n" + "\n".join(rundir.markdown_table(header, body)))
    checks = goal_checks(rows)
    parts.append(
        "## Goal checks\n\n"
        + ("\n".join(checks) if checks else "Every cell meets the goal's four checks.")
    )
    return "\n\n".join(parts) + "\n"


METHOD_BLOCK = "defaults-matrix"


def _versus(mean: float, other: Sequence[float] | None, what: str) -> str:
    """'above normal (+3.1 %)', 'within one std of normal', 'below normal (−12.0 %)'."""
    if not other:
        return f"no {what} run"
    other_mean, other_std = pages.mean_std(other)
    if abs(mean - other_mean) <= max(other_std, 1e-12) and len(other) > 1:
        return f"within one std of {what}"
    side = "above" if mean > other_mean else "below"
    return f"{side} {what} ({100 * (mean / other_mean - 1):+.1f} %)"


def method_summary(rows: list[dict], method: str, stamp: str | None = None) -> str:
    """A method page's generated lines: per (dataset, model) of the matrix, where the method's
    defaults stand against normal training and popularity, and whether they collapsed."""
    by_key = {(r["dataset"], r["model"], r["method"]): r for r in rows}
    lines = []
    for row in rows:
        if row["method"] != method or not row["selected"]:
            continue
        mean = pages.mean_std(row["selected"])[0]
        normal = by_key.get((row["dataset"], row["model"], "normal"))
        verdicts = []
        if method != "normal":
            verdicts.append(_versus(mean, normal["selected"] if normal else None, "normal"))
        popularity = row["popularity"]
        if popularity is not None:
            side = "above" if mean >= popularity else "**below**"
            verdicts.append(f"{side} popularity ({popularity:.4f})")
        if row["collapsed"]:
            verdicts.append(f"⚠ collapsed in {len(row['collapsed'])} of {row['n']} runs")
        sel, last = (
            pages.mean_std(row["selected"])[0],
            pages.mean_std(row["last"])[0] if row["last"] else None,
        )
        if last is not None and last < 0.9 * sel:
            verdicts.append(f"the last epoch falls to {last:.4f}")
        seeds = f"{row['n']} seed{'s' if row['n'] > 1 else ''}"
        where = f"{row['dataset']}, {row['model'].upper()}"
        lines.append(
            f"- {where}: test {METRIC} {pages.cell_text(row['selected'])} ({seeds}): "
            + "; ".join(verdicts)
        )
    if not lines:
        return "Not in the defaults matrix yet."
    return (
        "Where this method's defaults stand in the defaults matrix "
        "([Results](../results/index.md#every-method-at-its-defaults-the-defaults-matrix)): "
        f"test {METRIC} at the selected epoch, paper view.\n\n"
        + "\n".join(lines)
        + "\n\n"
        + (stamp or pages.provenance())
    )


def write_method_pages(rows: list[dict], folder: Path, stamp: str | None = None) -> list[Path]:
    """Replace the defaults-matrix block of every method page in `folder` that has one."""
    written = []
    for method in sorted({r["method"] for r in rows}):
        page = folder / f"{method}.md"
        if page.is_file() and f"<!-- {METHOD_BLOCK}:start -->" in page.read_text():
            written.append(
                pages.replace_block(page, METHOD_BLOCK, method_summary(rows, method, stamp))
            )
    return written


def parse_models(text: str) -> dict[str, int]:
    """'gmf:3,neumf:1' → {'gmf': 3, 'neumf': 1}."""
    models = {}
    for part in filter(None, text.split(",")):
        name, _, seeds = part.partition(":")
        if not seeds.isdigit() or int(seeds) < 1:
            raise UserInputError(f"bad --models entry {part!r}; use MODEL:SEEDS, e.g. gmf:3")
        models[name.strip()] = int(seeds)
    return models


def tiny_failures(out: Path) -> list[str]:
    """The tiny matrix's checks: every run's loss fell and none collapsed."""
    failures = []
    for run in iter_runs(out):
        lines = (run.path / rundir.METRICS_FILE).read_text().splitlines()
        losses = [json.loads(line)["loss"] for line in lines]
        if not losses[-1] < losses[0]:
            failures.append(
                f"{run.path}: the loss did not fall ({losses[0]:.4f} → {losses[-1]:.4f})"
            )
        if run.results.get("health", {}).get("status") != "ok":
            failures.append(f"{run.path}: {run.results.get('health')}")
    return failures


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog="python -m dprec.sweeps.defaults_matrix",
        description=__doc__.splitlines()[0],
        tool="defaults_matrix",
    )
    parser.add_argument("--out", type=Path, required=True, help="folder of the matrix's runs")
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--methods", default=",".join(METHOD_NAMES))
    parser.add_argument("--models", default=MODELS, help="MODEL:SEEDS,... (default %(default)s)")
    parser.add_argument("--epochs", type=int, help="override every preset's epochs")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once")
    parser.add_argument("--page", type=Path, help="write the generated Markdown page here")
    parser.add_argument(
        "--method-pages",
        type=Path,
        help=f"replace the <!-- {METHOD_BLOCK}:start/end --> block of each method's page in this "
        "folder (docs/methods) with where its defaults stand",
    )
    parser.add_argument("--tiny", action="store_true", help="CI mode (tiny synthetic data)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def body() -> int:
        datasets = ["synthetic"] if args.tiny else [d for d in args.datasets.split(",") if d]
        models = parse_models(TINY_MODELS if args.tiny else args.models)
        methods = [m for m in args.methods.split(",") if m]
        for method in methods:
            if method not in METHOD_NAMES:
                raise UserInputError(f"unknown method {method!r}; one of {', '.join(METHOD_NAMES)}")
        extra = tiny_settings() if args.tiny else {}
        if args.epochs:
            extra["train.num_epochs"] = str(args.epochs)
        cells = [
            Cell(d, m, x, tuple(range(seeds)))
            for d in datasets
            for m, seeds in models.items()
            for x in methods
        ]
        todo = [(cell, seed) for cell in cells for seed in cell.seeds]
        with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
            if args.tiny:
                statuses = [run_tiny_in_process(*cs, args.out) for cs in todo]
            else:
                statuses = list(pool.map(lambda cs: run_cell_seed(*cs, args.out, extra)[2], todo))
        failed = sum(1 for s in statuses if s != 0)
        rows = summarize(collect(args.out))
        text = markdown(rows)
        print(text, end="")
        # One stamp for every file written below: the commit before any of them changed.
        stamp = pages.provenance()
        if args.page:
            pages.write_page(args.page, "Defaults matrix", text)
            print(f"wrote {args.page}")
        if args.method_pages:
            written = write_method_pages(rows, args.method_pages, stamp)
            print(f"wrote the defaults of {len(written)} method pages in {args.method_pages}")
        if args.tiny:
            failures = tiny_failures(args.out)
            for line in failures:
                print(f"tiny matrix: {line}", file=sys.stderr)
            return 1 if failures or failed else 0
        return 1 if failed else 0

    return run_tool("defaults_matrix", body)


if __name__ == "__main__":
    sys.exit(main())
