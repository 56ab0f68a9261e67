"""The symmetric normalised bipartite adjacency of the training interactions, as edge arrays.

Edge e = (users[e], items[e]) carries weight 1/√(d_u · d_i) (d = training degree): the
LightGCN adjacency, and CDAE's input row normalisation. Edges are padded with weight 0 to a
multiple of the device count so they split evenly; padding edges change nothing. Models that
encode a batch's users only (CDAE) also get the edges by user row (`rows`, `graph/rows.py`).
"""

from __future__ import annotations

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

    `mesh` (static) is where the edges are split; None means one device. `rows`: the real
    edges by user row, replicated (`graph.rows.UserRows`), or None when no model needs them.
    """

    users: jax.Array
    items: jax.Array
    weights: jax.Array
    n_users: int = struct.field(pytree_node=False)
    n_items: int = struct.field(pytree_node=False)
    mesh: Any = struct.field(pytree_node=False, default=None)
    rows: UserRows | None = None


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


def build_graph_arrays(
    users: np.ndarray,
    items: np.ndarray,
    n_users: int,
    n_items: int,
    multiple: int = 1,
    *,
    row_users: int = 0,
) -> dict[str, Any]:
    """Host edge arrays of the training interactions `users`, `items` `[N]`, padded to
    `multiple` (put them on devices with `put_graph`). `row_users` > 0 adds the user rows
    (`"rows"`) for products over at most that many distinct users (the batch size)."""
    users, items, weights = normalized_edges(users, items, n_users, n_items)
    arrays: dict[str, Any] = {}
    if row_users:
        arrays["rows"] = build_user_rows(users, items, weights, n_users, max_users=row_users)
    users, items, weights = pad_edges(users, items, weights, multiple)
    return {"users": users, "items": items, "weights": weights, **arrays}


def put_graph(arrays: dict[str, np.ndarray], n_users: int, n_items: int, mesh: Mesh) -> Graph:
    """A `Graph` whose edge arrays are split across the devices of `mesh` (the edge count must
    be a multiple of the device count: see `pad_edges`)."""
    edge_arrays = {key: arrays[key] for key in ("users", "items", "weights")}
    edges = sharding.put(edge_arrays, NamedSharding(mesh, PartitionSpec(DATA_AXIS)))
    rows = None
    if "rows" in arrays:
        host = dict(arrays["rows"])
        size = host.pop("size")
        rows = UserRows(**sharding.put(host, sharding.replicated(mesh)), size=size)
    return Graph(
        users=edges["users"],
        items=edges["items"],
        weights=edges["weights"],
        n_users=n_users,
        n_items=n_items,
        mesh=mesh if mesh.devices.size > 1 else None,
        rows=rows,
    )
