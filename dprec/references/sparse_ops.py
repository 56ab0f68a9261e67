"""Host-side sparse helpers shared by the references (SciPy CSR, float32)."""

from __future__ import annotations

import numpy as np
from scipy import sparse

from dprec.references.base import ChunkScorer


def interaction_matrix(
    users: np.ndarray, items: np.ndarray, n_users: int, n_items: int
) -> sparse.csr_matrix:
    """The binary matrix `[n_users, n_items]` (float32 CSR) of the (user, item) pairs `[N]`;
    a repeated pair counts once."""
    matrix = sparse.csr_matrix(
        (np.ones(users.shape[0], np.float32), (users, items)), shape=(n_users, n_items)
    )
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix


def without_diagonal(matrix: sparse.spmatrix) -> sparse.csr_matrix:
    """`matrix` (square) with its diagonal entries removed from the sparsity structure."""
    coo = sparse.coo_matrix(matrix)
    off = coo.row != coo.col
    return sparse.csr_matrix((coo.data[off], (coo.row[off], coo.col[off])), shape=coo.shape)


def keep_top_k_per_row(matrix: sparse.spmatrix, k: int) -> sparse.csr_matrix:
    """The `k` largest entries of every row (ties: lowest column), the rest dropped.

    Vectorised over all entries: one sort by (row, −value, column)."""
    matrix = sparse.csr_matrix(matrix, dtype=np.float32)
    matrix.eliminate_zeros()
    rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    order = np.lexsort((matrix.indices, -matrix.data, rows))
    rank_in_row = np.arange(order.shape[0]) - matrix.indptr[rows[order]]
    kept = order[rank_in_row < k]
    return sparse.csr_matrix(
        (matrix.data[kept], (rows[kept], matrix.indices[kept])), shape=matrix.shape
    )


def make_item_item_scorer(
    train: sparse.csr_matrix, weights: sparse.spmatrix | np.ndarray
) -> ChunkScorer:
    """Scores `[C, I]` = the users' training rows `[C, I]` · `weights` `[I, I]` (item → item;
    sparse, or a dense array), a sparse product either way."""
    if sparse.issparse(weights):
        weights = sparse.csr_matrix(weights, dtype=np.float32)
    else:
        weights = np.asarray(weights, np.float32)

    def scores(users: np.ndarray) -> np.ndarray:
        product = train[users] @ weights
        product = product.toarray() if sparse.issparse(product) else np.asarray(product)
        return product.astype(np.float32, copy=False)

    return scores
