"""BSL, the Bilateral Softmax Loss (Wu et al., "BSL: Understanding and Improving Softmax Loss
for Recommendation", ICDE 2024, arXiv 2312.12882).

The paper writes SL per user u as −E_{i∼P⁺_u}[f(u,i)] + τ log E_{j∼P⁻}[exp(f(u,j)/τ)]: the
negative part is a Log-Expectation-Exp (LEE), a DRO over the negative distribution that
resists noisy negatives. BSL gives the positive part the same LEE structure with its own
temperature, so a user's low-scored (likely noisy) positives get exponentially less weight:

    L_BSL(u) = −τ1 · log E_{i∼P⁺_u}[exp(f(u,i)/τ1)] + τ2 · log E_{j∼P⁻}[exp(f(u,j)/τ2)].

In a batch dprec takes P⁺_u as the valid rows of the batch with user u (the authors' "multi"
mode, which pools same-user rows with a [B, B] equality mask) and P⁻ as each row's own
sampled negatives, and gives one loss per row (see `bsl_loss`).

Differences from the authors' code (`junkangwu/BSL`, `utils/losses.py`): dprec implements
the equation above. The code's "multi" mode divides both sides by one temperature t1 and
puts an exponent t2 on the negative part: −log E⁺[exp(f/t1)] + t2·log E⁻[exp(f/t1)], which
is the equation only when t2 = 1 (τ1 = τ2 = t1, loss scaled by 1/t1). The paper's
pseudo-code, as the ItemRec benchmark quotes it (with its correction of the listing), is
−f⁺/τ1 + (τ2/τ1)·log Σ_j exp(f⁻_j/τ2): the equation with one positive per row, divided by
τ1 and shifted by the constant (τ2/τ1)·log N. A constant factor and offset change neither
the minimiser nor, with Adam, the updates much.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from dprec.objectives.settings import check_positive


def _log_mean_exp(values: jax.Array, valid: jax.Array) -> jax.Array:
    """log((1/n) Σ exp(values)) over the last axis's `valid` entries (n of them), in log space."""
    count = jnp.sum(valid, axis=-1)
    return jax.nn.logsumexp(values, axis=-1, where=valid) - jnp.log(jnp.maximum(count, 1))


def bsl_loss(
    *,
    pos_logits: jax.Array,
    neg_logits: jax.Array,
    users: jax.Array,
    mask: jax.Array,
    pos_temperature: float,  # τ1, LEE temperature over a user's positives
    neg_temperature: float,  # τ2, LEE temperature over the negatives (SL's τ)
    neg_mask: jax.Array | None = None,
) -> jax.Array:
    """Per row `[B]`: −τ1·log mean_{k∈G_b} exp(s⁺_k/τ1) + τ2·log mean_j exp(s⁻_bj/τ2).

    pos_logits `[B]`: s⁺ of each row's positive; neg_logits `[B, N]`: its sampled negatives;
    users `[B]`: the user of each row (any integer ids); mask `[B]`: 1 for real rows, 0 for
    padding; neg_mask `[B, N]` (default all 1): 0 marks padded negatives. G_b is the set of
    real rows with row b's user. Padded rows get 0 and enter no other row's G. Reduce with
    `masked_mean(loss, mask)` (the authors' mean over rows: a user with n rows counts n
    times).

    Reductions to SL (`softmax_loss(..., include_positive=False)` with τ = τ2, the paper's
    negatives-only denominator): with one row per user, G_b = {b} and the positive part is
    −s⁺_b, so loss = τ2·(SL − log N). As τ1 → ∞, −τ1·log mean exp(s⁺/τ1) → −mean_{G_b} s⁺:
    summed over a user's rows, BSL → Σ_b τ2·(SL_b − log N). For finite τ1 the gradient of
    the row sum on s⁺_k is −|G|·softmax_G(s⁺/τ1)_k: a user's low-scored positives get less.

    Uses a `[B, B]` same-user mask (memory B², like the authors'), all in log space, so the
    value and gradient stay finite for any finite logits and temperatures.
    """
    check_positive("pos_temperature (τ1)", pos_temperature)
    check_positive("neg_temperature (τ2)", neg_temperature)
    real = mask > 0
    same_user = (users[:, None] == users[None, :]) & real[None, :]
    # A padded row's own G would be empty (log of 0); it pools over itself and is zeroed.
    same_user = same_user | jnp.eye(users.shape[0], dtype=bool)
    pos_scaled = jnp.broadcast_to(pos_logits / pos_temperature, same_user.shape)
    positive_part = -pos_temperature * _log_mean_exp(pos_scaled, same_user)
    neg_valid = jnp.ones(neg_logits.shape, bool) if neg_mask is None else neg_mask > 0
    negative_part = neg_temperature * _log_mean_exp(neg_logits / neg_temperature, neg_valid)
    return jnp.where(real, positive_part + negative_part, 0.0)
