"""The block world (the easy case): every user likes the items of one "home" cluster.

Items fall into `n_clusters` clusters; a user's home is drawn by the clusters' popularity
mass. A clean interaction is an item of the home cluster, drawn by item popularity
(Zipf(`popularity_exponent`) over a random item order). A noisy click is an item outside the
home cluster (an item the user does not like), drawn by the noise kind:

- `uniform`: uniformly among the unliked items.
- `popularity`: among the unliked items with probability ∝ popularity^`beta`.
- `user`: uniformly among the unliked items, but a minority of users (`minority` of them,
  drawn at random) produce `concentration` of all noisy clicks, as extra rows on top of
  their ordinary ones (so they are also more active). A table needs room for this: with
  every user keeping one ordinary row, the extra rows are at most n_interactions − n_users
  (at Electronics' mean degree 1.12 and rate 0.3 that caps the share at about 0.36).
- `item`: a minority of "clickbait" items (`minority` of the items, drawn at random) attract
  `concentration` of all noisy clicks; the rest fall uniformly on the other unliked items.
- `exposure`: no noisy clicks; instead `rate` of the clean interactions are hidden (liked items
  the user never saw: noisy negatives). They are not in `frame`; `Planted.hidden` lists them.

The rate is exact by construction: for the click kinds it is the share of the table's rows that
are noisy clicks (round(rate · n_interactions) of them); for `exposure` it is the share of the
n_interactions would-be-observed (liked) interactions that are hidden. The only deviation is
the rare (user, item) pair still repeated after `_REDRAW_ROUNDS` redraws, which is dropped.

Why it is easy: a noisy click leaves the user's cluster, so one item-cluster co-occurrence
separates it (σ(f) of plain training scores noise-detection ROC AUC about 0.99), and a model
trained on every row already ranks well; denoisers have little to gain here (docs/worlds.md).

Ratings follow the truth: noisy clicks rate 1-2, clean interactions 4-5 (5 with probability
0.8), so `clean_rule=rating` with `clean_threshold` 3 or 4 recovers the truth exactly (the
default 5 keeps 80 % of the clean ones). All work is vectorised NumPy in
O(n_interactions + n_items): no users × items array, no loop over users.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dprec.data.synthetic import user_degrees
from dprec.data.worlds.common import Planted, check_noise_arguments, draw_minority, rated_table

_REDRAW_ROUNDS = 30


def plant(
    kind: str,
    rate: float,
    *,
    n_users: int = 4000,
    n_items: int = 600,
    n_interactions: int = 0,
    n_clusters: int = 8,
    popularity_exponent: float = 1.0,
    beta: float = 1.0,
    minority: float = 0.1,
    concentration: float = 0.8,
    seed: int = 0,
) -> Planted:
    """Plant noise of `kind` at `rate` (see the module docstring for both definitions).

    Args:
      n_interactions: rows before noise is hidden; 0 means 10 per user. A user's degree is at
        most the smallest cluster's size (so its clean draws fit in its home cluster).
      beta: exponent of the `popularity` kind's noisy-click distribution.
      minority, concentration: the `user`/`item` kinds: `minority` of the users/items carry
        `concentration` of the noisy clicks (for `user`, less only where the table has no room).

    Raises:
      ValueError: unknown kind, or a rate, minority or concentration outside [0, 1).
    """
    check_noise_arguments(kind, rate, minority, concentration)
    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(1, n_items + 1) ** popularity_exponent
    popularity = popularity[rng.permutation(n_items)]
    popularity /= popularity.sum()
    cluster = rng.integers(0, n_clusters, n_items)
    smallest = int(np.bincount(cluster, minlength=n_clusters).min())
    total = n_interactions or 10 * n_users
    n_noisy = 0 if kind == "exposure" else round(rate * total)
    noisy_users = draw_minority(rng, n_users, minority) if kind == "user" else np.zeros(0, np.int64)
    # The user kind's minority makes its noisy clicks on top of its ordinary rows (a bot is
    # more active): `extra` rows, bounded so that every user keeps at least one ordinary row.
    extra = min(round(concentration * n_noisy), total - n_users) if kind == "user" else 0
    degrees = user_degrees(rng, n_users, total - extra, max_degree=max(1, min(1000, smallest)))
    extra_rows = np.zeros(n_users, np.int64)
    if extra:
        extra_rows = np.bincount(
            noisy_users[rng.integers(0, noisy_users.shape[0], extra)], minlength=n_users
        )
    degrees = degrees + extra_rows
    users = np.repeat(np.arange(n_users, dtype=np.int64), degrees)
    mass = np.bincount(cluster, weights=popularity, minlength=n_clusters)
    user_home = rng.choice(n_clusters, size=n_users, p=mass / mass.sum())
    home = user_home[users]
    noisy = _noisy_rows(rng, users, degrees, n_noisy, extra_rows)
    clickbait = draw_minority(rng, n_items, minority) if kind == "item" else np.zeros(0, np.int64)
    # The item kind: which noisy slots aim at the clickbait items (`concentration` of them).
    bait = np.zeros(users.shape[0], bool)
    if kind == "item":
        bait[rng.permutation(np.flatnonzero(noisy))[: round(concentration * n_noisy)]] = True

    draw = _Drawer(rng, kind, popularity, cluster, beta, clickbait)
    items = draw(home, noisy, bait)
    keep = np.ones(users.shape[0], bool)
    for _ in range(_REDRAW_ROUNDS):  # repeated (user, item) pairs are redrawn, type kept
        repeated = _repeated(users * n_items + items)
        if not repeated.any():
            break
        rows = np.flatnonzero(repeated)
        items[rows] = draw(home[rows], noisy[rows], bait[rows])
    else:
        keep &= ~_repeated(users * n_items + items)

    hidden = np.zeros(users.shape[0], bool)
    if kind == "exposure":
        candidates = np.flatnonzero(keep)
        hidden[rng.permutation(candidates)[: round(rate * candidates.shape[0])]] = True
    observed = keep & ~hidden
    frame = rated_table(rng, users[observed], items[observed], ~noisy[observed])
    return Planted(
        frame=frame,
        hidden=pd.DataFrame({"user": users[hidden], "item": items[hidden]}),
        item_popularity=popularity,
        item_cluster=cluster,
        user_home=user_home,
        noisy_users=noisy_users,
        clickbait_items=clickbait,
        world="block",
    )


def _noisy_rows(
    rng: np.random.Generator,
    users: np.ndarray,
    degrees: np.ndarray,
    n_noisy: int,
    extra_rows: np.ndarray,
) -> np.ndarray:
    """Boolean `[N]`: which rows are noisy clicks, exactly `n_noisy` of them: each user's
    `extra_rows` `[U]` (the last ones of its block of rows), and the rest uniformly over the
    rows of users without extra rows."""
    position_from_end = np.cumsum(degrees)[users] - np.arange(users.shape[0])  # 1 = last row
    noisy = position_from_end <= extra_rows[users]
    others = np.flatnonzero(extra_rows[users] == 0)
    noisy[rng.permutation(others)[: n_noisy - int(noisy.sum())]] = True
    return noisy


class _Drawer:
    """Draws one item per row: clean rows within the home cluster ∝ popularity, noisy rows
    outside it by the noise kind (rejection: an item in the home cluster is redrawn)."""

    def __init__(self, rng, kind, popularity, cluster, beta, clickbait):
        self.rng, self.kind, self.cluster, self.clickbait = rng, kind, cluster, clickbait
        n_items = popularity.shape[0]
        n_clusters = int(cluster.max()) + 1
        # Items sorted by cluster: a cluster is a contiguous slice of the cumulative mass.
        self.by_cluster = np.argsort(cluster, kind="stable")
        self.cumulative = np.cumsum(popularity[self.by_cluster])
        mass = np.bincount(cluster, weights=popularity, minlength=n_clusters)
        self.start, self.mass = np.concatenate([[0.0], np.cumsum(mass)[:-1]]), mass
        noise = popularity**beta if kind == "popularity" else np.ones(n_items)
        if kind == "item":  # the non-bait draws avoid the clickbait items
            noise[clickbait] = 0.0
        self.noise_cumulative = np.cumsum(noise / noise.sum())

    def __call__(self, home: np.ndarray, noisy: np.ndarray, bait: np.ndarray) -> np.ndarray:
        """Items `[R]` for rows with home clusters `home`, noisy flags `noisy`, bait flags."""
        items = np.empty(home.shape[0], np.int64)
        clean = ~noisy
        u = self.rng.random(int(clean.sum()))
        target = self.start[home[clean]] + u * self.mass[home[clean]]
        position = np.searchsorted(self.cumulative, target, side="right")
        items[clean] = self.by_cluster[np.minimum(position, self.by_cluster.shape[0] - 1)]
        pending = np.flatnonzero(noisy)
        for round_ in range(_REDRAW_ROUNDS + 1):
            if pending.shape[0] == 0:
                break
            # The last round falls back to uniform so that every noisy row gets an item.
            items[pending] = self._noise(bait[pending], uniform=round_ == _REDRAW_ROUNDS)
            pending = pending[self.cluster[items[pending]] == home[pending]]
            if round_ == _REDRAW_ROUNDS and pending.shape[0]:
                items[pending] = self._any_unliked(home[pending])
        return items

    def _noise(self, bait: np.ndarray, uniform: bool) -> np.ndarray:
        """Noise-distribution items `[R]` (clickbait ones where `bait`), liked or not."""
        n_items = self.cluster.shape[0]
        if uniform:
            return self.rng.integers(0, n_items, bait.shape[0])
        position = np.searchsorted(self.noise_cumulative, self.rng.random(bait.shape[0]), "right")
        items = np.minimum(position, n_items - 1)
        if self.kind == "item" and bait.any():
            items[bait] = self.clickbait[self.rng.integers(0, self.clickbait.shape[0], bait.sum())]
        return items

    def _any_unliked(self, home: np.ndarray) -> np.ndarray:
        """One item outside each home cluster `[R]`: the first unliked in a random rotation."""
        n_items = self.cluster.shape[0]
        offset = self.rng.integers(0, n_items, home.shape[0])
        items = offset.copy()
        for step in range(n_items):  # bounded: a cluster never holds every item but one row's
            liked = self.cluster[items] == home
            if not liked.any():
                break
            items[liked] = (offset[liked] + step + 1) % n_items
        return items


def _repeated(keys: np.ndarray) -> np.ndarray:
    """Boolean `[N]`: entries whose key already occurred earlier."""
    _, first = np.unique(keys, return_index=True)
    repeated = np.ones(keys.shape[0], bool)
    repeated[first] = False
    return repeated
