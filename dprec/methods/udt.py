"""UDT, user-level denoising with temperatures (the RecSys 2025 re-evaluation's code,
`bachml/EvalDenoisingRec`): BCE weighted per positive by a softmax of its negated last loss
over its user's positives, at a per-user temperature, times a per-user factor that also
weights the user's negatives; both per-user values follow the rank of the user's mean loss.

The epoch's accumulators (each user's loss sum and row count, each positive's last loss) and
the weights they give live in `TrainState.method_state` with the epoch count, so checkpoints
carry them and a resumed run is exact. The weights act from epoch index 2
(`objectives.udt.weights_active`), computed from epoch 1's losses; the formulas are
`dprec.objectives.udt` (docs/methods/udt.md).
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
from dprec.objectives import udt
from dprec.objectives.bce import bce
from dprec.objectives.reduce import masked_mean
from dprec.specs import MethodSpec, RunSpec


class UDTState(NamedTuple):
    """This epoch's accumulators: user_loss `[U]` (sum of the user's row BCEs, positives and
    negatives), user_rows `[U]` (their count), last_loss `[n_train]` (each positive's BCE at its
    last visit), seen `[n_train]` (1 once visited this epoch). The weights in force:
    weights `[n_train]` (each positive's), factor `[U]` (a_u, each user's negatives').
    epoch `[]` int32: epochs done (the 0-based index of the epoch running)."""

    user_loss: jax.Array
    user_rows: jax.Array
    last_loss: jax.Array
    seen: jax.Array
    weights: jax.Array
    factor: jax.Array
    epoch: jax.Array


def init_udt_state(n_users: int, n_train: int) -> UDTState:
    """Empty accumulators and weight 1 everywhere, at epoch 0."""
    return UDTState(
        user_loss=jnp.zeros((n_users,), jnp.float32),
        user_rows=jnp.zeros((n_users,), jnp.float32),
        last_loss=jnp.zeros((n_train,), jnp.float32),
        seen=jnp.zeros((n_train,), jnp.float32),
        weights=jnp.ones((n_train,), jnp.float32),
        factor=jnp.ones((n_users,), jnp.float32),
        epoch=jnp.zeros((), jnp.int32),
    )


def record_batch(state: UDTState, *, users, index, mask, pos_losses, neg_losses) -> UDTState:
    """The batch's losses added to the accumulators: users, index, mask `[B]`, pos_losses `[B]`,
    neg_losses `[B, N]`. Padded rows (mask 0) are sent out of range and dropped, so they
    touch no real row (their index 0 would otherwise race with row 0's)."""
    pos_losses = jax.lax.stop_gradient(pos_losses)
    neg_losses = jax.lax.stop_gradient(neg_losses)
    real = mask > 0
    user_ids = jnp.where(real, users, state.user_loss.shape[0])
    rows = jnp.where(real, index, state.last_loss.shape[0])
    row_loss = pos_losses + jnp.sum(neg_losses, axis=-1)
    n_rows = jnp.full(pos_losses.shape, 1.0 + neg_losses.shape[-1], jnp.float32)
    return state._replace(
        user_loss=state.user_loss.at[user_ids].add(row_loss, mode="drop"),
        user_rows=state.user_rows.at[user_ids].add(n_rows, mode="drop"),
        last_loss=state.last_loss.at[rows].set(pos_losses, mode="drop"),
        seen=state.seen.at[rows].set(1.0, mode="drop"),
    )


def make_udt_loss(target: ScoreFns, regularizer: Regularizer) -> LossFn:
    """Mean of w_ui·BCE over the positives + mean of a_u·BCE over the negatives (both 1 before
    `udt.weights_active`) + the L2 term: normal training's scale, where the authors take one
    mean over all rows. The unweighted BCEs go to the accumulators."""

    def loss_fn(trainable, frozen, batch: Batch, graph, rng: jax.Array, step, state: UDTState):
        del frozen, step
        pos, neg = pair_logits(target, trainable["target"], batch, graph, rng)
        users, index, mask = batch["users"], batch["index"], batch["mask"]
        pos_bce = bce(logits=pos, labels=jnp.ones_like(pos))
        neg_bce = bce(logits=neg, labels=jnp.zeros_like(neg))
        active = udt.weights_active(state.epoch)
        pos_weight = jnp.where(active, state.weights[index], 1.0)
        neg_weight = jnp.where(active, state.factor[users], 1.0)
        pos_loss = masked_mean(pos_weight * pos_bce, mask)
        neg_loss = masked_mean(neg_weight[:, None] * neg_bce, mask)
        l2 = regularizer(trainable["target"], batch)
        loss = pos_loss + neg_loss + l2
        logs = {
            "loss": loss,
            "pos_loss": pos_loss,
            "neg_loss": neg_loss,
            "mean_weight": masked_mean(pos_weight, mask),
            "l2": l2,
        }
        state = record_batch(
            state, users=users, index=index, mask=mask, pos_losses=pos_bce, neg_losses=neg_bce
        )
        return loss, (logs, state)

    return loss_fn


def next_epoch_weights(state: UDTState, *, train_users: jax.Array, method: MethodSpec) -> UDTState:
    """The weights of the next epoch from this epoch's accumulators (`[n_train]` train_users:
    each positive's user), the accumulators emptied and the epoch counted."""
    n_users = state.user_loss.shape[0]
    valid = state.user_rows > 0
    mean_loss = state.user_loss / jnp.maximum(state.user_rows, 1.0)
    temperature, factor = udt.user_temperature_and_factor(
        mean_loss,
        valid=valid,
        temperature_range=(method.temperature_low_loss, method.temperature_high_loss),
        factor_range=(method.factor_low_loss, method.factor_high_loss),
    )
    weights = udt.interaction_weights(
        losses=state.last_loss,
        users=train_users,
        temperature=temperature,
        factor=factor,
        n_users=n_users,
        mask=state.seen,
    )
    empty = init_udt_state(n_users, state.last_loss.shape[0])
    return empty._replace(weights=weights, factor=factor, epoch=state.epoch + 1)


class UDT(Method):
    card = cards.UDT
    has_method_state = True

    def init_method_state(self, spec: RunSpec, data: Any) -> UDTState:
        del spec
        return init_udt_state(data.n_users, data.train.users.shape[0])

    def make_end_epoch(self, spec: RunSpec, data: Any):
        train_users = jnp.asarray(data.train.users, jnp.int32)

        def next_epoch(state: UDTState) -> UDTState:
            return next_epoch_weights(state, train_users=train_users, method=spec.method)

        return next_epoch

    def make_loss(self, spec: RunSpec, roles: Roles, regularizer: Regularizer) -> LossFn:
        del spec
        return make_udt_loss(roles.score["target"], regularizer)


METHOD = UDT()
