"""Which training interactions look noisy? A report on one or more trained runs.

    dprec-denoise-report --workdir DIR [--workdir DIR2 ...] [--top 20]

For each run: every training interaction with its P(real positive) — P(r=1 | r̃=1) for DPI
(h'·f / (h'·f + h·(1−f))) and DVAE (f), and σ(f), the model's own probability, for any other
method — written to DIR/denoise_report.csv.gz; the mean per rating level; and the `--top` most
suspicious interactions (lowest P) in DIR/suspicious.csv. Where the data carry the truth (the
synthetic generator), it prints the ROC-AUC and precision@k of flagging truly noisy
interactions by 1 − P and, for comparison, by a T-CE-style loss score (the target's BCE on the
interaction, −log σ(f): T-CE drops the largest-loss positives) and by the trivial score, item
popularity (inverse popularity as a clean score: the bench's baseline), with the method's AUC
beside the trivial one and a line saying so when the method's is worse. Each run's lines end by
naming the files written, with their row counts.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from dprec.cli import OneLineErrorParser, run_tool
from dprec.evaluation import noise_scores
from dprec.runs import rundir
from dprec.tools.run_loading import LoadedRun, load_run

REPORT_FILE = "denoise_report.csv.gz"
SUSPICIOUS_FILE = "suspicious.csv"
PRECISION_KS = (100, 1000)
METHOD_SCORE = "1 - P(real positive)"
TRIVIAL_SCORE = "inverse item popularity"  # flags the rows of popular items first


def precision_at(scores: np.ndarray, positive: np.ndarray, k: int) -> float:
    """Share of truly positive labels among the `k` highest scores."""
    top = np.argsort(-scores, kind="stable")[: min(k, scores.shape[0])]
    return float(positive[top].mean())


def interaction_table(run: LoadedRun) -> pd.DataFrame:
    """One row per training interaction with P(real positive) and the T-CE-style loss."""
    table = noise_scores.real_positive_table(
        run.spec,
        run.setup.method,
        run.setup.roles,
        run.best_params,
        run.data,
        run.setup.graph,
        run.state.method_state,
    )
    logits = run.training_logits()
    table["loss"] = np.logaddexp(0.0, -logits)  # −log σ(f), computed stably
    return table


def detection_scores(table: pd.DataFrame) -> dict[str, dict[str, float]]:
    """AUC and precision@k of flagging truly noisy interactions, per score."""
    noisy = table["truth"].to_numpy() == 0
    scores = {
        METHOD_SCORE: 1.0 - table["probability"].to_numpy(),
        "T-CE loss score": table["loss"].to_numpy(),
        # flagging noisy by popularity = ranking clean by inverse popularity: the same AUC as
        # noise_scores.inverse_popularity_auc
        TRIVIAL_SCORE: table.groupby("item")["item"].transform("size").to_numpy(),
    }
    return {
        name: {
            "auc": noise_scores.roc_auc(score, noisy),
            **{f"precision@{k}": precision_at(score, noisy, k) for k in PRECISION_KS},
        }
        for name, score in scores.items()
    }


def trivial_score_lines(detection: dict[str, dict[str, float]]) -> list[str]:
    """The method's AUC beside inverse popularity's, and a line saying so when the method's is
    worse (a method that learnt less about the noise than the item counts tell)."""
    method, trivial = detection[METHOD_SCORE]["auc"], detection[TRIVIAL_SCORE]["auc"]
    beside = f"{method:.3f} ({METHOD_SCORE}) beside {trivial:.3f} ({TRIVIAL_SCORE})"
    lines = [f"  noise-detection AUC {beside}"]
    if method < trivial:
        lines.append(
            f"  the method's score is WORSE than {TRIVIAL_SCORE}, a trivial score: "
            f"AUC {method:.3f} < {trivial:.3f}"
        )
    return lines


def report(run: LoadedRun, top: int) -> dict:
    """Write the run's report files and return its summary (an unfinished run's files carry
    its epoch in their names: `denoise_report.epoch3.csv.gz`)."""
    table = interaction_table(run)
    report_file = run.path / run.output_name(REPORT_FILE)
    rundir.write_atomic_bytes(report_file, table.to_csv(index=False).encode(), gzip_compress=True)
    suspicious = table.nsmallest(top, "probability")
    suspicious_file = run.path / run.output_name(SUSPICIOUS_FILE)
    rundir.write_atomic(suspicious_file, suspicious.to_csv(index=False))
    summary = {
        "method": run.spec.method.name,
        "epoch": run.epoch,
        "finished": run.finished,
        **noise_scores.summarize_table(table),
        "suspicious": suspicious,
        # every file written, with its row count
        "written": {report_file: len(table), suspicious_file: len(suspicious)},
    }
    if "truth" in table:
        summary["detection"] = detection_scores(table)
    return summary


def print_summary(path: Path, summary: dict) -> None:
    state = "" if summary["finished"] else f", UNFINISHED: epoch {summary['epoch']}"
    print(
        f"== {path} ({summary['method']}{state}): {summary['rows']} training interactions, "
        f"mean P(real positive) {summary['mean']:.3f}"
    )
    for level, row in summary.get("by_rating", {}).items():
        print(f"  rating {level}: mean P {row['mean']:.3f} over {row['count']}")
    for name, scores in summary.get("detection", {}).items():
        parts = " ".join(f"{k} {v:.3f}" for k, v in scores.items())
        print(f"  flagging truly noisy by {name}: {parts}")
    if "detection" in summary:
        print("\n".join(trivial_score_lines(summary["detection"])))
    print(f"  most suspicious (lowest P):\n{summary['suspicious'].to_string(index=False)}")
    for path, rows in summary["written"].items():
        print(f"  wrote {path} ({rows} rows)")


def main(argv: list[str] | None = None) -> int:
    parser = OneLineErrorParser(
        prog="dprec-denoise-report",
        description=__doc__.splitlines()[0],
        tool="denoise_report",
    )
    parser.add_argument("--workdir", action="append", required=True, help="a trained run")
    parser.add_argument("--top", type=int, default=20, help="suspicious interactions listed")
    parser.add_argument(
        "--allow-unfinished",
        action="store_true",
        help="report on a run that has not finished (its last checkpoint; the files carry its "
        "epoch in their names)",
    )
    args = parser.parse_args(argv)

    def body() -> int:
        for workdir in args.workdir:
            run = load_run(workdir, allow_unfinished=args.allow_unfinished)
            print_summary(Path(workdir), report(run, args.top))
        return 0

    return run_tool("denoise_report", body)


if __name__ == "__main__":
    sys.exit(main())
