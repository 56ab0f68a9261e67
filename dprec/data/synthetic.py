"""Synthetic corrupted implicit feedback with known truth (the embedded default dataset).

Each user truly likes the items with the highest latent affinity. The observed interactions
are the liked items the user was exposed to (true positives), plus clicks on items the user
does not like (noisy positives: uniform, or popularity-driven when `popularity_exponent` > 0);
liked items never exposed are the noisy negatives. A rating column follows the truth (true
positives rate 4-5, noisy clicks 1-4), so the clean test set is built by the same rule as for
real data (rating == 5), and a `truth` column keeps the per-interaction label (1 = true
positive) for analysis.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dprec.specs import SyntheticSpec

_USER_CHUNK = 4096  # users whose affinities are materialised at once: bounds memory
_REDRAW_ROUNDS = 20


def liked_items(
    user_factors: np.ndarray, item_factors: np.ndarray, item_bias: np.ndarray, n_liked: int
) -> np.ndarray:
    """Each user's `n_liked` items of highest affinity `[U, n_liked]` (unordered)."""
    scale = 1.0 / np.sqrt(user_factors.shape[1])
    liked = np.empty((user_factors.shape[0], n_liked), np.int64)
    for start in range(0, user_factors.shape[0], _USER_CHUNK):
        block = user_factors[start : start + _USER_CHUNK] @ item_factors.T * scale + item_bias
        liked[start : start + _USER_CHUNK] = np.argpartition(-block, n_liked - 1, axis=1)[
            :, :n_liked
        ]
    return liked


def generate(spec: SyntheticSpec) -> pd.DataFrame:
    """A shuffled interaction table with columns user, item, rating, truth: the latent-factor
    generator, or `generate_at_scale` when `spec.n_interactions` > 0.

    Returns:
      DataFrame with one row per observed interaction; `truth` is 1 for true positives and 0
      for noisy positives.
    """
    if spec.n_interactions > 0:
        return generate_at_scale(spec)
    rng = np.random.default_rng(spec.seed)
    n_users, n_items = spec.n_users, spec.n_items
    n_liked = max(1, round(spec.liked_fraction * n_items))
    user_factors = rng.standard_normal((n_users, spec.dim))
    item_factors = rng.standard_normal((n_items, spec.dim))
    item_bias = 0.5 * rng.standard_normal(n_items)
    liked = liked_items(user_factors, item_factors, item_bias, n_liked)

    # Users differ in activity: exposure probability scales with a log-normal activity level.
    activity = rng.lognormal(0.0, 0.6, n_users)
    exposure = np.clip(spec.exposure * activity / activity.mean(), 0.02, 1.0)
    observed = rng.random((n_users, n_liked)) < exposure[:, None]
    true_users = np.repeat(np.arange(n_users), observed.sum(1))
    true_items = liked[observed]

    # Noisy clicks follow a Zipf popularity over a random item order (exponent 0: uniform),
    # skipping liked items.
    popularity = 1.0 / np.arange(1, n_items + 1) ** spec.popularity_exponent
    popularity = popularity[rng.permutation(n_items)]
    popularity /= popularity.sum()
    n_noisy = rng.poisson(spec.noisy_positive_rate * observed.sum(1))
    noisy_users = np.repeat(np.arange(n_users), n_noisy)
    noisy_items = rng.choice(n_items, size=noisy_users.shape[0], p=popularity)
    liked_keys = np.sort((np.arange(n_users)[:, None] * n_items + liked).ravel())
    noisy_keys = noisy_users * n_items + noisy_items
    position = np.clip(np.searchsorted(liked_keys, noisy_keys), 0, len(liked_keys) - 1)
    keep = liked_keys[position] != noisy_keys
    noisy_users, noisy_items = noisy_users[keep], noisy_items[keep]

    users = np.concatenate([true_users, noisy_users])
    items = np.concatenate([true_items, noisy_items])
    truth = np.concatenate(
        [np.ones(true_items.shape[0], bool), np.zeros(noisy_items.shape[0], bool)]
    )
    return _table(rng, users, items, truth)


def _table(
    rng: np.random.Generator, users: np.ndarray, items: np.ndarray, truth: np.ndarray
) -> pd.DataFrame:
    """Shuffled, deduplicated frame with ratings drawn from the truth: true positives rate
    4-5, noisy clicks 1-4."""
    n_true = int(truth.sum())
    ratings = np.empty(truth.shape[0], np.int64)
    ratings[truth] = rng.choice([4, 5], size=n_true, p=[0.2, 0.8])
    ratings[~truth] = rng.choice(
        [1, 2, 3, 4], size=truth.shape[0] - n_true, p=[0.25, 0.3, 0.3, 0.15]
    )
    frame = pd.DataFrame(
        {"user": users, "item": items, "rating": ratings, "truth": truth.astype(np.int8)}
    )
    frame = frame.drop_duplicates(subset=["user", "item"], keep="first")
    return frame.iloc[rng.permutation(len(frame))].reset_index(drop=True)


def power_law_exponent(mean: float, max_degree: int) -> float:
    """The exponent a of P(d) ∝ d^-a on 1..max_degree whose mean is `mean` (bisection)."""
    degrees = np.arange(1, max_degree + 1, dtype=np.float64)

    def mean_of(a: float) -> float:
        weights = degrees**-a
        return float((degrees * weights).sum() / weights.sum())

    low, high = 0.0, 50.0
    for _ in range(100):
        middle = (low + high) / 2
        low, high = (middle, high) if mean_of(middle) > mean else (low, middle)
    return (low + high) / 2


def user_degrees(rng: np.random.Generator, n_users: int, total: int, max_degree: int) -> np.ndarray:
    """Power-law degrees `[n_users]` (each >= 1) summing to exactly `total`."""
    if total < n_users:
        raise ValueError(f"{total} interactions cannot give each of {n_users} users one")
    max_degree = max(1, min(max_degree, total - n_users + 1))
    exponent = power_law_exponent(total / n_users, max_degree)
    support = np.arange(1, max_degree + 1)
    probs = support.astype(np.float64) ** -exponent
    degrees = rng.choice(support, size=n_users, p=probs / probs.sum())
    excess = int(degrees.sum()) - total
    while excess != 0:  # move single interactions until the total is exact
        if excess > 0:
            candidates = np.flatnonzero(degrees > 1)
            chosen = rng.choice(candidates, size=min(excess, candidates.size), replace=False)
            degrees[chosen] -= 1
        else:
            chosen = rng.choice(n_users, size=min(-excess, n_users), replace=False)
            degrees[chosen] += 1
        excess = int(degrees.sum()) - total
    return degrees


def generate_at_scale(spec: SyntheticSpec) -> pd.DataFrame:
    """About `spec.n_interactions` interactions of `spec.n_users` users over `spec.n_items`
    items, in O(interactions) time and memory (no users × items affinity).

    Item popularity is Zipf(`popularity_exponent`) over a random item order; user degrees are
    power-law with mean n_interactions / n_users (every user has at least one). Items fall into
    `n_clusters` clusters; each user truly likes one cluster (drawn by its popularity mass). An
    interaction is noisy with probability r / (1 + r), r = `noisy_positive_rate`: then its item
    follows global popularity; otherwise popularity within the user's cluster. Repeated pairs
    are redrawn (a few rounds; the rare rest is dropped), so the count is `n_interactions` or
    slightly below.
    """
    rng = np.random.default_rng(spec.seed)
    n_users, n_items = spec.n_users, spec.n_items
    popularity = 1.0 / np.arange(1, n_items + 1) ** spec.popularity_exponent
    popularity = popularity[rng.permutation(n_items)]
    popularity /= popularity.sum()
    degrees = user_degrees(rng, n_users, spec.n_interactions, max_degree=min(n_items, 1000))
    users = np.repeat(np.arange(n_users, dtype=np.int64), degrees)

    # Items sorted by cluster: a cluster is a contiguous slice of the cumulative popularity.
    cluster = rng.integers(0, spec.n_clusters, n_items)
    by_cluster = np.argsort(cluster, kind="stable")
    cumulative = np.cumsum(popularity[by_cluster])
    mass = np.bincount(cluster, weights=popularity, minlength=spec.n_clusters)
    start = np.concatenate([[0.0], np.cumsum(mass)[:-1]])
    home = rng.choice(spec.n_clusters, size=n_users, p=mass / mass.sum())[users]
    noisy = rng.random(users.shape[0]) < spec.noisy_positive_rate / (1 + spec.noisy_positive_rate)

    def draw_items(rows: np.ndarray) -> np.ndarray:
        # One uniform draw per interaction, mapped into the whole popularity range (noisy) or
        # the slice of the user's cluster.
        draw = rng.random(rows.shape[0])
        target = np.where(
            noisy[rows], draw * cumulative[-1], start[home[rows]] + draw * mass[home[rows]]
        )
        position = np.minimum(np.searchsorted(cumulative, target, side="right"), n_items - 1)
        return by_cluster[position]

    items = draw_items(np.arange(users.shape[0]))
    for _ in range(_REDRAW_ROUNDS):  # redraw repeated (user, item) pairs: degrees stay exact
        repeated = _repeated(users * n_items + items)
        if not repeated.any():
            break
        items[repeated] = draw_items(np.flatnonzero(repeated))
    truth = ~noisy | (cluster[items] == home)  # a noisy click may land in the liked cluster
    return _table(rng, users, items, truth)


def _repeated(keys: np.ndarray) -> np.ndarray:
    """Boolean `[N]`: entries whose key already occurred earlier."""
    _, first = np.unique(keys, return_index=True)
    repeated = np.ones(keys.shape[0], bool)
    repeated[first] = False
    return repeated
