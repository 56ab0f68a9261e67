"""The paper's Table 2 from run directories: mean ± std over seeds per setting, view and model.

    dprec-report RUNS_DIR [--out PREFIX] [--metrics recall@5,recall@20,ndcg@5,ndcg@20]
                                    [--epoch best|last]

Reads every finished run (a directory with config.json and results.json, `dprec.runs.finished`)
under RUNS_DIR and groups the runs by dataset and setting: the runs of a group have the same
config but for their seed, so only seeds are averaged. The test at the best validation epoch
(results["test"]; with `--epoch last`, results["test_last"]: the paper's fixed-epoch protocol)
is reported per group with its own n. Groups of one dataset, model and method that differ in
their settings are rows of their own, labelled by the settings that differ
(`DPI (c1=10, learning_rate=0.01)`), and a warning says how many there are.

One Markdown table per dataset and view (paper, warm): rows are the trained groups, then the
reference rows (the model-free rankers each run fits on the same data: Popularity, ItemKNN,
RP3beta, EASE, iALS, Random, as far as the runs report them); columns are models × metrics,
plus the runs per cell. The best row of each column is in bold, reference rows included, and a
trained cell below the best reference row of its column is marked ↓. A cell of one run shows
its value, without a ± 0. A metric a group does not report is `–`. Prints the Markdown and
writes PREFIX.md and PREFIX.csv (long format: dataset, view, model, method, setting, kind
(trained | reference), metric, mean, std, n); PREFIX defaults to RUNS_DIR/report.

--metrics defaults to every metric the runs report (a folder that mixes K values gets every
K); a metric no run reports is an error naming those they do.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from dprec.cli import OneLineErrorParser, run_tool
from dprec.errors import UserInputError
from dprec.methods.cards import CARDS
from dprec.metrics import METRICS
from dprec.references.names import REFERENCE_LABELS
from dprec.runs import rundir
from dprec.runs.finished import RESULT_KEYS, FinishedRun, flatten, iter_runs
from dprec.runs.finished import method_label as method_label

VIEWS = ("paper", "warm")
METHOD_LABELS = {name: card.label for name, card in CARDS.items()}
METHOD_ORDER = tuple(METHOD_LABELS.values())
MODEL_ORDER = ("gmf", "neumf", "cdae", "lightgcn")
MODEL_LABELS = {"gmf": "GMF", "neumf": "NeuMF", "cdae": "CDAE", "lightgcn": "LightGCN", "mf": "MF"}
# Model-free rankers: results["test"] entry prefix → row label, in row order (Random last).
RANKER_LABELS = {**REFERENCE_LABELS, "random": "Random"}
TRAINED, REFERENCE = "trained", "reference"
BELOW = "↓"  # a trained cell below the best reference row of its column
COLLAPSED = "⚠"  # runs of the cell the collapse guard flagged (results.json "health")
VIEW_TITLES = {"paper": "all test users (paper protocol)", "warm": "warm users"}
EPOCH_TITLES = {"best": "the best validation epoch", "last": "the last epoch"}
CSV_COLUMNS = [
    *("dataset", "view", "model", "method", "setting", "kind"),
    *("metric", "mean", "std", "n", "collapsed"),
]


class ReportError(UserInputError):
    """Bad input (no runs, unknown metric); the message is the one line to print."""


class Group(NamedTuple):
    """The runs of one dataset and setting (configs equal but for the seed): one table row."""

    dataset: str
    model: str
    method: str  # the method's label ('DPI', 'DVAE-DN')
    setting: str  # the settings that tell it from the other groups of its method ('' if none)
    runs: tuple[FinishedRun, ...]

    @property
    def label(self) -> str:
        """The row label: 'DPI', or 'DPI (c1=10, learning_rate=0.01)'."""
        return f"{self.method} ({self.setting})" if self.setting else self.method


# ---------------------------------------------------------------------------------------------
# Reading and grouping


def find_runs(root: str | Path) -> list[FinishedRun]:
    """Every finished run directory under `root` (recursively), in path order."""
    if not Path(root).is_dir():
        raise ReportError(f"{root} is not a directory; pass a directory of run directories")
    runs = list(iter_runs(root))
    if not runs:
        raise ReportError(f"no complete run (config.json and results.json) under {root}")
    return runs


def ordered(names: Iterable[str], first: Sequence[str]) -> list[str]:
    """The distinct `names`: those in `first` in its order, then the others alphabetically."""
    names = set(names)
    return [n for n in first if n in names] + sorted(names - set(first))


def short_keys(keys: Sequence[str]) -> dict[str, str]:
    """Each dotted key's last component, unless two of `keys` share it (then the whole key)."""
    last = [key.rsplit(".", 1)[-1] for key in keys]
    return {key: s if last.count(s) == 1 else key for key, s in zip(keys, last, strict=True)}


def setting_value(value: Any) -> str:
    """A config value as shown in a row label: 10.0 → '10', [5, 20] → '[5, 20]'."""
    if isinstance(value, float):
        return format(value, "g")
    if isinstance(value, str):
        return value or "''"
    return json.dumps(value)


def differing_settings(configs: Sequence[Mapping[str, Any]]) -> list[str]:
    """Per config, 'key=value, ...' over the (flattened) keys whose values are not all equal;
    `seed` is never one of them. A key a config lacks shows as 'unset'."""
    flats = [flatten({k: v for k, v in config.items() if k != "seed"}) for config in configs]
    keys = sorted({key for flat in flats for key in flat})
    differing = [
        key
        for key in keys
        if len({json.dumps([key in flat, flat.get(key)], sort_keys=True) for flat in flats}) > 1
    ]
    labels = short_keys(differing)
    return [
        ", ".join(
            f"{labels[key]}={setting_value(flat[key]) if key in flat else 'unset'}"
            for key in differing
        )
        for flat in flats
    ]


def group_runs(runs: Iterable[FinishedRun]) -> list[Group]:
    """The runs grouped by (dataset, setting key), in order of their first run; groups of one
    (dataset, model, method label) with several settings get the settings that differ."""
    by_setting: dict[tuple[str, str], list[FinishedRun]] = {}
    for run in runs:
        by_setting.setdefault((run.dataset, run.setting_key), []).append(run)
    families: dict[tuple[str, str, str], list[tuple[FinishedRun, ...]]] = {}
    for members in by_setting.values():
        first = members[0]
        families.setdefault((first.dataset, first.model, first.method_label), []).append(
            tuple(members)
        )
    groups = []
    for (dataset, model, method), settings in families.items():
        if len(settings) == 1:
            labels = [""]
        else:
            labels = differing_settings([members[0].config for members in settings])
        for members, setting in zip(settings, labels, strict=True):
            groups.append(Group(dataset, model, method, setting, members))
    return groups


def warn_split_settings(groups: Sequence[Group]) -> None:
    """Warn where runs of one dataset, model and method differ in settings (reported apart)."""
    split = [group for group in groups if group.setting]
    if split:
        methods = len({(g.dataset, g.model, g.method) for g in split})
        print(
            f"report: warning: {len(split)} groups of {methods} method(s) differ in settings "
            "other than the seed; each is reported on its own, labelled by those settings",
            file=sys.stderr,
        )


def warn_repeated_seeds(groups: Sequence[Group]) -> None:
    """Warn where a group holds several runs of one seed (the same run, averaged twice)."""
    for group in groups:
        seeds = [run.seed for run in group.runs]
        if len(set(map(str, seeds))) < len(seeds):
            print(
                f"report: warning: {group.dataset}/{group.model}/{group.label} has "
                f"{len(group.runs)} runs but seeds {seeds}; runs of one setting and seed are "
                "averaged as if they were different seeds",
                file=sys.stderr,
            )


# ---------------------------------------------------------------------------------------------
# Summary (long format)


def metric_order(metric: str) -> tuple[int, str, float]:
    """Sort key: the metric families in `dprec.metrics` order (others after, by name), K up."""
    name, _, k = metric.partition("@")
    family = METRICS.index(name) if name in METRICS else len(METRICS)
    try:
        cutoff = float(k)
    except ValueError:
        cutoff = math.inf
    return family, name, cutoff


def method_rank(method: str) -> tuple[int, str]:
    """Sort key of a method label: the paper's order, then the others by name."""
    return (METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER), method)


def result_views(run: FinishedRun, epoch: str) -> Mapping[str, Any]:
    """results["test"] (or "test_last") of `run`; {} where it has none."""
    entries = run.results.get(RESULT_KEYS[epoch])
    return entries if isinstance(entries, Mapping) else {}


def is_view_entry(entry: str, view: str) -> bool:
    """Whether test `entry` is the trained model's `view` ('paper') or a ranker's ('ease_paper')."""
    return entry == view or (entry.endswith(f"_{view}") and entry != f"_{view}")


def reported_metrics(runs: Iterable[FinishedRun], views=VIEWS, epoch: str = "best") -> list[str]:
    """Every 'name@K' metric of the runs' test `views`, trained and reference entries alike."""
    found = set()
    for run in runs:
        for entry, row in result_views(run, epoch).items():
            if isinstance(row, Mapping) and any(is_view_entry(entry, view) for view in views):
                found.update(key for key in row if "@" in key)
    return sorted(found, key=metric_order)


def check_metrics(metrics: Sequence[str], reported: Sequence[str], epoch: str) -> None:
    """A one-line ReportError for a metric no run reports, naming those they do."""
    if not reported:
        raise ReportError(
            f"no run has test metrics at {EPOCH_TITLES[epoch]} ({RESULT_KEYS[epoch]})"
        )
    missing = [metric for metric in metrics if metric not in reported]
    if missing:
        raise ReportError(
            f"no run reports {', '.join(missing)}; the runs have {', '.join(reported)}"
        )


def cell_stats(values: Sequence[float]) -> tuple[float, float, int]:
    """(mean, population std, n) of `values`; (NaN, NaN, 0) for none. A NaN value (a run
    that wrote a non-finite metric) makes the mean NaN: it is not hidden."""
    if not values:
        return math.nan, math.nan, 0
    array = np.asarray(values, dtype=float)
    return float(array.mean()), float(array.std()), len(values)


def summary_rows(
    ids: dict[str, str],
    runs: Sequence[FinishedRun],
    entry: str,
    metrics: Sequence[str],
    epoch: str = "best",
) -> list[dict[str, Any]]:
    """One long-format row per metric: mean, std and n of test `entry` over the `runs` that
    report it (n = 0 and a NaN mean where none does)."""
    rows = []
    for metric in metrics:
        values = [run.metric(entry, metric, epoch) for run in runs]
        mean, std, n = cell_stats([value for value in values if value is not None])
        rows.append({**ids, "metric": metric, "mean": mean, "std": std, "n": n})
    return rows


def ranker_names(runs: Iterable[FinishedRun], view: str, epoch: str) -> list[str]:
    """The model-free rankers (`{name}_{view}` test entries) the runs report, in row order."""
    names = {
        entry.removesuffix(f"_{view}")
        for run in runs
        for entry in result_views(run, epoch)
        if entry != view and is_view_entry(entry, view)
    }
    return ordered(names, tuple(RANKER_LABELS))


def summarize(
    runs: Sequence[FinishedRun],
    metrics: Sequence[str] | None = None,
    views=VIEWS,
    epoch: str = "best",
) -> pd.DataFrame:
    """The long-format table (`CSV_COLUMNS`); `metrics` defaults to every metric reported.

    Ordered by dataset, view, model (paper order), then the trained groups (method in paper
    order, then the path order of their runs), then the reference rows, then metric. A
    reference row of a model pools every run of that model and dataset that reports it.
    """
    reported = reported_metrics(runs, views, epoch)
    metrics = list(reported if metrics is None else metrics)
    check_metrics(metrics, reported, epoch)
    groups = group_runs(runs)
    warn_split_settings(groups)
    warn_repeated_seeds(groups)
    rows = []
    for dataset in sorted({group.dataset for group in groups}):
        in_dataset = [group for group in groups if group.dataset == dataset]
        for view in views:
            for model in ordered((group.model for group in in_dataset), MODEL_ORDER):
                trained = [group for group in in_dataset if group.model == model]
                trained.sort(key=lambda group: method_rank(group.method))  # stable: path order
                ids = {"dataset": dataset, "view": view, "model": model}
                for group in trained:
                    keys = {"method": group.method, "setting": group.setting, "kind": TRAINED}
                    collapsed = sum(run.collapsed for run in group.runs)
                    group_rows = summary_rows(ids | keys, group.runs, view, metrics, epoch)
                    rows += [row | {"collapsed": collapsed} for row in group_rows]
                model_runs = [run for group in trained for run in group.runs]
                for name in ranker_names(model_runs, view, epoch):
                    entry = f"{name}_{view}"
                    having = [run for run in model_runs if run.test(entry, epoch) is not None]
                    label = RANKER_LABELS.get(name, name)
                    keys = {"method": label, "setting": "", "kind": REFERENCE, "collapsed": 0}
                    rows += summary_rows(ids | keys, having, entry, metrics, epoch)
    return pd.DataFrame(rows, columns=CSV_COLUMNS)


# ---------------------------------------------------------------------------------------------
# Markdown


def short_metric(metric: str) -> str:
    """'recall@20' → 'R@20', 'ndcg@5' → 'N@5' (the paper's headers)."""
    name, _, k = metric.partition("@")
    return {"recall": "R", "ndcg": "N"}.get(name, name) + (f"@{k}" if k else "")


def row_label(method: str, setting: str) -> str:
    """'DPI', or 'DPI (c1=10)' for a group labelled by its settings."""
    return f"{method} ({setting})" if setting else method


def column_bests(part: pd.DataFrame) -> tuple[dict, dict]:
    """({(model, metric): best mean}, {(model, metric): best reference mean}), rounded as
    shown (4 decimals), over the rows that report the metric."""
    shown = part[(part["n"] > 0) & np.isfinite(part["mean"])].assign(
        shown=lambda rows: rows["mean"].round(4)
    )
    best = shown.groupby(["model", "metric"])["shown"].max().to_dict()
    references = shown[shown["kind"] == REFERENCE]
    best_reference = references.groupby(["model", "metric"])["shown"].max().to_dict()
    return best, best_reference


def format_cell(mean: float, std: float, n: int, kind: str) -> str:
    """'0.1234 ± 0.0100' over several runs, '0.1234' for one run, '–' for none. A reference
    row shows its ± only where its runs disagree (it is read, not trained, per run)."""
    if n == 0:
        return "–"
    if not math.isfinite(mean):
        return "nan"
    spread = n > 1 and (kind == TRAINED or round(std, 4) > 0)
    return f"{mean:.4f} ± {std:.4f}" if spread else f"{mean:.4f}"


def row_cells(
    rows: pd.DataFrame,
    model: str,
    metrics: Sequence[str],
    bests: tuple[dict, dict],
) -> list[str]:
    """One row's cells for one model: a cell per metric (bold where best in its column, ↓
    where trained and below the column's best reference row), then n."""
    if rows.empty:
        return ["–"] * (len(metrics) + 1)
    best, best_reference = bests
    by_metric = {row["metric"]: row for _, row in rows.iterrows()}
    cells = []
    for metric in metrics:
        row = by_metric.get(metric)
        if row is None or row["n"] == 0:
            cells.append("–")
            continue
        cell = format_cell(row["mean"], row["std"], int(row["n"]), row["kind"])
        shown = round(row["mean"], 4)
        if shown == best.get((model, metric)):
            cell = f"**{cell}**"
        reference = best_reference.get((model, metric))
        if row["kind"] == TRAINED and reference is not None and shown < reference:
            cell = f"{cell} {BELOW}"
        cells.append(cell)
    n = int(rows["n"].max())
    collapsed = int(rows["collapsed"].max()) if "collapsed" in rows else 0
    flag = f" {COLLAPSED}{collapsed}" if collapsed else ""
    return cells + [f"{n}{flag}" if n else "–"]


def view_table(table: pd.DataFrame, dataset: str, view: str, metrics: Sequence[str]) -> str:
    """The Table 2 layout of one dataset and view from the long-format `table`."""
    part = table[(table["dataset"] == dataset) & (table["view"] == view)]
    models = ordered(part["model"], MODEL_ORDER)
    # The order of `summarize` (method, then the path order of each setting's first run).
    trained = part[part["kind"] == TRAINED][["method", "setting"]].drop_duplicates()
    trained_rows = sorted(trained.itertuples(index=False), key=lambda row: method_rank(row[0]))
    references = ordered(
        part.loc[part["kind"] == REFERENCE, "method"], tuple(RANKER_LABELS.values())
    )
    bests = column_bests(part)
    header = ["method"]
    for model in models:
        label = MODEL_LABELS.get(model, model)
        header += [f"{label} {short_metric(m)}" for m in metrics] + [f"{label} n"]
    body = []
    for method, setting in [*trained_rows, *((label, "") for label in references)]:
        cells = [row_label(method, setting)]
        for model in models:
            rows = part[
                (part["model"] == model) & (part["method"] == method) & (part["setting"] == setting)
            ]
            cells += row_cells(rows, model, metrics, bests)
        body.append(cells)
    title = f"### {dataset}, {VIEW_TITLES.get(view, view)}"
    return "\n".join([title, "", *rundir.markdown_table(header, body)])


def legend(table: pd.DataFrame, epoch: str) -> str:
    """The lines above the tables: what a cell is, what bold and ↓ mean."""
    lines = [
        f"Test at {EPOCH_TITLES[epoch]}: mean ± std (population) over the runs of each group "
        "(runs whose configs differ only in their seed); a cell of one run shows its value. "
        "n: runs per cell. –: not reported.",
        "**Bold**: the best row of each column, reference rows included. "
        f"{BELOW}: a trained method below the best reference row of its column. "
        f"{COLLAPSED}k after n: k of the cell's runs collapsed (results.json `health`: the model "
        "stopped learning; its numbers are not the method's).",
        "Reference rows: model-free rankers each run fits on the same data and users "
        f"({', '.join(RANKER_LABELS.values())}, as far as the runs report them), averaged over "
        "the runs of that model; ± only where those runs disagree.",
    ]
    if (table["setting"] != "").any():
        lines.append(
            "A row labelled with settings, `Method (key=value, ...)`: runs of one method whose "
            "configs differ in those settings, reported apart."
        )
    return "\n".join(lines)


def markdown_report(table: pd.DataFrame, metrics: Sequence[str], epoch: str = "best") -> str:
    """Every dataset × view table, with the legend."""
    parts = [legend(table, epoch)]
    for dataset in sorted(set(table["dataset"])):
        for view in ordered(table.loc[table["dataset"] == dataset, "view"], VIEWS):
            parts.append(view_table(table, dataset, view, metrics))
    return "\n\n".join(parts) + "\n"


# ---------------------------------------------------------------------------------------------
# Command line


def parse_metrics(text: str) -> list[str]:
    """'recall@5,ndcg@20' → ['recall@5', 'ndcg@20']."""
    metrics = [m.strip() for m in text.split(",")]
    if not all(metrics):
        raise ReportError(f"bad --metrics {text!r}; use e.g. recall@5,recall@20,ndcg@5,ndcg@20")
    return metrics


def write_outputs(prefix: Path, markdown: str, table: pd.DataFrame) -> tuple[Path, Path]:
    """PREFIX.md and PREFIX.csv, each written atomically; their paths."""
    prefix.parent.mkdir(parents=True, exist_ok=True)
    md, csv = prefix.with_name(prefix.name + ".md"), prefix.with_name(prefix.name + ".csv")
    rundir.write_atomic(md, markdown)
    rundir.write_atomic(csv, table.to_csv(index=False, lineterminator="\n"))
    return md, csv


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineErrorParser(
        prog="dprec-report", description=__doc__.splitlines()[0], tool="report"
    )
    parser.add_argument("runs_dir", type=Path, help="directory searched for run directories")
    parser.add_argument("--out", type=Path, help="output prefix (default RUNS_DIR/report)")
    parser.add_argument(
        "--metrics", help="comma-separated, e.g. recall@5,ndcg@20 (default: every one reported)"
    )
    parser.add_argument(
        "--epoch",
        choices=tuple(RESULT_KEYS),
        default="best",
        help="test at the best validation epoch (default) or at the last epoch",
    )
    args = parser.parse_args(argv)

    def body() -> int:
        runs = find_runs(args.runs_dir)
        if args.metrics is None:
            metrics = reported_metrics(runs, epoch=args.epoch)
        else:
            metrics = parse_metrics(args.metrics)
        table = summarize(runs, metrics, epoch=args.epoch)
        markdown = markdown_report(table, metrics, args.epoch)
        md, csv = write_outputs(args.out or args.runs_dir / "report", markdown, table)
        print(markdown, end="")
        print(f"wrote {md} and {csv}")
        return 0

    return run_tool("report", body)


if __name__ == "__main__":
    sys.exit(main())
