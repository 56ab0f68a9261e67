"""DCF, the Double Correction Framework (He et al., KDD 2024): drop the positives whose damped
mean loss is confidently high, and relabel the most confident of them as negatives.

The per-interaction `LossHistory` lives in `TrainState.method_state` with the epoch count;
the formulas are `dprec.objectives.dcf` (docs/methods-dcf-crossdenoise.md).
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
from dprec.methods.tce import flat_examples, positive_and_negative_means
from dprec.models import ScoreFns
from dprec.objectives import dcf
from dprec.objectives.bce import bce
from dprec.specs import MethodSpec, RunSpec


class DCFState(NamedTuple):
    """history: the loss window of every training positive; epoch `[]` int32: epochs done;
    variance `[]`: σ² of the current epoch (the schedule's value at `epoch`)."""

    history: dcf.LossHistory
    epoch: jax.Array
    variance: jax.Array


def make_dcf_loss(target: ScoreFns, regularizer: Regularizer, method: MethodSpec) -> LossFn:
    """BCE on the kept examples and BCE against 0 on the relabelled positives (a positive mean
    plus a negative mean), + the L2 term; returns the history with the batch recorded."""

    def loss_fn(trainable, frozen, batch: Batch, graph, rng: jax.Array, step, state: DCFState):
        del frozen
        pos, neg = pair_logits(target, trainable["target"], batch, graph, rng)
        mask, index = batch["mask"], batch["index"]
        history = dcf.update_history(
            state.history,
            index=index,
            losses=bce(logits=pos, labels=jnp.ones_like(pos)),
            selected=jnp.zeros_like(mask),
            valid=mask,
        )
        scores = dcf.batch_scores(history, index, variance=state.variance, t=state.epoch + 1)
        rate, relabel_rate = dcf.relabel_schedule(
            step,
            max_rate=method.drop_rate,
            num_gradual=method.num_gradual,
            relabel_ratio=method.relabel_ratio,
        )
        logits, labels, valid = flat_examples(pos, neg, mask)
        keep, relabel = dcf.correction_masks(
            scores=jnp.concatenate([scores, jnp.zeros_like(neg).reshape(-1)]),
            labels=labels,
            valid=valid,
            drop_rate=rate,
            relabel_rate=relabel_rate,
        )
        losses = dcf.dcf_loss(logits=logits, labels=labels, keep=keep, relabel=relabel)
        # Normal training's scale: the mean over the kept and relabelled positives plus the
        # mean over the negatives (the authors take one mean over all of them).
        pos_loss, neg_loss = positive_and_negative_means(losses, keep + relabel, pos.shape[0])
        data_loss = pos_loss + neg_loss
        # The authors count a positive as selected whenever it is not relabelled.
        history = dcf.count_selections(
            history, index=index, selected=1.0 - relabel[: pos.shape[0]], valid=mask
        )
        l2 = regularizer(trainable["target"], batch)
        loss = data_loss + l2
        logs = {
            "loss": loss,
            "data_loss": data_loss,
            "drop_rate": rate,
            "relabelled": jnp.sum(relabel) / jnp.maximum(jnp.sum(mask), 1.0),
            "l2": l2,
        }
        return loss, (logs, state._replace(history=history))

    return loss_fn


class DCF(Method):
    card = cards.DCF
    is_denoising = True
    has_method_state = True

    def init_method_state(self, spec: RunSpec, data: Any) -> DCFState:
        return DCFState(
            history=dcf.init_history(data.train.users.shape[0], spec.method.dcf_window),
            epoch=jnp.zeros((), jnp.int32),
            variance=jnp.asarray(spec.method.co_lambda, jnp.float32),
        )

    def make_end_epoch(self, spec: RunSpec, data: Any):
        del data

        def next_epoch(state: DCFState) -> DCFState:
            epoch = state.epoch + 1
            variance = dcf.variance_schedule(
                epoch, variance=spec.method.co_lambda, epochs=spec.train.num_epochs
            )
            return state._replace(epoch=epoch, variance=variance.astype(jnp.float32))

        return next_epoch

    def make_loss(self, spec: RunSpec, roles: Roles, regularizer: Regularizer) -> LossFn:
        return make_dcf_loss(roles.score["target"], regularizer, spec.method)

    def real_positive_scores(self, spec, roles, params, method_state: DCFState, data, graph):
        """exp(−ℓ*) `[n_train]` with ℓ* at the state's t and σ² (what the next step would rank
        by): 1 for a positive DCF keeps first, → 0 for a confidently high damped loss."""
        del spec, roles, params, data, graph
        state = sharding.to_host(method_state)
        lower_bound = dcf.noise_score(state.history, variance=state.variance, t=state.epoch + 1)
        return np.exp(-np.asarray(lower_bound, np.float64)).astype(np.float32)


METHOD = DCF()
