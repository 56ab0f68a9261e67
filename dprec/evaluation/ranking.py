"""Full-ranking evaluation: jitted masked top-K over chunks of users, metrics on the host.

Evaluation takes scoring functions (`models.ScoreFns`: encode once, then
`all_items(params, encoded, users [C]) -> logits [C, n_items]` per chunk), not a model. Items
the user already has (train, and valid for the test) score −inf; ties are broken by the lowest
item index (`lax.top_k`), which is the paper's protocol.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dprec import sharding
from dprec.data.dataset import Interactions
from dprec.data.sampling import PositiveSet
from dprec.models import ScoreFns


@dataclasses.dataclass(frozen=True)
class RankingTask:
    """Fixed host inputs for ranking one evaluation set.

    users `[U]` evaluated users (each with ≥ 1 relevant item), sorted;
    user_chunks `[n_chunks, C]` the same users padded with user 0;
    excluded_rows / excluded_items `[n_chunks, S × E]` (row, item) pairs to mask: a chunk's
    rows are split in S equal slices (one per device), slice s's pairs sit in columns
    s·E … (s+1)·E − 1 with the row counted within the slice, padded with row C / S (dropped
    by the scatter); relevant: the evaluated (user, item) pairs;
    n_relevant `[U]` |T| per user.
    """

    users: np.ndarray
    user_chunks: np.ndarray
    excluded_rows: np.ndarray
    excluded_items: np.ndarray
    relevant: PositiveSet
    n_relevant: np.ndarray

    @property
    def chunk_size(self) -> int:
        return int(self.user_chunks.shape[1])


def make_ranking_task(
    relevant: Interactions,
    excluded: Sequence[Interactions],
    *,
    n_items: int,
    chunk_size: int,
    multiple: int = 1,
) -> RankingTask:
    """Prepare the ranking of `relevant`'s users with the pairs in `excluded` masked.

    The chunk size is rounded up to a `multiple` of the device count, so that each device
    ranks an equal share of every chunk (a slice) and masks its pairs on its own.
    """
    users, n_relevant = np.unique(relevant.users, return_counts=True)
    chunk_size = min(chunk_size, max(1, users.shape[0]))
    chunk_size = -(-chunk_size // multiple) * multiple
    n_chunks = max(1, -(-users.shape[0] // chunk_size))
    padded = np.zeros(n_chunks * chunk_size, np.int32)
    padded[: users.shape[0]] = users

    ex_users = np.concatenate([part.users for part in excluded]) if excluded else np.zeros(0)
    ex_items = np.concatenate([part.items for part in excluded]) if excluded else np.zeros(0)
    position = np.searchsorted(users, ex_users)
    position = np.minimum(position, max(users.shape[0] - 1, 0))
    keep = users[position] == ex_users if users.shape[0] else np.zeros(ex_users.shape, bool)
    position, ex_items = position[keep], ex_items[keep]
    slice_size = chunk_size // multiple
    n_slices = n_chunks * multiple
    slice_of = position // slice_size
    counts = np.bincount(slice_of, minlength=n_slices)
    width = max(1, int(counts.max()) if counts.size else 1)
    rows = np.full((n_slices, width), slice_size, np.int32)
    items = np.zeros((n_slices, width), np.int32)
    order = np.argsort(slice_of, kind="stable")
    slot = np.arange(order.shape[0]) - np.repeat(np.cumsum(counts) - counts, counts)
    rows[slice_of[order], slot] = position[order] % slice_size
    items[slice_of[order], slot] = ex_items[order]
    return RankingTask(
        users=users.astype(np.int32),
        user_chunks=padded.reshape(n_chunks, chunk_size),
        excluded_rows=rows.reshape(n_chunks, multiple * width),
        excluded_items=items.reshape(n_chunks, multiple * width),
        relevant=PositiveSet.from_pairs(relevant.users, relevant.items, n_items),
        n_relevant=n_relevant,
    )


def make_topk_fn(
    score: ScoreFns, k: int, *, with_scores: bool = False, mesh: Any = None
) -> Callable[..., Any]:
    """Jitted `(params, graph, user_chunks, excluded_rows, excluded_items) -> [n_chunks, C, k]`
    item indices (and their scores first, with `with_scores`).

    The model's `encode` runs once (no corruption); chunks then run one after another
    (`lax.map`), so memory is bounded by C × n_items. With a `mesh` of n devices each device
    scores, masks and ranks its slice of C / n users of every chunk against all items (the
    task must be made with `make_ranking_task(multiple=n)`), so no device holds or gathers a
    chunk's whole score matrix; the small `[n_chunks, C, k]` result is then replicated,
    readable by every process.
    """
    sharded = mesh is not None and sharding.num_shards(mesh) > 1

    def mask_and_rank(scores, rows, items):
        """scores `[R, n_items]`, (row, item) pairs `[E]` to mask → top-k `[R, k]`."""
        scores = scores.at[rows, items].set(-jnp.inf, mode="drop")
        return jax.lax.top_k(scores, k)

    def topk(params, graph, user_chunks, excluded_rows, excluded_items):
        encoded = score.encode(params, graph, None)

        def rank_chunk(chunk):
            users, rows, items = chunk
            scores = score.all_items(params, encoded, users)
            if sharded:
                values, indices = sharding.map_row_slices(mask_and_rank, mesh, scores, rows, items)
            else:
                values, indices = mask_and_rank(scores, rows, items)
            return (values, indices) if with_scores else indices

        return jax.lax.map(rank_chunk, (user_chunks, excluded_rows, excluded_items))

    if not sharded:
        return jax.jit(topk)
    return jax.jit(topk, out_shardings=sharding.replicated(mesh))


def rank(
    topk_fn: Callable[..., jax.Array], params: Any, task: RankingTask, graph: Any = None
) -> np.ndarray:
    """Top-K items `[U, k]` of every user of `task`."""
    items = topk_fn(params, graph, task.user_chunks, task.excluded_rows, task.excluded_items)
    items = np.asarray(items).reshape(-1, items.shape[-1])
    return items[: task.users.shape[0]]


def hits_of(top_items: np.ndarray, task: RankingTask) -> np.ndarray:
    """Boolean `[U, k]`: whether each ranked item is relevant for its user."""
    return task.relevant.contains(np.broadcast_to(task.users[:, None], top_items.shape), top_items)


def popularity_scores(popularity: np.ndarray) -> ScoreFns:
    """Scoring functions ranking items by training popularity for every user (no params)."""
    counts = jnp.asarray(popularity, jnp.float32)

    def all_items(params, encoded, users):
        del params, encoded
        return jnp.broadcast_to(counts, (users.shape[0], counts.shape[0]))

    def pair(params, encoded, users, items):
        del params, encoded, users
        return counts[items]

    return ScoreFns(encode=lambda params, graph, rng: None, pair=pair, all_items=all_items)


def random_scores(n_items: int, seed: int = 0) -> ScoreFns:
    """Scoring functions of a random ranker: fixed uniform scores per (user, item)."""
    key = jax.random.key(seed)

    def user_scores(user):
        return jax.random.uniform(jax.random.fold_in(key, user), (n_items,))

    def all_items(params, encoded, users):
        del params, encoded
        return jax.vmap(user_scores)(users)

    def pair(params, encoded, users, items):
        del params, encoded
        return jax.vmap(lambda u, i: user_scores(u)[i])(users, items)

    return ScoreFns(encode=lambda params, graph, rng: None, pair=pair, all_items=all_items)
