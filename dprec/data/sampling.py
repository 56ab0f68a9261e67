"""Vectorised negative sampling over each user's non-interacted items: uniform, or following
an item distribution (WBPR: ∝ training popularity ** exponent)."""

from __future__ import annotations

import dataclasses

import numpy as np

from dprec.errors import DataError

_MAX_ROUNDS = 1000


@dataclasses.dataclass(frozen=True)
class PositiveSet:
    """Sorted keys `user · n_items + item` `[N]` of a user's known positives, for lookups."""

    keys: np.ndarray
    n_items: int

    @classmethod
    def from_pairs(cls, users: np.ndarray, items: np.ndarray, n_items: int) -> PositiveSet:
        keys = np.unique(users.astype(np.int64) * n_items + items.astype(np.int64))
        return cls(keys=keys, n_items=n_items)

    def contains(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Boolean, same shape as `users`: whether each (user, item) is a positive."""
        query = users.astype(np.int64) * self.n_items + items.astype(np.int64)
        if self.keys.size == 0:
            return np.zeros(query.shape, bool)
        position = np.minimum(np.searchsorted(self.keys, query), self.keys.size - 1)
        return self.keys[position] == query


def popularity_distribution(popularity: np.ndarray, exponent: float) -> np.ndarray:
    """P(item) ∝ popularity ** exponent `[n_items]` (items never interacted get 0)."""
    weights = np.where(popularity > 0, popularity.astype(np.float64) ** exponent, 0.0)
    if weights.sum() <= 0:
        raise DataError("no training interactions to build a popularity distribution from")
    return weights / weights.sum()


def sample_negatives(
    rng: np.random.Generator,
    users: np.ndarray,
    positives: PositiveSet,
    item_probs: np.ndarray | None = None,
) -> np.ndarray:
    """One non-positive item per entry of `users` (any shape), uniform or from `item_probs`.

    Draws all at once, then redraws only the collisions with a positive until none is left:
    the result follows the item distribution restricted to each user's non-interacted items.

    Raises:
      DataError: a user has no item left to draw (interacted with every item that can be drawn).
    """

    def draw(size):
        if item_probs is None:
            return rng.integers(0, positives.n_items, size=size)
        return rng.choice(positives.n_items, size=size, p=item_probs)

    items = draw(users.shape)
    clash = positives.contains(users, items)
    for _ in range(_MAX_ROUNDS):
        if not clash.any():
            return items
        items[clash] = draw(int(clash.sum()))
        clash[clash] = positives.contains(users[clash], items[clash])
    degree = np.bincount(positives.keys // positives.n_items)
    full = np.flatnonzero(degree >= positives.n_items)
    if full.size:
        raise DataError(
            f"user index {full[0]} has interacted with every item, so no negative can be "
            "sampled; remove such users from the data"
        )
    raise DataError("negative sampling did not converge; the data is almost fully dense")
