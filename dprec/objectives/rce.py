"""R-CE (Wang et al., 2021): BCE reweighted by the model's own, detached, confidence."""

from __future__ import annotations

import jax


def reweighting(*, logits: jax.Array, labels: jax.Array, beta: float) -> jax.Array:
    """Weights σ(y)^β on positives and (1 − σ(y))^β on negatives, without gradient."""
    prob_of_label = jax.nn.sigmoid(jax.numpy.where(labels > 0, logits, -logits))
    return jax.lax.stop_gradient(prob_of_label**beta)
