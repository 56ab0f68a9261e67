"""Normal training end to end through library functions (no flags)."""

import jax
import numpy as np
import pytest

from dprec import train
from dprec.presets import build_config


def test_same_seed_gives_identical_metrics(tiny_config):
    first = train.train_and_evaluate(tiny_config, None)
    second = train.train_and_evaluate(tiny_config, None)
    assert first["test"] == second["test"] and first["valid"] == second["valid"]
    tiny_config.seed = 1
    other = train.train_and_evaluate(tiny_config, None)
    assert other["test"] != first["test"]


@pytest.mark.parametrize("model", ["gmf", "mf"])
def test_model_learns_on_synthetic_default(model):
    config = build_config(f"model={model},method=normal")
    config.train.num_epochs = 60
    results = train.train_and_evaluate(config, None)
    n_items = config.data.synthetic.n_items
    random_recall = 20 / n_items  # expected Recall@20 of a random ranking
    paper = results["test"]["paper"]
    assert paper["recall@20"] > 5 * random_recall
    # Personalisation, not just popularity: well above the popularity ranker.
    assert paper["recall@20"] > 1.5 * results["test"]["popularity_paper"]["recall@20"]


def test_training_runs_sharded_over_simulated_devices(tiny_config):
    assert jax.device_count() == 4  # tests/conftest.py simulates four CPU devices
    tiny_config.train.batch_size = 250  # not a multiple of 4: padded to 252
    results = train.train_and_evaluate(tiny_config, None)
    assert np.isfinite(results["valid"]["recall@20"])
