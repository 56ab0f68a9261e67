"""What every planted-noise world shares: the noise kinds, the `Planted` result, argument
checks, the minority draw and the rating table."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

KINDS = ("uniform", "popularity", "user", "item", "exposure")
CLEAN_FIVE = 0.8  # P(rating 5 | clean) in the synthetic worlds; the rest rate 4


def _no_ids() -> dataclasses.Field:
    return dataclasses.field(default_factory=lambda: np.zeros(0, np.int64))


def _no_floats(ndim: int = 1) -> dataclasses.Field:
    return dataclasses.field(default_factory=lambda: np.zeros((0,) * ndim))


@dataclasses.dataclass(frozen=True)
class Planted:
    """A planted table and the truth behind it.

    frame: columns user, item, rating, truth (one row per observed interaction, shuffled;
      truth 1 = clean, 0 = a planted noisy click).
    hidden: columns user, item: the hidden liked interactions (`exposure`; else empty).
    item_popularity `[n_items]`: the popularity the popularity-shaped draws follow (sums to 1).
    item_cluster `[n_items]`, user_home `[n_users]` (block world): user u likes item i iff
      they are equal; empty in the other worlds.
    noisy_users: ids of the noisy minority (`user` kind; else empty).
    clickbait_items: ids of the clickbait items (`item` kind; else empty).
    world: the world's name (see `dprec.data.planted.WORLDS`).
    user_factors `[n_users, D]`, item_factors `[n_items, D]`, item_bias `[n_items]` (latent
      world): the affinity u·v/√D + bias that orders each user's items; empty elsewhere.
    """

    frame: pd.DataFrame
    hidden: pd.DataFrame
    item_popularity: np.ndarray
    item_cluster: np.ndarray = _no_ids()
    user_home: np.ndarray = _no_ids()
    noisy_users: np.ndarray = _no_ids()
    clickbait_items: np.ndarray = _no_ids()
    world: str = "block"
    user_factors: np.ndarray = _no_floats(2)
    item_factors: np.ndarray = _no_floats(2)
    item_bias: np.ndarray = _no_floats()


def check_noise_arguments(kind: str, rate: float, minority: float, concentration: float):
    """Raises ValueError for an unknown kind, or a rate, minority or concentration outside
    [0, 1)."""
    if kind not in KINDS:
        raise ValueError(f"unknown noise kind {kind!r}; choose one of {', '.join(KINDS)}")
    for name, value in (("rate", rate), ("minority", minority), ("concentration", concentration)):
        if not 0.0 <= value < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {value}")


def draw_minority(rng: np.random.Generator, size: int, share: float) -> np.ndarray:
    """`round(share · size)` distinct ids of 0..size-1 (at least one), sorted."""
    return np.sort(rng.permutation(size)[: max(1, round(share * size))])


def rated_table(rng: np.random.Generator, users, items, truth) -> pd.DataFrame:
    """Shuffled frame with ratings drawn from the truth (clean 4-5, noisy 1-2)."""
    ratings = np.where(
        truth,
        np.where(rng.random(truth.shape[0]) < CLEAN_FIVE, 5, 4),
        rng.integers(1, 3, truth.shape[0]),
    )
    return shuffled_table(rng, users, items, ratings, truth)


def shuffled_table(rng: np.random.Generator, users, items, ratings, truth) -> pd.DataFrame:
    """Frame with columns user, item, rating, truth `[N]` in a random row order."""
    order = rng.permutation(truth.shape[0])
    return pd.DataFrame(
        {
            "user": users[order],
            "item": items[order],
            "rating": ratings[order].astype(np.int64),
            "truth": truth[order].astype(np.int8),
        }
    )
