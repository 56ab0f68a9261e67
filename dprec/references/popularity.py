"""Popularity: every user gets the items ranked by their training interaction count.

The same ranking as `dprec.evaluation.ranking.popularity_scores` (float32 counts, ties by the
lowest item index); here as a reference so that one code path produces every reference row.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from dprec.references.base import ChunkScorer, Reference
from dprec.references.names import REFERENCE_LABELS


def fit_popularity(train: sparse.csr_matrix) -> ChunkScorer:
    """Scores `[C, I]`: each row is the items' training counts `[I]`."""
    counts = np.asarray(train.sum(axis=0), np.float32).ravel()

    def scores(users: np.ndarray) -> np.ndarray:
        return np.broadcast_to(counts, (users.shape[0], counts.shape[0]))

    return scores


REFERENCE = Reference(
    name="popularity",
    label=REFERENCE_LABELS["popularity"],
    hyper_grid=({},),
    fit_fn=fit_popularity,
)
