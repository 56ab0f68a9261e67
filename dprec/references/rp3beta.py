"""RP3β (Paudel et al., ACM TiiS 2016): a 3-step random walk user → item → user → item, with
each destination item's probability divided by its popularity^β.

P_ui `[U, I]`: training rows divided by the user's degree; P_iu `[I, U]`: training columns
divided by the item's degree; both raised element-wise to α. W = P_iu · P_ui `[I, I]`, column
j divided by n_j^β (n_j: item j's training count), the diagonal dropped, and in each row i only
the k largest entries kept (ties: lowest index). score_uj = Σ_i x_ui · W_ij.

Like Ferrari Dacrema et al.'s implementation (top-k per start item i, popularity applied
before it), except that the diagonal (a walk back to the start item, which only scores a seen
and so masked item) is dropped before the top-k, and rows are not re-normalised afterwards
(their option, off by default). Sparse throughout.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from dprec.references import sparse_ops
from dprec.references.base import ChunkScorer, Reference, grid_of
from dprec.references.names import REFERENCE_LABELS


def _inverse(counts: np.ndarray, power: float) -> np.ndarray:
    """counts^(−power) `[N]`, 0 where a count is 0 (an empty row stays empty)."""
    counts = counts.astype(np.float64)
    return np.where(counts > 0, np.maximum(counts, 1.0) ** -power, 0.0)


def rp3beta_weights(
    train: sparse.csr_matrix, alpha: float, beta: float, k: int
) -> sparse.csr_matrix:
    """W `[I, I]` (CSR): the pruned, popularity-penalised 3-step transition probabilities."""
    user_degree = np.asarray(train.sum(axis=1)).ravel()
    item_degree = np.asarray(train.sum(axis=0)).ravel()
    user_to_item = sparse.diags(_inverse(user_degree, 1.0)) @ train
    item_to_user = sparse.diags(_inverse(item_degree, 1.0)) @ train.T.tocsr()
    user_to_item.data **= alpha
    item_to_user.data **= alpha
    walk = item_to_user @ user_to_item  # [I, I]
    walk = walk @ sparse.diags(_inverse(item_degree, beta))
    return sparse_ops.keep_top_k_per_row(sparse_ops.without_diagonal(walk), k)


def fit_rp3beta(train: sparse.csr_matrix, *, alpha: float, beta: float, k: int) -> ChunkScorer:
    """Scores `[C, I]` = training rows · RP3β weights."""
    return sparse_ops.make_item_item_scorer(train, rp3beta_weights(train, alpha, beta, k))


REFERENCE = Reference(
    name="rp3beta",
    label=REFERENCE_LABELS["rp3beta"],
    hyper_grid=grid_of(alpha=(0.5, 1.0), beta=(0.0, 0.3, 0.6), k=(100, 200)),
    fit_fn=fit_rp3beta,
)
