"""Full-ranking evaluation: masking, tie-breaking by lowest index, chunking."""

import jax.numpy as jnp
import numpy as np
import pytest

from dprec.data.dataset import Interactions
from dprec.evaluation import ranking
from dprec.models import ScoreFns


def _pairs(users, items):
    return Interactions(users=np.array(users, np.int32), items=np.array(items, np.int32))


def _table_fn(table):
    """ScoreFns reading a fixed score table `[n_users, n_items]`."""
    scores = jnp.asarray(table, jnp.float32)
    return ScoreFns(
        encode=lambda params, graph, rng: None,
        pair=lambda params, encoded, users, items: scores[users, items],
        all_items=lambda params, encoded, users: scores[users],
    )


def test_masked_items_never_ranked_and_ties_by_lowest_index():
    n_items = 6
    # User 0 scores all items equally: the top-3 is the three lowest unmasked indices.
    table = np.zeros((2, n_items))
    table[1] = [0, 5, 4, 3, 2, 1]
    relevant = _pairs([0, 1], [4, 5])
    excluded = [_pairs([0, 0, 1], [0, 2, 1])]
    task = ranking.make_ranking_task(relevant, excluded, n_items=n_items, chunk_size=8)
    top = ranking.rank(ranking.make_topk_fn(_table_fn(table), 3), None, task)
    np.testing.assert_array_equal(top[0], [1, 3, 4])  # items 0 and 2 masked
    np.testing.assert_array_equal(top[1], [2, 3, 4])  # item 1 (score 5) masked
    hits = ranking.hits_of(top, task)
    np.testing.assert_array_equal(hits, [[False, False, True], [False, False, False]])


@pytest.mark.parametrize("chunk_size", [1, 3, 64])
def test_chunked_equals_unchunked(chunk_size):
    rng = np.random.default_rng(0)
    n_users, n_items = 17, 30
    table = rng.standard_normal((n_users, n_items))
    relevant = _pairs(rng.integers(0, n_users, 40), rng.integers(0, n_items, 40))
    excluded = [_pairs(rng.integers(0, n_users, 60), rng.integers(0, n_items, 60))]
    topk_fn = ranking.make_topk_fn(_table_fn(table), 5)
    task = ranking.make_ranking_task(relevant, excluded, n_items=n_items, chunk_size=chunk_size)
    top = ranking.rank(topk_fn, None, task)
    # Reference: dense NumPy ranking with a stable sort (ties by lowest index).
    masked = table.copy()
    masked[excluded[0].users, excluded[0].items] = -np.inf
    expected = np.argsort(-masked[task.users], axis=1, kind="stable")[:, :5]
    np.testing.assert_array_equal(top, expected)


def test_popularity_ranker_orders_by_training_counts():
    fn = ranking.popularity_scores(np.array([3, 9, 1, 9]))
    task = ranking.make_ranking_task(_pairs([0], [2]), [], n_items=4, chunk_size=4)
    top = ranking.rank(ranking.make_topk_fn(fn, 4), None, task)
    np.testing.assert_array_equal(top[0], [1, 3, 0, 2])


def test_excluded_pairs_are_laid_out_per_device_slice():
    # Users 0..5 in one chunk of 6 split into 2 slices of 3 rows (two devices); user 4 is row 1
    # of slice 1. Each slice's pairs sit in its own E = 2 columns, padded with row 3.
    relevant = _pairs(range(6), [0] * 6)
    excluded = [_pairs([0, 2, 4, 4], [7, 8, 9, 5])]
    task = ranking.make_ranking_task(relevant, excluded, n_items=10, chunk_size=5, multiple=2)
    assert task.chunk_size == 6  # 5 rounded up to a multiple of 2
    np.testing.assert_array_equal(task.excluded_rows, [[0, 2, 1, 1]])
    np.testing.assert_array_equal(task.excluded_items, [[7, 8, 9, 5]])


@pytest.mark.parametrize("chunk_size", [1, 4])
def test_one_device_ranks_a_sliced_task_like_the_plain_one(chunk_size):
    """A task laid out for 2 devices, ranked on one: the same top items as the plain task."""
    rng = np.random.default_rng(1)
    table = rng.standard_normal((11, 9))
    relevant = _pairs(rng.integers(0, 11, 30), rng.integers(0, 9, 30))
    excluded = [_pairs(rng.integers(0, 11, 40), rng.integers(0, 9, 40))]
    topk_fn = ranking.make_topk_fn(_table_fn(table), 4)
    args = {"n_items": 9, "chunk_size": chunk_size}
    plain = ranking.make_ranking_task(relevant, excluded, **args)
    sliced = ranking.make_ranking_task(relevant, excluded, **args, multiple=2)
    # On one device the slices' local rows must be made chunk rows again to rank sliced.
    slice_size = sliced.chunk_size // 2
    width = sliced.excluded_rows.shape[1] // 2
    offsets = np.repeat(np.arange(2) * slice_size, width)
    rows = np.where(
        sliced.excluded_rows < slice_size, sliced.excluded_rows + offsets, sliced.chunk_size
    )
    top = np.asarray(topk_fn(None, None, sliced.user_chunks, rows, sliced.excluded_items))
    top = top.reshape(-1, 4)[: sliced.users.shape[0]]
    np.testing.assert_array_equal(top, ranking.rank(topk_fn, None, plain))
