"""The DPI/DVAE train step: DP/DN alternation, role isolation, gradient routing, the prior."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from dprec.config.presets import build_config
from dprec.config.run_config import run_spec_from_config
from dprec.data.batches import epoch_batches
from dprec.data.registry import load_dataset
from dprec.data.sampling import PositiveSet
from dprec.methods import get_method
from dprec.methods.common import make_regularizer
from dprec.methods.denoising import NOISE_ROLE, make_denoising_loss
from dprec.state import create_train_state
from dprec.steps import DN, DP


@pytest.fixture(scope="module")
def setup():
    config = build_config("method=dpi")
    config.data.synthetic.n_users = 200
    config.data.synthetic.n_items = 60
    config.train.batch_size = 64
    spec = run_spec_from_config(config)
    data = load_dataset(spec.data)
    positives = PositiveSet.from_pairs(data.train.users, data.train.items, data.n_items)
    batches = _epoch(spec, data, positives)
    batch_list = [{k: jnp.asarray(v[i]) for k, v in batches.items()} for i in range(3)]
    return spec, data, batch_list


def _epoch(spec, data, positives):
    return epoch_batches(
        data,
        positives,
        seed=spec.seed,
        epoch=1,
        batch_size=64,
        num_negatives=spec.train.num_negatives,
        with_touched_rows=spec.train.updates == "lazy",
    )


def make(spec, data, frozen=None):
    method = get_method(spec.method.name)
    roles = method.create_roles(spec, data.n_users, data.n_items, jax.random.key(0), frozen)
    optimizer = optax.adam(1e-3)
    state = create_train_state(roles.params, optimizer, jax.random.key(1), frozen=roles.frozen)
    step = jax.jit(method.make_train_step(spec, roles, optimizer, n_users=data.n_users))
    return roles, state, step


def same(a, b):
    return all(
        np.array_equal(np.asarray(x), np.asarray(y))
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


def test_alternates_dp_dn_dp_and_compiles_once(setup):
    spec, data, batches = setup
    _, state, step = make(spec, data)
    phases = []
    for batch in batches:
        state, logs = step(state, batch, None)
        phases.append(int(logs["phase"]))
    assert phases == [DP, DN, DP]
    assert step._cache_size() == 1


def _lazy(spec, data):
    """The spec in the lazy update mode and batches with their touched rows."""
    spec = dataclasses.replace(spec, train=dataclasses.replace(spec.train, updates="lazy"))
    positives = PositiveSet.from_pairs(data.train.users, data.train.items, data.n_items)
    batches = _epoch(spec, data, positives)
    return spec, [{k: jnp.asarray(v[i]) for k, v in batches.items()} for i in range(3)]


@pytest.mark.parametrize("updates", ["dense", "lazy"])
def test_inactive_noise_model_untouched_bit_for_bit(setup, updates):
    spec, data, batches = setup
    if updates == "lazy":
        spec, batches = _lazy(spec, data)
    _, state0, step = make(spec, data)
    h, h_prime = NOISE_ROLE[DP], NOISE_ROLE[DN]
    state1, _ = step(state0, batches[0], None)  # DP: h moves, h' must not
    assert same(state1.params[h_prime], state0.params[h_prime])
    assert same(state1.opt_state[h_prime], state0.opt_state[h_prime])
    assert not same(state1.params[h], state0.params[h])
    state2, _ = step(state1, batches[1], None)  # DN: h' moves, h must not
    assert same(state2.params[h], state1.params[h])
    assert same(state2.opt_state[h], state1.opt_state[h])
    assert not same(state2.params[h_prime], state1.params[h_prime])
    for role in ("target", "aux"):  # f and g move in both sub-tasks
        assert not same(state2.params[role], state1.params[role])
        assert not same(state1.params[role], state0.params[role])


@pytest.mark.parametrize("mode, frozen_index", [("dp", DN), ("dn", DP)])
def test_single_subtask_modes_never_step_the_other_noise_model(setup, mode, frozen_index):
    spec, data, batches = setup
    spec = dataclasses.replace(spec, method=dataclasses.replace(spec.method, mode=mode))
    _, state0, step = make(spec, data)
    state = state0
    phases = []
    for batch in batches:
        state, logs = step(state, batch, None)
        phases.append(int(logs["phase"]))
    assert set(phases) == {1 - frozen_index}
    frozen_role = NOISE_ROLE[frozen_index]
    assert same(state.params[frozen_role], state0.params[frozen_role])
    assert same(state.opt_state[frozen_role], state0.opt_state[frozen_role])


def test_gradient_routing(setup):
    """g learns only through the KL, h only through the likelihood, f through both."""
    spec, data, batches = setup
    roles, state, _ = make(spec, data)
    trainable = state.params

    def grads(**changes):
        method = dataclasses.replace(spec.method, **changes)
        regularizer = make_regularizer(
            spec.model.name, rule=spec.train.l2_rule, lambda0=0.1, n_users=data.n_users
        )
        loss_fn = make_denoising_loss(roles, method, regularizer, reference_role="aux")
        rng = jax.random.key(3)
        return jax.grad(lambda p: loss_fn(p, {}, batches[0], None, rng, DP)[0])(trainable)

    base, other_c, other_alpha = grads(), grads(c1=7.0), grads(alpha=0.9)
    assert same(base["aux"], other_c["aux"])  # C1 (likelihood) does not reach g
    assert not same(base["aux"], other_alpha["aux"])
    assert same(base["noise_dp"], other_alpha["noise_dp"])  # α (KL) does not reach h
    zeros = jax.tree.map(jnp.zeros_like, base["noise_dn"])
    assert same(base["noise_dn"], zeros)  # a DP step gives h' no gradient
    assert not same(base["target"], other_c["target"])
    assert not same(base["target"], other_alpha["target"])


def test_dvae_prior_never_changes(setup):
    spec, data, batches = setup
    spec = dataclasses.replace(spec, method=dataclasses.replace(spec.method, name="dvae"))
    normal_spec = dataclasses.replace(spec, method=dataclasses.replace(spec.method, name="normal"))
    prior_roles = get_method("normal").create_roles(
        normal_spec, data.n_users, data.n_items, jax.random.key(5)
    )
    prior = prior_roles.params["target"]
    roles, state0, step = make(spec, data, frozen={"prior": prior})
    assert "aux" not in state0.params and "prior" in state0.frozen
    state = state0
    for batch in batches:
        state, _ = step(state, batch, None)
    assert same(state.frozen["prior"], prior)
    assert not same(state.params["target"], state0.params["target"])
