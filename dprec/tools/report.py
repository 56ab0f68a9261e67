"""The paper's Table 2 from run directories: mean ± std over seeds per dataset, view, model, method.

    dprec-report RUNS_DIR [--out PREFIX] [--metrics recall@5,recall@20,ndcg@5,ndcg@20]
                                    [--epoch best|last]

Finds every complete run (a directory with config.json and results.json) under RUNS_DIR, groups
the runs by (dataset, model, method label) and averages the test at the best validation epoch
(results["test"]; with `--epoch last`, results["test_last"]: the paper's fixed-epoch protocol).
One Markdown table per dataset and view (paper, warm): rows are the methods, then the
model-free Popularity and Random rankers; columns are models × metrics, plus the number of runs
per model. The best trained method per column is in bold. Prints the Markdown and writes
PREFIX.md and PREFIX.csv (long format: dataset, view, model, method, metric, mean, std, n);
PREFIX defaults to RUNS_DIR/report. The runs of one group are meant to differ only in
their seed: point it at the final runs, not at a hyper-parameter grid.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from dprec.cli import OneLineErrorParser, run_tool
from dprec.errors import UserInputError
from dprec.methods.cards import CARDS
from dprec.metrics import metric_names
from dprec.runs import rundir

VIEWS = ("paper", "warm")
DEFAULT_METRICS = tuple(metric_names((5, 20)))
METHOD_LABELS = {name: card.label for name, card in CARDS.items()}
METHOD_ORDER = tuple(METHOD_LABELS.values())
MODE_SUFFIX = {"dp": "-DP", "dn": "-DN"}
MODEL_ORDER = ("gmf", "neumf", "cdae", "lightgcn")
MODEL_LABELS = {"gmf": "GMF", "neumf": "NeuMF", "cdae": "CDAE", "lightgcn": "LightGCN", "mf": "MF"}
# Model-free rankers: (row label, results["test"] key prefix); not trained, never bold.
RANKERS = (("Popularity", "popularity"), ("Random", "random"))
VIEW_TITLES = {"paper": "all test users (paper protocol)", "warm": "warm users"}
CSV_COLUMNS = ["dataset", "view", "model", "method", "metric", "mean", "std", "n"]


class ReportError(UserInputError):
    """Bad input (no runs, unknown metric); the message is the one line to print."""


class Run(NamedTuple):
    """One complete run directory."""

    path: Path
    config: dict[str, Any]
    results: dict[str, Any]


# ---------------------------------------------------------------------------------------------
# Reading and grouping


def find_runs(root: str | Path) -> list[Run]:
    """Every complete run directory under `root` (recursively), in path order."""
    root = Path(root)
    if not root.is_dir():
        raise ReportError(f"{root} is not a directory; pass a directory of run directories")
    runs = []
    for results_file in sorted(root.rglob(rundir.RESULTS_FILE)):
        config_file = results_file.parent / rundir.CONFIG_FILE
        if config_file.is_file():
            config = json.loads(config_file.read_text())
            runs.append(Run(results_file.parent, config, json.loads(results_file.read_text())))
    if not runs:
        raise ReportError(f"no complete run (config.json and results.json) under {root}")
    return runs


def method_label(method: dict[str, Any]) -> str:
    """'dpi' → 'DPI'; with mode 'dp' → 'DPI-DP' (the paper's Table 3 ablations)."""
    name = method.get("name", "?")
    return METHOD_LABELS.get(name, name) + MODE_SUFFIX.get(method.get("mode", ""), "")


def run_key(run: Run) -> tuple[str, str, str]:
    """(dataset, model, method label) of a run."""
    config = run.config
    return config["data"]["name"], config["model"]["name"], method_label(config["method"])


def ordered(names: Iterable[str], first: Sequence[str]) -> list[str]:
    """The distinct `names`: those in `first` in its order, then the others alphabetically."""
    names = set(names)
    return [n for n in first if n in names] + sorted(names - set(first))


def warn_repeated_seeds(groups: dict[tuple[str, str, str], list[Run]]) -> None:
    """Warn where a group holds several runs of one seed (different settings get averaged)."""
    for key, runs in groups.items():
        seeds = [run.results.get("seed", run.config.get("seed")) for run in runs]
        if len(set(seeds)) < len(seeds):
            print(
                f"report: warning: {'/'.join(key)} has {len(runs)} runs but seeds {seeds};"
                " runs of different settings are averaged together",
                file=sys.stderr,
            )


def group_runs(runs: Iterable[Run]) -> dict[tuple[str, str, str], list[Run]]:
    """{(dataset, model, method label): runs}."""
    groups: dict[tuple[str, str, str], list[Run]] = {}
    for run in runs:
        groups.setdefault(run_key(run), []).append(run)
    return groups


# ---------------------------------------------------------------------------------------------
# Summary (long format)


# --epoch → the results.json key: the test at the best validation epoch, or at the last epoch.
RESULT_KEYS = {"best": "test", "last": "test_last"}
EPOCH_TITLES = {"best": "the best validation epoch", "last": "the last epoch"}


def metric_value(run: Run, entry: str, metric: str, key: str = "test") -> float:
    """results[key][entry][metric] (None, a non-finite value on disk, → NaN)."""
    row = run.results.get(key, {}).get(entry)
    if row is None:
        raise ReportError(f"{run.path} has no test view {entry!r}")
    if metric not in row:
        known = ", ".join(k for k in row if "@" in k)
        raise ReportError(f"{run.path} has no {metric} in test {entry}; choose among {known}")
    value = row[metric]
    return float("nan") if value is None else float(value)


def summary_rows(
    ids: dict[str, str],
    runs: Sequence[Run],
    entry: str,
    metrics: Sequence[str],
    key: str = "test",
) -> list[dict[str, Any]]:
    """One long-format row per metric: mean and (population) std of `entry` over `runs`."""
    rows = []
    for metric in metrics:
        values = np.array([metric_value(run, entry, metric, key) for run in runs])
        rows.append(
            {**ids, "metric": metric, "mean": values.mean(), "std": values.std(), "n": len(runs)}
        )
    return rows


def ranker_rows(
    dataset: str,
    model: str,
    view: str,
    runs: Sequence[Run],
    metrics: Sequence[str],
    key: str = "test",
) -> list[dict[str, Any]]:
    """Popularity and Random rows from every run of (dataset, model) that reports them."""
    rows = []
    for label, prefix in RANKERS:
        entry = f"{prefix}_{view}"
        having = [run for run in runs if entry in run.results.get(key, {})]
        if having:  # older runs have no random view: then there is no Random row
            ids = {"dataset": dataset, "view": view, "model": model, "method": label}
            rows += summary_rows(ids, having, entry, metrics, key)
    return rows


def summarize(
    runs: Sequence[Run], metrics: Sequence[str], views=VIEWS, key: str = "test"
) -> pd.DataFrame:
    """The long-format table: dataset, view, model, method, metric, mean, std, n.

    Ordered by dataset, view, model (paper order), method (paper order, rankers last), metric.
    """
    groups = group_runs(runs)
    warn_repeated_seeds(groups)
    rows = []
    for dataset in sorted({key[0] for key in groups}):
        models = ordered((key[1] for key in groups if key[0] == dataset), MODEL_ORDER)
        for view in views:
            for model in models:
                keys = [key for key in groups if key[:2] == (dataset, model)]
                for method in ordered((key[2] for key in keys), METHOD_ORDER):
                    ids = {"dataset": dataset, "view": view, "model": model, "method": method}
                    rows += summary_rows(ids, groups[(dataset, model, method)], view, metrics, key)
                model_runs = [run for group in keys for run in groups[group]]
                rows += ranker_rows(dataset, model, view, model_runs, metrics, key)
    return pd.DataFrame(rows, columns=CSV_COLUMNS)


# ---------------------------------------------------------------------------------------------
# Markdown


def short_metric(metric: str) -> str:
    """'recall@20' → 'R@20', 'ndcg@5' → 'N@5' (the paper's headers)."""
    name, _, k = metric.partition("@")
    return {"recall": "R", "ndcg": "N"}.get(name, name) + (f"@{k}" if k else "")


def best_means(table: pd.DataFrame) -> dict[tuple[str, str], float]:
    """{(model, metric): highest mean, rounded as shown} among the trained methods."""
    trained = table[~table["method"].isin([label for label, _ in RANKERS])]
    best = trained.groupby(["model", "metric"])["mean"].max()
    return {key: round(value, 4) for key, value in best.items()}


def method_cells(
    rows: pd.DataFrame, model: str, metrics: Sequence[str], best: dict[tuple[str, str], float]
) -> list[str]:
    """One method's cells for one model: 'mean ± std' per metric (bold where best), then n."""
    if rows.empty:
        return ["–"] * (len(metrics) + 1)
    cells = []
    for metric in metrics:
        row = rows[rows["metric"] == metric].iloc[0]
        cell = f"{row['mean']:.4f} ± {row['std']:.4f}"
        is_best = round(row["mean"], 4) == best.get((model, metric))
        cells.append(f"**{cell}**" if is_best else cell)
    return cells + [str(int(rows["n"].iloc[0]))]


def ranker_cells(rows: pd.DataFrame, metrics: Sequence[str]) -> list[str]:
    """A model-free ranker's cells for one model: the value per metric (no std, no n)."""
    if rows.empty:
        return ["–"] * (len(metrics) + 1)
    means = dict(zip(rows["metric"], rows["mean"], strict=True))
    return [f"{means[metric]:.4f}" for metric in metrics] + ["–"]


def markdown_table(table: pd.DataFrame, dataset: str, view: str, metrics: Sequence[str]) -> str:
    """The Table 2 layout of one dataset and view from the long-format `table`."""
    part = table[(table["dataset"] == dataset) & (table["view"] == view)]
    models = ordered(part["model"], MODEL_ORDER)
    rankers = [label for label, _ in RANKERS]
    methods = ordered(part.loc[~part["method"].isin(rankers), "method"], METHOD_ORDER)
    best = best_means(part)
    header = ["method"]
    for model in models:
        label = MODEL_LABELS.get(model, model)
        header += [f"{label} {short_metric(m)}" for m in metrics] + [f"{label} n"]
    body = []
    for method in [*methods, *(r for r in rankers if r in set(part["method"]))]:
        cells = [method]
        for model in models:
            rows = part[(part["model"] == model) & (part["method"] == method)]
            if method in rankers:
                cells += ranker_cells(rows, metrics)
            else:
                cells += method_cells(rows, model, metrics, best)
        body.append(cells)
    title = f"### {dataset}, {VIEW_TITLES.get(view, view)}"
    return "\n".join([title, "", *rundir.markdown_table(header, body)])


def markdown_report(table: pd.DataFrame, metrics: Sequence[str], epoch: str = "best") -> str:
    """Every dataset × view table, with the legend."""
    legend = (
        f"Test at {EPOCH_TITLES[epoch]}, mean ± std (population) over the runs of each cell; "
        "n: runs per cell. **Bold**: the best trained method per column. Popularity and Random "
        "are model-free rankers on the same users."
    )
    parts = [legend]
    for dataset in sorted(set(table["dataset"])):
        for view in ordered(table.loc[table["dataset"] == dataset, "view"], VIEWS):
            parts.append(markdown_table(table, dataset, view, metrics))
    return "\n\n".join(parts) + "\n"


# ---------------------------------------------------------------------------------------------
# Command line


def parse_metrics(text: str) -> list[str]:
    """'recall@5,ndcg@20' → ['recall@5', 'ndcg@20']."""
    metrics = [m.strip() for m in text.split(",")]
    if not all(metrics):
        raise ReportError(f"bad --metrics {text!r}; use e.g. recall@5,recall@20,ndcg@5,ndcg@20")
    return metrics


def write_outputs(prefix: Path, markdown: str, table: pd.DataFrame) -> None:
    """PREFIX.md and PREFIX.csv, each written atomically."""
    prefix.parent.mkdir(parents=True, exist_ok=True)
    rundir.write_atomic(prefix.with_name(prefix.name + ".md"), markdown)
    csv = table.to_csv(index=False, lineterminator="\n")
    rundir.write_atomic(prefix.with_name(prefix.name + ".csv"), csv)


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineErrorParser(
        prog="dprec-report", description=__doc__.splitlines()[0], tool="report"
    )
    parser.add_argument("runs_dir", type=Path, help="directory searched for run directories")
    parser.add_argument("--out", type=Path, help="output prefix (default RUNS_DIR/report)")
    parser.add_argument("--metrics", default=",".join(DEFAULT_METRICS), help="comma-separated")
    parser.add_argument(
        "--epoch",
        choices=tuple(RESULT_KEYS),
        default="best",
        help="test at the best validation epoch (default) or at the last epoch",
    )
    args = parser.parse_args(argv)

    def body() -> int:
        metrics = parse_metrics(args.metrics)
        table = summarize(find_runs(args.runs_dir), metrics, key=RESULT_KEYS[args.epoch])
        markdown = markdown_report(table, metrics, args.epoch)
        write_outputs(args.out or args.runs_dir / "report", markdown, table)
        print(markdown, end="")
        return 0

    return run_tool("report", body)


if __name__ == "__main__":
    sys.exit(main())
