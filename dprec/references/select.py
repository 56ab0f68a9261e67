"""Fit every reference on the training split, choose its grid point on the validation split,
and evaluate that fit on the clean test, under the trained models' protocol.

Validation ranks `valid_set`'s users with their training items masked; the test ranks the clean
test users with training and validation items masked, all items, ties by the lowest index
(`evaluation.ranking`). Rows: `{name}_paper` (all test users) and `{name}_warm` (users with ≥ 1
training interaction), each a `metrics.summarize` dict. Scores are computed chunk by chunk
(`base.ChunkScorer`) and ranked by the same jitted mask-and-top-k as every model
(`ranking.make_topk_fn`), so no users × items matrix is ever held.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dprec import metrics
from dprec.data.dataset import InteractionData, Interactions
from dprec.evaluation import ranking
from dprec.models import ScoreFns
from dprec.references import get_reference
from dprec.references.base import ChunkScorer, Reference
from dprec.references.sparse_ops import interaction_matrix

_log = logging.getLogger(__name__)

Metrics = dict[str, float | int | None]
RankFn = Callable[[ChunkScorer, ranking.RankingTask], np.ndarray]


@dataclasses.dataclass(frozen=True)
class ReferenceTasks:
    """The validation and clean-test rankings of one dataset, laid out for one device.

    warm_test_users `[U_test]` bool: the test users with ≥ 1 training interaction.
    """

    valid: ranking.RankingTask
    test: ranking.RankingTask
    warm_test_users: np.ndarray


@dataclasses.dataclass(frozen=True)
class ReferenceResults:
    """rows: `{name}_paper` / `{name}_warm` → test metrics of every reference that ran;
    settings: name → {"label", "hyper" (the chosen grid point), "valid" (its validation
    metrics), "grid" (every point with its validation selection metric), "seconds" (fits,
    validation and test of the whole grid)}, or {"label", "skipped": reason}. JSON-ready."""

    rows: dict[str, Metrics]
    settings: dict[str, dict[str, Any]]


def create_reference_tasks(
    data: InteractionData, valid_set: Interactions, chunk_size: int
) -> ReferenceTasks:
    """The ranking tasks with `views.create_evaluator`'s masks, on one device (multiple 1)."""
    args = {"n_items": data.n_items, "chunk_size": chunk_size}
    valid = ranking.make_ranking_task(valid_set, [data.train], **args)
    test = ranking.make_ranking_task(data.test_clean, [data.train, data.valid], **args)
    warm = data.train_degree()[test.users] > 0
    return ReferenceTasks(valid=valid, test=test, warm_test_users=warm)


# Ranks a chunk's precomputed scores: the "params" of each call are the scores `[C, I]`.
_CHUNK_SCORES = ScoreFns(
    encode=lambda params, graph, rng: None,
    pair=lambda params, encoded, rows, items: params[rows, items],  # rows of the chunk
    all_items=lambda params, encoded, users: params,
)


@functools.lru_cache(maxsize=8)
def _chunk_topk_fn(k: int) -> Callable[..., Any]:
    # One jitted function per k for the process: every run's references reuse its compilations.
    return ranking.make_topk_fn(_CHUNK_SCORES, k)


def make_rank_fn(k: int) -> RankFn:
    """`(scorer, task) -> top items [U, k]`: each chunk scored on the host (or device), then
    masked and ranked by `ranking.make_topk_fn` (compiled once per chunk shape and k)."""
    topk_fn = _chunk_topk_fn(k)

    def rank(scorer: ChunkScorer, task: ranking.RankingTask) -> np.ndarray:
        tops = []
        for chunk in range(task.user_chunks.shape[0]):
            scores = jnp.asarray(scorer(task.user_chunks[chunk]), jnp.float32)
            part = slice(chunk, chunk + 1)
            args = (task.user_chunks[part], task.excluded_rows[part], task.excluded_items[part])
            tops.append(topk_fn(scores, None, *args))  # not awaited: the next chunk overlaps
        items = np.concatenate([np.asarray(top).reshape(-1, k) for top in jax.device_get(tops)])
        return items[: task.users.shape[0]]

    return rank


def _hits(scorer: ChunkScorer, task: ranking.RankingTask, rank_fn: RankFn) -> np.ndarray:
    """`[U, k]` bool: whether each ranked item is relevant (`ranking.hits_of`)."""
    return ranking.hits_of(rank_fn(scorer, task), task)


def select_and_test(
    reference: Reference,
    train: Any,
    tasks: ReferenceTasks,
    *,
    ks: tuple[int, ...],
    selection_metric: str,
    rank_fn: RankFn,
) -> tuple[dict[str, Metrics], dict[str, Any]]:
    """Fit `reference` at every grid point on `train` (CSR `[U, I]`), keep the best by the
    validation `selection_metric` (the first of equal ones; a point without validation users
    counts as −inf), and test it: (its paper and warm rows, its settings)."""
    tic = time.perf_counter()
    best: tuple[float, dict[str, Any], Metrics, ChunkScorer] | None = None
    grid = []
    for hyper in reference.grid():
        scorer = reference.fit(train, **hyper)
        valid = metrics.summarize(_hits(scorer, tasks.valid, rank_fn), tasks.valid.n_relevant, ks)
        value = valid[selection_metric]
        value = -np.inf if value is None else float(value)
        grid.append({"hyper": hyper, selection_metric: valid[selection_metric]})
        if best is None or value > best[0]:
            best = (value, hyper, valid, scorer)
        del scorer
    assert best is not None, f"{reference.name} has an empty grid"
    _, hyper, valid, scorer = best
    hits = _hits(scorer, tasks.test, rank_fn)
    n_relevant = tasks.test.n_relevant
    rows = {
        f"{reference.name}_paper": metrics.summarize(hits, n_relevant, ks),
        f"{reference.name}_warm": metrics.summarize(hits, n_relevant, ks, tasks.warm_test_users),
    }
    settings = {
        "label": reference.label,
        "hyper": hyper,
        "valid": valid,
        "grid": grid,
        "seconds": time.perf_counter() - tic,
    }
    return rows, settings


def fit_references(
    data: InteractionData,
    valid_set: Interactions,
    *,
    ks: tuple[int, ...],
    names: Sequence[str],
    chunk_size: int,
    selection_metric: str,
    tasks: ReferenceTasks | None = None,
) -> ReferenceResults:
    """Every reference of `names`, selected on `valid_set` (the run's validation set) and
    tested on the clean test (see the module docstring). A reference that cannot run here
    (`Reference.why_not`) is skipped with one logged line. `tasks`: prebuilt
    `create_reference_tasks(data, valid_set, chunk_size)`, to share them."""
    tasks = tasks or create_reference_tasks(data, valid_set, chunk_size)
    train = interaction_matrix(data.train.users, data.train.items, data.n_users, data.n_items)
    rank_fn = make_rank_fn(max(ks))
    rows: dict[str, Metrics] = {}
    settings: dict[str, dict[str, Any]] = {}
    for name in names:
        reference = get_reference(name)
        reason = reference.why_not(data.n_items)
        if reason:
            _log.warning("reference %s skipped: %s", reference.label, reason)
            settings[name] = {"label": reference.label, "skipped": reason}
            continue
        rows_of, settings[name] = select_and_test(
            reference,
            train,
            tasks,
            ks=tuple(ks),
            selection_metric=selection_metric,
            rank_fn=rank_fn,
        )
        rows |= rows_of
        _log.debug(
            "reference %s: %s, valid %s %s, test %s %s (%.1f s)",
            reference.label,
            settings[name]["hyper"],
            selection_metric,
            settings[name]["valid"][selection_metric],
            selection_metric,
            rows_of[f"{name}_paper"][selection_metric],
            settings[name]["seconds"],
        )
    return ReferenceResults(rows=rows, settings=settings)
