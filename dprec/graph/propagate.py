"""Sparse products with the normalised adjacency A `[n_users, n_items]`, split across devices.

Each device multiplies the block of its own edges inside `jax.shard_map` — a BCOO block built
there (a BCOO object never crosses the shard_map boundary) — and a `psum` adds the blocks; one
code path for one or many devices. Every product has its transpose as a custom VJP (the
gradient of A·X is Aᵀ·G, the same sharded product transposed): differentiating BCOO products
*inside* shard_map gives wrong gradients for replicated operands in JAX 0.10 (the sparse
transpose rules ignore the replication bookkeeping), which `tests/test_graph.py` guards against.

LightGCN's `propagate` works on the item side (see the comment above `_edge_sum`): two products
with A and L−1 with T = AᵀA per direction instead of 2·L with A. A training step's
`propagate_users` gives the final embeddings of its batch's users only (one product with A
each way; the comment above `_propagate_users`). `propagate_layerwise` is the former layer-by-layer
formula, kept as the reference the tests compare against; CDAE's row product is
`adjacency_matmul`.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.experimental import sparse

from dprec import sharding
from dprec.graph.adjacency import Graph
from dprec.graph.rows import user_rows_matmul


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


def propagate_layerwise(
    graph: Graph, user_embedding: jax.Array, item_embedding: jax.Array, num_layers: int
) -> tuple[jax.Array, jax.Array]:
    """LightGCN layer by layer, both sides per layer (2·L products with A forward, as many
    backward): the reference `propagate` is tested against, and the former implementation."""
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


# --- item-side propagation -------------------------------------------------------------------
#
# Layers alternate sides: U_{k+1} = A·I_k, I_{k+1} = Aᵀ·U_k. Hence I_1 = Aᵀ·U_0 and
# I_{k+1} = T·I_{k-1} with T = AᵀA (items × items), and Σ_{k=1..L} U_k = A·Σ_{k<L} I_k. So
#   items_final = (1/(L+1))·Σ_{k<=L} I_k
#   users_final = (1/(L+1))·(U_0 + A·Y),  Y = Σ_{k<L} I_k
# costs two products over the edges of A (Aᵀ·U_0 and A·Y) and L-1 products with T, whose
# nonzeros are few when users ≫ items (Electronics: 0.17 M against 1.03 M edges). The map is
# linear, so the backward is its transpose: Aᵀ·G_users, the transposed item side, A·G_X —
# again two products with A. Each product is a gather of rows, a multiply by the edge weight and
# a sum over the edges of each device (`EdgeLayouts`: few scatter-adds), then a psum.


def _rounded(values, dtype):
    """`values` rounded to `dtype` and back to float32 (the precision rows are read in)."""
    return values if dtype == jnp.float32 else values.astype(dtype).astype(jnp.float32)


def _rows(values, index, dtype):
    """Rows `values[index]` `[len(index), D]` read in `dtype`, returned as float32."""
    return _rounded(values, dtype)[index]


def _edge_sum(mesh, n_out, out_idx, in_idx, weights, values, dtype, base=None):
    """base + Σ_e weights[e]·values[in_idx[e]] into row out_idx[e] `[n_out, D]` (float32), the
    edges split over `mesh`; rows are gathered in `dtype`, products and sums are float32."""

    def local(out_idx, in_idx, weights, values):
        if dtype == jnp.float32:  # the device's BCOO block of the sparse matrix, times X
            indices = jnp.stack([out_idx, in_idx], axis=1)
            return sparse.BCOO((weights, indices), shape=(n_out, values.shape[0])) @ values
        # BCOO has no mixed-precision product: gather rows in `dtype`, sum in float32.
        rows = _rows(values, in_idx, dtype)
        return jax.ops.segment_sum(weights[:, None] * rows, out_idx, n_out)

    if mesh is None and base is not None:  # one device: add into base, no zero table
        rows = _rows(values, in_idx, dtype)
        return base.at[out_idx].add(weights[:, None] * rows)
    out = sharding.sum_over_edge_shards(local, mesh, (out_idx, in_idx, weights), (values,))
    return out if base is None else base + out


def _users_out(graph, values, dtype, base):
    """base + A·X `[n_users, D]` for X `[n_items, D]` from `graph.layouts`: a gather of every
    user's first edge (in user order, no scatter) and a scatter-add of the other edges."""
    layouts, n_users = graph.layouts, graph.n_users
    if graph.mesh is None:
        first_items, first_weights = layouts.first_items[:n_users], layouts.first_weights[:n_users]
        out = base + first_weights[:, None] * _rows(values, first_items, dtype)
        rest = layouts.rest_weights[:, None] * _rows(values, layouts.rest_items, dtype)
        return out.at[layouts.rest_users].add(rest)
    n_first = layouts.first_items.shape[0]

    def local(first_items, first_weights, rest_users, rest_items, rest_weights, values):
        part = first_weights[:, None] * _rows(values, first_items, dtype)
        offset = jax.lax.axis_index(sharding.DATA_AXIS) * part.shape[0]
        out = jnp.zeros((n_first, values.shape[1]), jnp.float32)
        out = jax.lax.dynamic_update_slice(out, part, (offset, 0))
        return out.at[rest_users].add(rest_weights[:, None] * _rows(values, rest_items, dtype))

    edges = (
        layouts.first_items,
        layouts.first_weights,
        layouts.rest_users,
        layouts.rest_items,
        layouts.rest_weights,
    )
    return base + sharding.sum_over_edge_shards(local, graph.mesh, edges, (values,))[:n_users]


def _a_product(graph, values, dtype, base):
    """base + A·X `[n_users, D]`: the layouts when built, else the edge list."""
    if graph.layouts is not None:
        return _users_out(graph, values, dtype, base)
    return _edge_sum(
        graph.mesh,
        graph.n_users,
        graph.users,
        graph.items,
        graph.weights,
        values,
        dtype,
        base=base,
    )


def _at_product(graph, values, dtype):
    """Aᵀ·X `[n_items, D]` (edges sorted by user for LightGCN: user rows read in order)."""
    return _edge_sum(
        graph.mesh, graph.n_items, graph.items, graph.users, graph.weights, values, dtype
    )


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2, 3))
def _linear_edge_sum(mesh, n_out, n_in, dtype, out_idx, in_idx, weights, values):
    """`_edge_sum` with its transpose as VJP (never differentiated inside shard_map)."""
    return _edge_sum(mesh, n_out, out_idx, in_idx, weights, values, dtype)


def _linear_edge_sum_fwd(mesh, n_out, n_in, dtype, out_idx, in_idx, weights, values):
    out = _edge_sum(mesh, n_out, out_idx, in_idx, weights, values, dtype)
    return out, (out_idx, in_idx, weights)


def _linear_edge_sum_bwd(mesh, n_out, n_in, dtype, residuals, cotangent):
    out_idx, in_idx, weights = residuals
    return None, None, None, _edge_sum(mesh, n_in, in_idx, out_idx, weights, cotangent, dtype)


_linear_edge_sum.defvjp(_linear_edge_sum_fwd, _linear_edge_sum_bwd)


def _item_product(graph, values, dtype):
    """T·X `[n_items, D]` for X `[n_items, D]`, T = AᵀA (two products with A when T's
    nonzeros were not built)."""
    n_users, n_items = graph.n_users, graph.n_items
    if graph.item_matrix is not None:  # replicated: every device multiplies, no psum
        return jnp.matmul(
            graph.item_matrix.astype(dtype),
            values.astype(dtype),
            preferred_element_type=jnp.float32,
            precision=jax.lax.Precision.HIGHEST,
        )
    if graph.item_rows is None:
        users = _linear_edge_sum(
            graph.mesh, n_users, n_items, dtype, graph.users, graph.items, graph.weights, values
        )
        return _linear_edge_sum(
            graph.mesh, n_items, n_users, dtype, graph.items, graph.users, graph.weights, users
        )
    return _linear_edge_sum(
        graph.mesh,
        n_items,
        n_items,
        dtype,
        graph.item_rows,
        graph.item_cols,
        graph.item_weights,
        values,
    )


def _item_side(graph, num_layers, dtype, item_embedding, first):
    """(Σ_{k<=L} I_k, Σ_{k<L} I_k) from I_0 = `item_embedding` and I_1 = `first` (= Aᵀ·U_0)."""
    layers = [item_embedding, first]
    width = item_embedding.shape[1]
    while len(layers) <= num_layers:
        k = len(layers)
        if k + 1 <= num_layers and graph.item_matrix is not None:
            # I_k and I_{k+1} depend on I_{k-2} and I_{k-1} only: one matrix product of width
            # 2·D for both (a one-off timing: faster with Modcloth's dense T; a sparse T at
            # Electronics scale gained nothing, so it keeps one product per layer).
            both = jnp.concatenate([layers[k - 2], layers[k - 1]], axis=1)
            both = _item_product(graph, both, dtype)
            layers += [both[:, :width], both[:, width:]]
        else:
            layers.append(_item_product(graph, layers[k - 2], dtype))
    below = functools.reduce(jnp.add, layers[:num_layers])
    return below + layers[num_layers], below


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _propagate(static, num_layers, graph, user_embedding, item_embedding):
    return _propagate_fwd(static, num_layers, graph, user_embedding, item_embedding)[0]


def _propagate_fwd(static, num_layers, graph, user_embedding, item_embedding):
    dtype = static
    scale = 1.0 / (num_layers + 1)
    first = _at_product(graph, user_embedding, dtype)
    item_sum, below = _item_side(graph, num_layers, dtype, item_embedding, first)
    user_final = _a_product(graph, below * scale, dtype, user_embedding * scale)
    return (user_final, item_sum * scale), graph


def _propagate_bwd(static, num_layers, graph, cotangents):
    dtype = static
    scale = 1.0 / (num_layers + 1)
    user_cotangent, item_cotangent = cotangents
    below_cotangent = _at_product(graph, user_cotangent, dtype)
    zeros = jnp.zeros((graph.n_items, user_cotangent.shape[1]), jnp.float32)
    _, item_side_vjp = jax.vjp(
        lambda items, first: _item_side(graph, num_layers, dtype, items, first), zeros, zeros
    )
    item_grad, first_grad = item_side_vjp((item_cotangent * scale, below_cotangent * scale))
    user_grad = _a_product(graph, first_grad, dtype, user_cotangent * scale)
    return None, user_grad, item_grad  # the graph is data: no gradient


_propagate.defvjp(_propagate_fwd, _propagate_bwd)


# --- a step's batch users only ---------------------------------------------------------------
#
# A training step scores pairs of its batch's users, so it needs users_final for those rows
# only: scale·(U_0[users] + A[users]·Y), from the users' own edges (`graph.rows`). The item
# side still reads every user (I_1 = Aᵀ·U_0), so the gradient of U_0 stays dense and exact:
# forward Aᵀ·U_0 over every edge, backward A·G_{I_1} over every edge, and the batch's edges
# both ways — two products over the edges of A per step instead of four, and no
# `[n_users, D]` users_final.


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _propagate_users(static, num_layers, graph, users, user_embedding, item_embedding):
    """(final embeddings of `users` `[U, D]`, of every item `[n_items, D]`); linear, with its
    transpose as VJP."""
    return _propagate_users_fwd(static, num_layers, graph, users, user_embedding, item_embedding)[0]


def _propagate_users_fwd(static, num_layers, graph, users, user_embedding, item_embedding):
    dtype = static
    scale = 1.0 / (num_layers + 1)
    first = _at_product(graph, user_embedding, dtype)
    item_sum, below = _item_side(graph, num_layers, dtype, item_embedding, first)
    own = user_embedding.at[users].get(mode="fill", fill_value=0) * scale
    user_final = own + user_rows_matmul(graph.rows, _rounded(below * scale, dtype), users)
    return (user_final, item_sum * scale), (graph, users)


def _propagate_users_bwd(static, num_layers, residuals, cotangents):
    dtype = static
    scale = 1.0 / (num_layers + 1)
    graph, users = residuals
    user_cotangent, item_cotangent = cotangents  # [U, D], [n_items, D]
    zeros = jnp.zeros((graph.n_items, user_cotangent.shape[1]), jnp.float32)
    _, rows_vjp = jax.vjp(lambda values: user_rows_matmul(graph.rows, values, users), zeros)
    (below_cotangent,) = rows_vjp(_rounded(user_cotangent, dtype))
    _, item_side_vjp = jax.vjp(
        lambda items, first: _item_side(graph, num_layers, dtype, items, first), zeros, zeros
    )
    item_grad, first_grad = item_side_vjp((item_cotangent * scale, below_cotangent * scale))
    own = jnp.zeros((graph.n_users, user_cotangent.shape[1]), jnp.float32)
    own = own.at[users].add(user_cotangent * scale, mode="drop")
    user_grad = _a_product(graph, first_grad, dtype, own)
    return None, None, user_grad, item_grad  # graph and users are data: no gradient


_propagate_users.defvjp(_propagate_users_fwd, _propagate_users_bwd)

_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}  # specs.PROPAGATION_DTYPES


def propagate(
    graph: Graph,
    user_embedding: jax.Array,
    item_embedding: jax.Array,
    num_layers: int,
    *,
    dtype: str = "float32",
) -> tuple[jax.Array, jax.Array]:
    """LightGCN: the mean of layers 0..L of e_u ← Σ_i A_ui e_i, e_i ← Σ_u A_ui e_u.

    Returns the final user `[n_users, D]` and item `[n_items, D]` embeddings (float32), computed
    on the item side (above): equal to `propagate_layerwise` up to float rounding. `dtype`
    ("float32" | "bfloat16"): the precision rows are gathered in; sums stay float32.
    """
    if num_layers == 0:
        return user_embedding, item_embedding
    return _propagate(
        _DTYPES[dtype],
        num_layers,
        graph,
        user_embedding.astype(jnp.float32),
        item_embedding.astype(jnp.float32),
    )


def propagate_users(
    graph: Graph,
    user_embedding: jax.Array,
    item_embedding: jax.Array,
    num_layers: int,
    users: jax.Array,
    *,
    dtype: str = "float32",
) -> tuple[jax.Array, jax.Array]:
    """`propagate` for a training step: the final embeddings of `users` `[U, D]` (distinct
    ids; the padding id n_users gives a zero row) and of every item `[n_items, D]`.

    Equal to `propagate(...)[0][users]` and `propagate(...)[1]` up to float rounding, and so
    are the gradients of both tables (dense: every user reaches the items), at half the
    products over the edges (see the comment above `_propagate_users`). Needs `graph.rows`.
    """
    if graph.rows is None:
        raise ValueError(
            "propagate_users needs the graph's user rows (build_graph_arrays row_users)"
        )
    if num_layers == 0:
        return user_embedding.at[users].get(mode="fill", fill_value=0), item_embedding
    return _propagate_users(
        _DTYPES[dtype],
        num_layers,
        graph,
        users,
        user_embedding.astype(jnp.float32),
        item_embedding.astype(jnp.float32),
    )
