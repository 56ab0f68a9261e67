"""LightGCN's batch-user propagation (`propagate_users`): a step's users' final embeddings and
every item's, equal to the whole propagation's rows, with the same dense gradients of both
tables, on one and four devices; and a training step's loss and gradients equal to the path
that propagates every user."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import item_side_test_graph, small_batch_spec

from dprec import train
from dprec.data.registry import load_dataset
from dprec.graph.propagate import propagate, propagate_users
from dprec.methods import get_method
from dprec.methods.common import make_regularizer
from dprec.methods.roles import Roles

N_USERS, N_ITEMS, DIM = 29, 17, 5
ITEM_SIDES = ("dense", "sparse", "none")


def graph_with_rows(num_devices, item_side, monkeypatch, max_users):
    """A random graph with isolated users and items (the last 3 users and 2 items), padding
    edges, the user rows, and T dense, sparse or not built."""
    graph = item_side_test_graph(
        N_USERS,
        N_ITEMS,
        110,
        num_devices,
        item_side,
        monkeypatch,
        pad_to=num_devices * 8,
        row_users=max_users,
    )
    assert graph.rows is not None
    return graph


def tables(seed):
    rng = np.random.default_rng(seed)
    return (
        jnp.asarray(rng.standard_normal((N_USERS, DIM)), jnp.float32),
        jnp.asarray(rng.standard_normal((N_ITEMS, DIM)), jnp.float32),
    )


# A batch's distinct users: some with edges, an isolated one (N_USERS - 1), and two padding
# ids (N_USERS) at the end, as `data.touched` lays them out.
BATCH_USERS = np.array([0, 3, 4, 11, 25, N_USERS - 1, N_USERS, N_USERS], np.int32)


@pytest.mark.parametrize("item_side", ITEM_SIDES)
@pytest.mark.parametrize("devices", (1, 4))
def test_batch_users_get_the_whole_propagation_rows_and_gradients(devices, item_side, monkeypatch):
    graph = graph_with_rows(devices, item_side, monkeypatch, max_users=len(BATCH_USERS))
    user_emb, item_emb = tables(8)
    users = jnp.asarray(BATCH_USERS)
    real = BATCH_USERS < N_USERS
    rng = np.random.default_rng(9)
    user_weights = jnp.asarray(rng.standard_normal((len(BATCH_USERS), DIM)), jnp.float32)
    item_weights = jnp.asarray(rng.standard_normal((N_ITEMS, DIM)), jnp.float32)
    user_weights = user_weights * jnp.asarray(real[:, None], jnp.float32)  # padding: no loss

    def loss(user_final, item_final):
        # the cotangents differ per row and sign, as a plain sum of squares would not test
        return jnp.sum(jnp.sin(user_final) * user_weights) + jnp.sum(item_final**2 * item_weights)

    def whole(u, i, layers):
        user_final, item_final = propagate(graph, u, i, layers)
        return loss(user_final.at[users].get(mode="fill", fill_value=0), item_final)

    def batch(u, i, layers):
        return loss(*propagate_users(graph, u, i, layers, users))

    for layers in (0, 1, 2, 3):
        got = jax.jit(lambda u, i, n=layers: propagate_users(graph, u, i, n, users))(
            user_emb, item_emb
        )
        want = jax.jit(lambda u, i, n=layers: propagate(graph, u, i, n))(user_emb, item_emb)
        np.testing.assert_allclose(
            np.asarray(got[0])[real], np.asarray(want[0])[BATCH_USERS[real]], rtol=1e-5, atol=1e-6
        )
        np.testing.assert_array_equal(np.asarray(got[0])[~real], 0.0)
        np.testing.assert_allclose(np.asarray(got[1]), np.asarray(want[1]), rtol=1e-5, atol=1e-6)
        # an isolated user keeps its embedding / (L+1)
        np.testing.assert_allclose(
            np.asarray(got[0])[5], np.asarray(user_emb)[N_USERS - 1] / (layers + 1), rtol=1e-6
        )
        grad = jax.jit(jax.grad(batch, argnums=(0, 1)), static_argnums=2)(
            user_emb, item_emb, layers
        )
        ref = jax.jit(jax.grad(whole, argnums=(0, 1)), static_argnums=2)(user_emb, item_emb, layers)
        for a, b in zip(grad, ref, strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5)
        if layers:  # the item side reads every user: users outside the batch get gradients
            outside = np.setdiff1d(np.arange(N_USERS - 3), BATCH_USERS)
            assert np.all(np.abs(np.asarray(grad[0])[outside]).sum(axis=1) > 0)


@pytest.mark.parametrize("devices", (1, 4))
def test_bfloat16_batch_propagation_and_gradients_match_the_whole_bfloat16_ones(
    devices, monkeypatch
):
    graph = graph_with_rows(devices, "sparse", monkeypatch, max_users=len(BATCH_USERS))
    user_emb, item_emb = tables(11)
    users = jnp.asarray(BATCH_USERS)
    real = BATCH_USERS < N_USERS
    rng = np.random.default_rng(12)
    user_weights = jnp.asarray(rng.standard_normal((len(BATCH_USERS), DIM)) * real[:, None])
    item_weights = jnp.asarray(rng.standard_normal((N_ITEMS, DIM)))

    def loss(user_final, item_final):
        return jnp.sum(jnp.sin(user_final) * user_weights) + jnp.sum(item_final**2 * item_weights)

    def batch(u, i, dtype):
        return loss(*propagate_users(graph, u, i, 3, users, dtype=dtype))

    def whole(u, i, dtype):
        user_final, item_final = propagate(graph, u, i, 3, dtype=dtype)
        return loss(user_final.at[users].get(mode="fill", fill_value=0), item_final)

    got = propagate_users(graph, user_emb, item_emb, 3, users, dtype="bfloat16")
    want = propagate(graph, user_emb, item_emb, 3, dtype="bfloat16")
    # the same rows read in bfloat16, summed in another order: far closer than to float32
    np.testing.assert_allclose(
        np.asarray(got[0])[real], np.asarray(want[0])[BATCH_USERS[real]], rtol=1e-5, atol=1e-5
    )
    grad = jax.jit(jax.grad(batch, argnums=(0, 1)), static_argnums=2)
    ref = jax.jit(jax.grad(whole, argnums=(0, 1)), static_argnums=2)
    got_grads = grad(user_emb, item_emb, "bfloat16")
    for a, b in zip(got_grads, ref(user_emb, item_emb, "bfloat16"), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5)
    # bfloat16 takes effect both ways: the float32 gradients differ by more than that
    exact = grad(user_emb, item_emb, "float32")
    for a, b in zip(got_grads, exact, strict=True):
        assert np.abs(np.asarray(a) - np.asarray(b)).max() > 1e-4


def test_propagate_users_without_rows_says_what_to_build(monkeypatch):
    graph = graph_with_rows(1, "dense", monkeypatch, max_users=4).replace(rows=None)
    with pytest.raises(ValueError, match="row_users"):
        propagate_users(graph, *tables(1), 3, jnp.asarray(BATCH_USERS[:4]))


# --- a training step -----------------------------------------------------------------------


def small_spec(method, updates="dense"):
    return small_batch_spec("lightgcn", method, updates)


@pytest.fixture(scope="module")
def data():
    return load_dataset(small_spec("normal").data)


def _full_encode_roles(roles: Roles) -> Roles:
    """The roles as scored before batch encoding: every user propagated, then the batch's
    rows."""
    score = {role: dataclasses.replace(fns, batch_tables=None) for role, fns in roles.score.items()}
    return dataclasses.replace(roles, score=score)


def _loss_and_grads(method, spec, roles, state, batch, graph):
    regularizer = make_regularizer(
        spec.model.name, rule=spec.train.l2_rule, lambda0=spec.train.l2, n_users=graph.n_users
    )
    loss_fn = method.make_loss(spec, roles, regularizer)
    rng = jax.random.fold_in(state.rng, state.step)
    args = (state.params, state.frozen, batch, graph, rng, state.step)
    (loss, _), grads = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))(*args)
    return loss, grads


@pytest.mark.parametrize(
    ("method_name", "updates"), [("normal", "dense"), ("dpi", "dense"), ("dpi", "lazy")]
)
def test_step_loss_and_gradients_equal_the_whole_propagation_path(data, method_name, updates):
    spec = small_spec(method_name, updates)
    method = get_method(spec.method.name)
    assert method.batch_encoded(spec) and method.needs_touched_rows(spec)
    setup = train.create_setup(spec, data)
    assert setup.roles.score["target"].batch_tables == {}
    # Away from the near-zero init, so that every gradient term shows.
    state = setup.initial_state.replace(
        params=jax.tree.map(lambda x: x * 30.0, setup.initial_state.params)
    )
    batch = {k: jnp.asarray(v[1]) for k, v in setup.host_batches(1).items()}
    # the dense mode's batches carry the users' lists only (no table is restricted there)
    assert ("touched_items" in batch) == (updates == "lazy") and "touched_users" in batch
    loss, grads = _loss_and_grads(method, spec, setup.roles, state, batch, setup.graph)
    ref_loss, ref_grads = _loss_and_grads(
        method, spec, _full_encode_roles(setup.roles), state, batch, setup.graph
    )
    np.testing.assert_allclose(float(loss), float(ref_loss), rtol=1e-6)
    for a, b in zip(jax.tree.leaves(grads), jax.tree.leaves(ref_grads), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
