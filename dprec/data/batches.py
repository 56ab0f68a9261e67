"""Fixed-shape epoch arrays: shuffled positives with sampled negatives, padded and masked."""

from __future__ import annotations

import dataclasses

import numpy as np

from dprec.data.dataset import InteractionData
from dprec.data.sampling import PositiveSet, sample_negatives
from dprec.data.touched import touched_rows


@dataclasses.dataclass(frozen=True)
class EpochBatches:
    """One epoch as `n_batches` batches of `batch_size` positives; the last batch is padded.

    users `[n_batches, B]`, pos_items `[n_batches, B]`, neg_items `[n_batches, B, n_neg]`,
    mask `[n_batches, B]` (1.0 for real positives, 0.0 for padding), index `[n_batches, B]`
    int32: each positive's row in the training arrays (0 for padding), for methods that keep
    a state per training interaction (DCF, CrossDenoise).
    """

    users: np.ndarray
    pos_items: np.ndarray
    neg_items: np.ndarray
    mask: np.ndarray
    index: np.ndarray


def padded_batch_size(batch_size: int, multiple: int) -> int:
    """`batch_size` rounded up to a multiple of `multiple` (the number of devices)."""
    return -(-batch_size // multiple) * multiple


def make_epoch_batches(
    rng: np.random.Generator,
    users: np.ndarray,
    items: np.ndarray,
    positives: PositiveSet,
    *,
    batch_size: int,
    num_negatives: int,
    item_probs: np.ndarray | None = None,
) -> EpochBatches:
    """Shuffle the training positives `[N]` and draw `num_negatives` negatives for each
    (uniformly, or from `item_probs` `[n_items]`)."""
    order = rng.permutation(users.shape[0])
    n_batches = -(-users.shape[0] // batch_size)
    total = n_batches * batch_size
    pad = total - users.shape[0]
    batch_users = np.concatenate([users[order], np.zeros(pad, users.dtype)]).astype(np.int32)
    batch_items = np.concatenate([items[order], np.zeros(pad, items.dtype)]).astype(np.int32)
    negatives = sample_negatives(
        rng, np.repeat(batch_users[:, None], num_negatives, axis=1), positives, item_probs
    ).astype(np.int32)
    mask = np.concatenate([np.ones(users.shape[0], np.float32), np.zeros(pad, np.float32)])
    index = np.concatenate([order, np.zeros(pad, order.dtype)]).astype(np.int32)
    return EpochBatches(
        users=batch_users.reshape(n_batches, batch_size),
        pos_items=batch_items.reshape(n_batches, batch_size),
        neg_items=negatives.reshape(n_batches, batch_size, num_negatives),
        mask=mask.reshape(n_batches, batch_size),
        index=index.reshape(n_batches, batch_size),
    )


def epoch_batches(
    data: InteractionData,
    positives: PositiveSet,
    *,
    seed: int,
    epoch: int,
    batch_size: int,
    num_negatives: int,
    item_probs: np.ndarray | None = None,
    with_touched_rows: bool = False,
    with_touched_items: bool = True,
    multiple: int = 1,
) -> dict[str, np.ndarray]:
    """The host arrays of one epoch of `data.train`; seeded by (seed, epoch) so any epoch can
    be redrawn: users, pos_items, mask, index `[n_batches, B]`, neg_items
    `[n_batches, B, n_neg]`.

    `with_touched_rows` (lazy update mode, batch-encoded models) adds each batch's touched
    rows (`data.touched`), padded to a multiple of `multiple` (the device count); the item
    lists only with `with_touched_items`.
    """
    rng = np.random.default_rng([seed, epoch])
    batches = make_epoch_batches(
        rng,
        data.train.users,
        data.train.items,
        positives,
        batch_size=batch_size,
        num_negatives=num_negatives,
        item_probs=item_probs,
    )
    arrays = {
        "users": batches.users,
        "pos_items": batches.pos_items,
        "neg_items": batches.neg_items,
        "mask": batches.mask,
        "index": batches.index,
    }
    if with_touched_rows:
        arrays |= touched_rows(
            batches.users,
            batches.pos_items,
            batches.neg_items,
            batches.mask,
            n_users=data.n_users,
            n_items=data.n_items,
            multiple=multiple,
            items=with_touched_items,
        )
    return arrays
