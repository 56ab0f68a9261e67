"""The noise kinds of the pool worlds (`latent`, `real`): how many clean and noisy rows each
user gets, and distinct draws from each user's pool of allowed items.

A pool world gives every user two disjoint item pools, one for clean rows (what they like)
and one for noisy clicks (what they do not like, or never touched); rows are drawn *without
replacement* within a pool, so no (user, item) pair repeats and the planted rates are exact
by construction, without the redraw rounds of the block world.

Draws use the Gumbel-top-k trick: adding Gumbel noise to log-weights and keeping a user's k
largest keys draws k distinct items, each next one ∝ weight among those left (successive
sampling without replacement). Users are processed in chunks, so memory stays
O(chunk × n_items) whatever the number of users.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from dprec.data.synthetic import user_degrees
from dprec.data.worlds.common import draw_minority

_USER_CHUNK = 4096  # users whose [chunk, n_items] keys are materialised at once

# allowed_fn(users `[C]`) -> `[C, n_items]` bool: which items each of these users may draw.
AllowedFn = Callable[[np.ndarray], np.ndarray]


def draw_distinct(
    rng: np.random.Generator,
    counts: np.ndarray,
    log_weight: np.ndarray,
    allowed_fn: AllowedFn,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Up to `counts[u]` distinct items per user, ∝ exp(`log_weight`) `[n_items]` among the
    items `allowed_fn` allows that user (successive sampling without replacement).

    Returns:
      users `[N]`, items `[N]` (grouped by user), and short `[U]`: how many of `counts[u]` a
      user's pool had no room for (0 where the pool was large enough).
    """
    active = np.flatnonzero(counts > 0)
    users, items = [], []
    short = np.zeros(counts.shape[0], np.int64)
    n_items = log_weight.shape[0]
    for start in range(0, active.shape[0], _USER_CHUNK):
        block = active[start : start + _USER_CHUNK]
        need = counts[block]
        keys = np.where(
            allowed_fn(block),
            log_weight[None, :] + rng.gumbel(size=(block.shape[0], n_items)),
            -np.inf,
        )
        k = int(min(need.max(), n_items))
        top = np.argpartition(-keys, k - 1, axis=1)[:, :k]
        # A user keeps its counts[u] largest keys: order the k candidates by key.
        top = np.take_along_axis(top, np.argsort(-np.take_along_axis(keys, top, 1), axis=1), 1)
        taken = (np.arange(k)[None, :] < need[:, None]) & np.isfinite(
            np.take_along_axis(keys, top, 1)
        )
        users.append(np.broadcast_to(block[:, None], taken.shape)[taken])
        items.append(top[taken])
        short[block] = need - taken.sum(1)
    if not users:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), short
    return np.concatenate(users).astype(np.int64), np.concatenate(items).astype(np.int64), short


def plan_within_degrees(
    rng: np.random.Generator,
    kind: str,
    rate: float,
    n_users: int,
    total: int,
    max_degree: int,
    minority: float,
    concentration: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Clean and noisy rows per user `[U]` for a table of `total` rows, round(rate · total) of
    them noisy (0 for `exposure`), as the block world splits them: power-law degrees (at most
    `max_degree` ordinary rows); noisy rows picked uniformly among the rows, except for the
    `user` kind, whose minority makes `concentration` of them as extra rows on top of its
    ordinary (clean) ones.

    Returns:
      clean_counts `[U]`, noisy_counts `[U]`, noisy_users (the `user` kind's minority, sorted).
    """
    n_noisy = 0 if kind == "exposure" else round(rate * total)
    noisy_users = np.zeros(0, np.int64)
    extra_rows = np.zeros(n_users, np.int64)
    if kind == "user":
        noisy_users = draw_minority(rng, n_users, minority)
        # Every user keeps at least one ordinary row: the extra rows have that much room.
        extra = min(round(concentration * n_noisy), total - n_users)
        owners = noisy_users[rng.integers(0, noisy_users.shape[0], extra)]
        extra_rows = np.bincount(owners, minlength=n_users)
    degrees = _at_most(
        rng, user_degrees(rng, n_users, total - int(extra_rows.sum()), max_degree), max_degree
    )
    eligible = np.ones(n_users, bool)
    eligible[noisy_users] = False
    rows_of = np.repeat(np.arange(n_users), np.where(eligible, degrees, 0))
    picked = rng.choice(rows_of.shape[0], n_noisy - int(extra_rows.sum()), replace=False)
    ordinary_noisy = np.bincount(rows_of[picked], minlength=n_users)
    return degrees - ordinary_noisy, ordinary_noisy + extra_rows, noisy_users


def _at_most(rng: np.random.Generator, degrees: np.ndarray, max_degree: int) -> np.ndarray:
    """`degrees` `[U]` with the rows above `max_degree` moved to random users with room (the
    power-law draw tops its total up one row at a time and may pass the bound)."""
    excess = int(np.maximum(degrees - max_degree, 0).sum())
    if excess == 0:
        return degrees
    degrees = np.minimum(degrees, max_degree)
    room = np.repeat(np.arange(degrees.shape[0]), max_degree - degrees)
    if room.shape[0] < excess:
        raise ValueError(f"{degrees.sum() + excess} rows do not fit {max_degree} per user")
    moved = room[rng.permutation(room.shape[0])[:excess]]
    return degrees + np.bincount(moved, minlength=degrees.shape[0])


def plan_added_noise(
    rng: np.random.Generator,
    kind: str,
    rate: float,
    clean_counts: np.ndarray,
    minority: float,
    concentration: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Noisy clicks per user `[U]` added to fixed clean rows `clean_counts` `[U]` so that they
    are `rate` of all rows: round(rate / (1 − rate) · clean rows) of them (0 for `exposure`),
    each on a user drawn ∝ their clean rows, except for the `user` kind, whose minority (drawn
    uniformly among the users with clean rows) makes `concentration` of them.

    Returns:
      noisy_counts `[U]`, noisy_users (the `user` kind's minority, sorted).
    """
    n_users = clean_counts.shape[0]
    n_noisy = 0 if kind == "exposure" else round(rate / (1.0 - rate) * int(clean_counts.sum()))
    noisy_users = np.zeros(0, np.int64)
    weights = clean_counts.astype(np.float64)
    counts = np.zeros(n_users, np.int64)
    if kind == "user":
        # The minority is drawn among the users the table has (those with clean rows).
        present = np.flatnonzero(clean_counts > 0)
        noisy_users = present[draw_minority(rng, present.shape[0], minority)]
        extra = round(concentration * n_noisy)
        counts += np.bincount(
            noisy_users[rng.integers(0, noisy_users.shape[0], extra)], minlength=n_users
        )
        n_noisy -= extra
        weights[noisy_users] = 0.0
    owners = rng.choice(n_users, size=n_noisy, p=weights / weights.sum())
    return counts + np.bincount(owners, minlength=n_users), noisy_users


def draw_noisy_clicks(
    rng: np.random.Generator,
    kind: str,
    noisy_counts: np.ndarray,
    popularity: np.ndarray,
    *,
    beta: float,
    minority: float,
    concentration: float,
    pool_fn: AllowedFn,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`noisy_counts[u]` distinct items `[N]` per user from its noise pool `pool_fn`, by kind:
    uniform (`uniform`, `user`), ∝ popularity^`beta` (`popularity`), or for `item` a minority
    of clickbait items taking `concentration` of the clicks (uniformly among the clickbait in
    the user's pool; a user with fewer clickbait items in its pool than bait clicks makes the
    rest on other items) and the rest uniformly on the other items of the pool.

    Returns:
      users `[N]`, items `[N]`, clickbait items (`item` kind; else empty).

    Raises:
      ValueError: a user's pool is smaller than its noisy clicks.
    """
    n_items = popularity.shape[0]
    flat = np.zeros(n_items)
    clickbait = np.zeros(0, np.int64)
    parts = []
    if kind == "item":
        clickbait = draw_minority(rng, n_items, minority)
        is_bait = np.zeros(n_items, bool)
        is_bait[clickbait] = True
        slots = np.repeat(np.arange(noisy_counts.shape[0]), noisy_counts)
        aimed = rng.permutation(slots.shape[0])[: round(concentration * slots.shape[0])]
        bait_counts = np.bincount(slots[aimed], minlength=noisy_counts.shape[0])
        bait_users, bait_items, short = draw_distinct(
            rng, bait_counts, flat, lambda users: pool_fn(users) & is_bait[None, :]
        )
        parts.append((bait_users, bait_items))
        noisy_counts = noisy_counts - bait_counts + short
        pool_fn = _excluding(pool_fn, is_bait)
    log_weight = beta * np.log(popularity) if kind == "popularity" else flat
    users, items, short = draw_distinct(rng, noisy_counts, log_weight, pool_fn)
    if short.any():
        user = int(np.flatnonzero(short)[0])
        raise ValueError(
            f"user {user} needs {int(noisy_counts[user])} noisy clicks but its pool has only "
            f"{int(noisy_counts[user] - short[user])} items; lower the rate or concentration"
        )
    parts.append((users, items))
    return (
        np.concatenate([p[0] for p in parts]),
        np.concatenate([p[1] for p in parts]),
        clickbait,
    )


def _excluding(pool_fn: AllowedFn, excluded: np.ndarray) -> AllowedFn:
    """`pool_fn` without the items where `excluded` `[n_items]` is true."""
    return lambda users: pool_fn(users) & ~excluded[None, :]
