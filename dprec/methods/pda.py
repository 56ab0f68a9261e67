"""PD/PDA (Zhang et al., SIGIR 2021): BPR on popularity-confounded scores ELU'(f)·m^γ during
training; the evaluation ranks by the target's logit f alone, which is PD's deconfounded
ranking by construction (ELU' is increasing, so ELU'(f) and f order items alike).

The item popularity m `[n_items]` is the authors' normalisation of the training split's counts
(one stage: the whole split). `make_loss` gets no data, so m reaches the loss as the method
state (`init_method_state`, replicated, never updated): a pure jitted step, no closed-over
constant, and checkpoints carry it (n_items floats).
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
from dprec.objectives import pda
from dprec.objectives.reduce import masked_mean
from dprec.specs import RunSpec


class PopularityState(NamedTuple):
    """popularity `[n_items]`: m_i in [0, 1], min-max scaled smoothed training counts."""

    popularity: jax.Array


def make_pda_loss(target: ScoreFns, regularizer: Regularizer, *, gamma: float) -> LossFn:
    """Mean over the positives of mean_j −log σ(ELU'(f⁺)·m⁺^γ − ELU'(f⁻_j)·m⁻_j^γ) + the L2
    term; m is read from the state at the batch's global item ids."""

    def loss_fn(trainable, frozen, batch: Batch, graph, rng: jax.Array, step, state):
        del frozen, step
        pos, neg = pair_logits(target, trainable["target"], batch, graph, rng)
        losses = pda.pda_loss(
            pos_logits=pos,
            neg_logits=neg,
            pos_popularity=state.popularity[batch["pos_items"]],
            neg_popularity=state.popularity[batch["neg_items"]],
            gamma=gamma,
        )
        data_loss = masked_mean(losses, batch["mask"])
        l2 = regularizer(trainable["target"], batch)
        loss = data_loss + l2
        return loss, ({"loss": loss, "data_loss": data_loss, "l2": l2}, state)

    return loss_fn


class PDA(Method):
    card = cards.PDA
    has_method_state = True  # the popularity vector, a constant (see the module docstring)

    def init_method_state(self, spec: RunSpec, data: Any) -> PopularityState:
        del spec
        counts = jnp.asarray(data.item_popularity(), jnp.float32)
        return PopularityState(popularity=pda.popularity_from_counts(counts))

    def make_loss(self, spec: RunSpec, roles: Roles, regularizer: Regularizer) -> LossFn:
        return make_pda_loss(roles.score["target"], regularizer, gamma=spec.method.popularity_power)


METHOD = PDA()
