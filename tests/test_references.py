"""The reference recommenders: each against a hand computation on a tiny matrix, iALS on a
planted low-rank matrix, the validation selection on a planted best point, and their rows in a
run's results."""

import dataclasses
import functools
import importlib.util
import json
import math

import jax.numpy as jnp
import numpy as np
import pytest

from dprec import metrics, sharding, train
from dprec.config.run_config import run_spec_from_config
from dprec.data.dataset import InteractionData, Interactions
from dprec.data.registry import load_dataset
from dprec.errors import ConfigError
from dprec.evaluation import ranking, views
from dprec.references import (
    REFERENCE_NAMES,
    base,
    check_reference_names,
    ease,
    ials,
    itemknn,
    rp3beta,
    select,
)
from dprec.references import rows as reference_rows
from dprec.references.sparse_ops import interaction_matrix, keep_top_k_per_row

# Users × items: u0 {0, 1}, u1 {0, 1, 2}, u2 {1, 2, 3}, u3 {3, 4}.
FOUR_BY_FIVE = np.array(
    [[1, 1, 0, 0, 0], [1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 0, 1, 1]], np.float32
)


def _csr(dense):
    users, items = np.nonzero(dense)
    return interaction_matrix(users, items, *dense.shape)


def _pairs(users, items):
    return Interactions(users=np.array(users, np.int32), items=np.array(items, np.int32))


def _tasks(train_pairs, relevant, n_items, chunk_size=8):
    """A ReferenceTasks whose validation and test rank `relevant` with `train_pairs` masked."""
    task = ranking.make_ranking_task(
        relevant, [train_pairs], n_items=n_items, chunk_size=chunk_size
    )
    warm = np.ones(task.users.shape[0], bool)
    return select.ReferenceTasks(valid=task, test=task, warm_test_users=warm)


def test_item_knn_keeps_the_k_nearest_items_with_shrinkage():
    # Item counts n = (2, 3, 2, 2, 1); co-counts c01 = c12 = 2, c02 = c13 = c23 = c34 = 1.
    # sim_ij = c_ij / (√(n_i n_j) + 1).
    s01 = s12 = 2 / (math.sqrt(6) + 1)
    s02 = s23 = 1 / (2 + 1)
    s13 = 1 / (math.sqrt(6) + 1)
    s34 = 1 / (math.sqrt(2) + 1)
    train = _csr(FOUR_BY_FIVE)
    sim = itemknn.cosine_similarity(train, shrink=1.0).toarray()
    expected_sim = np.zeros((5, 5))
    for (i, j), value in {(0, 1): s01, (0, 2): s02, (1, 2): s12, (1, 3): s13, (2, 3): s23,
                          (3, 4): s34}.items():  # fmt: skip
        expected_sim[i, j] = expected_sim[j, i] = value
    np.testing.assert_allclose(sim, expected_sim, rtol=1e-6)
    # k = 2 nearest of each scored item j (column j): 0 → {1, 2}; 1 → {0, 2} (0 and 2 tie,
    # 3 dropped); 2 → {1, 0} (0 and 3 tie at 1/3: the lowest index); 3 → {4, 2}; 4 → {3}.
    expected = np.zeros((5, 5))
    for i, j in [(1, 0), (2, 0), (0, 1), (2, 1), (1, 2), (0, 2), (4, 3), (2, 3), (3, 4)]:
        expected[i, j] = expected_sim[i, j]
    weights = itemknn.item_knn_weights(train, k=2, shrink=1.0).toarray()
    np.testing.assert_allclose(weights, expected, rtol=1e-6)
    # u0 (items 0, 1 masked): item 2 scores s12 + s02; items 3 and 4 score 0 (tie: 3 first).
    scorer = itemknn.fit_item_knn(train, k=2, shrink=1.0)
    np.testing.assert_allclose(scorer(np.array([0]))[0, 2], s12 + s02, rtol=1e-6)
    tasks = _tasks(_pairs([0, 0], [0, 1]), _pairs([0], [4]), n_items=5)
    top = select.make_rank_fn(3)(scorer, tasks.test)
    np.testing.assert_array_equal(top, [[2, 3, 4]])


def test_top_k_per_row_breaks_ties_by_the_lowest_column():
    matrix = np.array([[0, 3, 1, 3, 2], [5, 0, 0, 0, 0], [0, 0, 0, 0, 0]], np.float32)
    kept = keep_top_k_per_row(matrix, 2).toarray()
    np.testing.assert_array_equal(kept, [[0, 3, 0, 3, 0], [5, 0, 0, 0, 0], [0, 0, 0, 0, 0]])


def test_rp3beta_is_the_popularity_divided_three_step_walk():
    # u0 {0, 1}, u1 {1, 2}, u2 {1}: user degrees (2, 2, 1), item degrees (1, 3, 1).
    train = _csr(np.array([[1, 1, 0], [0, 1, 1], [0, 1, 0]], np.float32))
    # α = 1: P_iu · P_ui rows: item 0 → u0 → (½, ½, 0); item 1 → ⅓ (u0 + u1 + u2) =
    # (1/6, 2/3, 1/6); item 2 → u1 → (0, ½, ½). Column j / n_j^β with β = ½, diagonal dropped.
    root3 = math.sqrt(3)
    expected = np.array([[0, 0.5 / root3, 0], [1 / 6, 0, 1 / 6], [0, 0.5 / root3, 0]])
    weights = rp3beta.rp3beta_weights(train, alpha=1.0, beta=0.5, k=2).toarray()
    np.testing.assert_allclose(weights, expected, rtol=1e-6)
    # α = 2 squares every transition probability: item 1's row is ⅑ (¼, 3/2, ¼); β = 0 and
    # k = 1 keep one destination per item (item 1: 0 and 2 tie, the lowest index wins).
    expected = np.array([[0, 0.25, 0], [0.25 / 9, 0, 0], [0, 0.25, 0]])
    weights = rp3beta.rp3beta_weights(train, alpha=2.0, beta=0.0, k=1).toarray()
    np.testing.assert_allclose(weights, expected, rtol=1e-6)


def _ease_by_least_squares(dense, l2):
    """B column by column: argmin ‖x_j − X_{−j} b‖² + λ‖b‖², b_j = 0 (float64 NumPy)."""
    n_items = dense.shape[1]
    weights = np.zeros((n_items, n_items))
    for j in range(n_items):
        others = np.delete(np.arange(n_items), j)
        x_others = dense[:, others].astype(np.float64)
        lhs = x_others.T @ x_others + l2 * np.eye(n_items - 1)
        weights[others, j] = np.linalg.solve(lhs, x_others.T @ dense[:, j])
    return weights


@pytest.mark.parametrize("l2", [0.5, 20.0])
def test_ease_closed_form_solves_the_zero_diagonal_least_squares(l2):
    dense = (np.random.default_rng(3).random((30, 7)) < 0.4).astype(np.float32)
    train = _csr(dense)
    gram = jnp.asarray((train.T @ train).toarray(), jnp.float32)
    weights = np.asarray(ease.ease_weights(gram, jnp.float32(l2)))
    expected = _ease_by_least_squares(dense, l2)
    np.testing.assert_allclose(weights, expected, rtol=2e-4, atol=2e-5)
    assert np.all(np.diag(weights) == 0.0)
    users = np.array([0, 5, 7])
    scores = np.asarray(ease.fit_ease(train, l2=l2)(users))
    np.testing.assert_allclose(scores, dense[users] @ expected, rtol=2e-4, atol=2e-5)


def test_ease_refuses_a_dense_inverse_above_the_item_limit():
    assert ease.why_not_ease(ease.MAX_ITEMS) == ""
    assert "skipped" in ease.why_not_ease(ease.MAX_ITEMS + 1)


def _auc(positive, negative):
    return (positive[:, None] > negative[None, :]).mean()


def test_ials_recovers_a_planted_rank_two_matrix():
    pytest.importorskip("implicit")
    # Users 0-19 like items 0-14, users 20-39 items 15-29; a fifth of the liked pairs held out.
    liked = np.zeros((40, 30), bool)
    liked[:20, :15] = liked[20:, 15:] = True
    rng = np.random.default_rng(0)
    held_out = liked & (rng.random(liked.shape) < 0.2)
    train = _csr((liked & ~held_out).astype(np.float32))
    scorer = ials.fit_ials(train, factors=8, regularization=0.1, alpha=10.0)
    scores = scorer(np.arange(40))
    assert _auc(scores[held_out], scores[~liked]) > 0.9
    # Deterministic: a fixed random state.
    again = ials.fit_ials(train, factors=8, regularization=0.1, alpha=10.0)(np.arange(40))
    np.testing.assert_array_equal(scores, again)


def test_ials_gives_cold_users_equal_scores():
    pytest.importorskip("implicit")
    dense = np.zeros((5, 6), np.float32)
    dense[:4, :3] = 1.0  # user 4 has no training pair
    scores = ials.fit_ials(_csr(dense), factors=4, regularization=0.1, alpha=1.0)(np.arange(5))
    np.testing.assert_array_equal(scores[4], np.zeros(6, np.float32))
    assert scores[0, :3].min() > scores[0, 3:].max()


def test_ials_without_implicit_is_skipped_with_the_install_line(monkeypatch):
    real_find_spec = importlib.util.find_spec

    def find_spec(name, *args):
        return None if name == "implicit" else real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    reason = ials.why_not_ials(10)
    assert "pip install 'dprec[references]'" in reason
    data = _planted_selection_data()
    results = select.fit_references(
        data,
        data.valid_clean,
        ks=(1,),
        names=("popularity", "ials"),
        chunk_size=4,
        selection_metric="recall@1",
    )
    assert set(results.rows) == {"popularity_paper", "popularity_warm"}
    assert results.settings["ials"] == {"label": "iALS", "skipped": reason}


def _planted_selection_data():
    """4 users × 6 items: everyone trained on item 5 except user 3 (cold); every validation
    item is 1; test items: 0 for users 0 and 1, 3 for users 2 and 3."""
    train_pairs = _pairs([0, 1, 2], [5, 5, 5])
    valid = _pairs([0, 1, 2, 3], [1, 1, 1, 1])
    test = _pairs([0, 1, 2, 3], [0, 0, 3, 3])
    return InteractionData(
        n_users=4,
        n_items=6,
        train=train_pairs,
        valid=valid,
        valid_clean=valid,
        test=test,
        test_clean=test,
        user_ids=np.arange(4),
        item_ids=np.arange(6),
    )


def _one_item_reference():
    """Grid point {"item": t}: score 1 for item t, 0 for the rest (ties: lowest index)."""

    def fit(train, *, item, tag=""):
        del tag

        def scores(users):
            out = np.zeros((users.shape[0], train.shape[1]), np.float32)
            out[:, item] = 1.0
            return out

        return scores

    grid = ({"item": 0}, {"item": 1, "tag": "first"}, {"item": 1, "tag": "second"}, {"item": 2})
    return base.Reference(name="planted", label="Planted", hyper_grid=grid, fit_fn=fit)


def test_selection_picks_the_planted_best_point_and_tests_it():
    data = _planted_selection_data()
    tasks = select.create_reference_tasks(data, data.valid_clean, chunk_size=2)
    train_matrix = interaction_matrix(data.train.users, data.train.items, 4, 6)
    rows, settings = select.select_and_test(
        _one_item_reference(),
        train_matrix,
        tasks,
        ks=(1,),
        selection_metric="recall@1",
        rank_fn=select.make_rank_fn(1),
    )
    # Only item 1 (every validation item) recalls anything; the first of the two equal
    # points wins.
    assert [point["recall@1"] for point in settings["grid"]] == [0.0, 1.0, 1.0, 0.0]
    assert settings["hyper"] == {"item": 1, "tag": "first"}
    assert settings["valid"]["recall@1"] == 1.0
    # Test: item 1 (validation) and 5 (train) are masked, the rest tie: item 0 is ranked
    # first, a hit for users 0 and 1; user 3 is cold.
    assert rows["planted_paper"] == {"recall@1": 0.5, "ndcg@1": 0.5, "users": 4}
    assert rows["planted_warm"] == pytest.approx({"recall@1": 2 / 3, "ndcg@1": 2 / 3, "users": 3})


def _tiny_spec(tiny_config, **eval_values):
    tiny_config.method.name = "normal"
    tiny_config.train.num_epochs = 1
    for key, value in eval_values.items():
        tiny_config.eval[key] = value
    return run_spec_from_config(tiny_config)


def test_popularity_reference_reproduces_the_popularity_ranker(tiny_config):
    spec = _tiny_spec(tiny_config)
    data = load_dataset(spec.data)
    results = select.fit_references(
        data,
        data.valid_clean,
        ks=spec.eval.ks,
        names=("popularity",),
        chunk_size=64,
        selection_metric="recall@20",
    )
    task = ranking.make_ranking_task(
        data.test_clean, [data.train, data.valid], n_items=data.n_items, chunk_size=64
    )
    topk = ranking.make_topk_fn(ranking.popularity_scores(data.item_popularity()), 20)
    hits = ranking.hits_of(ranking.rank(topk, None, task), task)
    assert results.rows["popularity_paper"] == metrics.summarize(hits, task.n_relevant, (5, 20))


def test_rows_on_a_four_device_mesh_mask_each_users_own_items(tiny_config, monkeypatch):
    """The target's tasks are sliced per device; the reference rows must still mask each
    user's own training and validation items (checked against a dense NumPy ranking)."""
    monkeypatch.setattr(reference_rows, "_MODEL_FREE_CACHE", {})
    spec = _tiny_spec(tiny_config, references=("popularity",))
    data = load_dataset(spec.data)
    score = ranking.popularity_scores(data.item_popularity())
    mesh = sharding.create_mesh(4)
    rows = functools.partial(
        reference_rows.model_free_rows, data, spec.eval, views.validation_set(data, spec.eval)
    )
    evaluator = views.create_evaluator(data, spec.eval, score, mesh=mesh, model_free_fn=rows)
    masked = np.tile(data.item_popularity().astype(np.float64), (data.n_users, 1))
    for part in (data.train, data.valid):
        masked[part.users, part.items] = -np.inf
    users, n_relevant = np.unique(data.test_clean.users, return_counts=True)
    top = np.argsort(-masked[users], axis=1, kind="stable")[:, :20]
    relevant = set(zip(data.test_clean.users.tolist(), data.test_clean.items.tolist(), strict=True))
    hits = np.array([[(u, i) in relevant for i in row] for u, row in zip(users, top, strict=True)])
    expected = metrics.summarize(hits, n_relevant, (5, 20))
    assert evaluator.model_free["popularity_paper"] == pytest.approx(expected)


def test_reference_rows_land_in_a_runs_results_and_can_be_switched_off(tiny_config, tmp_path):
    spec = _tiny_spec(tiny_config)
    assert spec.eval.references == ("popularity", "itemknn", "rp3beta", "ease")
    train.run_spec(spec, str(tmp_path / "run"))
    test = json.loads((tmp_path / "run" / "results.json").read_text())["test"]
    for name in spec.eval.references:
        for view in ("paper", "warm"):
            row = test[f"{name}_{view}"]
            assert set(row) == {"recall@5", "ndcg@5", "recall@20", "ndcg@20", "users"}
            assert 0.0 <= row["recall@20"] <= 1.0
        assert test[f"{name}_paper"]["users"] == test["paper"]["users"]
        assert test[f"{name}_warm"]["users"] == test["warm"]["users"]
    off = dataclasses.replace(spec, eval=dataclasses.replace(spec.eval, references=()))
    views_off = set(train.run_spec(off, None)["test"])
    # Popularity's rows are part of the results contract: always there.
    assert views_off == {"paper", "warm", "cold", "noisy", "popularity_paper",
                         "popularity_warm", "random_paper", "random_warm"}  # fmt: skip


@pytest.mark.parametrize(
    ("references", "message"),
    [(("ease", "knn"), "unknown reference 'knn'"), (("ease", "ease"), "twice"), ("ease", "tuple")],
)
def test_reference_names_are_checked_in_one_line(references, message):
    with pytest.raises(ConfigError, match=message) as caught:
        check_reference_names(references)
    assert "\n" not in str(caught.value)
    if "unknown" in message:
        assert all(name in str(caught.value) for name in REFERENCE_NAMES)


def test_the_config_boundary_rejects_an_unknown_reference(tiny_config):
    tiny_config.eval.references = ("popularity", "slim")
    with pytest.raises(ConfigError, match="eval.references has unknown reference 'slim'"):
        run_spec_from_config(tiny_config)


def test_one_line_against_the_best_reference_row():
    from dprec.references.names import versus_references

    test = {
        "paper": {"recall@20": 0.3},
        "popularity_paper": {"recall@20": 0.2},
        "ease_paper": {"recall@20": 0.4},
        "random_paper": {"recall@20": 0.9},  # not a reference row
        "ease_warm": {"recall@20": 0.1},  # another view
    }
    line = versus_references(test, "recall@20")
    assert line == "paper recall@20 0.3000 is BELOW the best reference, EASE 0.4000 (-25.0 %)"
    test["paper"]["recall@20"] = 0.5
    assert "is above the best reference, EASE 0.4000 (+25.0 %)" in versus_references(
        test, "recall@20"
    )
    assert "no reference row" in versus_references({"paper": {"recall@20": 0.3}}, "recall@20")
