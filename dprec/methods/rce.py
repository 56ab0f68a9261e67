"""R-CE: BCE reweighted by the model's own (detached) confidence σ(±f)^β."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from dprec.methods import cards
from dprec.methods.base import Method
from dprec.methods.common import Batch, LossFn, Regularizer, pair_logits
from dprec.methods.roles import Roles
from dprec.models import ScoreFns
from dprec.objectives import rce
from dprec.objectives.bce import bce
from dprec.objectives.reduce import masked_mean
from dprec.specs import RunSpec


def make_rce_loss(target: ScoreFns, regularizer: Regularizer, *, beta: float) -> LossFn:
    """Mean of BCE · σ(±y)^β (detached) on positives and on negatives, + the L2 term."""

    def loss_fn(trainable: dict[str, Any], frozen, batch: Batch, graph, rng: jax.Array, step):
        del frozen, step
        pos, neg = pair_logits(target, trainable["target"], batch, graph, rng)
        terms = []
        for logits, label in ((pos, 1.0), (neg, 0.0)):
            labels = jnp.full_like(logits, label)
            weight = rce.reweighting(logits=logits, labels=labels, beta=beta)
            terms.append(masked_mean(weight * bce(logits=logits, labels=labels), batch["mask"]))
        l2 = regularizer(trainable["target"], batch)
        loss = terms[0] + terms[1] + l2
        return loss, {"loss": loss, "pos_loss": terms[0], "neg_loss": terms[1], "l2": l2}

    return loss_fn


class RCE(Method):
    card = cards.RCE

    def make_loss(self, spec: RunSpec, roles: Roles, regularizer: Regularizer) -> LossFn:
        return make_rce_loss(roles.score["target"], regularizer, beta=spec.method.beta)


METHOD = RCE()
