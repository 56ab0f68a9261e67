"""GMF: σ(w · (p_u ⊙ q_i) + b), factor 32 (He et al., 2017), init N(0, 0.01)."""

from __future__ import annotations

import jax
from flax import nnx


class GMF(nnx.Module):
    """Generalised matrix factorisation: element-wise product, then a dense layer to 1 logit."""

    # Tables a pair's score reads one row of (attribute → "user" | "item" rows): the lazy
    # update mode restricts them to a batch's rows (dprec.lazy_rows).
    ROW_TABLES = {"user_embedding": "user", "item_embedding": "item"}

    def __init__(self, n_users: int, n_items: int, spec, *, rngs: nnx.Rngs):
        init = nnx.initializers.normal(spec.init_std)
        self.user_embedding = nnx.Embed(n_users, spec.embed_dim, embedding_init=init, rngs=rngs)
        self.item_embedding = nnx.Embed(n_items, spec.embed_dim, embedding_init=init, rngs=rngs)
        self.predict = nnx.Linear(spec.embed_dim, 1, rngs=rngs)

    def encode(self, graph, rng, users=None) -> None:
        """GMF needs no graph: nothing to precompute."""
        del graph, rng

    def pair_logits(self, encoded, users: jax.Array, items: jax.Array) -> jax.Array:
        """Logits `[B]` for pairs `users [B]`, `items [B]`."""
        del encoded
        return self.predict(self.user_embedding(users) * self.item_embedding(items))[..., 0]

    def all_item_logits(self, encoded, users: jax.Array) -> jax.Array:
        """Logits `[U, n_items]`: (p_u ⊙ w) · q_i + b, without a `[U, n_items, dim]` tensor."""
        del encoded
        weighted = self.user_embedding(users) * self.predict.kernel[:, 0]
        return weighted @ self.item_embedding.embedding[...].T + self.predict.bias[0]
