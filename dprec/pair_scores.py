"""Scores of many (user, item) pairs, in fixed-size chunks through one jitted function.

The one scorer for training pairs: the noisy-interaction report, `denoise_report` and
`plots` all use it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dprec import sharding
from dprec.models import ScoreFns

CHUNK = 65_536  # pairs scored at once: bounds the [chunk, D] activations

# (params, graph, users [N], items [N]) -> scores [N]
PairFn = Callable[[Any, Any, jax.Array, jax.Array], jax.Array]


def role_logits(score: ScoreFns) -> PairFn:
    """A role's logits of pairs, evaluated (no corruption): `fn(params, graph, users, items)`."""

    def logits(params, graph, users, items):
        return score.pair(params, score.encode(params, graph, None), users, items)

    return logits


def score_pairs(
    fn: PairFn,
    params: Any,
    graph: Any,
    users: np.ndarray,
    items: np.ndarray,
    *,
    chunk: int = CHUNK,
) -> np.ndarray:
    """`fn` on pairs `users [N]`, `items [N]` as float32 `[N]`, `chunk` pairs at a time.

    With more than one chunk, the last is padded to the full size: one compilation serves
    every chunk.
    """
    jitted = jax.jit(fn)
    total = users.shape[0]
    out = np.empty(total, np.float32)
    for start in range(0, total, chunk):
        stop = min(start + chunk, total)
        pad = chunk - (stop - start) if total > chunk else 0
        u = jnp.asarray(np.pad(users[start:stop], (0, pad)))
        i = jnp.asarray(np.pad(items[start:stop], (0, pad)))
        out[start:stop] = sharding.to_host(jitted(params, graph, u, i))[: stop - start]
    return out
