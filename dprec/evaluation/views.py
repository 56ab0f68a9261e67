"""The evaluation views of a run: validation, and the test under the paper protocol, on warm and
cold users, on the noisy test, and beside them the rows of the model-free rankers (the
reference recommenders and the random ranker, `dprec.references.rows`, which the loop passes in
as `model_free_fn`: the references rank with this package's `ranking`, so they sit above it).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from dprec import metrics, sharding
from dprec.data.dataset import InteractionData
from dprec.evaluation import ranking
from dprec.models import ScoreFns
from dprec.specs import EvalSpec

Metrics = dict[str, float | int | None]


class ModelFreeResults(Protocol):
    """What `model_free_fn` returns (`dprec.references.select.ReferenceResults`)."""

    rows: dict[str, Metrics]  # {name}_paper / {name}_warm → metrics
    settings: dict[str, dict[str, Any]]  # name → chosen hyper-parameters, JSON-ready


def validation_set(data: InteractionData, spec: EvalSpec) -> Any:
    """The interactions that validation ranks: the clean or the noisy split (`valid_set`)."""
    return data.valid_clean if spec.valid_set == "clean" else data.valid


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
    model_free_fn: Callable[[], ModelFreeResults]

    @functools.cached_property
    def _model_free(self) -> ModelFreeResults:
        return self.model_free_fn()

    @property
    def model_free(self) -> dict[str, Metrics]:
        """The reference and random rows `{name}_paper` / `{name}_warm`, computed once, on
        first use: a set-up that never tests (a benchmark, `dprec-recommend`) fits none."""
        return self._model_free.rows

    @property
    def reference_settings(self) -> dict[str, dict[str, Any]]:
        """name → the chosen hyper-parameters, their validation metrics and the seconds of
        each reference (`ModelFreeResults.settings`); JSON-ready."""
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
    data: InteractionData,
    spec: EvalSpec,
    score: ScoreFns,
    graph: Any = None,
    mesh: Any = None,
    *,
    model_free_fn: Callable[[], ModelFreeResults],
) -> Evaluator:
    """Prepare the ranking tasks once; `model_free_fn()` (the reference and random rows, e.g.
    `functools.partial(dprec.references.rows.model_free_rows, data, spec, valid_set)`) runs
    once, on the first `test` (`Evaluator.model_free`).

    `score` are the target's scoring functions and `graph` the training adjacency they
    encode with (see `train.create_setup`); with a `mesh` the devices share every chunk's
    users (`ranking.make_topk_fn`)."""
    k_max = max(spec.ks)
    valid_set = validation_set(data, spec)
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
        model_free_fn=model_free_fn,
    )
