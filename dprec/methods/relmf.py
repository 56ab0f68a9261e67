"""Rel-MF (Saito et al., WSDM 2020): inverse-propensity-weighted pointwise log loss on the
positives (label 1/θ on δ¹, 1 − 1/θ on δ⁰, each example clipped at 0) and the plain label-0
loss on the sampled negatives.

The item propensity θ `[n_items]` = clip((n_i / max n)^η, c, 1) of the training split's counts.
`make_loss` gets no data, so θ reaches the loss as the method state (`init_method_state`,
replicated, never updated; checkpoints carry its n_items floats).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from dprec.methods import cards
from dprec.methods.base import Method
from dprec.methods.common import Batch, LossFn, Regularizer, pair_logits
from dprec.methods.roles import Roles
from dprec.models import ScoreFns
from dprec.objectives import relmf
from dprec.objectives.reduce import masked_mean
from dprec.specs import RunSpec


class PropensityState(NamedTuple):
    """propensity `[n_items]`: θ_i in [c, 1]."""

    propensity: jax.Array


def make_relmf_loss(target: ScoreFns, regularizer: Regularizer) -> LossFn:
    """Mean Rel-MF loss of the positives (θ of their items from the state) + mean label-0
    loss of the negatives (θ does not enter it) + the L2 term: normal training's scale."""

    def loss_fn(trainable, frozen, batch: Batch, graph, rng: jax.Array, step, state):
        del frozen, step
        pos, neg = pair_logits(target, trainable["target"], batch, graph, rng)
        pos_losses = relmf.relmf_loss(
            logits=pos,
            labels=jnp.ones_like(pos),
            propensity=state.propensity[batch["pos_items"]],
        )
        neg_losses = relmf.relmf_loss(
            logits=neg,
            labels=jnp.zeros_like(neg),
            propensity=state.propensity[batch["neg_items"]],
        )
        pos_loss = masked_mean(pos_losses, batch["mask"])
        neg_loss = masked_mean(neg_losses, batch["mask"])
        l2 = regularizer(trainable["target"], batch)
        loss = pos_loss + neg_loss + l2
        logs = {"loss": loss, "pos_loss": pos_loss, "neg_loss": neg_loss, "l2": l2}
        return loss, (logs, state)

    return loss_fn


class RelMF(Method):
    card = cards.RELMF
    has_method_state = True  # the propensity vector, a constant (see the module docstring)

    def init_method_state(self, spec: RunSpec, data: Any) -> PropensityState:
        counts = jnp.asarray(data.item_popularity(), jnp.float32)
        return PropensityState(
            propensity=relmf.propensity(
                counts,
                eta=spec.method.propensity_power,
                min_propensity=spec.method.propensity_floor,
            )
        )

    def make_loss(self, spec: RunSpec, roles: Roles, regularizer: Regularizer) -> LossFn:
        del spec
        return make_relmf_loss(roles.score["target"], regularizer)


METHOD = RelMF()
