"""The model-free rows of every run: the reference recommenders (`select.fit_references`) and
the random ranker, on the same users and masks as the trained model, fitted once per process
for the same data and evaluation settings (`model_free_rows`, which the loop hands to
`dprec.evaluation.views.create_evaluator`)."""

from __future__ import annotations

import dataclasses
from typing import Any

from dprec import metrics
from dprec.data.dataset import InteractionData
from dprec.evaluation import ranking
from dprec.references.select import ReferenceResults, create_reference_tasks, fit_references
from dprec.specs import EvalSpec

# (data fingerprint, sizes, eval settings) → rows: the runs of one process on the same data
# (a DVAE prior and its run, a sweep's trials, a test file's runs) fit the references once.
_MODEL_FREE_CACHE: dict[tuple[Any, ...], ReferenceResults] = {}
_MODEL_FREE_CACHE_SIZE = 4


def model_free_rows(data: InteractionData, spec: EvalSpec, valid_set: Any) -> ReferenceResults:
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


def _fit_model_free_rows(data: InteractionData, spec: EvalSpec, valid_set: Any) -> ReferenceResults:
    tasks = create_reference_tasks(data, valid_set, spec.chunk_size)
    names = ("popularity", *(name for name in spec.references if name != "popularity"))
    results = fit_references(
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
