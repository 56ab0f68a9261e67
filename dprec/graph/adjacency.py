"""The symmetric normalised bipartite adjacency of the training interactions, as edge arrays.

Edge e = (users[e], items[e]) carries weight 1/√(d_u · d_i) (d = training degree): the
LightGCN adjacency, and CDAE's input row normalisation. Edges are padded with weight 0 to a
multiple of the device count so they split evenly; padding edges change nothing.

For LightGCN the graph also holds T = AᵀA `[n_items, n_items]` as an edge list (`item_graph`):
with users ≫ items, propagation runs its layers on the item side (`dprec.graph.propagate`).
Models that encode a training batch's users only (CDAE, LightGCN) also get the edges by user
row (`rows`, `graph/rows.py`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import numpy as np
from flax import struct
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from dprec import sharding
from dprec.graph.rows import UserRows, build_user_rows
from dprec.sharding import DATA_AXIS


@struct.dataclass
class Graph:
    """Edge arrays `[E]` of the normalised adjacency (a pytree: pass it to jitted functions as
    an argument, never as a closed-over constant, or XLA constant-folds the scatter-adds).

    `mesh` (static) is where the edges are split; None means one device. `item_rows`,
    `item_cols`, `item_weights` `[P]`: the nonzeros of T = AᵀA, or `item_matrix` T dense when
    that is cheaper (few items, many nonzeros); neither when not built (LightGCN then applies
    T as Aᵀ·(A·X)). `rows`: the real
    edges by user row, replicated (`graph.rows.UserRows`), or None when no model needs them.
    """

    users: jax.Array
    items: jax.Array
    weights: jax.Array
    n_users: int = struct.field(pytree_node=False)
    n_items: int = struct.field(pytree_node=False)
    mesh: Any = struct.field(pytree_node=False, default=None)
    item_rows: jax.Array | None = None
    item_cols: jax.Array | None = None
    item_weights: jax.Array | None = None
    item_matrix: jax.Array | None = None  # T dense `[n_items, n_items]` (replicated) instead
    layouts: EdgeLayouts | None = None  # A's edges again, for LightGCN's products
    rows: UserRows | None = None


@struct.dataclass
class EdgeLayouts:
    """The edges of A split for A·X `[n_users, D]` with few scatter-adds (on CPU a scatter
    costs a few ns per element, a gather far less): `first_items`, `first_weights` `[n_users]`
    (padded to the device count) the first edge of every user (weight 0 for a user without
    edges), one gather that writes every row in order; `rest_*` `[R]` the other edges,
    scatter-added (Electronics: 1.03 M edges, 0.09 M of them in the rest). Split over the
    devices like the edges. (Aᵀ·X, `[n_items, D]` out, scatters into a small table and reads
    the user rows in order from the edges sorted by user: measured faster than summing blocks
    of each item's edges, which reads the user table out of order.)"""

    first_items: jax.Array
    first_weights: jax.Array
    rest_users: jax.Array
    rest_items: jax.Array
    rest_weights: jax.Array


LAYOUT_KEYS = tuple(field.name for field in dataclasses.fields(EdgeLayouts))


def edge_layouts(
    users: np.ndarray,
    items: np.ndarray,
    weights: np.ndarray,
    n_users: int,
    n_items: int,
    multiple: int,
) -> dict[str, np.ndarray]:
    """`EdgeLayouts` host arrays for edges sorted by user `[E]`, each padded to `multiple`."""
    degree = np.bincount(users, minlength=n_users)
    start = np.concatenate([[0], np.cumsum(degree)[:-1]])
    first = np.zeros(users.shape[0], bool)
    first[start[degree > 0]] = True
    n_first = n_users + (-n_users % multiple)
    first_items = np.zeros(n_first, np.int32)
    first_weights = np.zeros(n_first, np.float32)
    first_items[users[first]] = items[first]
    first_weights[users[first]] = weights[first]
    rest_users, rest_items, rest_weights = pad_edges(
        users[~first], items[~first], weights[~first], multiple
    )
    return {
        "first_items": first_items,
        "first_weights": first_weights,
        "rest_users": rest_users,
        "rest_items": rest_items,
        "rest_weights": rest_weights,
    }


def normalized_edges(
    users: np.ndarray, items: np.ndarray, n_users: int, n_items: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Edges and their weights 1/√(d_u · d_i) `[E]` for interactions `users`, `items` `[E]`."""
    user_degree = np.bincount(users, minlength=n_users).astype(np.float64)
    item_degree = np.bincount(items, minlength=n_items).astype(np.float64)
    weights = 1.0 / np.sqrt(user_degree[users] * item_degree[items])
    return users.astype(np.int32), items.astype(np.int32), weights.astype(np.float32)


def pad_edges(
    users: np.ndarray, items: np.ndarray, weights: np.ndarray, multiple: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Append weight-0 edges (0, 0) so the count is a multiple of `multiple`."""
    pad = -users.shape[0] % multiple
    zeros = np.zeros(pad, np.int32)
    return (
        np.concatenate([users, zeros]),
        np.concatenate([items, zeros]),
        np.concatenate([weights, np.zeros(pad, np.float32)]),
    )


# T = AᵀA has one term per pair of items of a user (Σ_u d_u² before merging); above this many
# the item-item graph is not built (a user with 10⁴ items alone gives 10⁸) and LightGCN
# applies T as two products with A.
MAX_ITEM_PAIRS = 50_000_000
# T dense when a matrix product beats the sparse one: on CPU a scatter-add costs about as much
# per element as ~30 multiply-adds of a matrix product (measured on Modcloth: 1,020 items, T 32%
# nonzero), so dense when n_items² <= 16·nnz(T), up to 4,096 items (64 MB).
DENSE_ITEM_RATIO, MAX_DENSE_ITEMS = 16, 4096


def item_item_edges(
    users: np.ndarray, items: np.ndarray, weights: np.ndarray, n_items: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The nonzeros (rows, cols, values) `[P]` of T = AᵀA, T_ij = Σ_u A_ui·A_uj, summed in
    float64 (row-major order); None when there would be more than `MAX_ITEM_PAIRS` terms."""
    order = np.argsort(users, kind="stable")
    users, items, weights = users[order], items[order], weights[order].astype(np.float64)
    degree = np.bincount(users).astype(np.int64)
    if int(np.sum(degree**2)) > MAX_ITEM_PAIRS:
        return None
    start = np.concatenate([[0], np.cumsum(degree)[:-1]])
    per_edge = degree[users]  # each edge pairs with every edge of its user
    left = np.repeat(np.arange(users.shape[0]), per_edge)
    right = start[users[left]] + (
        np.arange(left.shape[0]) - np.repeat(np.cumsum(per_edge) - per_edge, per_edge)
    )
    keys = items[left].astype(np.int64) * n_items + items[right]
    unique, inverse = np.unique(keys, return_inverse=True)
    values = np.bincount(inverse, weights=weights[left] * weights[right])
    return (
        (unique // n_items).astype(np.int32),
        (unique % n_items).astype(np.int32),
        values.astype(np.float32),
    )


def build_graph_arrays(
    users: np.ndarray,
    items: np.ndarray,
    n_users: int,
    n_items: int,
    multiple: int = 1,
    *,
    item_graph: bool = False,
    row_users: int = 0,
) -> dict[str, Any]:
    """Host edge arrays of the training interactions `users`, `items` `[N]`, padded to
    `multiple` (put them on devices with `put_graph`). `row_users` > 0 adds the user rows
    (`"rows"`) for products over at most that many distinct users (the batch size).

    `item_graph` (LightGCN): edges sorted by user (each device's slice of the user table is
    read in order), their `EdgeLayouts`, and T = AᵀA dense (`item_matrix`) or its nonzeros
    (`item_rows`, `item_cols`, `item_weights`).
    """
    users, items, weights = normalized_edges(users, items, n_users, n_items)
    arrays: dict[str, Any] = {}
    if row_users:
        arrays["rows"] = build_user_rows(users, items, weights, n_users, max_users=row_users)
    if item_graph:
        order = np.lexsort((items, users))
        users, items, weights = users[order], items[order], weights[order]
        arrays.update(edge_layouts(users, items, weights, n_users, n_items, multiple))
        pairs = item_item_edges(users, items, weights, n_items)
        if (
            pairs is not None
            and n_items <= MAX_DENSE_ITEMS
            and (n_items**2 <= DENSE_ITEM_RATIO * pairs[0].shape[0])
        ):
            matrix = np.zeros((n_items, n_items), np.float32)
            matrix[pairs[0], pairs[1]] = pairs[2]
            arrays["item_matrix"] = matrix
        elif pairs is not None:
            rows, cols, values = pad_edges(*pairs, multiple)
            arrays.update(item_rows=rows, item_cols=cols, item_weights=values)
    users, items, weights = pad_edges(users, items, weights, multiple)
    return {"users": users, "items": items, "weights": weights, **arrays}


def put_graph(arrays: dict[str, np.ndarray], n_users: int, n_items: int, mesh: Mesh) -> Graph:
    """A `Graph` whose edge arrays are split across the devices of `mesh` (the edge count must
    be a multiple of the device count: see `pad_edges`)."""
    arrays = dict(arrays)
    matrix = arrays.pop("item_matrix", None)
    host_rows = arrays.pop("rows", None)
    edges = sharding.put(arrays, NamedSharding(mesh, PartitionSpec(DATA_AXIS)))
    if matrix is not None:
        matrix = sharding.put(matrix, sharding.replicated(mesh))
    rows = None
    if host_rows is not None:
        host_rows = dict(host_rows)
        size = host_rows.pop("size")
        rows = UserRows(**sharding.put(host_rows, sharding.replicated(mesh)), size=size)
    return Graph(
        users=edges["users"],
        items=edges["items"],
        weights=edges["weights"],
        n_users=n_users,
        n_items=n_items,
        mesh=mesh if mesh.devices.size > 1 else None,
        item_rows=edges.get("item_rows"),
        item_cols=edges.get("item_cols"),
        item_weights=edges.get("item_weights"),
        item_matrix=matrix,
        layouts=EdgeLayouts(**{key: edges[key] for key in LAYOUT_KEYS})
        if "first_items" in edges
        else None,
        rows=rows,
    )
