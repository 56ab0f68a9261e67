"""Sampled softmax loss (SL) of a positive against N uniformly sampled negatives."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from dprec.objectives.settings import check_positive


def softmax_loss(
    *,
    pos_logits: jax.Array,
    neg_logits: jax.Array,
    temperature: float,  # τ
    neg_mask: jax.Array | None = None,
    include_positive: bool = True,
) -> jax.Array:
    """Per positive `[B]`: −log( exp(s⁺/τ) / (exp(s⁺/τ) + Σ_j exp(s⁻_j/τ)) ).

    pos_logits `[B]`: s⁺; neg_logits `[B, N]`: s⁻; neg_mask `[B, N]` (default all 1): 0 marks
    padded negatives, left out of the sum. Computed as logsumexp − s⁺/τ, so it stays finite
    for any finite logits and temperature (no exp is ever formed).

    `include_positive=False` drops exp(s⁺/τ) from the denominator: the form the BSL paper
    writes SL in (Wu et al., ICDE 2024), −s⁺/τ + log Σ_j exp(s⁻_j/τ); a row then needs at
    least one valid negative. The gradient with the positive included is
    ∂/∂s⁺ = (p⁺ − 1)/τ, ∂/∂s⁻_j = p_j/τ, p the softmax over [s⁺, s⁻]/τ.
    """
    check_positive("temperature (τ)", temperature)
    pos_scaled = pos_logits / temperature
    candidates = neg_logits / temperature  # the denominator's terms `[B, N]` or `[B, 1 + N]`
    valid = jnp.ones(candidates.shape, bool) if neg_mask is None else neg_mask > 0
    if include_positive:
        candidates = jnp.concatenate([pos_scaled[:, None], candidates], axis=-1)
        valid = jnp.concatenate([jnp.ones_like(valid[:, :1]), valid], axis=-1)
    return jax.nn.logsumexp(candidates, axis=-1, where=valid) - pos_scaled
