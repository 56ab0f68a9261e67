"""Rel-MF (Saito et al., "Unbiased Recommender Learning from Missing-Not-At-Random Implicit
Feedback", WSDM 2020): a pointwise loss made unbiased for relevance by inverse propensity.

A click needs exposure (probability θ_{u,i}) and relevance. Weighting a clicked pair's loss
of label 1 by 1/θ and its loss of label 0 by 1 − 1/θ, and an unclicked pair's by the loss of
label 0 alone, gives in expectation over clicks the loss of the true relevance labels:
with Y ∼ Bernoulli(θ·R), E[(Y/θ)·δ¹ + (1 − Y/θ)·δ⁰] = R·δ¹ + (1 − R)·δ⁰.

The propensity is item-level, θ_i = (n_i / max_j n_j)^η with n_i the item's click count
(η = 0.5 in the authors' code, `usaito/unbiased-implicit-rec-real`, `preprocessor.py`),
clipped below at a constant to bound the variance (their `clip`, tuned there to ≈ 0.009).

Boundedness: 1 − 1/θ < 0 whenever θ < 1, so a clicked pair's δ⁰ term is subtracted. The
clip θ ≥ c bounds the weight at 1 − 1/c. With the squared loss of the authors' code
(δ¹ = (1 − σ(f))², δ⁰ = σ(f)²) this already bounds the loss below by 1 − 1/c. With the log
loss (δ¹ = −log σ(f), δ⁰ = −log σ(−f)) the clicked pair's loss is
−log σ(−f)·(1 − 1/θ) − log σ(f)/θ = softplus(−f) + (1 − 1/θ)·f, which → −∞ as f → ∞: the
clip alone does not bound it, so dprec clips each example's loss at 0 by default
(`nonnegative=True`, the non-negative-estimator fix: an example whose estimate went
negative stops pushing). `local_loss="squared", nonnegative=False` is the authors' code.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from dprec.objectives.settings import check_nonnegative, check_positive

LOCAL_LOSSES = ("log", "squared")


def propensity(
    item_counts: jax.Array,
    *,
    eta: float = 0.5,  # η, exponent of the relative popularity
    min_propensity: float = 0.1,  # c, lower clip of θ
) -> jax.Array:
    """θ_i = clip((n_i / max_j n_j)^η, c, 1) `[I]` from item click counts `[I]`.

    An item with no click gets c; all-zero counts give c everywhere.
    """
    check_nonnegative("eta (η)", eta)
    check_positive("min_propensity", min_propensity)
    if min_propensity > 1.0:
        raise ValueError(f"min_propensity must be <= 1, got {min_propensity!r}")
    counts = jnp.asarray(item_counts, jnp.float32)
    relative = counts / jnp.maximum(jnp.max(counts), 1.0)
    return jnp.clip(relative**eta, min_propensity, 1.0)


def _local_losses(logits: jax.Array, local_loss: str) -> tuple[jax.Array, jax.Array]:
    """(δ¹, δ⁰): the loss of label 1 and of label 0, elementwise."""
    if local_loss == "log":
        return jax.nn.softplus(-logits), jax.nn.softplus(logits)
    if local_loss == "squared":
        prob = jax.nn.sigmoid(logits)
        return jnp.square(1.0 - prob), jnp.square(prob)
    raise ValueError(f"local_loss must be one of {LOCAL_LOSSES}, got {local_loss!r}")


def relmf_loss(
    *,
    logits: jax.Array,
    labels: jax.Array,
    propensity: jax.Array,
    local_loss: str = "log",
    nonnegative: bool = True,
) -> jax.Array:
    """Per example `[B]`: (y/θ)·δ¹(f) + (1 − y/θ)·δ⁰(f).

    logits `[B]`: f; labels `[B]`: y, 1 for a click, 0 for an unclicked (sampled) pair;
    propensity `[B]`: θ of each row's item (from `propensity`, already clipped; taken without
    gradient). A label-0 row's loss is δ⁰(f) whatever θ. `nonnegative` clips each loss at 0
    (see the module docstring). Reduce with `masked_mean` (the authors divide the sum by the
    number of rows).
    """
    loss_one, loss_zero = _local_losses(logits, local_loss)
    inverse = labels / jax.lax.stop_gradient(propensity)
    loss = inverse * loss_one + (1.0 - inverse) * loss_zero
    return jnp.maximum(loss, 0.0) if nonnegative else loss
