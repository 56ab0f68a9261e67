"""Recall@K and NDCG@K from hit matrices (NumPy), with the paper's definitions.

With T a user's relevant items and hit_j = 1 if the item at rank j is in T:
Recall@K = Σ_{j≤K} hit_j / |T|;
NDCG@K = Σ_{j≤K} hit_j / log2(j+1)  /  Σ_{j≤min(|T|,K)} 1 / log2(j+1).
Users weigh equally.
"""

from __future__ import annotations

import numpy as np


def recall_per_user(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """Recall@k `[U]` from `hits` `[U, ≥k]` (bool) and |T| `[U]` (≥ 1)."""
    return hits[:, :k].astype(np.float64).sum(1) / n_relevant


def ndcg_per_user(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """NDCG@k `[U]` from `hits` `[U, ≥k]` (bool) and |T| `[U]` (≥ 1)."""
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.cumsum(discount)[np.minimum(n_relevant, k) - 1]
    return (hits[:, :k].astype(np.float64) * discount).sum(1) / ideal


# The reported metrics: a new one (e.g. HR@K, MRR@K) is one function and one entry here.
PER_USER_METRICS = {"recall": recall_per_user, "ndcg": ndcg_per_user}
METRICS = tuple(PER_USER_METRICS)


def metric_names(ks: tuple[int, ...]) -> list[str]:
    """'recall@5', 'recall@20', 'ndcg@5', ...: every metric at every cut-off, metric-major."""
    return [f"{metric}@{k}" for metric in METRICS for k in ks]


def recall_ndcg_per_user(
    hits: np.ndarray, n_relevant: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-user Recall@k and NDCG@k `[U]` (see `recall_per_user`, `ndcg_per_user`)."""
    return recall_per_user(hits, n_relevant, k), ndcg_per_user(hits, n_relevant, k)


def summarize(
    hits: np.ndarray, n_relevant: np.ndarray, ks: tuple[int, ...], select: np.ndarray | None = None
) -> dict[str, float | int | None]:
    """Mean of every metric at every K over the selected users, plus their count.

    `select` `[U]` bool picks a subset (all users if None). With no user selected the metric
    values are None.
    """
    if select is not None:
        hits, n_relevant = hits[select], n_relevant[select]
    result: dict[str, float | int | None] = {}
    for k in ks:
        for metric, per_user in PER_USER_METRICS.items():
            value = per_user(hits, n_relevant, k).mean() if hits.shape[0] else None
            result[f"{metric}@{k}"] = None if value is None else float(value)
    result["users"] = int(hits.shape[0])
    return result
