"""T-CE: truncated BCE, dropping the largest-loss share of the batch (a growing rate)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from dprec.methods import cards
from dprec.methods.base import Method
from dprec.methods.common import Batch, LossFn, Regularizer, pair_logits
from dprec.methods.roles import Roles
from dprec.models import ScoreFns
from dprec.objectives import tce
from dprec.objectives.bce import bce
from dprec.specs import RunSpec


def flat_examples(pos: jax.Array, neg: jax.Array, mask: jax.Array):
    """Logits, labels and validity `[B·(1 + n_neg)]` of a batch's positives and negatives."""
    logits = jnp.concatenate([pos, neg.reshape(-1)])
    labels = jnp.concatenate([jnp.ones_like(pos), jnp.zeros_like(neg).reshape(-1)])
    valid = jnp.concatenate([mask, jnp.repeat(mask, neg.shape[1])])
    return logits, labels, valid


def positive_and_negative_means(
    values: jax.Array, counted: jax.Array, n_positives: int
) -> tuple[jax.Array, jax.Array]:
    """(Σ values / Σ counted) over the first `n_positives` of `flat_examples`' order and over
    the rest: the positive and the negative means of a truncated or corrected batch."""
    means = []
    for part in (slice(0, n_positives), slice(n_positives, None)):
        means.append(jnp.sum(values[part]) / jnp.maximum(jnp.sum(counted[part]), 1.0))
    return means[0], means[1]


def make_tce_loss(
    target: ScoreFns, regularizer: Regularizer, *, max_drop_rate: float, num_gradual: int
) -> LossFn:
    """The mean BCE of the positives `tce.truncation_mask` keeps + the mean BCE of the
    negatives (never dropped) + the L2 term: normal training's scale (a positive mean plus a
    negative mean), so λ0 and the learning rate mean the same. The original T-CE takes one
    mean over all kept examples, which halves the data term against the same L2 term."""

    def loss_fn(trainable: dict[str, Any], frozen, batch: Batch, graph, rng: jax.Array, step):
        del frozen
        pos, neg = pair_logits(target, trainable["target"], batch, graph, rng)
        logits, labels, valid = flat_examples(pos, neg, batch["mask"])
        losses = bce(logits=logits, labels=labels)
        rate = tce.drop_rate(step, max_rate=max_drop_rate, num_gradual=num_gradual)
        keep = tce.truncation_mask(losses=losses, labels=labels, valid=valid, rate=rate)
        pos_loss, neg_loss = positive_and_negative_means(losses * keep, keep, pos.shape[0])
        l2 = regularizer(trainable["target"], batch)
        loss = pos_loss + neg_loss + l2
        return loss, {
            "loss": loss,
            "pos_loss": pos_loss,
            "neg_loss": neg_loss,
            "drop_rate": rate,
            "l2": l2,
        }

    return loss_fn


class TCE(Method):
    card = cards.TCE

    def make_loss(self, spec: RunSpec, roles: Roles, regularizer: Regularizer) -> LossFn:
        return make_tce_loss(
            roles.score["target"],
            regularizer,
            max_drop_rate=spec.method.drop_rate,
            num_gradual=spec.method.num_gradual,
        )


METHOD = TCE()
