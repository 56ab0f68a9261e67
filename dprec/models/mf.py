"""MF: σ(p_u · q_i), no bias (the paper's auxiliary model g and noise models h, h')."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx


class MF(nnx.Module):
    """Matrix factorisation with embeddings initialised N(0, init_std²)."""

    # Tables a pair's score reads one row of (attribute → "user" | "item" rows): the lazy
    # update mode restricts them to a batch's rows (dprec.lazy_rows).
    ROW_TABLES = {"user_embedding": "user", "item_embedding": "item"}

    def __init__(self, n_users: int, n_items: int, spec, *, rngs: nnx.Rngs):
        init = nnx.initializers.normal(spec.init_std)
        self.user_embedding = nnx.Embed(n_users, spec.embed_dim, embedding_init=init, rngs=rngs)
        self.item_embedding = nnx.Embed(n_items, spec.embed_dim, embedding_init=init, rngs=rngs)

    def encode(self, graph, rng, users=None) -> None:
        """MF needs no graph: nothing to precompute."""
        del graph, rng

    def pair_logits(self, encoded, users: jax.Array, items: jax.Array) -> jax.Array:
        """Logits `[B]` for pairs `users [B]`, `items [B]`."""
        del encoded
        return jnp.sum(self.user_embedding(users) * self.item_embedding(items), axis=-1)

    def all_item_logits(self, encoded, users: jax.Array) -> jax.Array:
        """Logits `[U, n_items]` of every item for `users [U]`."""
        del encoded
        return self.user_embedding(users) @ self.item_embedding.embedding[...].T
