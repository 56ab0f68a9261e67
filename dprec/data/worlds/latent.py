"""The latent-taste world: continuous tastes, popularity-skewed clicks, noise on disliked items.

Users and items are Gaussian vectors `[U, D]`, `[I, D]`; items have a Zipf popularity p
(Zipf(`popularity_exponent`) over a random item order) that also enters the affinity as a
bias, a(u, i) = u·v_i / √D + `bias_weight` · z(log p_i) (z: standardised over the items), so
popular items are liked by more users. Each user orders every item by affinity:

- a **clean** interaction is one of the user's `top_m` items (rank < top_m), drawn
  ∝ p^`exposure_gamma` among them (popularity-skewed exposure: a popular liked item is
  more likely seen; 0 = uniformly);
- a **noisy click** is one of the items the user likes least (the bottom half of its
  affinity order, rank ≥ n_items − n_items // 2), drawn by the noise kind: `uniform`,
  `popularity` (∝ p^`beta` among the disliked items), `user` (a `minority` of users make
  `concentration` of the noisy clicks, as extra rows on top of their ordinary ones),
  `item` (a `minority` of clickbait items take `concentration` of them), or `exposure` (no
  noisy clicks: `rate` of the clean interactions are hidden, listed in `Planted.hidden`).

Rows per user follow a power law with mean `mean_degree` (at most `top_m`); noisy rows are
round(rate · rows), picked as in the block world, so the rate is exact. The two pools are
disjoint and drawn without replacement, so no pair repeats and nothing is dropped.

Why it is hard (unlike the block world): tastes are continuous, so a disliked item is not
an outsider of a cluster but an item far down a user's own order, and with about 12 rows per
user over a few hundred items the clean signal is sparse; and under `popularity` noise the
noisy clicks land on popular items, which a model fits *more* easily than the clean
long tail, so loss-based noise scores point the wrong way. Ratings follow the truth (clean
4-5, noisy 1-2), so `clean_rule=rating`, `clean_threshold=4` recovers it.

`Planted.user_factors`, `item_factors` and `item_bias` give the affinity back
(`affinity_ranks`). Vectorised NumPy: affinities are materialised per chunk of users only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dprec.data.worlds import noise
from dprec.data.worlds.common import Planted, check_noise_arguments, rated_table


def affinity_ranks(
    user_factors: np.ndarray, item_factors: np.ndarray, item_bias: np.ndarray, users: np.ndarray
) -> np.ndarray:
    """Each of `users`' `[C]` rank of every item `[C, I]` by affinity (0 = liked most)."""
    affinity = user_factors[users] @ item_factors.T / np.sqrt(item_factors.shape[1]) + item_bias
    ranks = np.empty(affinity.shape, np.int32)
    order = np.argsort(-affinity, axis=1)
    np.put_along_axis(ranks, order, np.arange(affinity.shape[1], dtype=np.int32)[None, :], 1)
    return ranks


def plant(
    kind: str,
    rate: float,
    *,
    n_users: int = 2000,
    n_items: int = 400,
    mean_degree: float = 12.0,
    dim: int = 12,
    top_m: int = 50,
    popularity_exponent: float = 1.0,
    bias_weight: float = 0.05,
    exposure_gamma: float = 0.5,
    beta: float = 1.0,
    minority: float = 0.1,
    concentration: float = 0.8,
    seed: int = 0,
) -> Planted:
    """Plant noise of `kind` at `rate` in a latent-taste world (see the module docstring).

    Args:
      mean_degree: rows per user on average (before `exposure` hides some).
      dim: D, the latent dimension of users and items.
      top_m: a user's liked items (the clean pool): its top_m items by affinity.
      bias_weight: weight of the standardised log popularity in the affinity.
      exposure_gamma: clean draws ∝ popularity^exposure_gamma among the liked items.
      beta: exponent of the `popularity` kind's noisy-click distribution.
      minority, concentration: the `user`/`item` kinds (as in the block world).

    Raises:
      ValueError: unknown kind; rate, minority or concentration outside [0, 1); top_m not in
      1..n_items // 2; or a non-finite real argument.
    """
    check_noise_arguments(kind, rate, minority, concentration)
    for name, value in (
        ("mean_degree", mean_degree),
        ("popularity_exponent", popularity_exponent),
        ("bias_weight", bias_weight),
        ("exposure_gamma", exposure_gamma),
        ("beta", beta),
    ):
        if not np.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value}")
    if not 1 <= top_m <= n_items // 2:
        raise ValueError(f"top_m must be in 1..n_items // 2 = {n_items // 2}, got {top_m}")
    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(1, n_items + 1) ** popularity_exponent
    popularity = popularity[rng.permutation(n_items)]
    popularity /= popularity.sum()
    log_popularity = np.log(popularity)
    spread = log_popularity.std()
    item_bias = bias_weight * (log_popularity - log_popularity.mean()) / (spread if spread else 1)
    user_factors = rng.standard_normal((n_users, dim))
    item_factors = rng.standard_normal((n_items, dim))

    def ranks(users: np.ndarray) -> np.ndarray:
        return affinity_ranks(user_factors, item_factors, item_bias, users)

    clean_counts, noisy_counts, noisy_users = noise.plan_within_degrees(
        rng, kind, rate, n_users, round(mean_degree * n_users), top_m, minority, concentration
    )
    clean_users, clean_items, short = noise.draw_distinct(
        rng, clean_counts, exposure_gamma * log_popularity, lambda users: ranks(users) < top_m
    )
    assert not short.any(), "a user's clean rows exceed top_m"  # plan_within_degrees bounds them
    noisy_row_users, noisy_items, clickbait = noise.draw_noisy_clicks(
        rng,
        kind,
        noisy_counts,
        popularity,
        beta=beta,
        minority=minority,
        concentration=concentration,
        pool_fn=lambda users: ranks(users) >= n_items - n_items // 2,
    )
    hidden = np.zeros(clean_users.shape[0], bool)
    if kind == "exposure":
        hidden[rng.permutation(hidden.shape[0])[: round(rate * hidden.shape[0])]] = True
    users = np.concatenate([clean_users[~hidden], noisy_row_users])
    items = np.concatenate([clean_items[~hidden], noisy_items])
    truth = np.arange(users.shape[0]) < int((~hidden).sum())
    return Planted(
        frame=rated_table(rng, users, items, truth),
        hidden=pd.DataFrame({"user": clean_users[hidden], "item": clean_items[hidden]}),
        item_popularity=popularity,
        noisy_users=noisy_users,
        clickbait_items=clickbait,
        world="latent",
        user_factors=user_factors,
        item_factors=item_factors,
        item_bias=item_bias,
    )
