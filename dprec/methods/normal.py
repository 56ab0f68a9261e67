"""Normal training: BCE on the interactions (positives) and on sampled negatives."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from dprec.methods import cards
from dprec.methods.base import Method
from dprec.methods.common import Batch, LossFn, Regularizer, pair_logits
from dprec.methods.roles import Roles
from dprec.models import ScoreFns
from dprec.objectives.bce import bce
from dprec.objectives.reduce import masked_mean
from dprec.specs import RunSpec


def make_normal_loss(target: ScoreFns, regularizer: Regularizer) -> LossFn:
    """Mean BCE on positives + mean BCE on negatives + the L2 term."""

    def loss_fn(trainable: dict[str, Any], frozen, batch: Batch, graph, rng: jax.Array, step):
        del frozen, step
        pos, neg = pair_logits(target, trainable["target"], batch, graph, rng)
        pos_loss = masked_mean(bce(logits=pos, labels=jnp.ones_like(pos)), batch["mask"])
        neg_loss = masked_mean(bce(logits=neg, labels=jnp.zeros_like(neg)), batch["mask"])
        l2 = regularizer(trainable["target"], batch)
        loss = pos_loss + neg_loss + l2
        return loss, {"loss": loss, "pos_loss": pos_loss, "neg_loss": neg_loss, "l2": l2}

    return loss_fn


class Normal(Method):
    card = cards.NORMAL

    def make_loss(self, spec: RunSpec, roles: Roles, regularizer: Regularizer) -> LossFn:
        del spec
        return make_normal_loss(roles.score["target"], regularizer)


METHOD = Normal()
