"""LightGCN (He et al., 2020): embeddings propagated on the normalised interaction graph."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from dprec.graph.propagate import propagate, propagate_users


class LightGCN(nnx.Module):
    """Final embeddings = mean of layers 0..L of the propagation; logit = e_u · e_i.

    Defaults (PROTOCOL.md): dim 64, 3 layers, init N(0, 0.1), no dropout.
    """

    # The "batch" L2 rule charges each example its layer-0 rows (He et al.'s regulariser);
    # propagation reads whole tables, so there are no lazy-mode row tables.
    L2_ROW_TABLES = {"user_embedding": "user", "item_embedding": "item"}

    def __init__(self, n_users: int, n_items: int, spec, *, rngs: nnx.Rngs):
        init = nnx.initializers.normal(spec.init_std)
        self.num_layers = spec.num_layers
        self.propagation_dtype = spec.propagation_dtype
        self.user_embedding = nnx.Embed(n_users, spec.embed_dim, embedding_init=init, rngs=rngs)
        self.item_embedding = nnx.Embed(n_items, spec.embed_dim, embedding_init=init, rngs=rngs)

    def encode(self, graph, rng, users=None) -> tuple[jax.Array, jax.Array]:
        """Propagated (users `[n_users, D]`, items `[n_items, D]`): once per step or evaluation.

        users `[U]` (a training step's distinct users, padding n_users): their final
        embeddings only, `[U, D]` (`propagate_users`: the item side still reads every user,
        so the tables' gradients are the whole propagation's).
        """
        del rng
        tables = (self.user_embedding.embedding[...], self.item_embedding.embedding[...])
        if users is None:
            return propagate(graph, *tables, self.num_layers, dtype=self.propagation_dtype)
        return propagate_users(graph, *tables, self.num_layers, users, dtype=self.propagation_dtype)

    def pair_logits(self, encoded, users: jax.Array, items: jax.Array) -> jax.Array:
        """Logits `[B]` for pairs `users [B]`, `items [B]`."""
        user_final, item_final = encoded
        return jnp.sum(user_final[users] * item_final[items], axis=-1)

    def all_item_logits(self, encoded, users: jax.Array) -> jax.Array:
        """Logits `[U, n_items]` of every item for `users [U]`."""
        user_final, item_final = encoded
        return user_final[users] @ item_final.T
