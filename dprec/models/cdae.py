"""CDAE (Wu et al., 2016): a denoising auto-encoder of the user's training row."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from dprec.graph.propagate import adjacency_matmul
from dprec.graph.rows import user_rows_matmul


def keep_edges(rng: jax.Array, edge_ids: jax.Array, rate: float) -> jax.Array:
    """The dropout draw `[S]` of edges `edge_ids` `[S]`: True = kept (probability 1 − rate).

    Keyed by edge id (`fold_in(rng, edge)`), not by position: a batch's rows draw exactly what
    the whole graph draws for the same edges.
    """
    uniform = jax.vmap(lambda edge: jax.random.uniform(jax.random.fold_in(rng, edge)))(edge_ids)
    return uniform < 1.0 - rate


class CDAE(nnx.Module):
    """hidden_u = tanh(W·x̃_u + V_u + b) with x̃_u the training row normalised by 1/√(d_u·d_i)
    and, in training only, dropout-corrupted (rate `spec.corruption`, kept entries scaled by
    1/(1−rate)); logit_ui = hidden_u · W'_i + b'_i (sigmoid decoder).

    A step's loss reads the hidden codes of its batch's users only: `encode(graph, rng, users)`
    computes just those (their training rows, `graph.rows`), with the same corruption draw as
    the whole graph's. V is its per-user table (`ROW_TABLES`: the lazy mode restricts it).
    """

    ROW_TABLES = {"user_embedding": "user"}

    def __init__(self, n_users: int, n_items: int, spec, *, rngs: nnx.Rngs):
        init = nnx.initializers.normal(spec.init_std)
        hidden = spec.embed_dim
        self.corruption = spec.corruption
        self.encoder = nnx.Embed(n_items, hidden, embedding_init=init, rngs=rngs)
        self.user_embedding = nnx.Embed(n_users, hidden, embedding_init=init, rngs=rngs)
        self.hidden_bias = nnx.Param(jnp.zeros((hidden,)))
        self.decoder = nnx.Embed(n_items, hidden, embedding_init=init, rngs=rngs)
        self.item_bias = nnx.Param(jnp.zeros((n_items,)))

    def _corrupt(self, rng, edge_ids: jax.Array, weights: jax.Array) -> jax.Array:
        if rng is None or self.corruption <= 0:
            return weights
        keep = keep_edges(rng, edge_ids, self.corruption)
        return jnp.where(keep, weights / (1.0 - self.corruption), 0.0)

    def encode(self, graph, rng, users: jax.Array | None = None) -> jax.Array:
        """Hidden codes from the training rows (`rng`: corrupt; None: evaluation).

        users None: every user's `[n_users, H]`. users `[U]` (distinct ids, padding n_users):
        those users' `[U, H]`, with `user_embedding` holding exactly their rows `[U, H]` (as
        `lazy_rows.loss_view` restricts it); only their edges are read.
        """
        codes = self.encoder.embedding[...]
        if users is None:
            edge_ids = jnp.arange(graph.weights.shape[0])
            weights = self._corrupt(rng, edge_ids, graph.weights)
            pre = adjacency_matmul(graph, codes, weights=weights)
        else:
            pre = user_rows_matmul(
                graph.rows, codes, users, lambda edges, w: self._corrupt(rng, edges, w)
            )
        return jnp.tanh(pre + self.user_embedding.embedding[...] + self.hidden_bias[...])

    def pair_logits(self, hidden, users: jax.Array, items: jax.Array) -> jax.Array:
        """Logits `[B]` for pairs `users [B]`, `items [B]`."""
        return jnp.sum(hidden[users] * self.decoder(items), axis=-1) + self.item_bias[...][items]

    def all_item_logits(self, hidden, users: jax.Array) -> jax.Array:
        """Logits `[U, n_items]` of every item for `users [U]`."""
        return hidden[users] @ self.decoder.embedding[...].T + self.item_bias[...]
