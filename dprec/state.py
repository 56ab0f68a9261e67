"""TrainState: the whole resumable training state as one pytree."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct


@struct.dataclass
class TrainState:
    """step `[]` int32, rng key, and per-role params and optimizer states (plain dicts).

    Roles are names such as "target"; every role has its own optimizer state so that a
    sub-task can update its roles and leave the others bit for bit unchanged.
    """

    step: jax.Array
    rng: jax.Array
    params: dict[str, Any]
    opt_state: dict[str, Any]


def create_train_state(
    params: dict[str, Any], optimizer: optax.GradientTransformation, rng: jax.Array
) -> TrainState:
    """Step 0 with a fresh optimizer state per role."""
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        rng=rng,
        params=params,
        opt_state={role: optimizer.init(p) for role, p in params.items()},
    )
