"""Every target model through the one interface, with every training method."""

import dataclasses
import json

import jax
import numpy as np
import pandas as pd
import pytest

from dprec import train
from dprec.config.presets import build_config
from dprec.config.run_config import run_spec_from_config
from dprec.data.registry import load_dataset
from dprec.evaluation import noise_scores
from dprec.models import MODEL_NAMES, init_model, make_score_fns
from dprec.pair_scores import role_logits, score_pairs
from dprec.tools.run_loading import load_run

TARGETS = ("gmf", "neumf", "cdae", "lightgcn")


def small_config(model, method, epochs):
    config = build_config(f"model={model},method={method}")
    config.data.synthetic.n_users = 500
    config.data.synthetic.n_items = 200
    config.train.batch_size = 256
    config.train.num_epochs = epochs
    return config


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_pair_scores_agree_with_all_item_scores(model):
    spec = run_spec_from_config(small_config(model, "normal", 1))
    data = load_dataset(spec.data)
    setup = train.create_setup(spec, data)
    graphdef, params = init_model(spec.model, data.n_users, data.n_items, jax.random.key(7))
    params = jax.tree.map(lambda x: x * 30.0, params)  # away from the near-zero init
    score = make_score_fns(graphdef)
    encoded = score.encode(params, setup.graph, None)
    users = np.array([0, 3, 3, 41])
    items = np.array([5, 0, 199, 17])
    table = score.all_items(params, encoded, users)
    assert table.shape == (4, data.n_items)
    pairs = score.pair(params, encoded, users, items)
    np.testing.assert_allclose(
        np.asarray(pairs), np.asarray(table)[np.arange(4), items], rtol=1e-4, atol=1e-4
    )


@pytest.mark.parametrize("model", TARGETS)
def test_model_learns(model, tmp_path):
    config = small_config(model, "normal", 12)
    results = train.train_and_evaluate(config, str(tmp_path))
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    losses = [json.loads(line)["loss"] for line in lines]
    assert losses[-1] < losses[0]
    random_recall = 20 / config.data.synthetic.n_items
    assert results["test"]["paper"]["recall@20"] > 1.5 * random_recall


@pytest.mark.parametrize("method", ["dpi", "dvae", "dpi-dp", "dvae-dn"])
@pytest.mark.parametrize("model", TARGETS)
def test_every_model_runs_every_method(model, method, tmp_path):
    """Each run's noisy-interaction score is its method's: DVAE's is σ(f) of the best-epoch
    target, DPI's the posterior through h and h', which moves it away from σ(f)."""
    name, _, mode = method.partition("-")
    config = small_config(model, name, 1)
    config.method.mode = mode or "alternate"
    config.method.prior_epochs = 1
    config.method.prior_cache_dir = str(tmp_path / "priors")
    results = train.train_and_evaluate(config, str(tmp_path / "run"))
    table = pd.read_csv(tmp_path / "run" / noise_scores.TABLE_FILE)
    np.testing.assert_allclose(
        results["interpretation"]["mean"], table.probability.mean(), rtol=1e-6
    )
    run = load_run(tmp_path / "run")
    pairs = run.data.train

    def probability(role):
        logits = role_logits(run.setup.roles.score[role])
        params = run.best_params[role]
        return 1.0 / (
            1.0 + np.exp(-score_pairs(logits, params, run.setup.graph, pairs.users, pairs.items))
        )

    f, h, h_prime = probability("target"), probability("noise_dp"), probability("noise_dn")
    posterior = h_prime * f / (h_prime * f + h * (1.0 - f))  # eq. 17
    expected = f if name == "dvae" else posterior
    np.testing.assert_allclose(table.probability, expected, rtol=1e-5, atol=1e-7)
    assert np.max(np.abs(posterior - f)) > 1e-4  # the two scores are told apart


def test_cdae_corruption_only_in_training():
    spec = run_spec_from_config(small_config("cdae", "normal", 1))
    data = load_dataset(spec.data)
    setup = train.create_setup(spec, data)
    score = setup.roles.score["target"]
    params = setup.roles.params["target"]
    clean = score.encode(params, setup.graph, None)
    np.testing.assert_array_equal(
        np.asarray(clean), np.asarray(score.encode(params, setup.graph, None))
    )
    noisy_a = score.encode(params, setup.graph, jax.random.key(0))
    noisy_b = score.encode(params, setup.graph, jax.random.key(1))
    assert not np.allclose(np.asarray(noisy_a), np.asarray(clean))
    assert not np.allclose(np.asarray(noisy_a), np.asarray(noisy_b))
    no_corruption = dataclasses.replace(spec.model, corruption=0.0)
    graphdef, _ = init_model(no_corruption, data.n_users, data.n_items, jax.random.key(0))
    plain = make_score_fns(graphdef).encode(params, setup.graph, jax.random.key(0))
    np.testing.assert_allclose(np.asarray(plain), np.asarray(clean), rtol=1e-6)
