"""Run methods × seeds for one (dataset, model) and print a mean ± std table.

    python launch/compare.py --dataset modcloth --model gmf --methods normal,dpi,dvae \
        --seeds 0,1,2 --out runs/modcloth-gmf [--set train.num_epochs=10 ...]

Each run is `dprec.train.train_and_evaluate` on `configs/default.py`'s preset for the triple,
written to OUT/<method>-seed<seed>/; runs whose results.json exists are skipped, so an
interrupted comparison resumes. The table (Markdown) is printed and saved as OUT/table.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from absl import logging

from dprec import metrics_io, train
from dprec.errors import UserInputError
from dprec.presets import build_config

VIEWS = (("paper", "test"), ("warm", "test"), ("paper", "test_last"), ("warm", "test_last"))


def apply_override(config, assignment: str) -> None:
    """'train.num_epochs=5' → config.train.num_epochs = 5 (typed like the current value)."""
    key, _, raw = assignment.partition("=")
    *path, field = key.split(".")
    section = config
    for part in path:
        section = section[part]
    current = section[field]
    if isinstance(current, (tuple, list)):
        value = tuple(type(current[0])(v) for v in raw.split(","))
    elif isinstance(current, bool):
        value = raw.lower() in ("1", "true", "yes")
    else:
        value = type(current)(raw)
    section[field] = value


def run_all(args) -> dict[str, list[dict]]:
    results: dict[str, list[dict]] = {}
    for method in args.methods.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            workdir = Path(args.out) / f"{method}-seed{seed}"
            done = workdir / metrics_io.RESULTS_FILE
            if not done.exists():
                config = build_config(f"dataset={args.dataset},model={args.model},method={method}")
                config.seed = seed
                for assignment in args.set:
                    apply_override(config, assignment)
                print(f"running {workdir}", file=sys.stderr, flush=True)
                train.train_and_evaluate(config, str(workdir))
            results.setdefault(method, []).append(json.loads(done.read_text()))
    return results


def table(results: dict[str, list[dict]], ks: list[int]) -> str:
    metrics = [f"{m}@{k}" for k in ks for m in ("recall", "ndcg")]
    lines = []
    for view, key in VIEWS:
        when = "best validation epoch" if key == "test" else "last epoch"
        lines += [
            f"**{view} users, test at the {when}** (mean ± std over seeds)",
            "",
            "| method | " + " | ".join(metrics) + " | epoch |",
            "|---" * (len(metrics) + 2) + "|",
        ]
        for method, runs in results.items():
            cells = []
            for metric in metrics:
                values = np.array([run[key][view][metric] for run in runs], float)
                cells.append(f"{values.mean():.4f} ± {values.std():.4f}")
            epochs = [run["best_epoch"] if key == "test" else run["epochs_run"] for run in runs]
            lines.append(f"| {method} | " + " | ".join(cells) + f" | {np.mean(epochs):.0f} |")
        popularity = results[next(iter(results))][0][key][f"popularity_{view}"]
        lines.append(
            "| popularity | " + " | ".join(f"{popularity[m]:.4f}" for m in metrics) + " | – |"
        )
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="synthetic")
    parser.add_argument("--model", default="gmf")
    parser.add_argument("--methods", default="normal,dpi,dvae")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out", required=True)
    parser.add_argument("--set", action="append", default=[], help="config override a.b=value")
    args = parser.parse_args()
    logging.set_verbosity(logging.WARNING)
    try:
        results = run_all(args)
    except UserInputError as err:
        print(f"compare: error: {err}", file=sys.stderr)
        sys.exit(2)
    first = results[next(iter(results))][0]
    ks = sorted({int(k.split("@")[1]) for k in first["valid"] if "@" in k})
    text = table(results, ks)
    metrics_io.write_atomic(Path(args.out) / "table.md", text + "\n")
    print(text)


if __name__ == "__main__":
    main()
