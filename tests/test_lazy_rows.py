"""Scale mode: touched rows of a batch, the lazy row-wise optimizer, touched-row L2."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from dprec import lazy_rows
from dprec.config.presets import build_config
from dprec.config.run_config import run_spec_from_config
from dprec.data.touched import touched_rows
from dprec.methods import get_method
from dprec.methods.common import make_regularizer
from dprec.methods.normal import make_normal_loss
from dprec.models import init_model, make_score_fns, row_tables
from dprec.specs import ModelSpec
from dprec.state import create_train_state
from dprec.steps import make_train_step


def role_tables(spec):
    return get_method(spec.method.name).lazy_tables(spec)


N_USERS, N_ITEMS = 50, 30


def _batches(seed=0, n_batches=3, batch=8, n_neg=2, pad=3):
    rng = np.random.default_rng(seed)
    users = rng.integers(0, N_USERS, (n_batches, batch))
    pos = rng.integers(0, N_ITEMS, (n_batches, batch))
    neg = rng.integers(0, N_ITEMS, (n_batches, batch, n_neg))
    mask = np.ones((n_batches, batch), np.float32)
    mask[-1, -pad:] = 0.0  # padding at the end of the last batch, as in an epoch
    return users, pos, neg, mask


def test_touched_rows_invariants():
    users, pos, neg, mask = _batches()
    out = touched_rows(users, pos, neg, mask, n_users=N_USERS, n_items=N_ITEMS, multiple=4)
    assert out["touched_users"].shape[1] % 4 == 0 and out["touched_items"].shape[1] % 4 == 0
    for b in range(users.shape[0]):
        valid = mask[b] > 0
        touched_u, touched_i = out["touched_users"][b], out["touched_items"][b]
        real_u, real_i = touched_u[touched_u < N_USERS], touched_i[touched_i < N_ITEMS]
        # Distinct, sorted, and exactly the rows the real examples use.
        assert np.all(np.diff(real_u) > 0) and np.all(np.diff(real_i) > 0)
        assert set(real_u) == set(users[b][valid])
        assert set(real_i) == set(pos[b][valid]) | set(neg[b][valid].ravel())
        np.testing.assert_array_equal(touched_u[out["local_users"][b][valid]], users[b][valid])
        np.testing.assert_array_equal(touched_i[out["local_pos_items"][b][valid]], pos[b][valid])
        np.testing.assert_array_equal(touched_i[out["local_neg_items"][b][valid]], neg[b][valid])
        # Padding examples point at padding slots: they touch no row.
        assert np.all(touched_u[out["local_users"][b][~valid]] == N_USERS)
        assert np.all(touched_i[out["local_neg_items"][b][~valid]] == N_ITEMS)


def test_touched_users_only_are_the_user_half_of_the_touched_rows():
    users, pos, neg, mask = _batches()
    both = touched_rows(users, pos, neg, mask, n_users=N_USERS, n_items=N_ITEMS, multiple=4)
    only = touched_rows(
        users, pos, neg, mask, n_users=N_USERS, n_items=N_ITEMS, multiple=4, items=False
    )
    assert sorted(only) == ["local_users", "touched_users"]
    for key, value in only.items():
        np.testing.assert_array_equal(value, both[key])


def _gmf_step_inputs(l2):
    spec = ModelSpec(name="gmf", embed_dim=4, init_std=0.3)
    graphdef, params = init_model(spec, N_USERS, N_ITEMS, jax.random.key(0))
    score = make_score_fns(graphdef)
    loss_fn = make_normal_loss(
        score, make_regularizer("gmf", rule="paper", lambda0=l2, n_users=N_USERS)
    )
    optimizer = optax.adam(0.05)
    users, pos, neg, mask = _batches()
    arrays = {"users": users, "pos_items": pos, "neg_items": neg, "mask": mask}
    arrays |= touched_rows(**arrays, n_users=N_USERS, n_items=N_ITEMS)
    batches = [{k: jnp.asarray(v[b]) for k, v in arrays.items()} for b in range(users.shape[0])]
    return params, loss_fn, optimizer, batches


def _rows(batch):
    users = np.asarray(batch["users"])[np.asarray(batch["mask"]) > 0]
    items = np.concatenate(
        [np.asarray(batch["pos_items"]), np.asarray(batch["neg_items"]).ravel()]
    )  # the last batch's padding rows are at its end; the first batches have none
    return np.unique(users), np.unique(items)


def test_lazy_step_touches_only_batch_rows_and_matches_dense_adam_there():
    params, loss_fn, optimizer, batches = _gmf_step_inputs(l2=0.0)
    tables = {"target": row_tables("gmf")}
    dense_step = jax.jit(make_train_step(loss_fn, optimizer))
    lazy_step = jax.jit(make_train_step(loss_fn, optimizer, tables=tables))
    state = create_train_state({"target": params}, optimizer, jax.random.key(1))
    state, _ = dense_step(state, batches[0], None)  # non-zero Adam moments
    batch = batches[1]
    dense, _ = dense_step(state, batch, None)
    lazy, _ = lazy_step(state, batch, None)
    users, items = _rows(batch)
    untouched_users = np.setdiff1d(np.arange(N_USERS), users)
    assert untouched_users.size > 0
    for name, rows, untouched in (
        ("user_embedding", users, untouched_users),
        ("item_embedding", items, np.setdiff1d(np.arange(N_ITEMS), items)),
    ):
        before = np.asarray(state.params["target"][name]["embedding"])
        after_lazy = np.asarray(lazy.params["target"][name]["embedding"])
        after_dense = np.asarray(dense.params["target"][name]["embedding"])
        # Untouched rows: bit for bit unchanged, parameters and both Adam moments.
        np.testing.assert_array_equal(after_lazy[untouched], before[untouched])
        for moment in ("mu", "nu"):
            old = np.asarray(getattr(state.opt_state["target"][0], moment)[name]["embedding"])
            new = np.asarray(getattr(lazy.opt_state["target"][0], moment)[name]["embedding"])
            np.testing.assert_array_equal(new[untouched], old[untouched])
        # Touched rows: the dense Adam step.
        np.testing.assert_allclose(after_lazy[rows], after_dense[rows], rtol=1e-6, atol=1e-7)
        for moment in ("mu", "nu"):
            np.testing.assert_allclose(
                np.asarray(getattr(lazy.opt_state["target"][0], moment)[name]["embedding"])[rows],
                np.asarray(getattr(dense.opt_state["target"][0], moment)[name]["embedding"])[rows],
                rtol=1e-6,
                atol=1e-9,
            )
    # Dense Adam does move rows outside the batch (momentum): the test can tell them apart.
    moved = np.asarray(dense.params["target"]["user_embedding"]["embedding"])[untouched_users]
    before = np.asarray(state.params["target"]["user_embedding"]["embedding"])[untouched_users]
    assert np.abs(moved - before).max() > 1e-4
    # Dense parameters (the output layer) get the same step in both modes; the count is global.
    np.testing.assert_allclose(
        lazy.params["target"]["predict"]["kernel"],
        dense.params["target"]["predict"]["kernel"],
        rtol=1e-6,
    )
    assert int(lazy.opt_state["target"][0].count) == int(dense.opt_state["target"][0].count) == 2


def test_touched_row_l2_is_the_penalty_of_the_batch_rows():
    params, _, _, batches = _gmf_step_inputs(l2=0.0)
    batch = batches[0]
    regularizer = make_regularizer("gmf", rule="paper", lambda0=0.3, n_users=N_USERS)
    view = lazy_rows.loss_view(params, row_tables("gmf"), batch)
    users, items = _rows(batch)
    squares = (
        np.sum(np.square(np.asarray(params["user_embedding"]["embedding"])[users]))
        + np.sum(np.square(np.asarray(params["item_embedding"]["embedding"])[items]))
        + np.sum(np.square(np.asarray(params["predict"]["kernel"])))
        + np.sum(np.square(np.asarray(params["predict"]["bias"])))
    )
    np.testing.assert_allclose(
        float(regularizer(view, batch)), 0.3 * 0.5 * squares / N_USERS, rtol=1e-5
    )


def test_role_tables_only_for_row_local_models():
    def tables(arg, **train):
        config = build_config(arg)
        config.train.updates = "lazy"
        return role_tables(run_spec_from_config(config))

    assert set(tables("dataset=synthetic,model=gmf,method=dpi")) == {
        "target",
        "aux",
        "noise_dp",
        "noise_dn",
    }
    assert set(tables("dataset=synthetic,model=neumf,method=dvae")) == {
        "target",
        "prior",
        "noise_dp",
        "noise_dn",
    }
    # LightGCN propagates over every row: it stays dense. CDAE reads its batch users' rows of
    # V (its encoder and decoder, item tables read through the rows, stay dense).
    assert set(tables("dataset=synthetic,model=lightgcn,method=dpi")) == {
        "aux",
        "noise_dp",
        "noise_dn",
    }
    assert tables("dataset=synthetic,model=cdae,method=normal") == {
        "target": {"user_embedding": "user"}
    }
    assert role_tables(run_spec_from_config(build_config("dataset=synthetic"))) == {}


@pytest.mark.parametrize("model", ["gmf", "lightgcn", "cdae"])
def test_lazy_training_learns_and_leaves_unseen_users_untouched(tiny_config, model):
    from dprec.data.registry import load_dataset
    from dprec.train import create_setup, fit

    tiny_config.model.name = model
    tiny_config.method.name = "dpi"
    tiny_config.train.updates = "lazy"
    tiny_config.train.num_epochs = 15 if model == "gmf" else 3
    tiny_config.train.learning_rate = 0.01  # 15 tiny epochs: enough to learn at this rate
    tiny_config.data.synthetic.n_users = 400
    tiny_config.data.n_users = 420  # ids kept: users 400..419 never interact
    spec = run_spec_from_config(tiny_config)
    data = load_dataset(spec.data)
    fitted = fit(spec, data)
    valid = fitted.results["valid"]
    if model == "gmf":  # the row-wise target learns (a random ranker: 20 / 80 = 0.25)
        assert valid["recall@20"] > 1.5 * 20 / data.n_items
    # Users without training interactions are never touched by a batch: every row-wise role
    # keeps their initial embedding exactly (dense Adam and L2 would move them).
    unseen = np.flatnonzero(data.train_degree() == 0)
    assert unseen.size >= 20
    initial = create_setup(spec, data).initial_state.params
    lazy_roles = role_tables(spec)
    for role in lazy_roles:
        np.testing.assert_array_equal(
            np.asarray(fitted.state.params[role]["user_embedding"]["embedding"])[unseen],
            np.asarray(initial[role]["user_embedding"]["embedding"])[unseen],
        )
    assert ("target" in lazy_roles) == (model != "lightgcn")  # CDAE: its user table V
