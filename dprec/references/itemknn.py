"""ItemKNN: item–item cosine similarity with shrinkage, the k nearest neighbours of each item.

With x_i `[U]` item i's binary training column: sim_ij = x_i·x_j / (‖x_i‖‖x_j‖ + shrink)
(i ≠ j); for each scored item j only its k most similar items i are kept (ties: lowest index);
score_uj = Σ_{i ∈ N_k(j)} x_ui · sim_ij. Sparse throughout: the co-count matrix XᵀX has an
entry only for items that share a user.

Differs from Ferrari Dacrema et al.'s implementation (which also keeps the top-k per scored
item): the self-similarity is dropped before the top-k (it only scores a seen item, which is
masked, and would take one of the k places), and no other similarity (Jaccard, adjusted
cosine...) or feature weighting (TF-IDF, BM25) is searched: the grid stays small.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from dprec.references import sparse_ops
from dprec.references.base import ChunkScorer, Reference, grid_of
from dprec.references.names import REFERENCE_LABELS


def cosine_similarity(train: sparse.csr_matrix, shrink: float) -> sparse.csr_matrix:
    """sim `[I, I]` (CSR, no diagonal): co-counts / (‖x_i‖‖x_j‖ + shrink)."""
    co_counts = (train.T @ train).tocoo()
    norms = np.sqrt(np.asarray(train.sum(axis=0), np.float64).ravel())  # binary: ‖x_i‖² = n_i
    off = co_counts.row != co_counts.col
    row, col = co_counts.row[off], co_counts.col[off]
    values = co_counts.data[off] / (norms[row] * norms[col] + shrink)
    n_items = train.shape[1]
    return sparse.csr_matrix((values.astype(np.float32), (row, col)), shape=(n_items, n_items))


def item_knn_weights(train: sparse.csr_matrix, k: int, shrink: float) -> sparse.csr_matrix:
    """Weights `[I, I]` (item i → scored item j): column j holds j's k nearest items."""
    # sim is symmetric, so the top k of row j are the top k of column j.
    return sparse_ops.keep_top_k_per_row(cosine_similarity(train, shrink), k).T.tocsr()


def fit_item_knn(train: sparse.csr_matrix, *, k: int, shrink: float) -> ChunkScorer:
    """Scores `[C, I]` = training rows · ItemKNN weights."""
    return sparse_ops.make_item_item_scorer(train, item_knn_weights(train, k, shrink))


REFERENCE = Reference(
    name="itemknn",
    label=REFERENCE_LABELS["itemknn"],
    hyper_grid=grid_of(k=(50, 100, 200), shrink=(0.0, 10.0, 100.0)),
    fit_fn=fit_item_knn,
)
