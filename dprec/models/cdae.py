"""CDAE (Wu et al., 2016): a denoising auto-encoder of the user's training row."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from dprec.graph.propagate import adjacency_matmul


class CDAE(nnx.Module):
    """hidden_u = tanh(W·x̃_u + V_u + b) with x̃_u the training row normalised by 1/√(d_u·d_i)
    and, in training only, dropout-corrupted (rate `spec.corruption`, kept entries scaled by
    1/(1−rate)); logit_ui = hidden_u · W'_i + b'_i (sigmoid decoder)."""

    def __init__(self, n_users: int, n_items: int, spec, *, rngs: nnx.Rngs):
        init = nnx.initializers.normal(spec.init_std)
        hidden = spec.embed_dim
        self.corruption = spec.corruption
        self.encoder = nnx.Embed(n_items, hidden, embedding_init=init, rngs=rngs)
        self.user_embedding = nnx.Embed(n_users, hidden, embedding_init=init, rngs=rngs)
        self.hidden_bias = nnx.Param(jnp.zeros((hidden,)))
        self.decoder = nnx.Embed(n_items, hidden, embedding_init=init, rngs=rngs)
        self.item_bias = nnx.Param(jnp.zeros((n_items,)))

    def encode(self, graph, rng) -> jax.Array:
        """Hidden codes `[n_users, H]` of every user from the training rows (`rng`: corrupt)."""
        weights = graph.weights
        if rng is not None and self.corruption > 0:
            keep = jax.random.bernoulli(rng, 1.0 - self.corruption, weights.shape)
            weights = jnp.where(keep, weights / (1.0 - self.corruption), 0.0)
        pre = adjacency_matmul(graph, self.encoder.embedding[...], weights=weights)
        return jnp.tanh(pre + self.user_embedding.embedding[...] + self.hidden_bias[...])

    def pair_logits(self, hidden, users: jax.Array, items: jax.Array) -> jax.Array:
        """Logits `[B]` for pairs `users [B]`, `items [B]`."""
        return jnp.sum(hidden[users] * self.decoder(items), axis=-1) + self.item_bias[...][items]

    def all_item_logits(self, hidden, users: jax.Array) -> jax.Array:
        """Logits `[U, n_items]` of every item for `users [U]`."""
        return hidden[users] @ self.decoder.embedding[...].T + self.item_bias[...]
