"""Batch losses: score a batch with each role's model, apply the per-example objective, reduce.

`make_normal_loss` closes over the static choices (architecture, λ0) and returns a pure
`loss_fn(params_by_role, batch, graph, rng) -> (loss, logs)` for `steps.make_train_step`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp

from dprec.models import L2_KIND, ScoreFns
from dprec.objectives.bce import bce
from dprec.objectives.reduce import l2_penalty, masked_mean, tensor_norm_penalty

Batch = Mapping[str, jax.Array]  # users [B], pos_items [B], neg_items [B, n_neg], mask [B]
LossFn = Callable[..., tuple[jax.Array, dict[str, jax.Array]]]


def pair_logits(
    score: ScoreFns, params: Any, batch: Batch, graph: Any, rng: Any
) -> tuple[jax.Array, jax.Array]:
    """Logits of the positives `[B]` and of the sampled negatives `[B, n_neg]`.

    The model's `encode` (LightGCN propagation, CDAE codes) runs once and serves both.
    """
    encoded = score.encode(params, graph, rng)
    users, neg_items = batch["users"], batch["neg_items"]
    pos = score.pair(params, encoded, users, batch["pos_items"])
    neg_users = jnp.broadcast_to(users[:, None], neg_items.shape)
    neg = score.pair(params, encoded, neg_users.reshape(-1), neg_items.reshape(-1))
    return pos, neg.reshape(neg_items.shape)


def make_regularizer(
    model_name: str, *, lambda0: float, n_users: int, norm_scale: float = 1.0
) -> Callable[[Any], Any]:
    """The target's L2 term: λ0·½·‖θ‖²/n_users, or for "norm" models (CDAE)
    `norm_scale`·λ0·Σ_t‖θ_t‖ (see `steps.make_method_train_step` for the scale)."""
    if L2_KIND.get(model_name) == "norm":
        return lambda params: tensor_norm_penalty(params, lambda0=lambda0 * norm_scale)
    return lambda params: l2_penalty(params, lambda0=lambda0, n_users=n_users)


def make_normal_loss(target: ScoreFns, regularizer: Callable[[Any], Any]) -> LossFn:
    """Normal training: mean BCE on positives + mean BCE on negatives + the L2 term."""

    def loss_fn(params: dict[str, Any], batch: Batch, graph: Any, rng: jax.Array):
        pos, neg = pair_logits(target, params["target"], batch, graph, rng)
        pos_loss = masked_mean(bce(logits=pos, labels=jnp.ones_like(pos)), batch["mask"])
        neg_loss = masked_mean(bce(logits=neg, labels=jnp.zeros_like(neg)), batch["mask"])
        l2 = regularizer(params["target"])
        loss = pos_loss + neg_loss + l2
        return loss, {"loss": loss, "pos_loss": pos_loss, "neg_loss": neg_loss, "l2": l2}

    return loss_fn
