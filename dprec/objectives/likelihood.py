"""Log-likelihoods of the corrupted data given the real preference (eqs. 10, 15, 16).

f is the target (P(r=1)), h = P(r̃=1 | r=0) and h' = P(r̃=1 | r=1); all given as logits.
Each function returns the per-example log-likelihood to maximise; logs come from `log_sigmoid`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _prob(logits: jax.Array) -> jax.Array:
    return jax.nn.sigmoid(logits)


def dp_positive(*, f_logits: jax.Array, h_logits: jax.Array) -> jax.Array:
    """DP (eq. 15) on an interacted pair: log h · (1 − f)."""
    return jax.nn.log_sigmoid(h_logits) * _prob(-f_logits)


def dp_negative(*, f_logits: jax.Array, h_logits: jax.Array, c1: float) -> jax.Array:
    """DP (eq. 15) on a sampled negative: log(1 − h) · (1 − f) − C1 · f."""
    return jax.nn.log_sigmoid(-h_logits) * _prob(-f_logits) - c1 * _prob(f_logits)


def dn_positive(*, f_logits: jax.Array, h_prime_logits: jax.Array, c2: float) -> jax.Array:
    """DN (eq. 16) on an interacted pair: log h' · f − C2 · (1 − f)."""
    return jax.nn.log_sigmoid(h_prime_logits) * _prob(f_logits) - c2 * _prob(-f_logits)


def dn_negative(*, f_logits: jax.Array, h_prime_logits: jax.Array) -> jax.Array:
    """DN (eq. 16) on a sampled negative: log(1 − h') · f."""
    return jax.nn.log_sigmoid(-h_prime_logits) * _prob(f_logits)


def full_positive(*, f_logits: jax.Array, h_logits: jax.Array, h_prime_logits: jax.Array):
    """Eq. 10 on an interacted pair: log h' · f + log h · (1 − f)."""
    return jax.nn.log_sigmoid(h_prime_logits) * _prob(f_logits) + jax.nn.log_sigmoid(
        h_logits
    ) * _prob(-f_logits)


def full_negative(*, f_logits: jax.Array, h_logits: jax.Array, h_prime_logits: jax.Array):
    """Eq. 10 on a non-interacted pair: log(1 − h') · f + log(1 − h) · (1 − f)."""
    return jax.nn.log_sigmoid(-h_prime_logits) * _prob(f_logits) + jax.nn.log_sigmoid(
        -h_logits
    ) * _prob(-f_logits)


def posterior_real_positive(
    *, f_logits: jax.Array, h_logits: jax.Array, h_prime_logits: jax.Array
) -> jax.Array:
    """P(r=1 | r̃=1) = h'·f / (h'·f + h·(1−f)) (section 4.4), computed as a sigmoid of log-odds."""
    log_odds = (
        jax.nn.log_sigmoid(h_prime_logits)
        + jax.nn.log_sigmoid(f_logits)
        - jax.nn.log_sigmoid(h_logits)
        - jax.nn.log_sigmoid(-f_logits)
    )
    return jax.nn.sigmoid(log_odds)


def log_popularity(counts: jax.Array) -> jax.Array:
    """log((c + 1) / (max c + 1)) `[n_items]` from training click counts `[n_items]`: 0 for the
    most clicked item, below 0 and finite for every other (the exposure-aware noise model's
    feature: h's logit gets κ times it)."""
    counts = jnp.asarray(counts, jnp.float32)
    return jnp.log1p(counts) - jnp.log1p(jnp.max(counts))
