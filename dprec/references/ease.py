"""EASE (Steck, WWW 2019): a closed-form item–item linear model with a zero diagonal.

B = argmin ‖X − XB‖² + λ‖B‖² subject to diag(B) = 0, whose solution is
B = I − P · diag(1 / diag(P)) with P = (XᵀX + λI)⁻¹, i.e. B_ij = −P_ij / P_jj (i ≠ j), B_jj = 0.
score_u = x_u · B. The Gram matrix is built sparse on the host; the dense `[I, I]` float32
inverse runs with jax.numpy on the default device; scores are the users' sparse training rows
times B, on the host.

Differs from Steck's reference code only in precision (float32, his NumPy code uses float64:
the device's fast type; λ ≥ 1 keeps XᵀX + λI well conditioned) and in refusing more than
`MAX_ITEMS` items, where the dense inverse stops being a small cost.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from scipy import sparse

from dprec.references import sparse_ops
from dprec.references.base import ChunkScorer, Reference, grid_of
from dprec.references.names import REFERENCE_LABELS

MAX_ITEMS = 20_000  # 1.6 GB per dense float32 item × item matrix; a few are alive at once


def why_not_ease(n_items: int) -> str:
    """'' when the dense `[I, I]` inverse fits, else the one-line reason to skip it."""
    if n_items <= MAX_ITEMS:
        return ""
    gigabytes = 4 * n_items**2 / 1e9
    return (
        f"EASE needs dense {n_items} x {n_items} matrices ({gigabytes:.1f} GB each); skipped "
        f"above {MAX_ITEMS} items"
    )


@jax.jit
def ease_weights(gram: jax.Array, l2: jax.Array) -> jax.Array:
    """B `[I, I]` from the Gram matrix XᵀX `[I, I]` and λ (a scalar)."""
    # A general inverse, not a Cholesky solve: on XLA's CPU backend the triangular solves with
    # I right-hand sides took 4 × longer (1,682 items: 4.6 s against 1.0 s), at equal error.
    precision = jnp.linalg.inv(gram + l2 * jnp.eye(gram.shape[0], dtype=gram.dtype))
    weights = -precision / jnp.diagonal(precision)[None, :]
    return weights.at[jnp.diag_indices(gram.shape[0])].set(0.0)


def fit_ease(train: sparse.csr_matrix, *, l2: float) -> ChunkScorer:
    """Scores `[C, I]` = training rows `[C, I]` · B: B solved on the device, the rows' sparse
    product with it on the host."""
    gram = jnp.asarray((train.T @ train).toarray(), jnp.float32)
    weights = np.asarray(ease_weights(gram, jnp.float32(l2)))
    del gram
    # Sparse rows · dense B costs nnz(rows) × I, not C × I × I: at Electronics size (1.1 pairs
    # per user) a chunk of 1,024 users is 10 MFLOP instead of 190 GFLOP as a dense product.
    return sparse_ops.make_item_item_scorer(train, weights)


REFERENCE = Reference(
    name="ease",
    label=REFERENCE_LABELS["ease"],
    hyper_grid=grid_of(l2=(1.0, 10.0, 100.0, 500.0, 1000.0, 3000.0)),
    fit_fn=fit_ease,
    why_not=why_not_ease,
)
