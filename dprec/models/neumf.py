"""NeuMF: GMF(32) ⊕ an MLP tower (embeddings 128, layers 256→128→64→32, ReLU) → linear → 1."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx


class NeuMF(nnx.Module):
    """Neural matrix factorisation (He et al., 2017) without pretraining."""

    # Tables a pair's score reads one row of (attribute → "user" | "item" rows): the lazy
    # update mode restricts them to a batch's rows (dprec.lazy_rows).
    ROW_TABLES = {"gmf_user": "user", "gmf_item": "item", "mlp_user": "user", "mlp_item": "item"}

    def __init__(self, n_users: int, n_items: int, spec, *, rngs: nnx.Rngs):
        init = nnx.initializers.normal(spec.init_std)
        dim, mlp_dim = spec.embed_dim, spec.mlp_embed_dim
        self.gmf_user = nnx.Embed(n_users, dim, embedding_init=init, rngs=rngs)
        self.gmf_item = nnx.Embed(n_items, dim, embedding_init=init, rngs=rngs)
        self.mlp_user = nnx.Embed(n_users, mlp_dim, embedding_init=init, rngs=rngs)
        self.mlp_item = nnx.Embed(n_items, mlp_dim, embedding_init=init, rngs=rngs)
        widths = (2 * mlp_dim, *spec.mlp_layers)
        xavier = nnx.initializers.xavier_uniform()
        self.tower = nnx.List(
            [
                nnx.Linear(a, b, kernel_init=xavier, rngs=rngs)
                for a, b in zip(widths[:-1], widths[1:], strict=True)
            ]
        )
        self.predict = nnx.Linear(dim + widths[-1], 1, rngs=rngs)

    def encode(self, graph, rng, users=None) -> None:
        """NeuMF needs no graph: nothing to precompute."""
        del graph, rng

    def _tower_from_first(self, first: jax.Array) -> jax.Array:
        hidden = jax.nn.relu(first)
        for layer in self.tower[1:]:
            hidden = jax.nn.relu(layer(hidden))
        return hidden

    def pair_logits(self, encoded, users: jax.Array, items: jax.Array) -> jax.Array:
        """Logits `[B]` for pairs `users [B]`, `items [B]`."""
        del encoded
        gmf = self.gmf_user(users) * self.gmf_item(items)
        mlp_in = jnp.concatenate([self.mlp_user(users), self.mlp_item(items)], axis=-1)
        mlp = self._tower_from_first(self.tower[0](mlp_in))
        return self.predict(jnp.concatenate([gmf, mlp], axis=-1))[..., 0]

    def all_item_logits(self, encoded, users: jax.Array) -> jax.Array:
        """Logits `[U, n_items]`. The first tower layer is split into its user and item halves
        so it is computed once per user and once per item; the rest runs on `[U, n_items, ·]`
        (evaluate NeuMF with a small `eval.chunk_size`)."""
        del encoded
        first = self.tower[0]
        mlp_dim = self.mlp_user.embedding.shape[1]
        user_part = self.mlp_user(users) @ first.kernel[:mlp_dim]  # [U, h1]
        item_part = self.mlp_item.embedding[...] @ first.kernel[mlp_dim:]  # [I, h1]
        mlp = self._tower_from_first(user_part[:, None, :] + item_part[None] + first.bias[...])
        gmf_dim = self.gmf_user.embedding.shape[1]
        kernel = self.predict.kernel[:, 0]
        gmf = (self.gmf_user(users) * kernel[:gmf_dim]) @ self.gmf_item.embedding[...].T
        return gmf + mlp @ kernel[gmf_dim:] + self.predict.bias[0]
