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


def batch_l2_penalty(
    row_squares: jax.Array,
    neg_row_squares: jax.Array,
    shared_squares: jax.Array,
    mask: jax.Array,
    *,
    lambda0: float,
) -> jax.Array:
    """λ0 · ½ · the squared norm of what each example reads, reduced like the data term.

    A positive example (u, i⁺) reads user row u, item row i⁺ and the shared weights; a negative
    (u, j) reads row u, item row j and the shared weights. With the positive mean plus the
    negative mean of the data term, the penalty is
    λ0 · ½ · [mean_b(‖u_b‖² + ‖i⁺_b‖² + ‖u_b‖² + mean_j ‖j_bj‖²) + 2 · ‖shared‖²].

    row_squares `[B]`: ‖u_b‖² + ‖i⁺_b‖² summed over the row tables; neg_row_squares `[B, n_neg]`:
    ‖u_b‖² + ‖j_bj‖²; shared_squares `[]`: the squared norm of every other parameter; mask
    `[B]`: 1 for real positives (padding is 0).
    """
    per_example = row_squares + jnp.mean(neg_row_squares, axis=-1)
    return lambda0 * 0.5 * (masked_mean(per_example, mask) + 2.0 * shared_squares)
