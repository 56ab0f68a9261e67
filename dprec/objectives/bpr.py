"""BPR (Rendle et al., UAI 2009): pairwise loss of a positive against its sampled negatives."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def bpr_loss(
    *, pos_logits: jax.Array, neg_logits: jax.Array, neg_mask: jax.Array | None = None
) -> jax.Array:
    """Per positive `[B]`: (1/n) Σ_j −log σ(s⁺ − s⁻_j) over its n valid negatives.

    pos_logits `[B]`: s⁺; neg_logits `[B, N]`: s⁻ (one column for the usual one negative);
    neg_mask `[B, N]` (default all 1): 0 marks padded negatives, which count neither in the
    sum nor in n. A row with no valid negative gets 0. −log σ(x) is softplus(−x), finite and
    with a finite gradient for any finite logits. Reduce over positives with `masked_mean`.
    """
    pair_losses = jax.nn.softplus(neg_logits - pos_logits[:, None])
    if neg_mask is None:
        return jnp.mean(pair_losses, axis=-1)
    valid = neg_mask > 0
    total = jnp.sum(jnp.where(valid, pair_losses, 0.0), axis=-1)
    return total / jnp.maximum(jnp.sum(valid, axis=-1), 1)
