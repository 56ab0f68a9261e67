"""The evaluation views of a run: validation, and the test under the paper protocol, on warm and
cold users, on the noisy test, and the popularity and random rankers on the same users.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from dprec import metrics, sharding
from dprec.data.dataset import InteractionData
from dprec.evaluation import ranking
from dprec.models import ScoreFns
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
    model_free: dict[str, Metrics]  # popularity and random rankers: computed once

    def validate(self, params: Any) -> Metrics:
        """Metrics on the validation set (training items masked)."""
        return self._summarize(params, self.valid_task)

    def test_paper(self, params: Any) -> Metrics:
        """The clean test of all users only (the paper view), e.g. for per-epoch curves."""
        return self._summarize(params, self.test_task)

    def test(self, params: Any) -> dict[str, Metrics]:
        """Test views: paper (all users), warm, cold, noisy, and the popularity and random rows."""
        hits = self._hits(params, self.test_task)
        n_rel = self.test_task.n_relevant
        return {
            "paper": metrics.summarize(hits, n_rel, self.ks),
            "warm": metrics.summarize(hits, n_rel, self.ks, self.warm_test_users),
            "cold": metrics.summarize(hits, n_rel, self.ks, ~self.warm_test_users),
            "noisy": self._summarize(params, self.noisy_task),
            **self.model_free,
        }

    def _hits(self, params: Any, task: ranking.RankingTask) -> np.ndarray:
        return ranking.hits_of(ranking.rank(self.topk_fn, params, task, self.graph), task)

    def _summarize(self, params: Any, task: ranking.RankingTask) -> Metrics:
        return metrics.summarize(self._hits(params, task), task.n_relevant, self.ks)


def create_evaluator(
    data: InteractionData, spec: EvalSpec, score: ScoreFns, graph: Any = None, mesh: Any = None
) -> Evaluator:
    """Prepare the ranking tasks once; the popularity and random rows are computed here, once.

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

    model_free = {}
    for name, baseline in (
        ("popularity", ranking.popularity_scores(data.item_popularity())),
        ("random", ranking.random_scores(data.n_items)),
    ):
        topk = ranking.make_topk_fn(baseline, k_max)
        hits = ranking.hits_of(ranking.rank(topk, None, test_task), test_task)
        model_free[f"{name}_paper"] = metrics.summarize(hits, test_task.n_relevant, spec.ks)
        model_free[f"{name}_warm"] = metrics.summarize(hits, test_task.n_relevant, spec.ks, warm)
    return Evaluator(
        ks=tuple(spec.ks),
        valid_task=valid_task,
        test_task=test_task,
        noisy_task=noisy_task,
        warm_test_users=warm,
        topk_fn=ranking.make_topk_fn(score, k_max, mesh=mesh),
        graph=graph,
        model_free=model_free,
    )
