"""PD / PDA (Zhang et al., "Causal Intervention for Leveraging Popularity Bias in
Recommendation", SIGIR 2021): train with item popularity as a confounder, rank without it.

Training models a click as ELU'(f(u,i)) · m_i^γ, where f is the model's logit, m_i ∈ [0, 1]
item i's normalised popularity (in the paper, of the current time stage), γ ≥ 0 the
popularity exponent, and ELU'(x) = elu(x) + 1 > 0 keeps the product a positive score. The
loss is BPR on these scores:  −log σ(ELU'(f⁺)·m⁺^γ − ELU'(f⁻)·m⁻^γ).

Ranking (the deconfounded score, the backdoor adjustment of the paper): PD drops the
popularity term and ranks by ELU'(f(u,i)), i.e. by f alone (ELU' is increasing). PDA
multiplies in a target popularity m̃_i^γ̃ for the period being recommended (the authors
predict it from recent stages), ranking by ELU'(f)·m̃^γ̃. `ranking_score` gives both.

dprec builds every score from its log, log ELU'(f) + γ·log m (`log_score`): no log(0) when
f ≪ 0 (ELU'(f) = e^f underflows, its log is just f) and no 0·log 0 when γ = 0. The authors'
code (`zyang1580/PDA`, `MF/model_api.py`) forms the product directly and takes
log(σ(·) + 1e-10); dprec's log_sigmoid needs no epsilon. Their popularity is
(count + 1) / (total + n_items), min-max scaled per stage (`pop_pre.py`): the least popular
item gets m = 0, score 0; `popularity_from_counts` reproduces it for one stage.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from dprec.objectives.bpr import bpr_loss
from dprec.objectives.settings import check_nonnegative


def log_elu_plus_one(logits: jax.Array) -> jax.Array:
    """log(elu(x) + 1) elementwise: log1p(x) for x > 0, x for x ≤ 0 (both pieces exact).

    The derivative is 1 at 0 from both sides; the log1p branch only sees x > 0 (no NaN
    from log1p(x ≤ −1) leaking into the gradient of the unused branch).
    """
    positive = logits > 0
    return jnp.where(positive, jnp.log1p(jnp.where(positive, logits, 0.0)), logits)


def log_score(*, logits: jax.Array, popularity: jax.Array, gamma: float) -> jax.Array:
    """log(ELU'(f) · m^γ) = log(elu(f) + 1) + γ·log m, elementwise (same shape as `logits`).

    m = 0 with γ > 0 gives −inf (score 0, as the authors' product); γ = 0 ignores m.
    """
    check_nonnegative("gamma (γ)", gamma)
    base = log_elu_plus_one(logits)
    if gamma == 0.0:
        return base
    return base + gamma * jnp.log(popularity)


def pda_loss(
    *,
    pos_logits: jax.Array,
    neg_logits: jax.Array,
    pos_popularity: jax.Array,
    neg_popularity: jax.Array,
    gamma: float,  # γ, popularity exponent of training
    neg_mask: jax.Array | None = None,
) -> jax.Array:
    """Per positive `[B]`: mean_j −log σ(ELU'(f⁺)·m⁺^γ − ELU'(f⁻_j)·m⁻_j^γ) (BPR on the scores).

    pos_logits, pos_popularity `[B]`; neg_logits, neg_popularity `[B, N]` (N = 1 in the
    paper); neg_mask `[B, N]` as in `bpr_loss`. Popularity is data: it takes no gradient.
    """
    pos_score = jnp.exp(
        log_score(logits=pos_logits, popularity=jax.lax.stop_gradient(pos_popularity), gamma=gamma)
    )
    neg_score = jnp.exp(
        log_score(logits=neg_logits, popularity=jax.lax.stop_gradient(neg_popularity), gamma=gamma)
    )
    return bpr_loss(pos_logits=pos_score, neg_logits=neg_score, neg_mask=neg_mask)


def ranking_score(
    *,
    logits: jax.Array,
    target_popularity: jax.Array | None = None,
    target_gamma: float = 0.0,  # γ̃, exponent of the target popularity (PDA)
) -> jax.Array:
    """Log ranking score, same shape as `logits` (ranking by it = ranking by the score).

    PD (`target_popularity=None`): log ELU'(f), the order of f itself. PDA: log ELU'(f) +
    γ̃·log m̃ with the target popularity m̃ broadcast against `logits` (e.g. `[I]` against
    `[U, I]`).
    """
    if target_popularity is None:
        return log_elu_plus_one(logits)
    return log_score(logits=logits, popularity=target_popularity, gamma=target_gamma)


def popularity_from_counts(counts: jax.Array) -> jax.Array:
    """The authors' normalised popularity `[I]` from one stage's click counts `[I]`:
    (c + 1) / (Σc + I), then min-max scaled to [0, 1] (all-equal counts give 1)."""
    counts = jnp.asarray(counts, jnp.float32)
    smoothed = (counts + 1.0) / (jnp.sum(counts) + counts.shape[0])
    low, high = jnp.min(smoothed), jnp.max(smoothed)
    return jnp.where(high > low, (smoothed - low) / jnp.where(high > low, high - low, 1.0), 1.0)
