"""Pure factories for the jitted training step and the whole-epoch `lax.scan`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from dprec.batch_loss import Batch, LossFn
from dprec.state import TrainState

TrainStep = Callable[[TrainState, Batch], tuple[TrainState, dict[str, jax.Array]]]


def make_train_step(loss_fn: LossFn, optimizer: optax.GradientTransformation) -> TrainStep:
    """One optimisation step of every role in `state.params` on one batch.

    The step's rng is `fold_in(state.rng, state.step)`, so a resumed run draws the same numbers.
    """

    def train_step(state: TrainState, batch: Batch):
        rng = jax.random.fold_in(state.rng, state.step)
        grads, logs = jax.grad(loss_fn, has_aux=True)(state.params, batch, rng)
        params, opt_state = {}, {}
        for role, role_grads in grads.items():
            updates, opt_state[role] = optimizer.update(
                role_grads, state.opt_state[role], state.params[role]
            )
            params[role] = optax.apply_updates(state.params[role], updates)
        new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state)
        return new_state, logs

    return train_step


def make_epoch_fn(train_step: TrainStep) -> Callable[[TrainState, Batch], tuple[TrainState, Any]]:
    """A jitted function running `train_step` over epoch arrays `[n_batches, B, ...]`.

    Returns the new state and the per-step logs averaged over the epoch. The input state's
    buffers are donated.
    """

    def epoch(state: TrainState, batches: Batch):
        state, logs = jax.lax.scan(train_step, state, batches)
        return state, jax.tree.map(jnp.mean, logs)

    return jax.jit(epoch, donate_argnums=0)
