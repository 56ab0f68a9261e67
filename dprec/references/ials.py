"""iALS (Hu, Koren and Volinsky, ICDM 2008): weighted matrix factorisation of implicit feedback,
fitted by the `implicit` library's CPU alternating least squares (an optional dependency:
`pip install 'dprec[references]'`).

Minimises Σ_{u,i} c_ui (p_ui − x_uᵀy_i)² + λ(Σ‖x_u‖² + Σ‖y_i‖²) over all (user, item) pairs,
p_ui = 1 for a training pair (else 0), confidence c_ui = 1 + α for a training pair (else 1);
score_ui = x_uᵀy_i. `implicit` takes the confidence as the matrix's value (its own `alpha`
multiplies it), so the matrix given to it holds 1 + α: the grid's α is the paper's α.
Deterministic: a fixed `random_state`, and each user's (item's) solve is independent of the
thread that runs it. Users without training pairs are left out of the fit: their factors are 0.
`implicit` solves each least-squares step with 3 conjugate-gradient iterations (its default),
not exactly.
"""

from __future__ import annotations

import importlib.util

import numpy as np
from scipy import sparse

from dprec.references.base import ChunkScorer, Reference, grid_of
from dprec.references.names import REFERENCE_LABELS

ITERATIONS = 15
# Small: the machine is shared. Below SMALL_NNZ training pairs one thread is faster (on a
# busy 2-core machine two threads made a 245 × 80 fit up to 10 × slower). The solves are
# deterministic at any thread count.
NUM_THREADS = 2
SMALL_NNZ = 100_000
SEED = 0  # the same reference for every run seed


def why_not_ials(n_items: int) -> str:
    """'' when `implicit` is importable, else how to install it."""
    del n_items
    if importlib.util.find_spec("implicit") is not None:
        return ""
    return "the `implicit` library is not installed: pip install 'dprec[references]'"


def fit_ials(
    train: sparse.csr_matrix,
    *,
    factors: int,
    regularization: float,
    alpha: float,
    iterations: int = ITERATIONS,
) -> ChunkScorer:
    """Scores `[C, I]` = user factors `[C, factors]` · item factorsᵀ."""
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    # Only users with training pairs are fitted. A cold user's exact solution is 0 (no
    # positive, so its least squares is minimised by x_u = 0), and a zero row adds nothing to
    # the item step; `implicit` would instead keep what is left of its random start after the
    # conjugate-gradient steps. Zero rows keep every cold user's scores equal, so that the
    # lowest-index tie rule applies, as with the other references and trained models.
    warm = np.flatnonzero(np.diff(train.indptr) > 0)
    confidence = train[warm].astype(np.float32)
    confidence.data[:] = 1.0 + alpha
    # `implicit` parallelises over users itself; a multi-threaded BLAS under it only slows it.
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(
            factors=factors,
            regularization=regularization,
            alpha=1.0,
            iterations=iterations,
            num_threads=1 if train.nnz < SMALL_NNZ else NUM_THREADS,
            random_state=SEED,
        )
        model.fit(confidence, show_progress=False)
    user_factors = np.zeros((train.shape[0], factors), np.float32)
    user_factors[warm] = model.user_factors
    item_factors = np.asarray(model.item_factors, np.float32)

    def scores(users: np.ndarray) -> np.ndarray:
        return user_factors[users] @ item_factors.T

    return scores


REFERENCE = Reference(
    name="ials",
    label=REFERENCE_LABELS["ials"],
    # λ is not scaled by counts in `implicit`: on Modcloth (1.8 training pairs per user) the
    # best λ was 100 and λ ≤ 1 fell about 15 % below it; on ML-100k λ 0.01 … 10 were within 1 %.
    hyper_grid=grid_of(factors=(32, 64), regularization=(0.1, 1.0, 10.0, 100.0), alpha=(1.0, 10.0)),
    fit_fn=fit_ials,
    why_not=why_not_ials,
)
