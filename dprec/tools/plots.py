"""The paper's figures from run directories, as PNG files.

    dprec-plots curves RUN_DIR [RUN_DIR ...] [--metric recall@20] [--split test|valid] \
        --out FILE.png                                  # Figure 3: metric per epoch
    dprec-plots real-positive RUN_DIR [RUN_DIR ...] --out FILE.png
                                                        # Figure 5: P(r=1|r̃=1) per rating
    dprec-plots disagreement RUN_A RUN_B [--clean 4,5] [--noisy 1,2] --out FILE.png
                                                        # Figure 2: disagreement, clean vs noisy
    dprec-plots heatmap GRID_DIR [--metric recall@20] [--split valid|test] \
        [--fixed alpha=0] --out FILE.png                # a metric over the C1 × C2 grid

Each figure has one function that returns the matplotlib Figure (`curves_figure`,
`real_positive_figure`, `disagreement_figure`, `heatmap_figure`) next to the function that
reads its numbers; `save_figure` writes a Figure as PNG atomically. Bad input prints one line
on stderr and exits with status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dprec.cli import OneLineErrorParser, run_tool
from dprec.errors import UserInputError
from dprec.runs import finished, rundir
from dprec.tools.run_loading import LoadedRun, load_run

METRICS_KEY = {"test": "test_paper", "valid": "valid"}  # split → metrics.jsonl record key
C1_KEY, C2_KEY = "method.c1", "method.c2"
GRID_INDEX_FILE = "grid.json"  # written by dprec-grid
_DPI = 120


# ---------------------------------------------------------------------------------------------
# Figures and files


def new_figure(width: float = 6.4, height: float = 4.2):
    """An empty Figure drawn by the non-interactive Agg canvas.

    The canvas is attached to this figure only: `matplotlib.use` or pyplot would change the
    process-wide backend (a notebook's) and keep every figure alive in pyplot's registry.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure, path: str | Path) -> Path:
    """Write `figure` as a PNG file at `path` atomically (temporary file, then rename)."""
    path = Path(path)
    if not path.parent.is_dir():
        raise UserInputError(f"cannot write {path}: {path.parent} is not a directory")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    rundir.write_atomic_bytes(path, buffer.getvalue())
    return path


def read_json(path: Path, what: str) -> Any:
    """The JSON content of `path`; `what` names the file's role in the error line."""
    if not path.is_file():
        raise UserInputError(f"{path} not found; {what}")
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise UserInputError(f"cannot read {path}: {err}") from err


def run_directory(path: str | Path) -> Path:
    """`path` as a Path; it must be a directory."""
    path = Path(path)
    if not path.is_dir():
        raise UserInputError(f"{path} is not a directory; pass a run directory (--workdir)")
    return path


def run_labels(run_dirs: Sequence[Path]) -> list[str]:
    """'<method> (<model>)' per run from its config.json (else the directory name), unique."""
    labels = []
    for run_dir in run_dirs:
        config_file = run_dir / rundir.CONFIG_FILE
        try:
            config = json.loads(config_file.read_text())
            labels.append(f"{config['method']['name']} ({config['model']['name']})")
        except (OSError, ValueError, KeyError, TypeError):
            labels.append(run_dir.name)
    # Two runs of the same method and model (seeds, settings) are told apart by their directory.
    return [
        f"{label}: {run_dir.name}" if labels.count(label) > 1 and label != run_dir.name else label
        for label, run_dir in zip(labels, run_dirs, strict=True)
    ]


def _metric_value(values: dict[str, Any], metric: str, where: str) -> float:
    """values[metric] as a float (None, a NaN written by the run, → NaN)."""
    if metric not in values:
        known = ", ".join(key for key in values if "@" in key)
        raise UserInputError(f"{where} has no metric {metric!r}; choose one of {known}")
    value = values[metric]
    return math.nan if value is None else float(value)


# ---------------------------------------------------------------------------------------------
# Figure 3: a metric per epoch


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The per-epoch records of metrics.jsonl."""
    path = run_dir / rundir.METRICS_FILE
    if not path.is_file():
        raise UserInputError(f"{path} not found; train the run with --workdir {run_dir}")
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except (OSError, json.JSONDecodeError) as err:
        raise UserInputError(f"cannot read {path}: {err}") from err


def curve(run_dir: str | Path, metric: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(epochs, values) of `metric` on the clean test (`split='test'`) or validation set."""
    run_dir = run_directory(run_dir)
    records = read_metrics(run_dir)
    key = METRICS_KEY[split]
    if not records or any(key not in record for record in records):
        raise UserInputError(
            f"{run_dir} has no per-epoch {split} metrics; rerun it with "
            "--config.eval.test_every_epoch=true"
        )
    where = f"{run_dir}/{rundir.METRICS_FILE}"
    values = [_metric_value(record[key], metric, where) for record in records]
    return np.array([record["epoch"] for record in records]), np.array(values)


def curves_figure(run_dirs: Sequence[str | Path], metric: str = "recall@20", split: str = "test"):
    """Figure 3: `metric` per epoch on the clean test (or validation) set, one line per run."""
    run_dirs = [run_directory(run_dir) for run_dir in run_dirs]
    series = [curve(run_dir, metric, split) for run_dir in run_dirs]
    figure = new_figure()
    axes = figure.add_subplot()
    for (epochs, values), label in zip(series, run_labels(run_dirs), strict=True):
        axes.plot(epochs, values, marker="o" if len(epochs) <= 30 else None, label=label)
    axes.set_xlabel("epoch")
    axes.set_ylabel(f"{metric} ({'clean test' if split == 'test' else 'validation'})")
    axes.grid(alpha=0.3)
    axes.legend()
    return figure


# ---------------------------------------------------------------------------------------------
# Figure 5: P(r=1 | r̃=1) per rating level


def real_positive_by_rating(run_dir: str | Path) -> dict[str, float]:
    """{rating level: mean P(r=1 | r̃=1)} from results.json's interpretation."""
    run_dir = run_directory(run_dir)
    results = read_json(run_dir / rundir.RESULTS_FILE, "the run has not finished")
    by_rating = results.get("interpretation", {}).get("by_rating")
    if not by_rating:
        raise UserInputError(
            f"{run_dir} has no interpretation.by_rating in results.json; only DPI/DVAE runs on "
            "data with ratings have it"
        )
    return {level: float(row["mean"]) for level, row in by_rating.items()}


def _level_order(level: str) -> tuple[float, str]:
    """Rating levels in numeric order ('2' before '10'), any non-number last."""
    try:
        return float(level), level
    except ValueError:
        return math.inf, level


def real_positive_figure(run_dirs: Sequence[str | Path]):
    """Figure 5: mean P(r=1 | r̃=1) per rating level, one bar per run in each level's group."""
    run_dirs = [run_directory(run_dir) for run_dir in run_dirs]
    means = [real_positive_by_rating(run_dir) for run_dir in run_dirs]
    levels = sorted({level for run in means for level in run}, key=_level_order)
    figure = new_figure()
    axes = figure.add_subplot()
    width = 0.8 / len(run_dirs)
    positions = np.arange(len(levels))
    for i, (run, label) in enumerate(zip(means, run_labels(run_dirs), strict=True)):
        heights = [run.get(level, math.nan) for level in levels]
        axes.bar(positions + (i - (len(run_dirs) - 1) / 2) * width, heights, width, label=label)
    axes.set_xticks(positions, levels)
    axes.set_xlabel("rating")
    axes.set_ylabel("mean P(r=1 | r̃=1)")
    axes.set_ylim(0, 1)
    axes.grid(axis="y", alpha=0.3)
    axes.legend()
    return figure


# ---------------------------------------------------------------------------------------------
# Figure 2: prediction disagreement of two runs on clean and noisy positives


def parse_levels(text: str, option: str) -> tuple[float, ...]:
    """'4,5' → (4.0, 5.0)."""
    try:
        levels = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise UserInputError(
            f"bad {option} {text!r}; use comma-separated rating levels, e.g. 4,5"
        ) from None
    return levels


def positive_groups(train, clean: Sequence[float], noisy: Sequence[float]):
    """Boolean masks (clean, noisy) over the training interactions.

    By rating level where the data have ratings, else by the ground truth (1 clean, 0 noisy).
    """
    if train.ratings is not None:
        ratings = np.asarray(train.ratings, dtype=np.float64)
        groups = np.isin(ratings, clean), np.isin(ratings, noisy)
        for mask, levels, option in zip(
            groups, (clean, noisy), ("--clean", "--noisy"), strict=True
        ):
            if not mask.any():
                present = ", ".join(f"{v:g}" for v in np.unique(ratings))
                shown = ",".join(f"{v:g}" for v in levels)
                raise UserInputError(
                    f"no training interaction has a rating in {option} {shown}; the ratings "
                    f"are {present}"
                )
        return groups
    if train.truth is not None:
        truth = np.asarray(train.truth)
        return truth == 1, truth == 0
    raise UserInputError(
        "the data have neither ratings nor a truth column, so clean and noisy positives "
        "cannot be told apart"
    )


def check_same_data(run_a: LoadedRun, run_b: LoadedRun) -> None:
    """Raise unless both runs were trained on the same interactions (in the same order)."""
    a, b = run_a.data.train, run_b.data.train
    if not (
        (run_a.data.n_users, run_a.data.n_items) == (run_b.data.n_users, run_b.data.n_items)
        and np.array_equal(a.users, b.users)
        and np.array_equal(a.items, b.items)
    ):
        raise UserInputError(
            f"{run_a.path} and {run_b.path} were trained on different data; compare two runs "
            "of the same dataset"
        )


@dataclasses.dataclass(frozen=True)
class Disagreement:
    """Mean |I(σ(y_a) ≥ .5) − I(σ(y_b) ≥ .5)| over clean and over noisy positives."""

    clean: float
    noisy: float
    n_clean: int
    n_noisy: int
    labels: tuple[str, str]


def disagreement(
    run_a: str | Path,
    run_b: str | Path,
    clean: Sequence[float] = (4.0, 5.0),
    noisy: Sequence[float] = (1.0, 2.0),
) -> Disagreement:
    """How often two trained runs disagree on clean versus noisy training positives."""
    runs = load_run(run_a), load_run(run_b)
    check_same_data(*runs)
    clean_mask, noisy_mask = positive_groups(runs[0].data.train, clean, noisy)
    # σ(y) ≥ .5 ⇔ y ≥ 0; the logit test avoids σ rounding to exactly .5 near zero.
    predicted = [run.training_logits() >= 0 for run in runs]
    differs = predicted[0] != predicted[1]
    return Disagreement(
        clean=float(differs[clean_mask].mean()) if clean_mask.any() else math.nan,
        noisy=float(differs[noisy_mask].mean()) if noisy_mask.any() else math.nan,
        n_clean=int(clean_mask.sum()),
        n_noisy=int(noisy_mask.sum()),
        labels=tuple(run_labels([run.path for run in runs])),
    )


def disagreement_figure(result: Disagreement):
    """Figure 2: the mean disagreement on clean and on noisy positives, two bars."""
    figure = new_figure(4.8, 4.0)
    axes = figure.add_subplot()
    names = [f"clean\n({result.n_clean})", f"noisy\n({result.n_noisy})"]
    bars = axes.bar(names, [result.clean, result.noisy], color=["tab:blue", "tab:red"])
    axes.bar_label(bars, fmt="%.3f")
    axes.set_ylabel("mean prediction disagreement")
    axes.set_ylim(0, max(1e-3, 1.15 * np.nanmax([result.clean, result.noisy, 0.0])))
    axes.set_title(f"{result.labels[0]} vs {result.labels[1]}", fontsize="medium")
    return figure


# ---------------------------------------------------------------------------------------------
# Heat map of a metric over the C1 × C2 grid


def resolve_key(key: str, flat: dict[str, Any]) -> str:
    """The config key that `key` names: itself, else the one key ending in '.key'."""
    if key in flat:
        return key
    matches = [name for name in flat if name.endswith(f".{key}")]
    if len(matches) != 1:
        reason = "no config key" if not matches else f"several config keys ({', '.join(matches)})"
        raise UserInputError(f"--fixed {key}: {reason} match; give the full key, e.g. method.alpha")
    return matches[0]


def parse_fixed(items: Sequence[str]) -> dict[str, str]:
    """['alpha=0'] → {'alpha': '0'}."""
    fixed = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserInputError(f"bad --fixed {item!r}; use KEY=VALUE, e.g. alpha=0")
        fixed[key.strip()] = value.strip()
    return fixed


def same_value(actual: Any, wanted: str) -> bool:
    """Config value `actual` equals the command-line text `wanted` ('0' matches 0.0)."""
    try:
        return float(actual) == float(wanted)
    except (TypeError, ValueError):
        return str(actual) == wanted


@dataclasses.dataclass(frozen=True)
class HeatMap:
    """values[i, j]: mean of the metric over the runs with C1 = c1[i] and C2 = c2[j] (NaN: none)."""

    c1: tuple[float, ...]
    c2: tuple[float, ...]
    values: np.ndarray
    counts: np.ndarray
    metric: str
    split: str
    fixed: dict[str, str]
    averaged: tuple[str, ...]  # other grid keys that vary and were averaged over
    skipped: tuple[str, ...]  # listed runs that have not finished


def read_grid(grid_dir: str | Path) -> tuple[Path, dict[str, dict[str, str]]]:
    """The grid directory and its {run name: overrides} from grid.json."""
    grid_dir = Path(grid_dir)
    if not grid_dir.is_dir():
        raise UserInputError(f"{grid_dir} is not a directory; pass the --out of dprec-grid")
    index = read_json(grid_dir / GRID_INDEX_FILE, "pass the --out of dprec-grid")
    runs = index.get("runs") if isinstance(index, dict) else None
    if not isinstance(runs, dict) or not runs:
        raise UserInputError(f"{grid_dir}/{GRID_INDEX_FILE} lists no runs")
    return grid_dir, runs


def grid_point(run_dir: Path, metric: str, split: str) -> tuple[dict[str, Any], float]:
    """(flat config, metric value) of one finished grid run (`dprec.runs.finished.read_run`)."""
    run = finished.read_run(run_dir)
    values = run.results.get("valid") if split == "valid" else run.test("paper")
    if not isinstance(values, dict):
        raise UserInputError(f"{run_dir}/{rundir.RESULTS_FILE} has no {split} results")
    flat = run.flat_config
    if C1_KEY not in flat or C2_KEY not in flat:
        raise UserInputError(f"{run_dir}/{rundir.CONFIG_FILE} has no {C1_KEY} or {C2_KEY}")
    where = f"{run_dir}/{rundir.RESULTS_FILE} ({split})"
    return flat, _metric_value(values, metric, where)


def averaged_keys(overrides: Sequence[dict[str, str]], fixed: Sequence[str]) -> tuple[str, ...]:
    """The grid keys other than C1, C2 and the fixed ones that take more than one value."""
    keys = sorted({key for point in overrides for key in point} - {C1_KEY, C2_KEY, *fixed})
    return tuple(key for key in keys if len({point.get(key) for point in overrides}) > 1)


def heatmap_matrix(
    grid_dir: str | Path,
    metric: str = "recall@20",
    split: str = "valid",
    fixed: dict[str, str] | None = None,
) -> HeatMap:
    """The metric over C1 × C2, averaged over the runs of each cell (those matching `fixed`)."""
    grid_dir, listed = read_grid(grid_dir)
    fixed = fixed or {}
    cells: dict[tuple[float, float], list[float]] = {}
    kept, skipped, fixed_keys = [], [], set()
    for name, overrides in listed.items():
        run_dir = grid_dir / name
        if not (run_dir / rundir.RESULTS_FILE).is_file():
            skipped.append(name)
            continue
        flat, value = grid_point(run_dir, metric, split)
        resolved = {resolve_key(key, flat): wanted for key, wanted in fixed.items()}
        fixed_keys.update(resolved)
        if all(same_value(flat[key], wanted) for key, wanted in resolved.items()):
            cells.setdefault((float(flat[C1_KEY]), float(flat[C2_KEY])), []).append(value)
            kept.append(overrides or {})
    if not cells:
        why = f"matches --fixed {fixed}" if listed.keys() - set(skipped) else "has finished"
        raise UserInputError(f"no run of {grid_dir} {why}")
    c1 = tuple(sorted({key[0] for key in cells}))
    c2 = tuple(sorted({key[1] for key in cells}))
    values = np.full((len(c1), len(c2)), np.nan)
    counts = np.zeros((len(c1), len(c2)), np.int64)
    for (a, b), runs in cells.items():
        i, j = c1.index(a), c2.index(b)
        finite = [v for v in runs if not math.isnan(v)]
        values[i, j] = float(np.mean(finite)) if finite else math.nan
        counts[i, j] = len(runs)
    averaged = averaged_keys(kept, fixed_keys)
    return HeatMap(c1, c2, values, counts, metric, split, fixed, averaged, tuple(skipped))


def _number(value: float) -> str:
    return f"{value:g}"


def heatmap_figure(heat: HeatMap):
    """C1 (rows) × C2 (columns) heat map of the metric, each cell annotated with its value."""
    figure = new_figure(max(4.8, 1.6 + 1.1 * len(heat.c2)), 1.6 + 0.8 * len(heat.c1))
    axes = figure.add_subplot()
    image = axes.imshow(np.ma.masked_invalid(heat.values), cmap="viridis", aspect="auto")
    figure.colorbar(image, ax=axes, label=f"{heat.split} {heat.metric}")
    axes.set_xticks(range(len(heat.c2)), [_number(v) for v in heat.c2])
    axes.set_yticks(range(len(heat.c1)), [_number(v) for v in heat.c1])
    axes.set_xlabel("C2")
    axes.set_ylabel("C1")
    finite = heat.values[np.isfinite(heat.values)]
    middle = (finite.min() + finite.max()) / 2 if finite.size else 0.0
    for (i, j), value in np.ndenumerate(heat.values):
        text = "–" if math.isnan(value) else f"{value:.4f}"
        # Light text on the dark (low) end of viridis, dark text on the bright end.
        color = "white" if math.isnan(value) or value < middle else "black"
        axes.text(j, i, text, ha="center", va="center", color=color, fontsize="small")
    notes = [f"{key}={value}" for key, value in heat.fixed.items()]
    if heat.averaged:
        notes.append("mean over " + ", ".join(heat.averaged))
    axes.set_title("\n".join([f"{heat.split} {heat.metric}", "; ".join(notes)]).strip())
    return figure


# ---------------------------------------------------------------------------------------------
# Command line


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog="dprec-plots", description=__doc__.splitlines()[0], tool="plots"
    )
    commands = parser.add_subparsers(dest="kind", required=True, metavar="KIND")
    curves = commands.add_parser("curves", help="Figure 3: a metric per epoch, one line per run")
    curves.add_argument("runs", nargs="+", metavar="RUN_DIR")
    curves.add_argument("--metric", default="recall@20")
    curves.add_argument("--split", choices=("test", "valid"), default="test")
    real = commands.add_parser("real-positive", help="Figure 5: P(r=1|r̃=1) per rating level")
    real.add_argument("runs", nargs="+", metavar="RUN_DIR")
    dis = commands.add_parser("disagreement", help="Figure 2: disagreement of two runs")
    dis.add_argument("run_a", metavar="RUN_A")
    dis.add_argument("run_b", metavar="RUN_B")
    dis.add_argument("--clean", default="4,5", help="rating levels of clean positives")
    dis.add_argument("--noisy", default="1,2", help="rating levels of noisy positives")
    heat = commands.add_parser("heatmap", help="a metric over a grid's C1 × C2")
    heat.add_argument("grid", metavar="GRID_DIR")
    heat.add_argument("--metric", default="recall@20")
    heat.add_argument("--split", choices=("valid", "test"), default="valid")
    heat.add_argument("--fixed", action="append", default=[], help="KEY=VALUE (repeat)")
    for command in (curves, real, dis, heat):
        command.add_argument("--out", required=True, type=Path, help="the PNG file to write")
    return parser


def make_figure(args: argparse.Namespace):
    """The Figure of the parsed command; prints the numbers of the disagreement."""
    if args.kind == "curves":
        return curves_figure(args.runs, args.metric, args.split)
    if args.kind == "real-positive":
        return real_positive_figure(args.runs)
    if args.kind == "disagreement":
        result = disagreement(
            args.run_a,
            args.run_b,
            parse_levels(args.clean, "--clean"),
            parse_levels(args.noisy, "--noisy"),
        )
        print(
            f"mean disagreement: clean {result.clean:.4f} over {result.n_clean}, "
            f"noisy {result.noisy:.4f} over {result.n_noisy}"
        )
        return disagreement_figure(result)
    heat = heatmap_matrix(args.grid, args.metric, args.split, parse_fixed(args.fixed))
    if heat.skipped:
        print(f"skipped unfinished runs: {', '.join(heat.skipped)}", file=sys.stderr)
    return heatmap_figure(heat)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def body() -> int:
        if not args.out.parent.is_dir():  # fail before loading or training anything
            raise UserInputError(f"cannot write {args.out}: {args.out.parent} is not a directory")
        print(f"wrote {save_figure(make_figure(args), args.out)}")
        return 0

    return run_tool("plots", body)


if __name__ == "__main__":
    sys.exit(main())
