"""BPR (Rendle et al., UAI 2009): each positive against its uniformly sampled negatives,
pairwise; the evaluation ranks by the target's logit, as for every method."""

from __future__ import annotations

from typing import Any

import jax

from dprec.methods import cards
from dprec.methods.base import Method
from dprec.methods.common import Batch, LossFn, Regularizer, pair_logits
from dprec.methods.roles import Roles
from dprec.models import ScoreFns
from dprec.objectives.bpr import bpr_loss
from dprec.objectives.reduce import masked_mean
from dprec.specs import RunSpec


def make_bpr_loss(target: ScoreFns, regularizer: Regularizer) -> LossFn:
    """Mean over the positives of (1/n) Σ_j softplus(s⁻_j − s⁺) + the L2 term.

    BPR's data term is one mean over positives (a pair loss has no separate negative mean);
    the "batch" L2 rule still charges each row's user, positive and negative rows."""

    def loss_fn(trainable: dict[str, Any], frozen, batch: Batch, graph, rng: jax.Array, step):
        del frozen, step
        pos, neg = pair_logits(target, trainable["target"], batch, graph, rng)
        data_loss = masked_mean(bpr_loss(pos_logits=pos, neg_logits=neg), batch["mask"])
        l2 = regularizer(trainable["target"], batch)
        loss = data_loss + l2
        return loss, {"loss": loss, "data_loss": data_loss, "l2": l2}

    return loss_fn


class BPR(Method):
    card = cards.BPR

    def make_loss(self, spec: RunSpec, roles: Roles, regularizer: Regularizer) -> LossFn:
        del spec
        return make_bpr_loss(roles.score["target"], regularizer)


METHOD = BPR()
