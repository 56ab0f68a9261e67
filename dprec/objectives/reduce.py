"""Reductions shared by the objectives: masked means and the paper's L2 term."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def masked_mean(values: jax.Array, mask: jax.Array) -> jax.Array:
    """Mean of `values` `[B, ...]` over the entries whose `mask` `[B]` is 1 (padding is 0)."""
    mask = jnp.broadcast_to(
        mask.reshape(mask.shape + (1,) * (values.ndim - mask.ndim)), values.shape
    )
    return jnp.sum(values * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def l2_penalty(params, *, lambda0: float, n_users: int) -> jax.Array:
    """λ0 · ½ · ‖θ‖² / n_users over every array in `params` (the paper's L2, every step)."""
    squares = sum(jnp.sum(jnp.square(leaf)) for leaf in jax.tree.leaves(params))
    return lambda0 * 0.5 * squares / n_users


def tensor_norm_penalty(params, *, lambda0: float) -> jax.Array:
    """λ0 · Σ_t ‖θ_t‖₂ over the arrays of `params` (the authors' CDAE regulariser).

    `optax.safe_norm` gives the zero subgradient at θ_t = 0 (biases start at 0) instead of NaN.
    """
    return lambda0 * sum(optax.safe_norm(leaf, 0.0) for leaf in jax.tree.leaves(params))
