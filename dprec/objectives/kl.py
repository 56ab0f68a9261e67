"""Bernoulli KL divergences between models given as logits, in log space."""

from __future__ import annotations

import jax


def bernoulli_kl(*, p_logits: jax.Array, q_logits: jax.Array) -> jax.Array:
    """KL(Bern(σ(p)) ‖ Bern(σ(q))) = p·(log p − log q) + (1−p)·(log(1−p) − log(1−q)), elementwise.

    Every log comes from `log_sigmoid` (log(1−σ(x)) = log σ(−x)), so the value and its gradient
    stay finite for logits far beyond ±50.
    """
    p = jax.nn.sigmoid(p_logits)
    log_p, log_not_p = jax.nn.log_sigmoid(p_logits), jax.nn.log_sigmoid(-p_logits)
    log_q, log_not_q = jax.nn.log_sigmoid(q_logits), jax.nn.log_sigmoid(-q_logits)
    return p * (log_p - log_q) + (1.0 - p) * (log_not_p - log_not_q)


def mixed_kl(*, f_logits: jax.Array, ref_logits: jax.Array, alpha: float) -> jax.Array:
    """α·KL(ref ‖ f) + (1−α)·KL(f ‖ ref), elementwise.

    `ref` is the auxiliary model g for DPI (eq. 9) and the frozen prior f' for DVAE. For DVAE
    this follows the authors' code, where α weighs KL(f' ‖ f); eq. 14 writes α on KL(f ‖ f'),
    i.e. α there is 1 − α here.
    """
    if alpha == 1.0:
        return bernoulli_kl(p_logits=ref_logits, q_logits=f_logits)
    if alpha == 0.0:
        return bernoulli_kl(p_logits=f_logits, q_logits=ref_logits)
    return alpha * bernoulli_kl(p_logits=ref_logits, q_logits=f_logits) + (
        1.0 - alpha
    ) * bernoulli_kl(p_logits=f_logits, q_logits=ref_logits)
