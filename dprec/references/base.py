"""The interface of a reference recommender: a name, a hyper-parameter grid and a fit.

A fit takes the binary training matrix `[U, I]` (SciPy CSR) and one grid point, and returns a
`ChunkScorer`: users `[C]` → scores `[C, I]` (float32, NumPy or JAX), so that ranking never
holds a users × items matrix (`select.fit_references` scores chunk by chunk).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

ChunkScorer = Callable[[np.ndarray], Any]  # users [C] -> scores [C, n_items]
Hyper = dict[str, Any]


def _always_available(n_items: int) -> str:
    del n_items
    return ""


@dataclasses.dataclass(frozen=True)
class Reference:
    """One reference recommender.

    name: registry name (`names.REFERENCE_NAMES`); label: its name in reports;
    hyper_grid: the grid points searched on the validation split, in order (the first of equal
    validation scores wins); fit_fn: `(train CSR [U, I], **hyper) -> ChunkScorer`;
    why_not: `n_items -> ''`, or the one-line reason it cannot run here (a missing library,
    too many items), in which case its row is skipped.
    """

    name: str
    label: str
    hyper_grid: tuple[Hyper, ...]
    fit_fn: Callable[..., ChunkScorer]
    why_not: Callable[[int], str] = _always_available

    def grid(self) -> list[Hyper]:
        """The hyper-parameter dicts to try, in order."""
        return [dict(point) for point in self.hyper_grid]

    def fit(self, train: Any, **hyper: Any) -> ChunkScorer:
        """Fit on the training matrix `[U, I]` (CSR, binary) with one grid point."""
        return self.fit_fn(train, **hyper)


def grid_of(**values: tuple[Any, ...]) -> tuple[Hyper, ...]:
    """The Cartesian grid of `values` (first name varies slowest), as hyper-parameter dicts."""
    points: list[Hyper] = [{}]
    for name, options in values.items():
        points = [{**point, name: option} for point in points for option in options]
    return tuple(points)
