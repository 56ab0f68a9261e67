"""method=dcf and method=crossdenoise as trained methods: their losses on a hand-made batch,
their per-interaction state through epochs and checkpoints, every model, both update modes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import kill_after_checkpoint

from dprec import train
from dprec.config.templates.tiny import get_config as get_tiny_config
from dprec.data import planted
from dprec.methods import crossdenoise as crossdenoise_method
from dprec.methods import dcf as dcf_method
from dprec.methods.common import pair_logits
from dprec.models import ScoreFns
from dprec.objectives import crossdenoise, dcf
from dprec.specs import MethodSpec

# A target whose logits are a table: pair(u, i) = table[u, i].
TABLE_TARGET = ScoreFns(
    encode=lambda params, graph, rng: None,
    pair=lambda params, encoded, users, items: params["table"][users, items],
    all_items=None,
)


def softplus(x):
    return float(np.log1p(np.exp(x)))


def batch_and_table():
    """3 positives (user u ↔ item u) + 1 padding row, one negative each (item 3)."""
    table = jnp.zeros((4, 4)).at[jnp.arange(3), jnp.arange(3)].set(jnp.array([2.0, -1.0, -3.0]))
    table = table.at[:, 3].set(jnp.array([-1.0, 0.0, 1.0, 5.0]))
    batch = {
        "users": jnp.array([0, 1, 2, 3]),
        "pos_items": jnp.array([0, 1, 2, 0]),
        "neg_items": jnp.array([[3], [3], [3], [3]]),
        "mask": jnp.array([1.0, 1.0, 1.0, 0.0]),
        "index": jnp.array([0, 1, 2, 0]),
    }
    return {"target": {"table": table}}, batch


def test_table_target_gives_the_planted_logits():
    params, batch = batch_and_table()
    pos, neg = pair_logits(TABLE_TARGET, params["target"], batch, None, None)
    np.testing.assert_allclose(pos, [2.0, -1.0, -3.0, 0.0])
    np.testing.assert_allclose(neg[:, 0], [-1.0, 0.0, 1.0, 5.0])


def test_dcf_loss_drops_and_relabels_by_hand():
    """ε = 0.5, r = 0.5, σ² = 0: of 6 valid examples the 3 negatives (rank score 0) are kept,
    the lowest-loss positive (logit 2) is dropped, the two others are relabelled as 0. The loss
    is normal training's scale: the mean over the kept and relabelled positives plus the mean
    over the negatives."""
    params, batch = batch_and_table()
    spec = MethodSpec(name="dcf", drop_rate=0.5, num_gradual=1, relabel_ratio=0.5, co_lambda=0.0)
    loss_fn = dcf_method.make_dcf_loss(TABLE_TARGET, lambda p, batch: 0.0, spec)
    state = dcf_method.DCFState(
        history=dcf.init_history(3, window=2), epoch=jnp.zeros((), jnp.int32), variance=0.0
    )
    loss, (logs, new_state) = loss_fn(params, {}, batch, None, None, 1, state)
    kept_negatives = softplus(-1.0) + softplus(0.0) + softplus(1.0)
    expected = (softplus(-1.0) + softplus(-3.0)) / 2 + kept_negatives / 3
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    assert float(logs["relabelled"]) == pytest.approx(2 / 3)
    history = new_state.history
    np.testing.assert_allclose(
        history.losses[:, 0], [softplus(-2.0), softplus(1.0), softplus(3.0)], rtol=1e-5
    )
    np.testing.assert_array_equal(history.visits, [1, 1, 1])  # padding row 0 not counted twice
    np.testing.assert_array_equal(history.selected, [1.0, 0.0, 0.0])  # relabelled: not selected

    grads = jax.grad(lambda p: loss_fn(p, {}, batch, None, None, 1, state)[0])(params)
    table_grad = grads["target"]["table"]
    assert float(table_grad[0, 0]) == 0.0  # dropped: no gradient
    assert float(table_grad[1, 1]) > 0 and float(table_grad[2, 2]) > 0  # pushed down, as 0s


def test_dcf_end_epoch_advances_t_and_decays_the_variance(tiny_config):
    from dprec.config.run_config import run_spec_from_config

    tiny_config.method.name = "dcf"
    tiny_config.method.co_lambda = 0.3
    tiny_config.train.num_epochs = 4
    spec = run_spec_from_config(tiny_config)
    data = train.load_dataset(spec.data)
    method = dcf_method.METHOD
    state = method.init_method_state(spec, data)
    assert state.history.losses.shape == (data.train.users.shape[0], spec.method.dcf_window)
    end = method.make_end_epoch(spec, data)
    variances = [float(state.variance)]
    for _ in range(4):
        state = end(state)
        variances.append(float(state.variance))
    assert int(state.epoch) == 4
    np.testing.assert_allclose(variances, [0.3, 0.2, 0.1, 0.0, 0.0], atol=1e-7)


def test_crossdenoise_loss_weights_the_positives_by_hand():
    params, batch = batch_and_table()
    loss_fn = crossdenoise_method.make_crossdenoise_loss(TABLE_TARGET, lambda p, batch: 0.0)
    state = crossdenoise_method.CrossDenoiseState(
        losses=crossdenoise.init_entity_losses(4, 4, 3),
        weights=jnp.array([0.5, 2.0, 1.0]),
        epoch=jnp.asarray(2),
    )
    loss, (logs, new_state) = loss_fn(params, {}, batch, None, None, 0, state)
    pos = (0.5 * softplus(-2.0) + 2.0 * softplus(1.0) + 1.0 * softplus(3.0)) / 3
    neg = (softplus(-1.0) + softplus(0.0) + softplus(1.0)) / 3
    assert float(loss) == pytest.approx(pos + neg, rel=1e-5)
    assert float(logs["mean_weight"]) == pytest.approx(3.5 / 3)
    losses = new_state.losses
    # user 0: its positive (loss softplus(-2)) and its negative (softplus(-1)); user 3 padding.
    np.testing.assert_allclose(losses.user_sum[:1], [softplus(-2.0) + softplus(-1.0)], rtol=1e-5)
    np.testing.assert_array_equal(losses.user_count, [2, 2, 2, 0])
    np.testing.assert_array_equal(losses.item_count, [1, 1, 1, 3])  # item 3: the 3 negatives
    np.testing.assert_allclose(
        losses.last_loss, [softplus(-2.0), softplus(1.0), softplus(3.0)], rtol=1e-5
    )


def test_crossdenoise_trains_the_first_two_epochs_unweighted(tiny_config):
    from dprec.config.run_config import run_spec_from_config

    tiny_config.method.name = "crossdenoise"
    tiny_config.method.factor_lower, tiny_config.method.factor_upper = 0.5, 1.0
    spec = run_spec_from_config(tiny_config)
    data = train.load_dataset(spec.data)
    method = crossdenoise_method.METHOD
    n_train = data.train.users.shape[0]
    rng = np.random.default_rng(0)

    def filled(state):
        losses = state.losses._replace(
            user_sum=jnp.asarray(rng.random(data.n_users), jnp.float32),
            user_count=jnp.ones(data.n_users),
            item_sum=jnp.asarray(rng.random(data.n_items), jnp.float32),
            item_count=jnp.ones(data.n_items),
            last_loss=jnp.asarray(rng.random(n_train), jnp.float32),
            seen=jnp.ones(n_train),
        )
        return state._replace(losses=losses)

    end = method.make_end_epoch(spec, data)
    state = end(filled(method.init_method_state(spec, data)))  # after epoch 0
    np.testing.assert_array_equal(state.weights, np.ones(n_train))
    assert float(state.losses.user_count.sum()) == 0.0  # accumulators reset
    before = filled(state)
    state = end(before)  # after epoch 1: epoch 2 is weighted
    expected = crossdenoise.epoch_weights(
        before.losses,
        train_users=jnp.asarray(data.train.users),
        train_items=jnp.asarray(data.train.items),
        low=0.5,
        high=1.0,
    )
    np.testing.assert_allclose(state.weights, expected)
    assert 0.0 < float(state.weights.min()) < float(state.weights.max()) <= 1.0


@pytest.fixture(scope="module")
def planted_table(tmp_path_factory):
    """Uniform noisy clicks at rate 0.3 in the block world (docs/worlds.md), at the tiny run's
    size: a noisy click leaves the user's item cluster, so a model that learns separates it."""
    frame = planted.plant("uniform", 0.3, n_users=300, n_items=80, seed=0).frame
    path = tmp_path_factory.mktemp("planted") / "block-uniform-0.3.csv"
    frame.rename(columns={"user": "user_id", "item": "item_id"}).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("method", ["dcf", "crossdenoise"])
@pytest.mark.parametrize(
    ("model", "updates"),
    [("mf", "lazy"), ("gmf", "dense"), ("neumf", "lazy"), ("cdae", "dense"), ("lightgcn", "lazy")],
)
def test_every_model_and_update_mode_learns_the_noise_score(planted_table, method, model, updates):
    """The method's noise score, read from its per-interaction state after 3 epochs, ranks the
    planted clean clicks above the noisy ones with every model and both update modes (a lazy
    step that dropped the state, or a model whose losses never reached it, scores 0.5)."""
    config = get_tiny_config(f"dataset=table,model={model},method={method}")
    config.data.path = str(planted_table)
    config.data.columns.rating, config.data.columns.truth = "rating", "truth"
    config.data.clean_rule, config.data.clean_threshold = "rating", 4
    config.train.updates = updates
    config.train.num_epochs = 3
    config.train.learning_rate = 0.01  # 3 epochs at the default 1e-3 barely leave the init
    results = train.train_and_evaluate(config, None)  # a non-finite loss raises
    assert results["interpretation"]["noise_detection_auc"] > 0.5


@pytest.mark.slow
@pytest.mark.parametrize("method", ["dcf", "crossdenoise"])
def test_interrupted_run_resumes_with_the_method_state(tiny_config, tmp_path, monkeypatch, method):
    """The per-interaction state is part of the checkpoint: a resumed run ends bit-identical."""
    from test_resume import comparable

    tiny_config.method.name = method
    tiny_config.train.num_epochs = 4
    tiny_config.train.checkpoint_every = 1
    train.train_and_evaluate(tiny_config, str(tmp_path / "straight"))
    kill_after_checkpoint(monkeypatch, tiny_config, tmp_path / "resumed", epoch=2)
    train.train_and_evaluate(tiny_config, str(tmp_path / "resumed"))
    assert comparable(tmp_path / "resumed") == comparable(tmp_path / "straight")
