"""BSL, the bilateral softmax loss (Wu et al., ICDE 2024): SL's Log-Expectation-Exp over the
negatives (τ = `method.temperature`) and the same over each user's positives in the batch
(τ1 = `method.positive_temperature`), so a user's low-scored positives pull less."""

from __future__ import annotations

from typing import Any

import jax

from dprec.methods import cards
from dprec.methods.base import Method
from dprec.methods.common import Batch, LossFn, Regularizer, pair_logits
from dprec.methods.roles import Roles
from dprec.models import ScoreFns
from dprec.objectives.bsl import bsl_loss
from dprec.objectives.reduce import masked_mean
from dprec.specs import RunSpec


def make_bsl_loss(
    target: ScoreFns, regularizer: Regularizer, *, temperature: float, positive_temperature: float
) -> LossFn:
    """Mean over the rows of [−τ1·log mean_{same user} exp(s⁺/τ1) + τ·log mean_j exp(s⁻_j/τ)]/τ
    + the L2 term. Rows are grouped by their global user id (`batch["users"]`, present in
    every update mode), padding in no group.

    The division by τ puts BSL on SL's scale (as the authors' code and the paper's pseudo-code
    are): with one row per user, or as τ1 → ∞, the data term is SL − log N, so λ0 weighs the
    same against both. The paper's equation, in logit units, would make the L2 term 1/τ times
    stronger than in SL at the same λ0."""

    def loss_fn(trainable: dict[str, Any], frozen, batch: Batch, graph, rng: jax.Array, step):
        del frozen, step
        pos, neg = pair_logits(target, trainable["target"], batch, graph, rng)
        losses = bsl_loss(
            pos_logits=pos,
            neg_logits=neg,
            users=batch["users"],
            mask=batch["mask"],
            pos_temperature=positive_temperature,
            neg_temperature=temperature,
        )
        data_loss = masked_mean(losses, batch["mask"]) / temperature
        l2 = regularizer(trainable["target"], batch)
        loss = data_loss + l2
        return loss, {"loss": loss, "data_loss": data_loss, "l2": l2}

    return loss_fn


class BSL(Method):
    card = cards.BSL

    def make_loss(self, spec: RunSpec, roles: Roles, regularizer: Regularizer) -> LossFn:
        return make_bsl_loss(
            roles.score["target"],
            regularizer,
            temperature=spec.method.temperature,
            positive_temperature=spec.method.positive_temperature,
        )


METHOD = BSL()
