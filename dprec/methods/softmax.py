"""SL, sampled softmax: each positive against its `train.num_negatives` uniform negatives at
temperature τ (`method.temperature`); the card's preset draws 64 negatives everywhere."""

from __future__ import annotations

from typing import Any

import jax

from dprec.methods import cards
from dprec.methods.base import Method
from dprec.methods.common import Batch, LossFn, Regularizer, pair_logits
from dprec.methods.roles import Roles
from dprec.models import ScoreFns
from dprec.objectives.reduce import masked_mean
from dprec.objectives.softmax import softmax_loss
from dprec.specs import RunSpec


def make_softmax_loss(target: ScoreFns, regularizer: Regularizer, *, temperature: float) -> LossFn:
    """Mean over the positives of logsumexp([s⁺, s⁻]/τ) − s⁺/τ + the L2 term (the standard
    SL, the positive in its own denominator)."""

    def loss_fn(trainable: dict[str, Any], frozen, batch: Batch, graph, rng: jax.Array, step):
        del frozen, step
        pos, neg = pair_logits(target, trainable["target"], batch, graph, rng)
        losses = softmax_loss(pos_logits=pos, neg_logits=neg, temperature=temperature)
        data_loss = masked_mean(losses, batch["mask"])
        l2 = regularizer(trainable["target"], batch)
        loss = data_loss + l2
        return loss, {"loss": loss, "data_loss": data_loss, "l2": l2}

    return loss_fn


class Softmax(Method):
    card = cards.SOFTMAX

    def make_loss(self, spec: RunSpec, roles: Roles, regularizer: Regularizer) -> LossFn:
        return make_softmax_loss(
            roles.score["target"], regularizer, temperature=spec.method.temperature
        )


METHOD = Softmax()
