"""P(r=1 | r̃=1) for every training interaction (section 4.4, Figure 5).

The score is the method's (`Method.real_positive_scores`): DPI h'·f / (h'·f + h·(1−f)); DVAE f;
DCF exp(−ℓ*), CrossDenoise its weight / β². With a truth column (planted data) the summary
has the ROC AUC of the score for telling clean from noisy interactions, and
`inverse_popularity_auc` gives the trivial score's AUC to read it against.
The table carries the original ids, the rating where the data has one, and the ground truth
where the data has one (synthetic data).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dprec.data.dataset import InteractionData
from dprec.methods.base import Method
from dprec.methods.roles import Roles
from dprec.runs import rundir
from dprec.specs import RunSpec

TABLE_FILE = "real_positive.csv.gz"


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """ROC-AUC of `scores` `[N]` for the boolean labels `positive` `[N]` (Mann-Whitney, ties
    averaged); NaN without both classes."""
    scores, positive = np.asarray(scores, np.float64), np.asarray(positive, bool)
    ranks = pd.Series(scores).rank(method="average").to_numpy()
    n_pos, n_neg = positive.sum(), (~positive).sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def inverse_popularity_auc(table: pd.DataFrame) -> float | None:
    """ROC AUC of the trivial noise score, inverse item popularity (the rarer a row's item in
    `table`, the more likely the row is clean), for telling clean rows (truth 1) from noisy
    ones; `table` has one row per training interaction with columns item and truth. None
    without both classes. A method's score below it has learnt less than the item counts."""
    popularity = table.groupby("item")["item"].transform("size").to_numpy()
    auc = roc_auc(-popularity, table["truth"].to_numpy() == 1)
    return None if np.isnan(auc) else auc


def real_positive_table(
    spec: RunSpec,
    method: Method,
    roles: Roles,
    params: dict[str, Any],
    data: InteractionData,
    graph: Any = None,
    method_state: Any = None,
) -> pd.DataFrame:
    """One row per training interaction: user, item (original ids), probability (the
    method's `real_positive_scores`), [rating, truth]."""
    train = data.train
    table = pd.DataFrame(
        {
            "user": data.user_ids[train.users],
            "item": data.item_ids[train.items],
            "probability": method.real_positive_scores(
                spec, roles, params, method_state, data, graph
            ),
        }
    )
    if train.ratings is not None:
        table["rating"] = train.ratings
    if train.truth is not None:
        table["truth"] = train.truth
    return table


def summarize_table(table: pd.DataFrame) -> dict[str, Any]:
    """Mean probability overall, per rating level (Figure 5) and per ground-truth label."""
    summary: dict[str, Any] = {"mean": float(table.probability.mean()), "rows": len(table)}
    if "rating" in table:
        by_rating = table.groupby("rating").probability.agg(["mean", "size"])
        summary["by_rating"] = {
            str(level): {"mean": float(row["mean"]), "count": int(row["size"])}
            for level, row in by_rating.iterrows()
        }
    if "truth" in table:
        summary["truly_clean_mean"] = float(table.probability[table.truth == 1].mean())
        summary["truly_noisy_mean"] = float(table.probability[table.truth == 0].mean())
        auc = roc_auc(table.probability, table.truth == 1)  # clean ranked above noisy
        summary["noise_detection_auc"] = None if np.isnan(auc) else auc
    return summary


def write_table(table: pd.DataFrame, run_dir: Path) -> None:
    """Write the table as gzip CSV into the run directory, atomically."""
    rundir.write_atomic_bytes(
        Path(run_dir) / TABLE_FILE,
        table.to_csv(index=False, compression=None).encode(),
        gzip_compress=True,
    )
