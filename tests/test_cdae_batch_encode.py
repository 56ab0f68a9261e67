"""CDAE's batch-restricted encoding: the batch users' codes from their rows only, exactly what
the whole-graph encoding gives them, with the same corruption draw, loss and gradients."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import small_batch_spec

from dprec import sharding, train
from dprec.config.presets import build_config
from dprec.config.run_config import run_spec_from_config
from dprec.data.registry import load_dataset
from dprec.graph.rows import build_user_rows, user_rows_matmul
from dprec.lazy_rows import loss_view
from dprec.methods import get_method
from dprec.methods.common import make_regularizer
from dprec.methods.roles import Roles
from dprec.models import BATCH_ENCODED, make_score_fns
from dprec.models.cdae import keep_edges


def small_spec(method, updates="dense"):
    return small_batch_spec("cdae", method, updates)


@pytest.fixture(scope="module")
def data():
    return load_dataset(small_spec("normal").data)


def _setup(spec, data, mesh=None):
    setup = train.create_setup(spec, data, mesh=mesh)
    # Away from the near-zero init, so that tanh bends and every gradient term shows.
    scale = jax.tree.map(lambda x: x * 30.0, setup.initial_state.params)
    return setup, setup.initial_state.replace(params=scale)


def _batch(setup, index=0):
    return {k: jnp.asarray(v[index]) for k, v in setup.host_batches(1).items()}


def _close(a, b, rtol=1e-5, atol=1e-6):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)


def test_user_rows_matmul_is_the_adjacency_rows():
    rng = np.random.default_rng(0)
    n_users, n_items = 9, 7
    users = rng.integers(0, n_users - 1, 30)  # the last user has no edges
    items = rng.integers(0, n_items, 30)
    weights = rng.random(30).astype(np.float32)
    host = build_user_rows(users, items, weights, n_users, max_users=4)
    size = host.pop("size")
    degree = np.bincount(users, minlength=n_users)
    assert size == np.sort(degree)[::-1][:4].sum()
    from dprec.graph.rows import UserRows

    rows = UserRows(**{k: jnp.asarray(v) for k, v in host.items()}, size=size)
    values = rng.normal(size=(n_items, 3)).astype(np.float32)
    dense = np.zeros((n_users, n_items), np.float32)
    np.add.at(dense, (users, items), weights)
    batch = np.array([np.argmax(degree), n_users - 1, n_users, 2])  # incl. empty and padding
    got = user_rows_matmul(rows, jnp.asarray(values), jnp.asarray(batch))
    expected = np.concatenate([dense, np.zeros((1, n_items), np.float32)])[batch] @ values
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-5, atol=1e-6)
    # Replaced weights see the edge ids: zero the edges with an even id.
    drop_even = user_rows_matmul(
        rows, jnp.asarray(values), jnp.asarray(batch), lambda e, w: jnp.where(e % 2 == 1, w, 0.0)
    )
    odd = np.arange(30) % 2 == 1
    dense_odd = np.zeros((n_users + 1, n_items), np.float32)
    np.add.at(dense_odd, (users[odd], items[odd]), weights[odd])
    np.testing.assert_allclose(np.asarray(drop_even), dense_odd[batch] @ values, atol=1e-6)


def test_row_edges_owners_are_the_binary_search_of_the_row_ends():
    from dprec.graph.rows import UserRows, row_edges

    rng = np.random.default_rng(3)
    n_users, n_items = 40, 9
    degree = rng.integers(0, 6, n_users)  # users without edges too
    users = np.repeat(np.arange(n_users), degree)
    items = rng.integers(0, n_items, users.shape[0])
    host = build_user_rows(users, items, np.ones(users.shape[0], np.float32), n_users, max_users=7)
    size = host.pop("size")
    rows = UserRows(**{k: jnp.asarray(v) for k, v in host.items()}, size=size)
    busiest = np.argsort(degree, kind="stable")[::-1][:7]  # their edges fill every slot
    batches = [
        np.concatenate([np.sort(busiest), [n_users] * 2]),
        np.concatenate([rng.choice(n_users, 5, replace=False), [n_users] * 4]),
        np.array([np.argmin(degree), n_users, n_users]),  # no edges at all
    ]
    for batch in batches:
        position, owner, valid = (np.asarray(x) for x in row_edges(rows, jnp.asarray(batch)))
        counts = degree[np.minimum(batch, n_users - 1)] * (batch < n_users)
        ends = np.cumsum(counts)
        expected = np.minimum(np.searchsorted(ends, np.arange(size), side="right"), len(batch) - 1)
        np.testing.assert_array_equal(owner, expected)
        np.testing.assert_array_equal(valid, np.arange(size) < ends[-1])
        # each valid slot holds one of its owner's edges, each edge once
        real_users = users[host["edges"][position[valid]]]
        np.testing.assert_array_equal(real_users, batch[owner[valid]])
        assert len(set(position[valid].tolist())) == int(valid.sum())
    assert np.cumsum(degree[busiest])[-1] == size  # the first batch reached the last slot


def test_corruption_mask_is_keyed_by_edge_id():
    rng = jax.random.key(3)
    every = np.asarray(keep_edges(rng, jnp.arange(5000), 0.5))
    assert 0.45 < every.mean() < 0.55
    some = np.random.default_rng(1).permutation(5000)[:700]
    np.testing.assert_array_equal(np.asarray(keep_edges(rng, jnp.asarray(some), 0.5)), every[some])
    other = np.asarray(keep_edges(jax.random.key(4), jnp.arange(5000), 0.5))
    assert (other != every).mean() > 0.3


@pytest.mark.parametrize("rng", [None, 0])
def test_batch_encode_equals_the_full_encode_rows(data, rng):
    setup, state = _setup(small_spec("normal"), data)
    params = state.params["target"]
    score = setup.roles.score["target"]
    assert score.batch_tables == {"user_embedding": "user"}
    key = None if rng is None else jax.random.key(rng)
    batch = _batch(setup)
    users = batch["touched_users"]
    view = loss_view(params, score.batch_tables, batch).params
    restricted = np.asarray(score.encode(view, setup.graph, key, users))
    full = np.asarray(score.encode(params, setup.graph, key))
    real = np.asarray(users) < data.n_users
    assert real.sum() > 10 and (~real).any()
    np.testing.assert_allclose(restricted[real], full[np.asarray(users)[real]], atol=1e-5)
    if rng is not None:  # corrupted: differs from the clean codes
        clean = np.asarray(score.encode(params, setup.graph, None))
        assert not np.allclose(full, clean, atol=1e-3)


def _full_encode_roles(roles: Roles) -> Roles:
    """The roles as scored before batch encoding: every user's code, then the batch's rows."""
    score = {role: dataclasses.replace(fns, batch_tables=None) for role, fns in roles.score.items()}
    return dataclasses.replace(roles, score=score)


def _loss_and_grads(method, spec, roles, state, batch, graph):
    regularizer = make_regularizer(
        spec.model.name,
        rule=spec.train.l2_rule,
        lambda0=spec.train.l2,
        n_users=graph.n_users,
        norm_scale=method.norm_l2_scale(spec),
    )
    loss_fn = method.make_loss(spec, roles, regularizer)
    rng = jax.random.fold_in(state.rng, state.step)
    args = (state.params, state.frozen, batch, graph, rng, state.step)
    if method.stateful(spec):
        args = (*args, state.method_state)
    (loss, _), grads = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))(*args)
    return loss, grads


@pytest.mark.parametrize("method_name", ["normal", "dpi"])
def test_step_loss_and_gradients_equal_the_full_encode_path(data, method_name):
    spec = small_spec(method_name)
    method = get_method(spec.method.name)
    setup, state = _setup(spec, data)
    batch = _batch(setup, 1)
    loss, grads = _loss_and_grads(method, spec, setup.roles, state, batch, setup.graph)
    ref_loss, ref_grads = _loss_and_grads(
        method, spec, _full_encode_roles(setup.roles), state, batch, setup.graph
    )
    np.testing.assert_allclose(float(loss), float(ref_loss), rtol=1e-6)
    assert spec.train.l2 > 0  # the dense mode's norm term covers the whole table V
    _close(grads, ref_grads)
    encoder = np.asarray(grads["target"]["encoder"]["embedding"])
    assert np.abs(encoder).max() > 1e-3  # the codes' gradient reaches the encoder


def test_multi_device_graph_gives_the_one_device_codes(data):
    spec = small_spec("normal")
    one, state = _setup(spec, data, mesh=sharding.create_mesh(1))
    many, _ = _setup(spec, data, mesh=sharding.create_mesh(4))
    assert many.graph.mesh is not None and one.graph.mesh is None
    params = jax.device_get(state.params["target"])  # host copies: either mesh takes them
    score = one.roles.score["target"]
    batch = _batch(one)
    view = jax.device_get(loss_view(state.params["target"], score.batch_tables, batch).params)
    batch = jax.device_get(batch)
    key = jax.random.key(5)
    users = batch["touched_users"]
    a = score.encode(view, one.graph, key, users)
    b = jax.jit(score.encode)(view, many.graph, key, users)
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)
    full = jax.jit(score.encode)(params, many.graph, key)
    real = np.asarray(users) < data.n_users
    np.testing.assert_allclose(
        np.asarray(a)[real], np.asarray(full)[np.asarray(users)[real]], atol=1e-5
    )


def test_cdae_and_lightgcn_are_batch_encoded_and_other_models_keep_whole_encodings():
    assert set(BATCH_ENCODED) == {"cdae", "lightgcn"}
    method = get_method("normal")
    for model, batch_tables in (("gmf", None), ("neumf", None), ("lightgcn", {})):
        spec = run_spec_from_config(build_config(f"model={model},method=normal"))
        roles = method.create_roles(spec, 10, 8, jax.random.key(0))
        # LightGCN restricts no table: its item side reads every user
        assert roles.score["target"].batch_tables == batch_tables
        assert method.needs_touched_rows(spec) == (batch_tables is not None)


def test_lazy_cdae_step_leaves_other_users_untouched(data):
    spec = small_spec("dpi", updates="lazy")
    method = get_method("dpi")
    assert method.lazy_tables(spec)["target"] == {"user_embedding": "user"}
    setup, state = _setup(spec, data)
    batch = _batch(setup)
    n_users = data.n_users
    step = jax.jit(method.make_train_step(spec, setup.roles, optax.adam(1e-2), n_users=n_users))
    before = np.asarray(state.params["target"]["user_embedding"]["embedding"])
    after, logs = step(state, batch, setup.graph)
    assert np.isfinite(float(logs["loss"]))
    new = np.asarray(after.params["target"]["user_embedding"]["embedding"])
    touched = np.asarray(batch["touched_users"])
    real = touched[touched < n_users]
    untouched = np.setdiff1d(np.arange(n_users), touched)
    np.testing.assert_array_equal(new[untouched], before[untouched])
    assert np.all(np.any(new[real] != before[real], axis=1))
    # The encoder (an item table read through the rows) still updates densely.
    assert not np.array_equal(
        np.asarray(after.params["target"]["encoder"]["embedding"]),
        np.asarray(state.params["target"]["encoder"]["embedding"]),
    )


def test_make_score_fns_names_the_architecture():
    from dprec.models import init_model, model_name

    for name in ("cdae", "gmf", "neumf", "mf", "lightgcn"):
        spec = dataclasses.replace(small_spec("normal").model, name=name)
        graphdef, _ = init_model(spec, 6, 5, jax.random.key(0))
        assert model_name(graphdef) == name
        fns = make_score_fns(graphdef)
        assert (fns.batch_tables is not None) == (name in BATCH_ENCODED)


def test_lazy_norm_term_covers_the_touched_rows_of_v(data):
    spec = small_spec("normal", updates="lazy")
    setup, state = _setup(spec, data)
    params = state.params["target"]
    batch = _batch(setup)
    regularizer = make_regularizer("cdae", rule="paper", lambda0=0.3, n_users=data.n_users)
    view = loss_view(params, get_method("normal").lazy_tables(spec)["target"], batch)
    touched = np.asarray(batch["touched_users"])
    v = np.asarray(params["user_embedding"]["embedding"])[touched[touched < data.n_users]]
    others = [
        np.asarray(leaf)
        for path, leaf in jax.tree_util.tree_leaves_with_path(params)
        if "user_embedding" not in jax.tree_util.keystr(path)
    ]
    expected = 0.3 * (np.linalg.norm(v) + sum(np.linalg.norm(x) for x in others))
    np.testing.assert_allclose(float(regularizer(view, batch)), expected, rtol=1e-5)
