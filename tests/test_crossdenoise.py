"""CrossDenoise/EARD's reliability map, ECDF weight, accumulators and loss by hand."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dprec.objectives import crossdenoise as cd
from dprec.objectives.bce import bce


def sig(x):
    return 1 / (1 + math.exp(-x))


def test_rank_reliability_linear_in_rank_from_high_to_low():
    value = cd.rank_reliability(
        jnp.array([0.3, 0.1, 0.2, 0.9]), low=0.5, high=1.5, valid=jnp.ones(4)
    )
    np.testing.assert_allclose(value, [1.5 - 2 / 3, 1.5, 1.5 - 1 / 3, 0.5], rtol=1e-6)


def test_rank_reliability_is_monotone_in_range_and_rank_based():
    losses = jnp.array(np.random.default_rng(0).exponential(size=50), jnp.float32)
    value = np.asarray(cd.rank_reliability(losses, low=0.2, high=0.9, valid=jnp.ones(50)))
    order = np.argsort(np.asarray(losses))
    assert np.all(np.diff(value[order]) < 0)  # strictly decreasing in the mean loss
    assert value.min() == pytest.approx(0.2) and value.max() == pytest.approx(0.9)
    # Only ranks matter: a monotone transform of the losses changes nothing.
    same = cd.rank_reliability(jnp.exp(3 * losses), low=0.2, high=0.9, valid=jnp.ones(50))
    np.testing.assert_allclose(same, value, rtol=1e-6)


def test_rank_reliability_ties_and_unseen_entities():
    tied = cd.rank_reliability(jnp.array([0.2, 0.2, 0.5]), low=0.5, high=1.5, valid=jnp.ones(3))
    np.testing.assert_allclose(tied, [1.25, 1.25, 0.5], rtol=1e-6)  # mean rank 0.5 of 2
    unseen = cd.rank_reliability(
        jnp.array([0.1, 5.0, 0.3]), low=0.5, high=1.5, valid=jnp.array([1, 0, 1])
    )
    np.testing.assert_allclose(unseen, [1.5, 1.0, 0.5], rtol=1e-6)


def test_ecdf_weight_hand_computed():
    weight = cd.ecdf_weight(jnp.array([0.5, 2.0, 1.0, 0.1]), valid=jnp.ones(4))
    np.testing.assert_allclose(weight, [2.5 / 4, 0.5 / 4, 1.5 / 4, 3.5 / 4], rtol=1e-6)
    tied = cd.ecdf_weight(jnp.array([1.0, 1.0, 2.0]), valid=jnp.ones(3))
    np.testing.assert_allclose(tied, [2.5 / 3, 2.5 / 3, 0.5 / 3], rtol=1e-6)
    padded = cd.ecdf_weight(jnp.array([1.0, 9.0, 2.0]), valid=jnp.array([1, 0, 1]))
    np.testing.assert_allclose(padded, [0.75, 0.0, 0.25], rtol=1e-6)


def test_accumulators_count_repeats_and_skip_padding():
    state = cd.init_entity_losses(2, 3, 4)
    state = cd.accumulate_entities(
        state,
        users=jnp.array([0, 0, 1, 1]),
        items=jnp.array([2, 2, 0, 1]),
        losses=jnp.array([1.0, 2.0, 4.0, 100.0]),
        valid=jnp.array([1, 1, 1, 0]),
    )
    np.testing.assert_allclose(state.user_sum, [3.0, 4.0])
    np.testing.assert_allclose(state.user_count, [2.0, 1.0])
    np.testing.assert_allclose(state.item_sum, [4.0, 0.0, 3.0])
    np.testing.assert_allclose(state.item_count, [1.0, 0.0, 2.0])
    state = cd.record_interactions(
        state,
        index=jnp.array([3, 1, 0]),
        losses=jnp.array([0.5, 0.7, 9.0]),
        valid=jnp.array([1, 1, 0]),
    )
    np.testing.assert_allclose(state.last_loss, [0.0, 0.7, 0.0, 0.5])
    np.testing.assert_allclose(state.seen, [0.0, 1.0, 0.0, 1.0])


def test_epoch_weights_hand_computed():
    users, items = jnp.array([0, 0, 1]), jnp.array([0, 1, 1])
    losses = jnp.array([0.2, 0.8, 1.0])
    state = cd.init_entity_losses(2, 2, 3)
    state = cd.accumulate_entities(
        state, users=users, items=items, losses=losses, valid=jnp.ones(3)
    )
    state = cd.record_interactions(state, index=jnp.arange(3), losses=losses, valid=jnp.ones(3))
    weights = cd.epoch_weights(state, train_users=users, train_items=items, low=0.5, high=1.5)
    # user means 0.5 < 1.0 -> reliabilities 1.5, 0.5; item means 0.2 < 0.9 -> 1.5, 0.5;
    # ECDF: (3 - .5)/3, (2 - .5)/3, (1 - .5)/3.
    expected = [2.5 / 3 * 1.5 * 1.5, 1.5 / 3 * 1.5 * 0.5, 0.5 / 3 * 0.5 * 0.5]
    np.testing.assert_allclose(weights, expected, rtol=1e-6)
    score = cd.noise_score(weights, high=1.5)
    np.testing.assert_allclose(score, 1 - np.array(expected) / 2.25, rtol=1e-6)
    assert float(score[2]) > float(score[1]) > float(score[0])


def test_fused_weight_is_the_product():
    value = cd.fused_weight(
        base=jnp.array([0.5, 0.25]),
        user_reliability=jnp.array([2.0, 1.0]),
        item_reliability=jnp.array([3.0, 0.5]),
    )
    np.testing.assert_allclose(value, [3.0, 0.125])


def test_loss_hand_computed_and_weight_has_no_gradient():
    logits, labels, weights = jnp.array([1.5, -0.5]), jnp.array([1.0, 0.0]), jnp.array([0.4, 2.0])
    loss = cd.crossdenoise_loss(logits=logits, labels=labels, weights=weights)
    np.testing.assert_allclose(
        loss, [-0.4 * math.log(sig(1.5)), -2.0 * math.log(1 - sig(-0.5))], rtol=1e-5
    )
    grad = jax.grad(
        lambda w: jnp.sum(cd.crossdenoise_loss(logits=logits, labels=labels, weights=w))
    )(weights)
    np.testing.assert_array_equal(grad, [0.0, 0.0])
    dlogits = jax.grad(
        lambda x: jnp.sum(cd.crossdenoise_loss(logits=x, labels=labels, weights=weights))
    )(logits)
    np.testing.assert_allclose(dlogits, [0.4 * (sig(1.5) - 1), 2.0 * sig(-0.5)], rtol=1e-5)


def epoch(logits, users, items, labels):
    """One epoch of accumulation and the next epoch's loss on the same batch."""
    losses = bce(logits=logits, labels=labels)
    state = cd.init_entity_losses(3, 4, logits.shape[0])
    state = cd.accumulate_entities(
        state, users=users, items=items, losses=losses, valid=jnp.ones_like(labels)
    )
    state = cd.record_interactions(
        state, index=jnp.arange(logits.shape[0]), losses=losses, valid=labels
    )
    weights = cd.epoch_weights(state, train_users=users, train_items=items, low=0.1, high=0.5)
    weights = jnp.where(labels > 0, weights, 1.0)
    return jnp.mean(cd.crossdenoise_loss(logits=logits, labels=labels, weights=weights))


def test_jit_agrees_and_gradients_finite_at_extreme_logits():
    logits = jnp.array([-50.0, -20.0, 0.0, 20.0, 50.0, -50.0, 50.0])
    users = jnp.array([0, 0, 1, 1, 2, 2, 0])
    items = jnp.array([0, 1, 2, 3, 0, 1, 2])
    labels = jnp.array([1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0])
    eager = epoch(logits, users, items, labels)
    compiled = jax.jit(epoch)(logits, users, items, labels)
    assert float(eager) == pytest.approx(float(compiled), rel=1e-6)
    assert np.isfinite(float(eager))
    grad = jax.grad(epoch)(logits, users, items, labels)
    assert np.all(np.isfinite(np.asarray(grad)))
