"""TrainState: the whole resumable training state as one pytree."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct


@struct.dataclass
class TrainState:
    """step `[]` int32, rng key, per-role params and optimizer states, and frozen params.

    Roles are names such as "target", "aux" (g of DPI), "noise_dp" (h) and "noise_dn" (h').
    Every trained role has its own optimizer state, so a sub-task can
    update its roles and leave the others bit for bit unchanged. `frozen` holds parameters that
    are never trained (the DVAE prior f'). `method_state` is a method's own pytree beside the
    parameters (DCF's loss history, CrossDenoise's entity losses and weights), `{}` for most.
    """

    step: jax.Array
    rng: jax.Array
    params: dict[str, Any]
    opt_state: dict[str, Any]
    frozen: dict[str, Any] = struct.field(default_factory=dict)
    method_state: Any = struct.field(default_factory=dict)


def create_train_state(
    params: dict[str, Any],
    optimizer: optax.GradientTransformation,
    rng: jax.Array,
    *,
    frozen: dict[str, Any] | None = None,
    method_state: Any = None,
) -> TrainState:
    """Step 0 with a fresh optimizer state per role."""
    opt_state = {role: optimizer.init(p) for role, p in params.items()}
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        rng=rng,
        params=params,
        opt_state=opt_state,
        frozen=frozen or {},
        method_state={} if method_state is None else method_state,
    )
