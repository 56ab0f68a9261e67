"""What every method's loss shares: a batch's pair logits and the target's L2 term."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp

from dprec.lazy_rows import RowSubset, loss_view
from dprec.models import L2_KIND, ScoreFns, l2_row_tables
from dprec.objectives.reduce import batch_l2_penalty, l2_penalty, tensor_norm_penalty

# users [B], pos_items [B], neg_items [B, n_neg], mask [B]; in the lazy update mode also
# touched_users, touched_items and local_* (dprec.data.touched); for batch-encoded models
# (CDAE, LightGCN) in the dense mode touched_users and local_users.
Batch = Mapping[str, jax.Array]
# loss_fn(trainable, frozen, batch, graph, rng, step) -> (loss [], logs {name: []}):
# `trainable` and `frozen` map role → parameters (as `lazy_rows.loss_view` shows them).
LossFn = Callable[
    [dict[str, Any], dict[str, Any], Batch, Any, jax.Array, Any],
    tuple[jax.Array, dict[str, jax.Array]],
]
# regularizer(params, batch) -> []: the target's L2 term (`make_regularizer`)
Regularizer = Callable[[Any, Batch], jax.Array]


def pair_logits(
    score: ScoreFns, params: Any, batch: Batch, graph: Any, rng: Any
) -> tuple[jax.Array, jax.Array]:
    """Logits of the positives `[B]` and of the sampled negatives `[B, n_neg]`.

    The model's `encode` (LightGCN propagation, CDAE codes) runs once and serves both. A
    `RowSubset` (lazy update mode) is scored with the batch's indices into its touched rows.
    A batch-encoded model (`models.BATCH_ENCODED`: CDAE, LightGCN) encodes the batch's
    touched users only, its user tables (CDAE's V; none of LightGCN's) restricted to their
    rows (in the dense mode by a gather here, whose gradient is the full table's: zero outside
    those rows), and scores pairs with positions in that list and global item ids (its item
    tables are never restricted).
    """
    if score.batch_tables is not None:
        if score.batch_tables and not isinstance(params, RowSubset):
            params = loss_view(params, score.batch_tables, batch)
        params = params.params if isinstance(params, RowSubset) else params
        users = batch["local_users"]
        pos_items, neg_items = batch["pos_items"], batch["neg_items"]
        encoded = score.encode(params, graph, rng, batch["touched_users"])
    else:
        if isinstance(params, RowSubset):
            params, users = params.params, batch["local_users"]
            pos_items, neg_items = batch["local_pos_items"], batch["local_neg_items"]
        else:
            users, pos_items, neg_items = batch["users"], batch["pos_items"], batch["neg_items"]
        encoded = score.encode(params, graph, rng)
    pos = score.pair(params, encoded, users, pos_items)
    neg_users = jnp.broadcast_to(users[:, None], neg_items.shape)
    neg = score.pair(params, encoded, neg_users.reshape(-1), neg_items.reshape(-1))
    return pos, neg.reshape(neg_items.shape)


def _batch_rows(params: Any, batch: Batch) -> tuple[Any, jax.Array, jax.Array, jax.Array]:
    """(parameters, users `[B]`, positive items `[B]`, negative items `[B, n_neg]`): global ids
    on whole tables, or the batch's local ids on a `RowSubset` (lazy mode)."""
    if isinstance(params, RowSubset):
        local = (batch["local_users"], batch.get("local_pos_items"), batch.get("local_neg_items"))
        return params.params, *local
    return params, batch["users"], batch["pos_items"], batch["neg_items"]


def make_batch_l2(tables: Mapping[str, str], *, lambda0: float) -> Regularizer:
    """The "batch" L2 rule (`objectives.reduce.batch_l2_penalty`): the rows of `tables`
    (attribute → "user" | "item") each example reads, and every other parameter as shared."""

    def penalty(params: Any, batch: Batch) -> jax.Array:
        rows, users, pos_items, neg_items = _batch_rows(params, batch)
        row_squares = jnp.zeros(batch["mask"].shape, jnp.float32)
        neg_squares = jnp.zeros(batch["neg_items"].shape, jnp.float32)
        shared = jnp.zeros((), jnp.float32)
        for attr, tree in rows.items():
            side = tables.get(attr)
            for table in jax.tree.leaves(tree):
                if side == "user":
                    squares = jnp.sum(jnp.square(table[users]), axis=-1)
                    row_squares += squares
                    neg_squares += squares[:, None]
                elif side == "item":
                    row_squares += jnp.sum(jnp.square(table[pos_items]), axis=-1)
                    neg_squares += jnp.sum(jnp.square(table[neg_items]), axis=-1)
                else:
                    shared += jnp.sum(jnp.square(table))
        return batch_l2_penalty(row_squares, neg_squares, shared, batch["mask"], lambda0=lambda0)

    return penalty


def make_regularizer(
    model_name: str, *, rule: str, lambda0: float, n_users: int, norm_scale: float = 1.0
) -> Regularizer:
    """The target's L2 term `(params, batch) -> []` (`TrainSpec.l2_rule`).

    "batch": `make_batch_l2` over the model's row tables (`models.l2_row_tables`). "paper": the
    authors' λ0·½·‖θ‖²/n_users every step, or for "norm" models (CDAE) `norm_scale`·λ0·Σ_t‖θ_t‖
    (see `Method.norm_l2_scale`); on a `RowSubset` (lazy mode) it covers the touched rows of
    the row tables: CDAE's ‖V‖ becomes the norm of the batch users' rows of V.
    """
    if rule == "batch":
        return make_batch_l2(l2_row_tables(model_name), lambda0=lambda0)
    if L2_KIND.get(model_name) == "norm":
        return lambda params, batch: tensor_norm_penalty(params, lambda0=lambda0 * norm_scale)
    return lambda params, batch: l2_penalty(params, lambda0=lambda0, n_users=n_users)
