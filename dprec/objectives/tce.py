"""T-CE (Wang et al., 2021): truncated BCE that drops the largest-loss positives."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def drop_rate(step: jax.Array, *, max_rate: float, num_gradual: int) -> jax.Array:
    """ε(t) = min(t / num_gradual, 1) · ε_max over the global step t."""
    return jnp.minimum(step / num_gradual, 1.0) * max_rate


def truncation_mask(
    *, losses: jax.Array, labels: jax.Array, valid: jax.Array, rate: jax.Array
) -> jax.Array:
    """Which examples `[N]` T-CE keeps: the int((1 − rate)·n) smallest of loss·label.

    n counts the valid examples (padding is never kept); negatives rank as 0, so only
    positives are dropped, but the count is a fraction of the whole batch, as in the original.
    A fixed-shape mask, not a data-dependent shape.
    """
    n_valid = jnp.sum(valid)
    keep_count = jnp.floor((1.0 - rate) * n_valid).astype(jnp.int32)
    key = jnp.where(valid > 0, losses * labels, jnp.inf)
    rank = jnp.argsort(jnp.argsort(key, stable=True), stable=True)
    return (rank < keep_count).astype(losses.dtype)
