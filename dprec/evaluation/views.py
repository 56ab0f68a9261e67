"""The evaluation views of a run: validation, and the test under the paper protocol, on warm and
cold users, on the noisy test, and the reference recommenders (popularity, ItemKNN, RP3β, EASE,
iALS: `dprec.references`) and the random ranker on the same users.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from dprec import metrics, sharding
from dprec.data.dataset import InteractionData
from dprec.evaluation import ranking
from dprec.models import ScoreFns
from dprec.references import select
from dprec.specs import EvalSpec

Metrics = dict[str, float | int | None]


@dataclasses.dataclass(frozen=True)
class Evaluator:
    """Ranks the validation and test users of one dataset with one score function."""

    ks: tuple[int, ...]
    valid_task: ranking.RankingTask
    test_task: ranking.RankingTask
    noisy_task: ranking.RankingTask
    warm_test_users: np.ndarray  # [U_test] bool: ≥ 1 training interaction
    topk_fn: Any
    graph: Any  # the training adjacency on device (None for models that need none)
    # () -> the reference and random rows; run by the first `test` only (see `model_free`).
    model_free_fn: Callable[[], select.ReferenceResults]

    @functools.cached_property
    def _model_free(self) -> select.ReferenceResults:
        return self.model_free_fn()

    @property
    def model_free(self) -> dict[str, Metrics]:
        """The reference and random rows `{name}_paper` / `{name}_warm`, computed once, on
        first use: a set-up that never tests (a benchmark, `dprec-recommend`) fits none."""
        return self._model_free.rows

    @property
    def reference_settings(self) -> dict[str, dict[str, Any]]:
        """name → the chosen hyper-parameters, their validation metrics and the seconds of
        each reference (`select.ReferenceResults.settings`); JSON-ready."""
        return self._model_free.settings

    def validate(self, params: Any) -> Metrics:
        """Metrics on the validation set (training items masked)."""
        return self._summarize(params, self.valid_task)

    def test_paper(self, params: Any) -> Metrics:
        """The clean test of all users only (the paper view), e.g. for per-epoch curves."""
        return self._summarize(params, self.test_task)

    def test(self, params: Any) -> dict[str, Metrics]:
        """Test views: paper (all users), warm, cold, noisy, and the reference and random rows."""
        hits = self._hits(params, self.test_task)
        n_rel = self.test_task.n_relevant
        return {
            "paper": metrics.summarize(hits, n_rel, self.ks),
            "warm": metrics.summarize(hits, n_rel, self.ks, self.warm_test_users),
            "cold": metrics.summarize(hits, n_rel, self.ks, ~self.warm_test_users),
            "noisy": self._summarize(params, self.noisy_task),
            # Copies: the rows are shared by every run of the process on the same data.
            **{view: dict(row) for view, row in self.model_free.items()},
        }

    def _hits(self, params: Any, task: ranking.RankingTask) -> np.ndarray:
        return ranking.hits_of(ranking.rank(self.topk_fn, params, task, self.graph), task)

    def _summarize(self, params: Any, task: ranking.RankingTask) -> Metrics:
        return metrics.summarize(self._hits(params, task), task.n_relevant, self.ks)


def create_evaluator(
    data: InteractionData, spec: EvalSpec, score: ScoreFns, graph: Any = None, mesh: Any = None
) -> Evaluator:
    """Prepare the ranking tasks once; the reference and random rows are computed once, by the
    first `test` (`Evaluator.model_free`).

    `score` are the target's scoring functions and `graph` the training adjacency they
    encode with (see `train.create_setup`); with a `mesh` the devices share every chunk's
    users (`ranking.make_topk_fn`)."""
    k_max = max(spec.ks)
    valid_set = data.valid_clean if spec.valid_set == "clean" else data.valid
    multiple = 1 if mesh is None else sharding.num_shards(mesh)
    task_args = {"n_items": data.n_items, "chunk_size": spec.chunk_size, "multiple": multiple}
    valid_task = ranking.make_ranking_task(valid_set, [data.train], **task_args)
    test_task = ranking.make_ranking_task(data.test_clean, [data.train, data.valid], **task_args)
    noisy_task = ranking.make_ranking_task(data.test, [data.train, data.valid], **task_args)
    warm = data.train_degree()[test_task.users] > 0
    return Evaluator(
        ks=tuple(spec.ks),
        valid_task=valid_task,
        test_task=test_task,
        noisy_task=noisy_task,
        warm_test_users=warm,
        topk_fn=ranking.make_topk_fn(score, k_max, mesh=mesh),
        graph=graph,
        model_free_fn=functools.partial(_model_free_rows, data, spec, valid_set),
    )


# (data fingerprint, sizes, eval settings) → rows: the runs of one process on the same data
# (a DVAE prior and its run, a sweep's trials, a test file's runs) fit the references once.
_MODEL_FREE_CACHE: dict[tuple[Any, ...], select.ReferenceResults] = {}
_MODEL_FREE_CACHE_SIZE = 4


def _model_free_rows(
    data: InteractionData, spec: EvalSpec, valid_set: Any
) -> select.ReferenceResults:
    """The reference rows (popularity always: its rows are in the results contract) and the
    random ranker's, on tasks laid out for one device: these rankers run unsharded, and a task
    sliced for several devices numbers its masked rows within each device's slice.
    Cached per process for the same data and evaluation settings."""
    key = (
        data.fingerprint,
        data.n_users,
        data.n_items,
        tuple(spec.ks),
        tuple(spec.references),
        spec.chunk_size,
        spec.selection_metric,
        spec.valid_set,
    )
    if key not in _MODEL_FREE_CACHE:
        while len(_MODEL_FREE_CACHE) >= _MODEL_FREE_CACHE_SIZE:
            _MODEL_FREE_CACHE.pop(next(iter(_MODEL_FREE_CACHE)))
        _MODEL_FREE_CACHE[key] = _fit_model_free_rows(data, spec, valid_set)
    return _MODEL_FREE_CACHE[key]


def _fit_model_free_rows(
    data: InteractionData, spec: EvalSpec, valid_set: Any
) -> select.ReferenceResults:
    tasks = select.create_reference_tasks(data, valid_set, spec.chunk_size)
    names = ("popularity", *(name for name in spec.references if name != "popularity"))
    results = select.fit_references(
        data,
        valid_set,
        ks=tuple(spec.ks),
        names=names,
        chunk_size=spec.chunk_size,
        selection_metric=spec.selection_metric,
        tasks=tasks,
    )
    topk = ranking.make_topk_fn(ranking.random_scores(data.n_items), max(spec.ks))
    hits = ranking.hits_of(ranking.rank(topk, None, tasks.test), tasks.test)
    n_relevant, warm = tasks.test.n_relevant, tasks.warm_test_users
    random_rows = {
        "random_paper": metrics.summarize(hits, n_relevant, spec.ks),
        "random_warm": metrics.summarize(hits, n_relevant, spec.ks, warm),
    }
    return dataclasses.replace(results, rows={**results.rows, **random_rows})
