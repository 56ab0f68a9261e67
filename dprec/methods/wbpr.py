"""WBPR: normal training with negatives drawn ∝ item popularity ** exponent."""

from __future__ import annotations

import numpy as np

from dprec.data.sampling import popularity_distribution
from dprec.methods import cards
from dprec.methods.normal import Normal
from dprec.specs import RunSpec


class WBPR(Normal):
    card = cards.WBPR

    def negative_probs(self, spec: RunSpec, data) -> np.ndarray:
        return popularity_distribution(data.item_popularity(), spec.method.popularity_exponent)


METHOD = WBPR()
