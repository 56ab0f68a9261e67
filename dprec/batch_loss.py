"""Batch losses: score a batch with each role's model, apply the per-example objective, reduce.

`make_batch_loss` closes over the static choices (method, architectures, λ0) and returns a pure
`loss_fn(params_by_role, batch, rng) -> (loss, logs)` for `steps.make_train_step`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp

from dprec.models import ScoreFns
from dprec.objectives.bce import bce
from dprec.objectives.reduce import l2_penalty, masked_mean

Batch = Mapping[str, jax.Array]  # users [B], pos_items [B], neg_items [B, n_neg], mask [B]
LossFn = Callable[[dict[str, Any], Batch, jax.Array], tuple[jax.Array, dict[str, jax.Array]]]


def pair_logits(score: ScoreFns, params: Any, batch: Batch) -> tuple[jax.Array, jax.Array]:
    """Logits of the positives `[B]` and of the sampled negatives `[B, n_neg]`."""
    users, neg_items = batch["users"], batch["neg_items"]
    pos = score.pair(params, users, batch["pos_items"])
    neg_users = jnp.broadcast_to(users[:, None], neg_items.shape)
    neg = score.pair(params, neg_users.reshape(-1), neg_items.reshape(-1)).reshape(neg_items.shape)
    return pos, neg


def make_normal_loss(target: ScoreFns, *, lambda0: float, n_users: int) -> LossFn:
    """Normal training: mean BCE on positives + mean BCE on negatives + λ0·½·‖θ‖²/n_users."""

    def loss_fn(params: dict[str, Any], batch: Batch, rng: jax.Array):
        del rng  # normal training draws nothing on device
        pos, neg = pair_logits(target, params["target"], batch)
        pos_loss = masked_mean(bce(logits=pos, labels=jnp.ones_like(pos)), batch["mask"])
        neg_loss = masked_mean(bce(logits=neg, labels=jnp.zeros_like(neg)), batch["mask"])
        l2 = l2_penalty(params["target"], lambda0=lambda0, n_users=n_users)
        loss = pos_loss + neg_loss + l2
        return loss, {"loss": loss, "pos_loss": pos_loss, "neg_loss": neg_loss, "l2": l2}

    return loss_fn
