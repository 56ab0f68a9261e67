"""Sparse products with the normalised adjacency A `[n_users, n_items]`, split across devices.

Each device builds the BCOO block of its own edges inside `jax.shard_map` (a BCOO object never
crosses the shard_map boundary), multiplies, and a `psum` adds the blocks; one code path for
one or many devices. The product has a custom VJP (the gradient of A·X is Aᵀ·G, the same
sharded product transposed): differentiating BCOO products *inside* shard_map gives wrong
gradients for replicated operands in JAX 0.10 (the sparse transpose rules ignore the
replication bookkeeping), which `tests/test_graph.py` guards against.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.experimental import sparse

from dprec import sharding
from dprec.graph.adjacency import Graph


def _sharded_product(mesh, n_users, n_items, transpose, users, items, weights, values):
    def local(users, items, weights, values):
        block = sparse.BCOO((weights, jnp.stack([users, items], axis=1)), shape=(n_users, n_items))
        return (block.T if transpose else block) @ values

    return sharding.sum_over_edge_shards(local, mesh, (users, items, weights), (values,))


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2, 3))
def _product(mesh, n_users, n_items, transpose, users, items, weights, values):
    return _sharded_product(mesh, n_users, n_items, transpose, users, items, weights, values)


def _product_fwd(mesh, n_users, n_items, transpose, users, items, weights, values):
    out = _sharded_product(mesh, n_users, n_items, transpose, users, items, weights, values)
    return out, (users, items, weights)


def _product_bwd(mesh, n_users, n_items, transpose, residuals, cotangent):
    users, items, weights = residuals
    grad = _sharded_product(mesh, n_users, n_items, not transpose, users, items, weights, cotangent)
    return None, None, None, grad  # edges are data: no gradient


_product.defvjp(_product_fwd, _product_bwd)


def adjacency_matmul(
    graph: Graph, values: jax.Array, *, transpose: bool = False, weights: jax.Array | None = None
) -> jax.Array:
    """A·X `[n_users, D]` for X `[n_items, D]` (or Aᵀ·X `[n_items, D]` for X `[n_users, D]`
    with `transpose`). `weights` `[E]` replaces the edge weights (e.g. with dropout applied);
    no gradient flows to the weights."""
    edge_weights = graph.weights if weights is None else weights
    return _product(
        graph.mesh,
        graph.n_users,
        graph.n_items,
        transpose,
        graph.users,
        graph.items,
        edge_weights,
        values,
    )


def propagate(
    graph: Graph, user_embedding: jax.Array, item_embedding: jax.Array, num_layers: int
) -> tuple[jax.Array, jax.Array]:
    """LightGCN: the mean of layers 0..L of e_u ← Σ_i A_ui e_i, e_i ← Σ_u A_ui e_u.

    Returns the final user `[n_users, D]` and item `[n_items, D]` embeddings.
    """
    user_sum, item_sum = user_embedding, item_embedding
    user_layer, item_layer = user_embedding, item_embedding
    for _ in range(num_layers):
        user_layer, item_layer = (
            adjacency_matmul(graph, item_layer),
            adjacency_matmul(graph, user_layer, transpose=True),
        )
        user_sum, item_sum = user_sum + user_layer, item_sum + item_layer
    scale = 1.0 / (num_layers + 1)
    return user_sum * scale, item_sum * scale
