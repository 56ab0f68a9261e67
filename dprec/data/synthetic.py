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
    """A shuffled interaction table with columns user, item, rating, truth.

    Returns:
      DataFrame with one row per observed interaction; `truth` is 1 for true positives and 0
      for noisy positives.
    """
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

    true_ratings = rng.choice([4, 5], size=true_items.shape[0], p=[0.2, 0.8])
    noisy_ratings = rng.choice([1, 2, 3, 4], size=noisy_items.shape[0], p=[0.25, 0.3, 0.3, 0.15])
    frame = pd.DataFrame(
        {
            "user": np.concatenate([true_users, noisy_users]),
            "item": np.concatenate([true_items, noisy_items]),
            "rating": np.concatenate([true_ratings, noisy_ratings]),
            "truth": np.concatenate(
                [np.ones(true_items.shape[0], np.int8), np.zeros(noisy_items.shape[0], np.int8)]
            ),
        }
    )
    frame = frame.drop_duplicates(subset=["user", "item"], keep="first")
    return frame.iloc[rng.permutation(len(frame))].reset_index(drop=True)
