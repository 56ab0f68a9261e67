"""method=bpr, softmax, bsl, pda, relmf, udt and pld as trained methods: each loss by hand on a
planted batch through the method's `make_loss`, the cards and presets, the per-user state of
UDT and the pools of PLD, three tiny epochs of each, and UDT's and PLD's exact resume."""

import dataclasses
import math
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import kill_after_checkpoint

from dprec import train
from dprec.config.presets import build_config
from dprec.config.run_config import run_spec_from_config
from dprec.config.templates.tiny import get_config
from dprec.data.registry import load_dataset
from dprec.errors import ConfigError
from dprec.methods import get_method
from dprec.methods import pld as pld_method
from dprec.methods import udt as udt_method
from dprec.methods.pda import PopularityState
from dprec.methods.relmf import PropensityState
from dprec.models import ScoreFns
from dprec.objectives import pld

NEW_METHODS = ("bpr", "softmax", "bsl", "pda", "relmf", "udt", "pld")

# A target whose logits are a table: pair(u, i) = table[u, i].
TABLE_TARGET = ScoreFns(
    encode=lambda params, graph, rng: None,
    pair=lambda params, encoded, users, items: params["table"][users, items],
    all_items=None,
)
ROLES = types.SimpleNamespace(score={"target": TABLE_TARGET})


def no_l2(params, batch):
    return jnp.zeros(())


def sp(x):
    """softplus(x) = −log σ(−x)."""
    return math.log1p(math.exp(x))


def log_mean_exp(values):
    values = np.asarray(values, np.float64)
    return float(np.log(np.mean(np.exp(values))))


# Rows (user, positive): (0, 0), (1, 1), (0, 2) and a padding row; negatives items 3 and 4.
LOGITS = {(0, 0): 2.0, (0, 2): -1.0, (0, 3): 0.5, (0, 4): -0.5, (1, 1): 1.0, (1, 3): 1.5}
LOGITS |= {(1, 4): -2.0, (2, 0): 7.0, (2, 3): -3.0, (2, 4): 9.0}
POSITIVES = [(0, 0), (1, 1), (0, 2)]


def planted():
    """The table parameters and the batch (index: each row's training interaction)."""
    table = jnp.zeros((3, 5))
    for (user, item), logit in LOGITS.items():
        table = table.at[user, item].set(logit)
    batch = {
        "users": jnp.array([0, 1, 0, 2]),
        "pos_items": jnp.array([0, 1, 2, 0]),
        "neg_items": jnp.array([[3, 4]] * 4),
        "mask": jnp.array([1.0, 1.0, 1.0, 0.0]),
        "index": jnp.array([0, 1, 2, 0]),
    }
    return {"target": {"table": table}}, batch


def make_loss(name, **fields):
    config = get_config(f"method={name}")
    for field, value in fields.items():
        config.method[field] = value
    return get_method(name).make_loss(run_spec_from_config(config), ROLES, no_l2)


def call(loss_fn, state=None):
    """The loss of the planted batch, jitted (one compile instead of an op-by-op run)."""
    params, batch = planted()
    args = (params, {}, batch, None, jax.random.key(0), 0)
    if state is None:
        loss, logs = jax.jit(loss_fn, static_argnums=3)(*args)
        return float(loss), logs
    loss, (logs, new_state) = jax.jit(loss_fn, static_argnums=3)(*args, state)
    return float(loss), logs, new_state


def negatives(user):
    return [LOGITS[(user, 3)], LOGITS[(user, 4)]]


# The losses by hand -------------------------------------------------------------------------


def test_bpr_loss_by_hand():
    loss, logs = call(make_loss("bpr"))
    rows = [np.mean([sp(n - LOGITS[p]) for n in negatives(p[0])]) for p in POSITIVES]
    assert loss == pytest.approx(np.mean(rows), rel=1e-6)
    assert float(logs["data_loss"]) == pytest.approx(loss)


def test_softmax_loss_by_hand_reads_its_temperature():
    tau = 0.5
    loss, _ = call(make_loss("softmax", temperature=tau))
    rows = [
        log_mean_exp(np.array([LOGITS[p], *negatives(p[0])]) / tau) + math.log(3) - LOGITS[p] / tau
        for p in POSITIVES
    ]
    assert loss == pytest.approx(np.mean(rows), rel=1e-6)


def test_bsl_loss_pools_a_users_positives_by_hand():
    tau, tau1 = 0.5, 2.0
    loss, _ = call(make_loss("bsl", temperature=tau, positive_temperature=tau1))
    user0 = -tau1 * log_mean_exp(np.array([2.0, -1.0]) / tau1)  # rows 0 and 2: user 0
    positive_parts = [user0, -1.0, user0]
    rows = [
        part + tau * log_mean_exp(np.array(negatives(p[0])) / tau)
        for part, p in zip(positive_parts, POSITIVES, strict=True)
    ]
    assert loss == pytest.approx(np.mean(rows) / tau, rel=1e-5)  # on SL's scale


def test_pda_loss_scores_by_popularity_by_hand():
    popularity = jnp.array([1.0, 0.5, 0.25, 0.0, 0.81])
    state = PopularityState(popularity=popularity)
    loss, _, new_state = call(make_loss("pda", popularity_power=0.5), state)

    def score(logit, m):  # ELU'(f)·m^γ with γ = 0.5
        return (logit + 1.0 if logit > 0 else math.exp(logit)) * math.sqrt(m)

    rows = []
    for user, item in POSITIVES:
        pos = score(LOGITS[(user, item)], float(popularity[item]))
        negs = [score(LOGITS[(user, j)], float(popularity[j])) for j in (3, 4)]
        rows.append(np.mean([sp(n - pos) for n in negs]))  # item 3 (m = 0) scores 0
    assert loss == pytest.approx(np.mean(rows), rel=1e-5)
    np.testing.assert_array_equal(new_state.popularity, popularity)  # a constant


def test_relmf_loss_weights_by_inverse_propensity_by_hand():
    state = PropensityState(propensity=jnp.array([1.0, 0.5, 0.25, 0.1, 0.1]))
    loss, logs, _ = call(make_loss("relmf"), state)
    # (1/θ)·softplus(−f) + (1 − 1/θ)·softplus(f), clipped at 0: θ = 1, 0.5, 0.25.
    row0 = sp(-2.0)
    row1 = max(2 * sp(-1.0) - sp(1.0), 0.0)  # −0.687: the clip keeps it at 0
    row2 = 4 * sp(1.0) - 3 * sp(-1.0)
    assert row1 == 0.0
    negs = np.mean([sp(n) for user in (0, 1, 0) for n in negatives(user)])
    assert float(logs["pos_loss"]) == pytest.approx((row0 + row1 + row2) / 3, rel=1e-5)
    assert loss == pytest.approx((row0 + row1 + row2) / 3 + negs, rel=1e-5)


def bce_one(x):
    return sp(-x)


def test_udt_loss_weights_from_epoch_two_and_records_the_batch():
    state = udt_method.init_udt_state(n_users=3, n_train=3)
    state = state._replace(weights=jnp.array([0.5, 2.0, 0.25]), factor=jnp.array([0.4, 0.1, 9.0]))
    loss_fn = make_loss("udt")
    neg_bce = {user: [sp(n) for n in negatives(user)] for user in (0, 1)}
    pos_bce = [bce_one(LOGITS[p]) for p in POSITIVES]

    unweighted, _, new = call(loss_fn, state)  # epoch 0: weight 1
    expected = np.mean(pos_bce) + np.mean(neg_bce[0] * 2 + neg_bce[1])
    assert unweighted == pytest.approx(expected, rel=1e-5)

    weighted, logs, _ = call(loss_fn, state._replace(epoch=jnp.asarray(2, jnp.int32)))
    pos = (0.5 * pos_bce[0] + 2.0 * pos_bce[1] + 0.25 * pos_bce[2]) / 3
    neg = (0.4 * sum(neg_bce[0]) * 2 + 0.1 * sum(neg_bce[1])) / 6  # a_u of the row's user
    assert weighted == pytest.approx(pos + neg, rel=1e-5)
    assert float(logs["mean_weight"]) == pytest.approx(2.75 / 3)

    # The accumulators: each user's row BCEs (positive + 2 negatives) and row count; the
    # padding row (user 2, index 0) is in none of them.
    user0 = pos_bce[0] + pos_bce[2] + 2 * sum(neg_bce[0])
    np.testing.assert_allclose(new.user_loss, [user0, pos_bce[1] + sum(neg_bce[1]), 0], rtol=1e-5)
    np.testing.assert_array_equal(new.user_rows, [6, 3, 0])
    np.testing.assert_allclose(new.last_loss, pos_bce, rtol=1e-5)
    np.testing.assert_array_equal(new.seen, [1, 1, 1])


def test_udt_end_of_epoch_weights_by_hand():
    """Users' mean losses 0.1, 0.5, 0.3 rank them 0, 1, ½: τ = 0.2, 0.5, 0.35 and
    a = 0.5, 0, 0.25. User 0's two positives (last losses 0.2, 0.6) get
    softmax(−ℓ/0.2)·2·0.5; user 2's one positive gets a = 0.25; user 1's get 0."""
    spec = run_spec_from_config(get_config("method=udt"))
    state = udt_method.init_udt_state(n_users=3, n_train=4)._replace(
        user_loss=jnp.array([0.3, 1.5, 0.9]),
        user_rows=jnp.array([3.0, 3.0, 3.0]),
        last_loss=jnp.array([0.2, 0.6, 0.4, 0.3]),
        seen=jnp.ones(4),
        epoch=jnp.asarray(1, jnp.int32),
    )
    train_users = jnp.array([0, 0, 1, 2])
    new = udt_method.next_epoch_weights(state, train_users=train_users, method=spec.method)
    softmax = np.exp([-1.0, -3.0]) / np.exp([-1.0, -3.0]).sum()
    np.testing.assert_allclose(new.weights, [*(softmax * 2 * 0.5), 0.0, 0.25], rtol=1e-5)
    np.testing.assert_allclose(new.factor, [0.5, 0.0, 0.25], rtol=1e-6)
    assert int(new.epoch) == 2
    assert float(new.user_rows.sum()) == 0.0 and float(new.seen.sum()) == 0.0  # emptied


# PLD ----------------------------------------------------------------------------------------


def pld_state(epoch):
    offsets, items = pld_method.user_positive_lists(
        np.array([0, 1, 0]), np.array([0, 1, 2]), n_users=3
    )
    return pld_method.PLDState(jnp.asarray(offsets), jnp.asarray(items), jnp.asarray(epoch))


def test_pld_trains_plain_bpr_before_resampling():
    before, _ = call(make_loss("bpr"))
    loss, logs, _ = call(make_loss("pld"), pld_state(pld.FIRST_RESAMPLED_EPOCH - 1))
    assert loss == pytest.approx(before, rel=1e-6)
    assert float(logs["resampling"]) == 0.0 and float(logs["kept_own_positive"]) == 1.0


def test_pld_resamples_the_lowest_loss_pool_candidate_by_hand():
    """Users with at most k positives pool all of them; at τ → 0 the draw is the candidate of
    lowest BPR loss: for user 0, item 0 (logit 2) also in row 2 (its own positive, item 2, has
    logit −1). Only the drawn candidate takes a gradient."""
    loss_fn = make_loss("pld", pool_size=5, temperature=1e-3)
    state = pld_state(pld.FIRST_RESAMPLED_EPOCH)
    loss, logs, _ = call(loss_fn, state)
    drawn = [2.0, 1.0, 2.0]
    rows = [
        np.mean([sp(n - s) for n in negatives(u)]) for s, u in zip(drawn, (0, 1, 0), strict=True)
    ]
    assert loss == pytest.approx(np.mean(rows), rel=1e-5)
    assert float(logs["kept_own_positive"]) == pytest.approx(2 / 3)

    params, batch = planted()
    grads = jax.grad(lambda p: loss_fn(p, {}, batch, None, jax.random.key(0), 0, state)[0])(params)
    table = grads["target"]["table"]
    assert float(table[0, 0]) < 0 and float(table[0, 2]) == 0.0  # item 2 never drawn


def test_pld_pools_are_distinct_positives_of_the_user_uniformly():
    rng = np.random.default_rng(0)
    degrees = np.array([1, 3, 5, 12])
    users = np.repeat(np.arange(4), degrees)
    items = np.concatenate([rng.choice(50, d, replace=False) for d in degrees])
    offsets, by_user = pld_method.user_positive_lists(users, items, n_users=4)
    rows = jnp.tile(jnp.arange(4), 2000)
    pool, mask = pld_method.draw_pools(
        jax.random.key(3), rows, jnp.asarray(offsets), jnp.asarray(by_user), size=5
    )
    pool, mask = np.asarray(pool), np.asarray(mask)
    np.testing.assert_array_equal(mask[:4].sum(axis=1), np.minimum(degrees, 5))
    for row, user in enumerate(np.asarray(rows)):
        drawn = pool[row][mask[row] > 0]
        assert len(set(drawn)) == len(drawn)  # without replacement
        assert set(drawn) <= set(items[users == user])
    # User 3: each of its 12 positives is in a pool with probability 5/12.
    counts = np.unique(pool[np.asarray(rows) == 3], return_counts=True)[1]
    np.testing.assert_allclose(counts / 2000, 5 / 12, atol=0.04)


def test_pld_refuses_lazy_updates_of_item_rows():
    config = get_config("method=pld")
    config.train.updates = "lazy"
    spec = run_spec_from_config(config)
    with pytest.raises(ConfigError, match="train.updates=dense"):
        get_method("pld").make_loss(spec, ROLES, no_l2)
    cdae = dataclasses.replace(spec, model=dataclasses.replace(spec.model, name="cdae"))
    get_method("pld").make_loss(cdae, ROLES, no_l2)  # item tables are never restricted


# Cards and presets --------------------------------------------------------------------------


def test_softmax_losses_draw_64_negatives_on_every_dataset_and_keep_normal_presets():
    for dataset in ("ml-100k", "modcloth", "synthetic"):
        for method in ("softmax", "bsl"):
            config = build_config(f"dataset={dataset},model=gmf,method={method}")
            assert config.train.num_negatives == 64, (dataset, method)
    normal = build_config("dataset=modcloth,model=neumf,method=normal")
    config = build_config("dataset=modcloth,model=neumf,method=softmax")
    assert (config.train.l2, config.train.num_epochs) == (normal.train.l2, normal.train.num_epochs)
    assert build_config("dataset=ml-100k,method=bpr").train.num_negatives == 1
    # SL's own λ0 on ML-100k (the defaults matrix: at 1e-3 its last epoch fell below 0.9 × the
    # selected one); BSL keeps normal training's.
    assert build_config("dataset=ml-100k,model=gmf,method=softmax").train.l2 == 0.01
    assert build_config("dataset=ml-100k,model=gmf,method=bsl").train.l2 == (
        build_config("dataset=ml-100k,model=gmf,method=normal").train.l2
    )


@pytest.mark.parametrize(
    ("method", "field", "value", "message"),
    [
        ("softmax", "temperature", 0.0, r"method\.temperature \(τ\) must be > 0, got 0\.0"),
        ("bsl", "positive_temperature", -1.0, r"\(BSL's τ1\) must be > 0"),
        ("pda", "popularity_power", -0.1, r"method\.popularity_power \(γ\) must be >= 0"),
        ("relmf", "propensity_floor", 0.0, r"method\.propensity_floor \(c\) must be in \(0, 1\]"),
        ("udt", "temperature_low_loss", 0.0, r"\(UDT's τ\) must be > 0"),
        ("udt", "factor_high_loss", -0.5, r"\(UDT's a\) must be >= 0"),
        ("pld", "pool_size", 0, "method.pool_size must be a positive integer, got 0"),
    ],
)
def test_cards_check_their_fields(method, field, value, message):
    config = get_config(f"method={method}")
    config.method[field] = value
    with pytest.raises(ConfigError, match=message):
        run_spec_from_config(config)


def test_pda_and_relmf_states_come_from_the_training_counts():
    config = get_config("method=relmf")
    config.method.propensity_power, config.method.propensity_floor = 1.0, 0.2
    spec = run_spec_from_config(config)
    data = types.SimpleNamespace(item_popularity=lambda: np.array([4, 2, 0, 1]))
    np.testing.assert_allclose(
        get_method("relmf").init_method_state(spec, data).propensity, [1.0, 0.5, 0.2, 0.25]
    )
    # PDA: (c + 1)/(Σc + I) = [5, 3, 1, 2]/11, min-max scaled.
    np.testing.assert_allclose(
        get_method("pda").init_method_state(spec, data).popularity, [1.0, 0.5, 0.0, 0.25]
    )


# Training -----------------------------------------------------------------------------------


def tiny(method, epochs=3):
    config = get_config(f"method={method}")
    config.eval.references = ()
    config.train.num_epochs = epochs
    config.train.num_negatives = min(config.train.num_negatives, 8)
    return config


def fit_records(config):
    spec = run_spec_from_config(config)
    records = []
    fitted = train.fit(spec, load_dataset(spec.data), on_epoch=records.append)
    return fitted, records


@pytest.mark.parametrize("method", NEW_METHODS)
def test_three_tiny_epochs_lower_the_loss(method, monkeypatch):
    # PLD resamples from epoch index 1 here, so that three epochs exercise its pools.
    monkeypatch.setattr(pld, "FIRST_RESAMPLED_EPOCH", 1)
    fitted, records = fit_records(tiny(method))  # a non-finite loss raises
    losses = [record["loss"] for record in records]
    assert losses[-1] < losses[0], losses
    assert 0.0 <= fitted.results["test"]["paper"]["recall@20"] <= 1.0
    if method == "pld":
        assert [record["resampling"] for record in records] == [0.0, 1.0, 1.0]
        assert records[-1]["kept_own_positive"] < 1.0
    if method == "udt":
        assert records[1]["mean_weight"] == 1.0 and records[2]["mean_weight"] < 1.0


@pytest.mark.slow
@pytest.mark.parametrize("method", ["udt", "pld", "dpi-exposure"])
def test_interrupted_run_resumes_with_the_method_state(tmp_path, monkeypatch, method):
    """UDT's accumulators and weights, PLD's epoch count (its pools come from the step key),
    the exposure-aware DPI's popularity feature: a run killed after epoch 2 and resumed ends
    bit-identical to an uninterrupted one."""
    from test_resume import comparable

    monkeypatch.setattr(pld, "FIRST_RESAMPLED_EPOCH", 1)
    config = tiny(method.removesuffix("-exposure"), epochs=4)
    if method == "dpi-exposure":
        config.method.exposure_power = 1.0
    config.train.checkpoint_every = 1
    train.train_and_evaluate(config, str(tmp_path / "straight"))
    kill_after_checkpoint(monkeypatch, config, tmp_path / "resumed", epoch=2)
    train.train_and_evaluate(config, str(tmp_path / "resumed"))
    assert comparable(tmp_path / "resumed") == comparable(tmp_path / "straight")
