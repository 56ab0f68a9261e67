"""Baselines: T-CE truncation, R-CE weights, WBPR's popularity sampler, the random ranker."""

import jax.numpy as jnp
import numpy as np
import pytest

from dprec import train
from dprec.config.presets import build_config
from dprec.data.sampling import PositiveSet, popularity_distribution, sample_negatives
from dprec.evaluation import ranking
from dprec.objectives import rce, tce


def test_drop_rate_schedule():
    rates = [
        float(tce.drop_rate(jnp.asarray(t), max_rate=0.2, num_gradual=100))
        for t in (0, 50, 100, 1000)
    ]
    np.testing.assert_allclose(rates, [0.0, 0.1, 0.2, 0.2])


@pytest.mark.parametrize("rate", [0.0, 0.1, 0.25, 0.4])
def test_tce_keeps_exactly_the_scheduled_count_and_drops_only_positives(rate):
    rng = np.random.default_rng(0)
    losses = jnp.asarray(rng.random(20) * 3)
    labels = jnp.asarray([1.0] * 10 + [0.0] * 10)
    valid = jnp.asarray([1.0] * 8 + [0.0] * 2 + [1.0] * 8 + [0.0] * 2)  # 4 padding slots
    keep = np.asarray(
        tce.truncation_mask(losses=losses, labels=labels, valid=valid, rate=jnp.asarray(rate))
    )
    n_valid = 16
    assert keep.sum() == int((1 - rate) * n_valid)
    assert keep[np.asarray(valid) == 0].sum() == 0  # padding never kept
    assert keep[10:18].all()  # every real negative kept
    kept_pos = np.flatnonzero(keep[:8])
    dropped_pos = np.setdiff1d(np.arange(8), kept_pos)
    if dropped_pos.size:  # the dropped positives are the largest-loss ones
        assert np.asarray(losses)[dropped_pos].min() >= np.asarray(losses)[kept_pos].max()


def test_rce_weights_hand_computed():
    logits = jnp.asarray([0.5, -1.0])
    weights = rce.reweighting(logits=logits, labels=jnp.asarray([1.0, 0.0]), beta=0.5)
    sig = 1 / (1 + np.exp(-np.asarray([0.5, -1.0])))
    np.testing.assert_allclose(np.asarray(weights), [sig[0] ** 0.5, (1 - sig[1]) ** 0.5], rtol=1e-6)


def test_wbpr_sampler_follows_popularity_and_never_returns_a_positive():
    rng = np.random.default_rng(1)
    popularity = np.array([0, 1, 2, 4, 8, 16, 32, 64])
    probs = popularity_distribution(popularity, exponent=1.0)
    positives = PositiveSet.from_pairs(np.array([0, 0]), np.array([7, 3]), 8)
    draws = sample_negatives(rng, np.zeros(60_000, np.int64), positives, probs)
    assert not np.isin(draws, [7, 3]).any()
    assert not (draws == 0).any()  # never-interacted items have probability 0
    allowed = np.array([1, 2, 4, 5, 6])
    expected = probs[allowed] / probs[allowed].sum() * draws.size
    observed = np.bincount(draws, minlength=8)[allowed]
    chi2 = ((observed - expected) ** 2 / expected).sum()
    assert chi2 < 18.5  # 4 degrees of freedom, 0.1 % critical value
    flat = popularity_distribution(popularity, exponent=0.0)
    np.testing.assert_allclose(flat[1:], 1 / 7)


def test_random_ranker_is_fixed_and_near_chance():
    score = ranking.random_scores(50, seed=3)
    users = jnp.arange(4)
    first = score.all_items(None, None, users)
    np.testing.assert_array_equal(np.asarray(first), np.asarray(score.all_items(None, None, users)))
    np.testing.assert_allclose(
        np.asarray(score.pair(None, None, users, jnp.asarray([1, 2, 3, 4]))),
        np.asarray(first)[np.arange(4), [1, 2, 3, 4]],
    )


@pytest.mark.parametrize("method", ["wbpr", "tce", "rce"])
def test_baselines_train_and_report_model_free_rows(tiny_config, method):
    tiny_config.method.name = method
    tiny_config.method.num_gradual = 10
    results = train.train_and_evaluate(tiny_config, None)
    test = results["test"]
    # Chance level: Recall@20 of a random ranking is about 20 / (rankable items).
    assert abs(test["random_paper"]["recall@20"] - 20 / 74) < 0.1


def test_baseline_presets_keep_the_models_hyper_parameters():
    normal = build_config("dataset=modcloth,model=gmf,method=normal")
    for method in ("wbpr", "tce", "rce"):
        config = build_config(f"dataset=modcloth,model=gmf,method={method}")
        assert config.train.l2 == normal.train.l2
        assert config.train.num_epochs == normal.train.num_epochs
