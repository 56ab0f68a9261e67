"""Scale mode (`train.updates="lazy"`): row-wise lazy updates of the tables a batch touches.

A role whose model reads one row of a table per pair (`models.row_tables`: MF, GMF, NeuMF; and
CDAE's per-user table V, which it reads for the batch's users only) sees, inside the loss,
those tables restricted to the batch's touched rows (`RowSubset`), so the L2 term covers
exactly those rows (for CDAE's "norm" L2: ‖V_touched‖, the norm of the touched rows, beside the
whole ‖θ_t‖ of its other tensors) and the gradient is `[rows, D]`, never `[n_users, D]`. The
optimizer then steps the touched rows' parameters and moments only (`apply_role_update`):
every other row keeps its parameters and optimizer state bit for bit, and no step reads or
writes a whole table. Other parameters (GMF's output layer, NeuMF's tower) update densely.
Adam's step count stays global, as in TensorFlow's LazyAdam.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import optax
from flax import struct

Tables = Mapping[str, str]  # parameter attribute → "user" | "item"


@struct.dataclass
class RowSubset:
    """A role's parameters with each row table replaced by its touched rows `[rows, ...]`.

    `batch_loss.pair_logits` scores a RowSubset with the batch's local indices.
    """

    params: Any


def _touched(batch: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
    # A batch-encoded model's dense-mode batches carry no item lists (`data.touched`).
    return {"user": batch["touched_users"], "item": batch.get("touched_items")}


def _gather(table: jax.Array, rows: jax.Array) -> jax.Array:
    # Padding ids are out of range: they gather zeros.
    return table.at[rows].get(mode="fill", fill_value=0)


def _scatter(table: jax.Array, rows: jax.Array, values: jax.Array) -> jax.Array:
    # Padding ids are out of range: their writes are dropped. Touched ids are distinct.
    return table.at[rows].set(values, mode="drop")


def _row_leaves(params: Any, tables: Tables, touched: Mapping[str, jax.Array]) -> dict:
    """(attribute, key) → (full shape, touched ids) of every row-table leaf of `params`."""
    return {
        (attr, key): (leaf.shape, touched[kind])
        for attr, kind in tables.items()
        for key, leaf in params[attr].items()
    }


def _leaf_key(path) -> tuple[str, str] | None:
    names = [getattr(entry, "key", getattr(entry, "name", None)) for entry in path[-2:]]
    return tuple(names) if len(names) == 2 else None


def _map_rows(fn, tree: Any, leaves: dict, *rest: Any) -> Any:
    """Apply `fn(leaf, ids, *rest_leaves)` to the leaves of `tree` that mirror a row-table
    parameter (same trailing path and shape: parameters, Adam moments); others pass through
    (taken from the last of `rest` when given)."""

    def visit(path, leaf, *others):
        match = leaves.get(_leaf_key(path))
        if match is not None and getattr(leaf, "shape", None) == match[0]:
            return fn(leaf, match[1], *others)
        return others[-1] if others else leaf

    return jax.tree_util.tree_map_with_path(visit, tree, *rest)


def loss_view(params: Any, tables: Tables, batch: Mapping[str, jax.Array]) -> Any:
    """What the loss sees of a role: its touched rows (`RowSubset`), or all of `params` for a
    role without row tables."""
    if not tables:
        return params
    leaves = _row_leaves(params, tables, _touched(batch))
    return RowSubset(params=_map_rows(_gather, params, leaves))


def gather_role(
    params: Any, opt_state: Any, tables: Tables, batch: Mapping[str, jax.Array]
) -> tuple[Any, Any]:
    """(params, optimizer state) of one role restricted to the batch's touched rows; all of
    them for a role without row tables."""
    if not tables:
        return params, opt_state
    leaves = _row_leaves(params, tables, _touched(batch))
    return _map_rows(_gather, params, leaves), _map_rows(_gather, opt_state, leaves)


def step_local(
    optimizer: optax.GradientTransformation, grads: Any, local: tuple[Any, Any]
) -> tuple[Any, Any]:
    """One optimizer step on `gather_role`'s output; `grads` as the loss saw the role."""
    params, opt_state = local
    grads = grads.params if isinstance(grads, RowSubset) else grads
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state


def scatter_role(
    params: Any,
    opt_state: Any,
    local: tuple[Any, Any],
    tables: Tables,
    batch: Mapping[str, jax.Array],
) -> tuple[Any, Any]:
    """Write `local` (touched rows, as from `gather_role`) back into the full role."""
    if not tables:
        return local
    leaves = _row_leaves(params, tables, _touched(batch))
    return (
        _map_rows(_scatter, params, leaves, local[0]),
        _map_rows(_scatter, opt_state, leaves, local[1]),
    )


def apply_role_update(
    optimizer: optax.GradientTransformation,
    grads: Any,
    opt_state: Any,
    params: Any,
    tables: Tables,
    batch: Mapping[str, jax.Array],
) -> tuple[Any, Any]:
    """One optimizer step of one role: (new params, new optimizer state).

    `grads` has the structure of `loss_view(params, tables, batch)`. With row tables, only the
    touched rows of parameters and of every state leaf shaped like them change.
    """
    local = step_local(optimizer, grads, gather_role(params, opt_state, tables, batch))
    return scatter_role(params, opt_state, local, tables, batch)
