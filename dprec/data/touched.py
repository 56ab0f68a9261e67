"""The user and item rows each batch touches, for the lazy update mode (host-side NumPy).

For every batch: the distinct users and items of its real examples, padded with an
out-of-range id (`n_users`, `n_items`) that gathers zeros and whose scatter is dropped, and
each example's position in those lists. Padding examples point at a padding slot, so they
touch no row.
"""

from __future__ import annotations

import numpy as np


def _distinct_per_row(
    ids: np.ndarray, valid: np.ndarray, sentinel: int, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per row of `ids` `[R, W]`: its distinct valid ids sorted, padded with `sentinel` to
    `size` `[R, size]`, and every entry's position there `[R, W]` (invalid entries: a padding
    slot). `size` must exceed W."""
    values = np.where(valid, ids, sentinel).astype(np.int32)
    order = np.argsort(values, axis=1, kind="stable")  # the sentinel sorts last in each row
    ordered = np.take_along_axis(values, order, axis=1)
    first = np.ones(ordered.shape, bool)
    first[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    slot = np.cumsum(first, axis=1, dtype=np.int32) - 1  # each sorted entry's distinct slot
    touched = np.full((ids.shape[0], size), sentinel, np.int32)
    rows = np.broadcast_to(np.arange(ids.shape[0])[:, None], ordered.shape)
    touched[rows[first], slot[first]] = ordered[first]
    local = np.empty(ids.shape, np.int32)
    np.put_along_axis(local, order, slot, axis=1)
    return touched, local


def touched_rows(
    users: np.ndarray,
    pos_items: np.ndarray,
    neg_items: np.ndarray,
    mask: np.ndarray,
    *,
    n_users: int,
    n_items: int,
    multiple: int = 1,
    items: bool = True,
) -> dict[str, np.ndarray]:
    """Touched rows and local indices of epoch batches.

    Args:
      users, pos_items, mask: `[n_batches, B]`; neg_items: `[n_batches, B, n_neg]`.
      multiple: the touched lists' length is rounded up to a multiple of this (device count).
      items: False leaves out the item lists (a batch-encoded model in the dense mode reads
        its batch's users only: the item half is most of the host work).

    Returns:
      touched_users `[n_batches, U]`, touched_items `[n_batches, I]` (U > B, I > B·(1+n_neg));
      local_users `[n_batches, B]`, local_pos_items `[n_batches, B]`, local_neg_items
      `[n_batches, B, n_neg]`: positions in the touched lists, so that
      touched_users[b, local_users[b, j]] == users[b, j] for every real example j.
    """
    n_batches, batch = users.shape
    n_neg = neg_items.shape[2]
    valid = mask > 0

    def rounded(width: int) -> int:
        return -(-(width + 1) // multiple) * multiple

    touched_users, local_users = _distinct_per_row(users, valid, n_users, rounded(batch))
    if not items:
        return {"touched_users": touched_users, "local_users": local_users}
    items = np.concatenate([pos_items, neg_items.reshape(n_batches, -1)], axis=1)
    item_valid = np.concatenate([valid, np.repeat(valid, n_neg, axis=1)], axis=1)
    touched_items, local_items = _distinct_per_row(
        items, item_valid, n_items, rounded(items.shape[1])
    )
    return {
        "touched_users": touched_users,
        "touched_items": touched_items,
        "local_users": local_users,
        "local_pos_items": local_items[:, :batch],
        "local_neg_items": local_items[:, batch:].reshape(n_batches, batch, n_neg),
    }
