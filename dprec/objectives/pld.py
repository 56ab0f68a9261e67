"""PLD (Zhang et al., "Personalized Denoising Implicit Feedback for Robust Recommender
System", WWW 2025, arXiv 2502.00348): resample each user's positive by their personal loss.

For each training row the authors draw a pool of k of the user's training positives (k = 5)
and one negative, score the pool without gradient, and keep one positive drawn with
probability softmax(−ℓ/τ) over the pool (τ = 0.1), ℓ the BPR loss softplus(s⁻ − s⁺) of
each candidate against the row's negative. A noisy positive has a high loss within its own
user's distribution, so it is rarely drawn. The drawn positive then trains BPR as usual.
Resampling starts at epoch index 5 (`begin_adv`); before, one positive is drawn uniformly.
Source read: `Kaike-Zhang/PLD`, `utls/trainer.py` (`PLDCFTrainer`), `meta_config.py`,
`utls/model_config.py`, `utls/mydataset.py`.

Difference from the authors' code: a user with fewer than k positives fills the pool by
drawing with replacement there, so a duplicated item counts twice in the softmax. dprec
takes a pool mask instead (each distinct candidate once, padding slots masked out), so the
probabilities are the softmax over the distinct candidates; with ≥ k positives (drawn
without replacement, as the authors do) the two agree.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from dprec.objectives.settings import check_positive

FIRST_RESAMPLED_EPOCH = 5  # the authors' `begin_adv`


def resampling_active(epoch: jax.Array) -> jax.Array:
    """Whether epoch `epoch` (0-based) resamples from the pool (else a uniform positive)."""
    return jnp.asarray(epoch) >= FIRST_RESAMPLED_EPOCH


def candidate_losses(*, pool_logits: jax.Array, neg_logits: jax.Array) -> jax.Array:
    """BPR loss softplus(s⁻ − s⁺) `[B, k]` of each pool candidate (logits `[B, k]`) against
    the row's negative (logits `[B]`), without gradient: the losses PLD resamples by."""
    return jax.lax.stop_gradient(jax.nn.softplus(neg_logits[:, None] - pool_logits))


def _resampling_logits(losses: jax.Array, pool_mask: jax.Array, temperature: float):
    """−ℓ/τ `[B, k]` on valid slots, −inf on masked ones; a row with no valid slot gets
    [0, −inf, …] (slot 0, probability 1) so that nothing downstream sees an all −inf row."""
    check_positive("temperature (τ)", temperature)
    valid = pool_mask > 0
    logits = jnp.where(valid, -jax.lax.stop_gradient(losses) / temperature, -jnp.inf)
    first_slot = jnp.where(jnp.arange(logits.shape[-1]) == 0, 0.0, -jnp.inf)
    return jnp.where(jnp.any(valid, axis=-1, keepdims=True), logits, first_slot)


def resampling_probabilities(
    *, pool_losses: jax.Array, pool_mask: jax.Array, temperature: float = 0.1
) -> jax.Array:
    """softmax(−ℓ/τ) `[B, k]` over each row's valid candidates (`pool_mask` `[B, k]` 1);
    0 on masked slots. Sums to 1 on every row with a valid slot; a row with none is all 0."""
    has_pool = jnp.any(pool_mask > 0, axis=-1, keepdims=True)
    logits = _resampling_logits(pool_losses, pool_mask, temperature)
    return jnp.where(has_pool, jax.nn.softmax(logits, axis=-1), 0.0)


def resample(
    key: jax.Array,
    *,
    pool_losses: jax.Array,
    pool_mask: jax.Array,
    temperature: float = 0.1,
) -> jax.Array:
    """Slot `[B]` (int32) of each row's drawn positive, from softmax(−ℓ/τ) over its valid
    candidates (`jax.random.categorical`, one draw per row). A row with no valid slot gets
    slot 0; mask such rows out of the loss."""
    logits = _resampling_logits(pool_losses, pool_mask, temperature)
    return jax.random.categorical(key, logits, axis=-1).astype(jnp.int32)
