"""CrossDenoise / EARD (Liu et al., 2025): weight each positive's BCE by its loss's ECDF weight
times the reliability of its user and its item, all from the previous epoch's losses.

The epoch's accumulators and the weight table live in `TrainState.method_state`; the
formulas are `dprec.objectives.crossdenoise` (docs/methods-dcf-crossdenoise.md).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from dprec import sharding
from dprec.methods import cards
from dprec.methods.base import Method
from dprec.methods.common import Batch, LossFn, Regularizer, pair_logits
from dprec.methods.roles import Roles
from dprec.models import ScoreFns
from dprec.objectives import crossdenoise
from dprec.objectives.bce import bce
from dprec.objectives.reduce import masked_mean
from dprec.specs import RunSpec

# The authors train the first two epochs unweighted: weights from epoch 1's losses are the
# first ones used (in epoch 2, counting from 0).
UNWEIGHTED_EPOCHS = 2


class CrossDenoiseState(NamedTuple):
    """losses: this epoch's accumulators; weights `[n_train]`: each positive's weight in this
    epoch (1 until the first weighted epoch); epoch `[]` int32: epochs done."""

    losses: crossdenoise.EntityLosses
    weights: jax.Array
    epoch: jax.Array


def make_crossdenoise_loss(target: ScoreFns, regularizer: Regularizer) -> LossFn:
    """Mean of weight·BCE on the positives + mean BCE on the negatives (weight 1), + the L2
    term; the accumulators take this batch's losses."""

    def loss_fn(trainable, frozen, batch: Batch, graph, rng, step, state: CrossDenoiseState):
        del frozen, step
        pos, neg = pair_logits(target, trainable["target"], batch, graph, rng)
        mask, index = batch["mask"], batch["index"]
        pos_bce = bce(logits=pos, labels=jnp.ones_like(pos))
        neg_bce = bce(logits=neg, labels=jnp.zeros_like(neg))
        weights = state.weights[index]
        weighted = crossdenoise.crossdenoise_loss(
            logits=pos, labels=jnp.ones_like(pos), weights=weights
        )
        pos_loss = masked_mean(weighted, mask)
        neg_loss = masked_mean(neg_bce, mask)
        neg_users = jnp.broadcast_to(batch["users"][:, None], batch["neg_items"].shape)
        losses = crossdenoise.accumulate_entities(
            state.losses, users=batch["users"], items=batch["pos_items"], losses=pos_bce, valid=mask
        )
        losses = crossdenoise.accumulate_entities(
            losses,
            users=neg_users.reshape(-1),
            items=batch["neg_items"].reshape(-1),
            losses=neg_bce.reshape(-1),
            valid=jnp.repeat(mask, neg.shape[1]),
        )
        losses = crossdenoise.record_interactions(losses, index=index, losses=pos_bce, valid=mask)
        l2 = regularizer(trainable["target"], batch)
        loss = pos_loss + neg_loss + l2
        logs = {
            "loss": loss,
            "pos_loss": pos_loss,
            "neg_loss": neg_loss,
            "mean_weight": masked_mean(weights, mask),
            "l2": l2,
        }
        return loss, (logs, state._replace(losses=losses))

    return loss_fn


class CrossDenoise(Method):
    card = cards.CROSSDENOISE
    is_denoising = True
    has_method_state = True

    def init_method_state(self, spec: RunSpec, data: Any) -> CrossDenoiseState:
        del spec
        n_train = data.train.users.shape[0]
        return CrossDenoiseState(
            losses=crossdenoise.init_entity_losses(data.n_users, data.n_items, n_train),
            weights=jnp.ones((n_train,), jnp.float32),
            epoch=jnp.zeros((), jnp.int32),
        )

    def make_end_epoch(self, spec: RunSpec, data: Any):
        train_users = jnp.asarray(data.train.users, jnp.int32)
        train_items = jnp.asarray(data.train.items, jnp.int32)
        low, high = spec.method.factor_lower, spec.method.factor_upper
        sizes = (data.n_users, data.n_items, int(train_users.shape[0]))

        def next_epoch(state: CrossDenoiseState) -> CrossDenoiseState:
            epoch = state.epoch + 1
            weights = crossdenoise.epoch_weights(
                state.losses, train_users=train_users, train_items=train_items, low=low, high=high
            )
            weights = jnp.where(epoch >= UNWEIGHTED_EPOCHS, weights, 1.0)
            return CrossDenoiseState(
                losses=crossdenoise.init_entity_losses(*sizes), weights=weights, epoch=epoch
            )

        return next_epoch

    def make_loss(self, spec: RunSpec, roles: Roles, regularizer: Regularizer) -> LossFn:
        del spec
        return make_crossdenoise_loss(roles.score["target"], regularizer)

    def real_positive_scores(
        self, spec, roles, params, method_state: CrossDenoiseState, data, graph
    ):
        """w / β² `[n_train]` from the last epoch's losses (what the next epoch would train
        with), clipped to [0, 1]: 1 − `crossdenoise.noise_score`."""
        del roles, params, data, graph
        weights = np.asarray(sharding.to_host(method_state.weights), np.float64)
        noise = crossdenoise.noise_score(weights, high=spec.method.factor_upper)
        return np.clip(1.0 - noise, 0.0, 1.0).astype(np.float32)


METHOD = CrossDenoise()
