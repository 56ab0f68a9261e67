"""The ladder: where every trained model stands against the reference recommenders.

    python -m dprec.sweeps.ladder --out runs/ladder [--datasets ml-100k,modcloth] \\
        [--rows gmf:normal,mf:normal,...] [--trials 8] [--max-epochs 20] [--seeds 0,1,2] \\
        [--jobs 2] [--page docs/results/ladder.md] [--readme README.md]

Per dataset, one reference run (`OUT/D/references`: the preset's GMF for one epoch, every
reference recommender on, each choosing its hyper-parameters on the noisy validation split by
its documented grid) gives the reference rows. Every trained row (MODEL:METHOD) is tuned by
`dprec-tune` on the noisy validation split at one budget (--trials trials of at most
--max-epochs epochs, median pruning) into `OUT/D/MODEL/METHOD`, and its best setting is rerun
over --seeds (`OUT/D/MODEL/METHOD/best`). Finished tunes and runs are reused, so a stopped
ladder resumes where it stopped. The page shows, per dataset, test R@20 and N@20 on all test
users and on warm users, mean ± std over seeds, the best row of each column in bold, and ↓ on a
trained cell below the best reference row of its column; under it, the goal's check: the best
trained row against the best reference row (relative R@20, ML-100k all users and Modcloth warm
users). `--readme` puts the headline (the goal's two columns) in README.md.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from dprec.cli import OneLineErrorParser, run_tool
from dprec.errors import UserInputError
from dprec.methods.cards import METHOD_NAMES
from dprec.references.names import REFERENCE_LABELS
from dprec.runs import pages, rundir
from dprec.runs.finished import FinishedRun, iter_runs, method_label, read_run
from dprec.sweeps import grid, tune
from dprec.tools.report import MODEL_LABELS

DATASETS = ("ml-100k", "modcloth")
MODELS = ("mf", "gmf", "neumf", "cdae", "lightgcn")
ROWS = (
    "mf:normal,gmf:normal,neumf:normal,cdae:normal,lightgcn:normal,"
    "gmf:bpr,gmf:softmax,gmf:bsl,gmf:tce"
)
METRICS = ("recall@20", "ndcg@20")
VIEWS = ("paper", "warm")
VIEW_TITLES = {"paper": "all", "warm": "warm"}
# The goal: the best trained row ≥ 5 % above the best reference row, in these columns.
GOAL = (("ml-100k", "paper"), ("modcloth", "warm"))
GOAL_MARGIN = 0.05
REFERENCES_DIR = "references"
BELOW = "↓"
HEADLINE_BLOCK = "headline-table"


@dataclasses.dataclass(frozen=True)
class Row:
    """One trained row of the ladder: a model under a method (its preset, then tuned)."""

    model: str
    method: str

    @property
    def label(self) -> str:
        return f"{MODEL_LABELS[self.model]} {method_label({'name': self.method})}"

    def folder(self, out: Path, dataset: str) -> Path:
        return out / dataset / self.model / self.method


def parse_rows(text: str) -> list[Row]:
    """'gmf:normal,mf:bpr' → Rows; unknown models or methods are an error."""
    rows = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        model, sep, method = item.partition(":")
        if not sep or model not in MODELS or method not in METHOD_NAMES:
            raise UserInputError(
                f"--rows: {item!r} is not MODEL:METHOD with MODEL one of {', '.join(MODELS)} "
                f"and METHOD one of {', '.join(METHOD_NAMES)}"
            )
        rows.append(Row(model, method))
    if not rows:
        raise UserInputError("--rows is empty; give MODEL:METHOD,...")
    return rows


def tune_command(
    row: Row, dataset: str, out: Path, trials: int, max_epochs: int, seeds: str
) -> list[str]:
    """The `dprec-tune` command of one trained row (reference recommenders off: the reference
    run fits them once per dataset)."""
    return [
        sys.executable,
        "-m",
        "dprec.sweeps.tune",
        "--config",
        f"configs/default.py:dataset={dataset},model={row.model},method={row.method}",
        "--trials",
        str(trials),
        "--max-epochs",
        str(max_epochs),
        "--seeds",
        seeds,
        "--out",
        str(row.folder(out, dataset)),
        "--set",
        "eval.references=()",
    ]


def reference_command(dataset: str, out: Path) -> list[str]:
    """One short run whose results carry every reference row of `dataset`."""
    config = grid.resolve_config(f"configs/default.py:dataset={dataset},model=gmf,method=normal")
    return grid.run_command(
        sys.executable, config, str(out / dataset / REFERENCES_DIR), {"train.num_epochs": "1"}
    )


def _run_logged(command: list[str], log: Path, cwd: Path) -> int:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as handle:
        status = subprocess.call(
            command,
            cwd=cwd,
            env=grid.child_env(2),
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    grid.say(f"{'done' if status == 0 else 'FAILED'} {log.stem} (log {log})")
    return status


def run_all(
    out: Path, datasets: Sequence[str], rows: Sequence[Row], args: argparse.Namespace
) -> int:
    """The reference runs, then every row's tune, `args.jobs` at a time; failed jobs counted."""
    repo = grid.PACKAGE_PARENT
    jobs: list[tuple[list[str], Path]] = []
    for dataset in datasets:
        if not (out / dataset / REFERENCES_DIR / rundir.RESULTS_FILE).is_file():
            jobs.append(
                (reference_command(dataset, out), out / "logs" / f"{dataset}-references.log")
            )
    for row in rows:  # row by row: a stopped ladder has its first rows on every dataset
        for dataset in datasets:
            command = tune_command(row, dataset, out, args.trials, args.max_epochs, args.seeds)
            jobs.append((command, out / "logs" / f"{dataset}-{row.model}-{row.method}.log"))
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        statuses = list(pool.map(lambda job: _run_logged(job[0], job[1], repo), jobs))
    return sum(1 for status in statuses if status != 0)


def _metric(run: FinishedRun, key: str, view: str, metric: str) -> float | None:
    return run.results.get("test", {}).get(f"{key}_{view}" if key else view, {}).get(metric)


def _best_runs(folder: Path) -> list[FinishedRun]:
    best = folder / "best"
    return list(iter_runs(best, recursive=False)) if best.is_dir() else []


def _tune_summary(folder: Path) -> Mapping:
    path = folder / "tune.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def collect(out: Path, datasets: Sequence[str], rows: Sequence[Row]) -> list[dict]:
    """One dict per (dataset, row): kind (reference | trained), label, values {(view, metric):
    [per seed]}, and for trained rows the tuned setting and selected epochs."""
    table: list[dict] = []
    for dataset in datasets:
        reference_dir = out / dataset / REFERENCES_DIR
        if (reference_dir / rundir.RESULTS_FILE).is_file():
            run = read_run(reference_dir)
            for name, label in REFERENCE_LABELS.items():
                values = {
                    (view, metric): [v]
                    for view in VIEWS
                    for metric in METRICS
                    if (v := _metric(run, name, view, metric)) is not None
                }
                if values:
                    hyper = run.results.get("reference_settings", {}).get(name, {}).get("hyper")
                    table.append(
                        {
                            "dataset": dataset,
                            "kind": "reference",
                            "label": label,
                            "values": values,
                            "setting": hyper or {},
                        }
                    )
        for row in rows:
            folder = row.folder(out, dataset)
            runs = _best_runs(folder)
            if not runs:
                continue
            values = {
                (view, metric): [v for r in runs if (v := _metric(r, "", view, metric)) is not None]
                for view in VIEWS
                for metric in METRICS
            }
            summary = _tune_summary(folder)
            table.append(
                {
                    "dataset": dataset,
                    "kind": "trained",
                    "label": row.label,
                    "values": {key: v for key, v in values.items() if v},
                    "setting": (summary.get("best") or {}).get("params", {}),
                    "epochs": [r.results.get("best_epoch") for r in runs],
                    "trials": summary.get("trials", {}),
                    # The budget the tune itself recorded (not this command's flags).
                    "budget": (
                        summary.get("trials_requested"),
                        summary.get("max_epochs"),
                        tuple(summary.get("seeds", ())),
                    ),
                    "complete": len(runs) >= len(summary.get("seeds", ())) > 0,
                }
            )
    return table


def _mean(entry: dict, view: str, metric: str) -> float | None:
    values = entry["values"].get((view, metric))
    return pages.mean_std(values)[0] if values else None


def best_of(entries: Sequence[dict], kind: str, view: str, metric: str) -> dict | None:
    """The entry of `kind` with the highest mean in the column, or None."""
    scored = [
        (m, e)
        for e in entries
        if e["kind"] == kind
        and e.get("complete", True)
        and (m := _mean(e, view, metric)) is not None
    ]
    return max(scored, key=lambda pair: pair[0])[1] if scored else None


def _setting_text(setting: Mapping) -> str:
    def short(value):
        return f"{value:.3g}" if isinstance(value, float) else str(value)

    return ", ".join(f"{key.split('.')[-1]}={short(v)}" for key, v in sorted(setting.items()))


def dataset_table(entries: Sequence[dict]) -> str:
    """One dataset's Markdown table: reference rows, then trained rows by all-users R@20."""
    columns = [(view, metric) for view in VIEWS for metric in METRICS]
    best = {
        col: max((m for e in entries if (m := _mean(e, *col)) is not None), default=None)
        for col in columns
    }
    best_reference = {
        col: max(
            (m for e in entries if e["kind"] == "reference" and (m := _mean(e, *col)) is not None),
            default=None,
        )
        for col in columns
    }
    trained = sorted(
        (e for e in entries if e["kind"] == "trained"),
        key=lambda e: -(_mean(e, "paper", "recall@20") or 0.0),
    )
    header = ["row", *(f"{metric} {VIEW_TITLES[view]}" for view, metric in columns)]
    header += ["seeds", "selected epochs", "setting"]
    body = []
    for entry in [e for e in entries if e["kind"] == "reference"] + trained:
        cells = [entry["label"] + (" (reference)" if entry["kind"] == "reference" else "")]
        for col in columns:
            values = entry["values"].get(col)
            text = pages.cell_text(values or [])
            mean = _mean(entry, *col)
            if mean is not None and best[col] is not None and mean >= best[col]:
                text = f"**{text}**"
            if (
                entry["kind"] == "trained"
                and mean is not None
                and best_reference[col] is not None
                and mean < best_reference[col]
            ):
                text += f" {BELOW}"
            cells.append(text)
        n = max((len(v) for v in entry["values"].values()), default=0)
        epochs = entry.get("epochs")
        cells += [
            str(n),
            ", ".join(str(e) for e in epochs) if epochs else "–",
            _setting_text(entry["setting"]) or "–",
        ]
        body.append(cells)
    return "\n".join(rundir.markdown_table(header, body))


def goal_lines(entries: Sequence[dict]) -> list[str]:
    """The goal's check per (dataset, view) of GOAL: best trained vs best reference R@20."""
    lines = []
    for dataset, view in GOAL:
        part = [e for e in entries if e["dataset"] == dataset]
        trained = best_of(part, "trained", view, "recall@20")
        reference = best_of(part, "reference", view, "recall@20")
        if trained is None or reference is None:
            lines.append(f"- {dataset} ({VIEW_TITLES[view]} users): not measured.")
            continue
        t, r = _mean(trained, view, "recall@20"), _mean(reference, view, "recall@20")
        ratio = t / r - 1
        verdict = "meets" if ratio >= GOAL_MARGIN else "misses"
        lines.append(
            f"- {dataset} ({VIEW_TITLES[view]} users): best trained row {trained['label']} "
            f"R@20 {t:.4f} vs best reference {reference['label']} {r:.4f}: "
            f"{100 * ratio:+.1f} % — {verdict} the goal (≥ +{100 * GOAL_MARGIN:.0f} %)."
        )
    return lines


def capped_rows(entries: Sequence[dict], slack: int = 2) -> list[str]:
    """'DATASET: LABEL' of every trained row whose every seed selected an epoch within `slack`
    of its tune's epoch cap: still improving when the budget ended, so a longer budget may
    raise it (the budget, not the method, is what such a row measures)."""
    capped = []
    for entry in entries:
        cap = (entry.get("budget") or (None, None))[1]
        epochs = [e for e in entry.get("epochs", []) if e is not None]
        if entry["kind"] == "trained" and cap and epochs and min(epochs) >= cap - slack:
            capped.append(f"{entry['dataset']}: {entry['label']}")
    return capped


def missing_rows(out: Path, datasets: Sequence[str], rows: Sequence[Row], seeds: int) -> list[str]:
    """'DATASET: LABEL' of every requested row with fewer finished best reruns than `seeds`
    ("(n of N seeds)" where some are)."""
    missing = []
    for row in rows:
        for dataset in datasets:
            done = len(_best_runs(row.folder(out, dataset)))
            if done < seeds:
                part = f" ({done} of {seeds} seeds)" if done else ""
                missing.append(f"{dataset}: {row.label}{part}")
    return missing


def markdown(entries: Sequence[dict], args_text: str, missing: Sequence[str] = ()) -> str:
    parts = [
        "Test recall@20 and NDCG@20 on the clean test (full ranking, training items excluded), on "
        "all test users and on warm users, at the epoch each run selected on the noisy "
        "validation split; mean ± std over seeds. Reference rows: each fitted once on the "
        "training split with its hyper-parameters chosen on the noisy validation split "
        "(docs/references.md). Trained rows: " + args_text + " **Bold**: the best row of the "
        f"column; {BELOW}: a trained cell below the best reference row of its column."
    ]
    for dataset in dict.fromkeys(e["dataset"] for e in entries):
        part = [e for e in entries if e["dataset"] == dataset]
        parts.append(f"## {dataset}\n\n" + dataset_table(part))
    if missing:
        parts.append(
            "Requested but not finished (the ladder was stopped before their tunes and reruns "
            "ended; rerun the command to finish them): " + "; ".join(missing) + "."
        )
    goal = "\n".join(goal_lines(entries))
    if capped := capped_rows(entries):
        goal += (
            "\n\nAt the epoch cap (every seed selected an epoch within 2 of the tune's "
            "maximum, so the row was still improving when its budget ended): "
            + "; ".join(capped)
            + "."
        )
    parts.append("## The goal\n\n" + goal)
    return "\n\n".join(parts) + "\n"


def headline(
    entries: Sequence[dict], args_text: str, stamp: str, missing: Sequence[str] = ()
) -> str:
    """The README's headline: one table of the goal's columns (test R@20 and the difference to
    that column's best reference row), rows ordered by the first column."""
    labels = list(dict.fromkeys(e["label"] for e in entries))
    kinds = {e["label"]: e["kind"] for e in entries}

    def cell(label: str, dataset: str, view: str) -> tuple[float | None, list[str]]:
        part = [e for e in entries if e["dataset"] == dataset]
        entry = next((e for e in part if e["label"] == label), None)
        values = entry["values"].get((view, "recall@20")) if entry else None
        if not values:
            return None, ["–", "–"]
        reference = best_of(part, "reference", view, "recall@20")
        r = _mean(reference, view, "recall@20") if reference else None
        mean = pages.mean_std(values)[0]
        versus = "–" if r is None else f"{100 * (mean / r - 1):+.1f} %"
        return mean, [pages.cell_text(values), versus]

    first = GOAL[0]
    labels.sort(key=lambda label: -(cell(label, *first)[0] or 0.0))
    header = ["row", "kind"]
    for dataset, view in GOAL:
        header += [f"{dataset} R@20 ({VIEW_TITLES[view]} users)", "vs best reference"]
    body = []
    for label in labels:
        row = [label, "reference" if kinds[label] == "reference" else "tuned"]
        for dataset, view in GOAL:
            row += cell(label, dataset, view)[1]
        body.append(row)
    trained = [e["label"] for e in entries if e["kind"] == "trained"]
    partial = [e["label"] for e in entries if e["kind"] == "trained" and not e["complete"]]
    tried = "Tried: " + ", ".join(dict.fromkeys(trained)) + "."
    if missing:
        tried += " Asked for but not finished: " + "; ".join(missing) + "."
    if partial:
        tried += (
            " Not all seeds finished for " + ", ".join(partial) + ": their cells show the "
            "seeds that did, and the goal lines leave them out."
        )
    if capped := capped_rows(entries):
        tried += " Still improving at the epoch cap: " + "; ".join(capped) + "."
    return (
        "**Where dprec's trained models stand against the reference recommenders** (the "
        "[ladder](docs/results/index.md#the-ladder-trained-models-against-the-reference-"
        "recommenders); test R@20 at the epoch selected on the noisy "
        "validation split, mean ± std over seeds). Trained rows: "
        + args_text
        + "\n\n"
        + "\n".join(rundir.markdown_table(header, body))
        + "\n\n"
        + "\n".join(goal_lines(entries))
        + "\n\n"
        + tried
        + "\n\n"
        + stamp
    )


def budget_text(entries: Sequence[dict]) -> str:
    """The trained rows' budget as their tunes recorded it (tune.json): one sentence when
    every row shares it, else each row's."""
    budgets = {e["label"]: e["budget"] for e in entries if e["kind"] == "trained"}

    def one(budget) -> str:
        trials, epochs, seeds = budget
        return (
            f"{trials} trials of at most {epochs} epochs, the best setting rerun over seeds "
            + ",".join(str(s) for s in seeds)
        )

    if not budgets:
        return "none finished."
    distinct = set(budgets.values())
    if len(distinct) == 1:
        shared = one(next(iter(distinct)))
    else:
        shared = "budgets differ: " + "; ".join(f"{k}: {one(v)}" for k, v in budgets.items())
    space = ", ".join(f"{key} {dist.text()}" for key, dist in tune.COMMON.items())
    return (
        f"each tuned by `dprec-tune` on the noisy validation split ({shared}; median pruning; "
        f"{space} and the method's own fields)."
    )


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog="python -m dprec.sweeps.ladder", description=__doc__.splitlines()[0], tool="ladder"
    )
    parser.add_argument("--out", type=Path, required=True, help="folder of the ladder's runs")
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--rows", default=ROWS, help="MODEL:METHOD,... (default %(default)s)")
    parser.add_argument("--trials", type=int, default=8, help="tune trials per row")
    parser.add_argument("--max-epochs", type=int, default=20, help="epochs per trial")
    parser.add_argument("--seeds", default="0,1,2", help="rerun each best setting over these")
    parser.add_argument("--jobs", type=int, default=1, help="tunes at once")
    parser.add_argument("--page", type=Path, help="write the generated Markdown page here")
    parser.add_argument(
        "--readme",
        type=Path,
        help=f"replace the <!-- {HEADLINE_BLOCK}:start/end --> block of this file (README.md)",
    )
    parser.add_argument(
        "--no-train", action="store_true", help="only read the finished runs and write the page"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def body() -> int:
        datasets = [d for d in args.datasets.split(",") if d]
        rows = parse_rows(args.rows)
        if args.trials < 1 or args.max_epochs < 1 or args.jobs < 1:
            raise UserInputError("--trials, --max-epochs and --jobs must be at least 1")
        grid.parse_seeds(args.seeds)
        failed = 0 if args.no_train else run_all(args.out, datasets, rows, args)
        entries = collect(args.out, datasets, rows)
        if not entries:
            raise UserInputError(
                f"no finished ladder runs under {args.out}; run without --no-train"
            )
        missing = missing_rows(args.out, datasets, rows, len(grid.parse_seeds(args.seeds)))
        text = markdown(entries, budget_text(entries), missing)
        print(text, end="")
        stamp = pages.provenance()
        if args.page:
            pages.write_page(args.page, "The ladder: trained models against references", text)
            print(f"wrote {args.page}")
        if args.readme:
            pages.replace_block(
                args.readme, HEADLINE_BLOCK, headline(entries, budget_text(entries), stamp, missing)
            )
            print(f"wrote the headline table of {args.readme}")
        return 1 if failed else 0

    return run_tool("ladder", body)


if __name__ == "__main__":
    sys.exit(main())
