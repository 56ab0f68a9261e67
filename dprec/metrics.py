"""Recall@K and NDCG@K from hit matrices (NumPy), with the paper's definitions.

With T a user's relevant items and hit_j = 1 if the item at rank j is in T:
Recall@K = Σ_{j≤K} hit_j / |T|;
NDCG@K = Σ_{j≤K} hit_j / log2(j+1)  /  Σ_{j≤min(|T|,K)} 1 / log2(j+1).
Users weigh equally.
"""

from __future__ import annotations

import numpy as np


def recall_ndcg_per_user(
    hits: np.ndarray, n_relevant: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-user Recall@k and NDCG@k `[U]` from `hits` `[U, ≥k]` (bool) and |T| `[U]` (≥ 1)."""
    top = hits[:, :k].astype(np.float64)
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    recall = top.sum(1) / n_relevant
    ideal = np.cumsum(discount)[np.minimum(n_relevant, k) - 1]
    ndcg = (top * discount).sum(1) / ideal
    return recall, ndcg


def summarize(
    hits: np.ndarray, n_relevant: np.ndarray, ks: tuple[int, ...], select: np.ndarray | None = None
) -> dict[str, float | int | None]:
    """Mean Recall@K and NDCG@K over the selected users, plus their count.

    `select` `[U]` bool picks a subset (all users if None). With no user selected the metric
    values are None.
    """
    if select is not None:
        hits, n_relevant = hits[select], n_relevant[select]
    result: dict[str, float | int | None] = {}
    for k in ks:
        if hits.shape[0] == 0:
            result[f"recall@{k}"] = result[f"ndcg@{k}"] = None
            continue
        recall, ndcg = recall_ndcg_per_user(hits, n_relevant, k)
        result[f"recall@{k}"] = float(recall.mean())
        result[f"ndcg@{k}"] = float(ndcg.mean())
    result["users"] = int(hits.shape[0])
    return result
