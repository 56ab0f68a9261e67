"""Planted-noise interaction tables with known truth: one noise kind at a chosen rate, in one
of three worlds (docs/worlds.md).

- `block` (the easy case, the default): every user likes one cluster of items; a noisy click
  leaves it, so it is trivially separable (`dprec.data.worlds.block`).
- `latent`: continuous Gaussian tastes with a Zipf popularity; clean rows among a user's top
  items, noisy clicks among the bottom half of its affinity (`dprec.data.worlds.latent`).
- `real`: the rows rated >= 4 of a real dataset (ML-100k by default) are the clean truth,
  the rows rated <= 3 are dropped, and noisy clicks are added (`dprec.data.worlds.real`).

The noise kinds (`KINDS`) are the same in every world: `uniform`, `popularity` (∝
popularity^beta), `user` (a minority of users make most noisy clicks), `item` (clickbait
items take most of them) and `exposure` (liked interactions hidden, listed in
`Planted.hidden`). The rate is exact by construction: the share of the table's rows that are
noisy clicks, or for `exposure` the share of the clean interactions hidden.

Every world returns a `Planted` whose frame has columns user, item, rating, truth (1 = clean),
with ratings that follow the truth (noisy 1-2, or 1 in the real world; clean 4-5), so
`clean_rule=rating`, `clean_threshold=4` recovers it for the clean test, and
`data.train_truth=clean` trains the oracle on the truly clean rows only. Write a table with
`python -m dprec.tools.plant_data --world W --kind K --rate R --out FILE`.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from dprec.data.worlds import block, latent, real
from dprec.data.worlds.common import KINDS, Planted

__all__ = ["KINDS", "WORLDS", "Planted", "generate_planted", "plant"]

# world name -> plant(kind, rate, **world_options) -> Planted
WORLDS: dict[str, Callable[..., Planted]] = {
    "block": block.plant,
    "latent": latent.plant,
    "real": real.plant,
}


def plant(kind: str, rate: float, *, world: str = "block", **world_options) -> Planted:
    """Plant noise of `kind` at `rate` in `world`; `world_options` are that world's keyword
    arguments (see its module: sizes, exponents, `seed`, and for `real` the dataset/path).

    Raises:
      ValueError: unknown world or kind, or an argument out of range.
      TypeError: an option the world does not take.
    """
    if world not in WORLDS:
        raise ValueError(f"unknown world {world!r}; choose one of {', '.join(WORLDS)}")
    return WORLDS[world](kind, rate, **world_options)


def generate_planted(kind: str, rate: float, **kwargs) -> pd.DataFrame:
    """The table of `plant(kind, rate, **kwargs)`: columns user, item, rating, truth."""
    return plant(kind, rate, **kwargs).frame
