"""Model registry and the functional interface every training and evaluation path uses.

Models are Flax NNX modules with two forward methods, `pair_logits(users, items) -> [B]` and
`all_item_logits(users) -> [U, n_items]`. They are split once into `(graphdef, params)`;
jitted code calls the pure functions of `make_score_fns(graphdef)` with params as a plain
pytree (nested dicts of arrays).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
from flax import nnx

from dprec.models.gmf import GMF
from dprec.models.mf import MF

Params = Any  # nested dict of arrays

_MODELS = {"mf": MF, "gmf": GMF}
MODEL_NAMES = tuple(_MODELS)


@dataclasses.dataclass(frozen=True)
class ScoreFns:
    """Pure functions of one model architecture.

    pair: (params, users [B], items [B]) -> logits [B]
    all_items: (params, users [U]) -> logits [U, n_items]
    """

    pair: Callable[[Params, jax.Array, jax.Array], jax.Array]
    all_items: Callable[[Params, jax.Array], jax.Array]


def create_model(spec, n_users: int, n_items: int, rngs: nnx.Rngs) -> nnx.Module:
    """Build the module named by `spec.name` (a `ModelSpec`)."""
    if spec.name not in _MODELS:
        raise ValueError(f"unknown model {spec.name!r}; choose one of {', '.join(MODEL_NAMES)}")
    return _MODELS[spec.name](n_users, n_items, spec.embed_dim, spec.init_std, rngs=rngs)


def init_model(spec, n_users: int, n_items: int, key: jax.Array) -> tuple[Any, Params]:
    """Create and split a model: `(graphdef, params)` with params as a plain nested dict."""
    graphdef, state = nnx.split(create_model(spec, n_users, n_items, nnx.Rngs(key)))
    return graphdef, nnx.to_pure_dict(state)


def make_score_fns(graphdef: Any) -> ScoreFns:
    """Pure scoring functions for the architecture `graphdef`."""

    def pair(params: Params, users: jax.Array, items: jax.Array) -> jax.Array:
        return nnx.merge(graphdef, params).pair_logits(users, items)

    def all_items(params: Params, users: jax.Array) -> jax.Array:
        return nnx.merge(graphdef, params).all_item_logits(users)

    return ScoreFns(pair=pair, all_items=all_items)
