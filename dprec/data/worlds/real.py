"""Noise planted into real data: the real rows rated >= 4 are the clean truth, noisy clicks
are added by the noise kinds.

The interactions of a real dataset (`ml-100k` by default, or `modcloth`: columns user_id,
item_id, rating) are read from the path given, or the dataset's default file resolved as
`dprec.data.registry.resolve_path` does (`$DPREC_DATA_DIR` or shared/data beside the
checkout); nothing is copied into the repository.

- The rows rated >= 4 are the clean interactions; they keep their real rating (4 or 5).
- The rows rated <= 3 are **dropped**: whether a 3-star (or 1-star) interaction was noise
  cannot be known, so they are neither clean nor planted noise.
- Noisy clicks (rating 1) are added so that they are `rate` of all rows: round(rate / (1 −
  rate) · clean rows) of them, on items the user has not interacted with (in any real row,
  dropped ones included), by the kind: `uniform`; `popularity` (∝ real popularity^`beta`,
  the item's share of all real rows); `item` (a `minority` of clickbait items take
  `concentration` of them, the rest uniform); each of them on a user drawn ∝ its clean rows;
  `user` (a `minority` of users make `concentration` of them, uniformly, the rest ∝ clean
  rows over the other users). `exposure` adds no clicks and hides `rate` of the clean rows
  (`Planted.hidden`).

Ids are the dataset's ids remapped to 0..n-1 in sorted order (as the table loader would), so
`Planted.item_popularity[frame.item]` is each row's item popularity. Duplicate (user, item)
rows keep the first. Real user degrees are kept: ML-100k has about 59 clean rows per user;
most Modcloth users have 1-2 rows, so it is the sparse case (ML-100k is the main one).
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from dprec.data.io import read_table
from dprec.data.registry import resolve_path
from dprec.data.worlds import noise
from dprec.data.worlds.common import Planted, check_noise_arguments, shuffled_table
from dprec.errors import DataError
from dprec.specs import ColumnSpec

DATASETS = ("ml-100k", "modcloth")
CLEAN_RATING = 4  # rows rated at least this are the clean truth; the others are dropped
NOISY_RATING = 1


def plant(
    kind: str,
    rate: float,
    *,
    dataset: str = "ml-100k",
    path: str = "",
    beta: float = 1.0,
    minority: float = 0.1,
    concentration: float = 0.8,
    seed: int = 0,
) -> Planted:
    """Plant noise of `kind` at `rate` into a real dataset (see the module docstring).

    Args:
      dataset: `ml-100k` or `modcloth` (names its default file).
      path: the table to read instead of the dataset's default file (columns user_id,
        item_id, rating).

    Raises:
      ValueError: unknown kind or dataset, or an argument out of range.
      DataError: the file is missing or unreadable, or has no row rated >= 4.
    """
    check_noise_arguments(kind, rate, minority, concentration)
    if dataset not in DATASETS:
        raise ValueError(f"unknown real dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    if not np.isfinite(beta):
        raise ValueError(f"beta must be finite, got {beta}")
    source = resolve_path(dataset, path)
    if not os.path.isfile(source):
        raise DataError(
            f"{dataset} file not found: {source}; pass its path (plant_data: --path FILE) or "
            "set $DPREC_DATA_DIR to the folder that holds ml-100k/ and modcloth/"
        )
    frame = read_table(source, ColumnSpec(rating="rating"))
    frame = frame.drop_duplicates(subset=["user", "item"], keep="first")
    _, users = np.unique(frame["user"].to_numpy(), return_inverse=True)
    _, items = np.unique(frame["item"].to_numpy(), return_inverse=True)
    ratings = frame["rating"].to_numpy()
    n_users, n_items = int(users.max()) + 1, int(items.max()) + 1
    popularity = np.bincount(items, minlength=n_items) / items.shape[0]
    clean = ratings >= CLEAN_RATING
    if not clean.any():
        raise DataError(f"{source} has no row rated >= {CLEAN_RATING} to be the clean truth")

    rng = np.random.default_rng(seed)
    noisy_counts, noisy_users = noise.plan_added_noise(
        rng, kind, rate, np.bincount(users[clean], minlength=n_users), minority, concentration
    )
    noisy_rows, noisy_items, clickbait = noise.draw_noisy_clicks(
        rng,
        kind,
        noisy_counts,
        popularity,
        beta=beta,
        minority=minority,
        concentration=concentration,
        pool_fn=_untouched(users, items, n_users, n_items),
    )
    clean_users, clean_items, clean_ratings = users[clean], items[clean], ratings[clean]
    hidden = np.zeros(clean_users.shape[0], bool)
    if kind == "exposure":
        hidden[rng.permutation(hidden.shape[0])[: round(rate * hidden.shape[0])]] = True
    kept = int((~hidden).sum())
    table = shuffled_table(
        rng,
        np.concatenate([clean_users[~hidden], noisy_rows]).astype(np.int64),
        np.concatenate([clean_items[~hidden], noisy_items]).astype(np.int64),
        np.concatenate([clean_ratings[~hidden], np.full(noisy_rows.shape[0], NOISY_RATING)]),
        np.arange(kept + noisy_rows.shape[0]) < kept,
    )
    return Planted(
        frame=table,
        hidden=pd.DataFrame({"user": clean_users[hidden], "item": clean_items[hidden]}),
        item_popularity=popularity,
        noisy_users=noisy_users,
        clickbait_items=clickbait,
        world="real",
    )


def _untouched(users: np.ndarray, items: np.ndarray, n_users: int, n_items: int):
    """allowed_fn: for users `[C]`, the items `[C, n_items]` none of their real rows touch."""

    def allowed(chunk: np.ndarray) -> np.ndarray:
        slot = np.full(n_users, -1)
        slot[chunk] = np.arange(chunk.shape[0])
        mine = slot[users] >= 0
        untouched = np.ones((chunk.shape[0], n_items), bool)
        untouched[slot[users[mine]], items[mine]] = False
        return untouched

    return allowed
