"""The DVAE prior f': its own seed, its cache key, and the cache round trip."""

import dataclasses

import jax
import numpy as np

from dprec import train
from dprec.config.run_config import run_spec_from_config
from dprec.data.registry import load_dataset
from dprec.methods import prior


def test_prior_run_spec_uses_its_own_seed_and_normal_training(tiny_config):
    tiny_config.method.name = "dvae"
    spec = run_spec_from_config(tiny_config)
    prior_spec = prior.prior_run_spec(spec)
    assert prior_spec.method.name == "normal"
    assert prior_spec.seed == spec.seed + spec.method.prior_seed_offset
    copy_spec = dataclasses.replace(
        spec, method=dataclasses.replace(spec.method, prior_init="copy")
    )
    assert prior.prior_run_spec(copy_spec).seed == spec.seed


def test_cache_key_changes_with_everything_that_determines_the_prior(tiny_config):
    tiny_config.method.name = "dvae"
    spec = run_spec_from_config(tiny_config)
    data = load_dataset(spec.data)
    base = prior.cache_key(prior.prior_run_spec(spec), data)
    variants = [
        dataclasses.replace(spec, seed=spec.seed + 1),
        dataclasses.replace(spec, train=dataclasses.replace(spec.train, l2=0.5)),
        dataclasses.replace(spec, train=dataclasses.replace(spec.train, num_epochs=7)),
        dataclasses.replace(spec, model=dataclasses.replace(spec.model, embed_dim=16)),
        dataclasses.replace(spec, method=dataclasses.replace(spec.method, prior_init="copy")),
    ]
    keys = {prior.cache_key(prior.prior_run_spec(v), data) for v in variants}
    assert base not in keys and len(keys) == len(variants)
    other_data = dataclasses.replace(
        spec.data, synthetic=dataclasses.replace(spec.data.synthetic, seed=9)
    )
    other = dataclasses.replace(spec, data=other_data)
    assert prior.cache_key(prior.prior_run_spec(other), load_dataset(other_data)) != base
    # Settings of the DVAE run itself (C1, C2, α) do not change f'.
    same_prior = dataclasses.replace(spec, method=dataclasses.replace(spec.method, c1=1.0))
    assert prior.cache_key(prior.prior_run_spec(same_prior), data) == base


def test_prior_is_trained_once_then_loaded(tiny_config, tmp_path):
    tiny_config.method.name = "dvae"
    tiny_config.method.prior_cache_dir = str(tmp_path)
    spec = run_spec_from_config(tiny_config)
    data = load_dataset(spec.data)
    calls = []

    def counting_fit(*args, **kwargs):
        calls.append(args[0].seed)
        return train.fit(*args, **kwargs)

    first = prior.pretrained_prior(spec, data, fit_fn=counting_fit)
    second = prior.pretrained_prior(spec, data, fit_fn=counting_fit)
    assert calls == [spec.seed + spec.method.prior_seed_offset]
    assert len(list(tmp_path.glob("*.npz"))) == 1
    for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(second), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert jax.tree.structure(first) == jax.tree.structure(second)
