"""The training adjacency by user rows (CSR), for products restricted to a batch's users.

`user_rows` builds on the host, once, the edges of the normalised adjacency ordered by user
(`offsets [n_users + 2]`: user u's edges are `offsets[u]:offsets[u + 1]` of `edges`, `items`
and `weights`; the last row, u = n_users, is the empty row of padding ids). `user_rows_matmul`
then computes A[users]·X for a batch's users only: it gathers the edges of those rows into a
static number of slots (`UserRows.size`: the most edges any `max_users` distinct users can
have, from the data's degrees, so one compilation serves every batch), and segment-sums them
per user. Its cost is the batch's edges, not the graph's. The arrays are small (4 × [E]
int32/float32) and replicated on every device: the gather needs no communication.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct


@struct.dataclass
class UserRows:
    """The adjacency's real (non-padding) edges by user (a pytree; see the module doc).

    edges: each entry's edge id (its index in `Graph.users/items/weights`), which keys the
    per-edge corruption draw so a batch draws what the whole graph would.
    """

    offsets: jax.Array  # [n_users + 2] int32
    edges: jax.Array  # [E] int32
    items: jax.Array  # [E] int32
    weights: jax.Array  # [E] float32
    size: int = struct.field(pytree_node=False)  # edge slots of one product


def build_user_rows(
    users: np.ndarray,
    items: np.ndarray,
    weights: np.ndarray,
    n_users: int,
    *,
    max_users: int,
) -> dict[str, np.ndarray | int]:
    """Host CSR arrays of edges `users`, `items`, `weights` `[E]` (no padding edges) and the
    slot count for at most `max_users` distinct users a product (the sum of the `max_users`
    largest degrees; at least 1)."""
    order = np.argsort(users, kind="stable").astype(np.int32)
    degree = np.bincount(users, minlength=n_users)
    offsets = np.zeros(n_users + 2, np.int64)
    np.cumsum(degree, out=offsets[1 : n_users + 1])
    offsets[n_users + 1] = offsets[n_users]  # the padding id's row is empty
    largest = np.sort(degree)[::-1][:max_users]
    return {
        "offsets": offsets.astype(np.int32),
        "edges": order,
        "items": items[order].astype(np.int32),
        "weights": weights[order].astype(np.float32),
        "size": max(1, int(largest.sum())),
    }


def row_edges(rows: UserRows, users: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The edges of the rows of `users` `[U]` (distinct, or the padding id n_users) in
    `rows.size` slots: (CSR position `[S]`, owner slot in `users` `[S]`, valid `[S]`)."""
    starts = rows.offsets[users]
    counts = rows.offsets[users + 1] - starts
    ends = jnp.cumsum(counts)  # slot after each user's last edge
    slots = jnp.arange(rows.size, dtype=ends.dtype)
    # owner[s] = how many users end at or before slot s (searchsorted(ends, s, "right")): a
    # scatter of U ones and a cumsum, instead of a binary search per slot.
    ends_at = jnp.zeros(rows.size + 1, ends.dtype).at[ends].add(1)
    owner = jnp.cumsum(ends_at[:-1])
    valid = slots < ends[-1]
    owner = jnp.minimum(owner, users.shape[0] - 1)
    first = ends[owner] - counts[owner]  # the owner's first slot
    position = jnp.where(valid, starts[owner] + slots - first, 0)
    return position, owner, valid


def user_rows_matmul(
    rows: UserRows,
    values: jax.Array,
    users: jax.Array,
    weights: Callable[[jax.Array, jax.Array], jax.Array] | None = None,
) -> jax.Array:
    """A[users]·X `[U, D]` for X `[n_items, D]` and distinct `users` `[U]` (padding id
    n_users: a zero row). `weights(edge_ids [S], weights [S]) -> [S]` replaces the gathered
    edges' weights (e.g. dropout keyed by edge id); no gradient flows to the weights.

    Equal to `adjacency_matmul(graph, X)[users]` (up to float summation order); the
    gradient reaches only the rows of X the users' edges read.
    """
    position, owner, valid = row_edges(rows, users)
    edge_weights = rows.weights[position]
    if weights is not None:
        edge_weights = weights(rows.edges[position], edge_weights)
    edge_weights = jax.lax.stop_gradient(jnp.where(valid, edge_weights, 0.0))
    contributions = values[rows.items[position]] * edge_weights[:, None]
    return jax.ops.segment_sum(contributions, owner, num_segments=users.shape[0])
