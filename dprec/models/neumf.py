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

    def encode(self, graph, rng, users=None) -> jax.Array | None:
        """Evaluation (`rng` None): the item half of the first tower layer, `W_i·e_i + b`
        `[n_items, h1]`, computed once for all users of all chunks (`all_item_logits`).
        Training (`rng` given): None; `pair_logits` reads rows only, so that a step never
        touches the whole item table (and XLA drops an unused encoding)."""
        del graph, users
        return self._item_first() if rng is None else None

    def _first_kernels(self) -> tuple[jax.Array, jax.Array]:
        """The first tower layer's kernel `[2·D, h1]` split into its user and item halves
        `[D, h1]`: `[u, i] @ W == u @ W_u + i @ W_i`, without building the concatenation."""
        kernel = self.tower[0].kernel[...]
        mlp_dim = self.mlp_user.embedding.shape[1]
        return kernel[:mlp_dim], kernel[mlp_dim:]

    def _item_first(self, items: jax.Array | None = None) -> jax.Array:
        """`W_i·e_i + b`: `[n_items, h1]`, or `[B, h1]` for `items [B]`."""
        _, item_kernel = self._first_kernels()
        table = self.mlp_item.embedding[...] if items is None else self.mlp_item(items)
        return table @ item_kernel + self.tower[0].bias[...]

    def _item_first_of(self, items: jax.Array) -> jax.Array:
        """`W_i·e_i + b` `[B, h1]` for `items [B]`, the fewer-FLOPs way (the same values).

        A table with no more rows than the batch has pairs (Modcloth's 1020 items, a lazy
        step's touched items) goes through the layer whole, then rows are gathered: forward
        and backward cost `n_rows` rows instead of `B` (a training step scores every pair's
        item, with repeats). A larger table goes per pair. Shapes are static: decided when
        tracing.
        """
        if self.mlp_item.embedding.shape[0] <= items.size:
            return self._item_first()[items]
        return self._item_first(items)

    def _user_first(self, users: jax.Array) -> jax.Array:
        """`W_u·e_u` `[B, h1]` for `users [B]`."""
        user_kernel, _ = self._first_kernels()
        return self.mlp_user(users) @ user_kernel

    def _tower_from_first(self, first: jax.Array) -> jax.Array:
        """The tower after its first layer's pre-activation `[..., h1]` → `[..., h_last]`."""
        hidden = jax.nn.relu(first)
        for layer in self.tower[1:]:
            hidden = jax.nn.relu(layer(hidden))
        return hidden

    def pair_logits(self, encoded, users: jax.Array, items: jax.Array) -> jax.Array:
        """Logits `[B]` for pairs `users [B]`, `items [B]`.

        The first tower layer is `W_u·e_u + (W_i·e_i + b)` (the same sums as
        `all_item_logits`), which equals `W·[e_u, e_i] + b` without the `[B, 2·D]` concat.
        `encoded` is not read: a row gather needs no whole-table work.
        """
        del encoded
        gmf = self.gmf_user(users) * self.gmf_item(items)
        mlp = self._tower_from_first(self._user_first(users) + self._item_first_of(items))
        return self.predict(jnp.concatenate([gmf, mlp], axis=-1))[..., 0]

    def all_item_logits(self, encoded, users: jax.Array) -> jax.Array:
        """Logits `[U, n_items]`; `encoded` is `encode(graph, None)` (None: computed here).

        Only the user half of the first layer is computed per chunk; the rest of the tower
        runs on `[U, n_items, ·]` (evaluate NeuMF with a small `eval.chunk_size`).
        """
        item_first = self._item_first() if encoded is None else encoded  # [I, h1]
        mlp = self._tower_from_first(self._user_first(users)[:, None, :] + item_first[None])
        gmf_dim = self.gmf_user.embedding.shape[1]
        kernel = self.predict.kernel[:, 0]
        gmf = (self.gmf_user(users) * kernel[:gmf_dim]) @ self.gmf_item.embedding[...].T
        return gmf + mlp @ kernel[gmf_dim:] + self.predict.bias[0]
