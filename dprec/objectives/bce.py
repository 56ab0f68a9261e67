"""Binary cross-entropy on logits, per example: the loss of normal training."""

from __future__ import annotations

import jax
import optax


def bce(*, logits: jax.Array, labels: jax.Array) -> jax.Array:
    """−[y·log σ(x) + (1−y)·log σ(−x)], elementwise, same shape as `logits`."""
    return optax.sigmoid_binary_cross_entropy(logits, labels)
