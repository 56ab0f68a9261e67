"""Batch losses: score a batch with each role's model, apply the per-example objective, reduce.

`make_normal_loss`, `make_tce_loss` and `make_rce_loss` close over the static choices
(architecture, regulariser, hyper-parameters) and return a pure
`loss_fn(params_by_role, batch, graph, rng, step) -> (loss, logs)` for `steps.make_train_step`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp

from dprec.lazy_rows import RowSubset
from dprec.models import L2_KIND, ScoreFns
from dprec.objectives import rce, tce
from dprec.objectives.bce import bce
from dprec.objectives.reduce import l2_penalty, masked_mean, tensor_norm_penalty

# users [B], pos_items [B], neg_items [B, n_neg], mask [B]; in the lazy update mode also
# touched_users, touched_items and local_* (dprec.data.touched).
Batch = Mapping[str, jax.Array]
LossFn = Callable[..., tuple[jax.Array, dict[str, jax.Array]]]


def pair_logits(
    score: ScoreFns, params: Any, batch: Batch, graph: Any, rng: Any
) -> tuple[jax.Array, jax.Array]:
    """Logits of the positives `[B]` and of the sampled negatives `[B, n_neg]`.

    The model's `encode` (LightGCN propagation, CDAE codes) runs once and serves both. A
    `RowSubset` (lazy update mode) is scored with the batch's indices into its touched rows.
    """
    if isinstance(params, RowSubset):
        params, users = params.params, batch["local_users"]
        pos_items, neg_items = batch["local_pos_items"], batch["local_neg_items"]
    else:
        users, pos_items, neg_items = batch["users"], batch["pos_items"], batch["neg_items"]
    encoded = score.encode(params, graph, rng)
    pos = score.pair(params, encoded, users, pos_items)
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

    def loss_fn(params: dict[str, Any], batch: Batch, graph: Any, rng: jax.Array, step):
        del step
        pos, neg = pair_logits(target, params["target"], batch, graph, rng)
        pos_loss = masked_mean(bce(logits=pos, labels=jnp.ones_like(pos)), batch["mask"])
        neg_loss = masked_mean(bce(logits=neg, labels=jnp.zeros_like(neg)), batch["mask"])
        l2 = regularizer(params["target"])
        loss = pos_loss + neg_loss + l2
        return loss, {"loss": loss, "pos_loss": pos_loss, "neg_loss": neg_loss, "l2": l2}

    return loss_fn


def _flat_examples(pos: jax.Array, neg: jax.Array, mask: jax.Array):
    """Logits, labels and validity `[B·(1 + n_neg)]` of a batch's positives and negatives."""
    logits = jnp.concatenate([pos, neg.reshape(-1)])
    labels = jnp.concatenate([jnp.ones_like(pos), jnp.zeros_like(neg).reshape(-1)])
    valid = jnp.concatenate([mask, jnp.repeat(mask, neg.shape[1])])
    return logits, labels, valid


def make_tce_loss(
    target: ScoreFns,
    regularizer: Callable[[Any], Any],
    *,
    max_drop_rate: float,
    num_gradual: int,
) -> LossFn:
    """T-CE: BCE over the examples that `tce.truncation_mask` keeps, + the L2 term."""

    def loss_fn(params: dict[str, Any], batch: Batch, graph: Any, rng: jax.Array, step):
        pos, neg = pair_logits(target, params["target"], batch, graph, rng)
        logits, labels, valid = _flat_examples(pos, neg, batch["mask"])
        losses = bce(logits=logits, labels=labels)
        rate = tce.drop_rate(step, max_rate=max_drop_rate, num_gradual=num_gradual)
        keep = tce.truncation_mask(losses=losses, labels=labels, valid=valid, rate=rate)
        data_loss = jnp.sum(losses * keep) / jnp.maximum(jnp.sum(keep), 1.0)
        l2 = regularizer(params["target"])
        loss = data_loss + l2
        return loss, {"loss": loss, "data_loss": data_loss, "drop_rate": rate, "l2": l2}

    return loss_fn


def make_rce_loss(target: ScoreFns, regularizer: Callable[[Any], Any], *, beta: float) -> LossFn:
    """R-CE: mean of BCE · σ(±y)^β (detached) on positives and on negatives, + the L2 term."""

    def loss_fn(params: dict[str, Any], batch: Batch, graph: Any, rng: jax.Array, step):
        del step
        pos, neg = pair_logits(target, params["target"], batch, graph, rng)
        terms = []
        for logits, label in ((pos, 1.0), (neg, 0.0)):
            labels = jnp.full_like(logits, label)
            weight = rce.reweighting(logits=logits, labels=labels, beta=beta)
            terms.append(masked_mean(weight * bce(logits=logits, labels=labels), batch["mask"]))
        l2 = regularizer(params["target"])
        loss = terms[0] + terms[1] + l2
        return loss, {"loss": loss, "pos_loss": terms[0], "neg_loss": terms[1], "l2": l2}

    return loss_fn
