"""DCF's state, damping, bound, schedules, masks and loss against hand-computed values."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dprec.objectives import dcf
from dprec.objectives.bce import bce


def sig(x):
    return 1 / (1 + math.exp(-x))


def recorded_history():
    """Three interactions, window 2: interaction 0 visited three times (the ring wraps),
    1 only in padding, 2 once."""
    history = dcf.init_history(3, 2)
    history = dcf.update_history(
        history,
        index=jnp.array([0, 2]),
        losses=jnp.array([1.0, 2.0]),
        selected=jnp.array([1, 0]),
        valid=jnp.array([1, 1]),
    )
    history = dcf.update_history(
        history,
        index=jnp.array([0, 1]),
        losses=jnp.array([3.0, 4.0]),
        selected=jnp.array([1, 1]),
        valid=jnp.array([1, 0]),
    )
    return dcf.update_history(
        history,
        index=jnp.array([0]),
        losses=jnp.array([5.0]),
        selected=jnp.array([0]),
        valid=jnp.array([1]),
    )


def test_history_is_a_ring_buffer_and_ignores_padding():
    history = recorded_history()
    np.testing.assert_allclose(history.losses, [[5.0, 3.0], [0.0, 0.0], [2.0, 0.0]])
    np.testing.assert_array_equal(history.visits, [3, 0, 1])
    np.testing.assert_allclose(history.selected, [2.0, 0.0, 0.0])


def test_damping_hand_computed():
    value = dcf.damping(jnp.array([0.0, 1.0, 50.0]))
    np.testing.assert_allclose(value, [0.0, math.log(2.5), math.log(1301.0)], rtol=1e-6)
    # Outliers are damped: φ(50) is far below 50, small losses pass almost unchanged.
    assert float(value[2]) < 8.0
    assert float(dcf.damping(jnp.array(0.01))) == pytest.approx(0.01, rel=1e-3)


def test_damped_mean_over_the_recorded_window():
    history = recorded_history()
    mean = dcf.damped_mean(history.losses, history.visits)
    expected = [(math.log(18.5) + math.log(8.5)) / 2, 0.0, math.log(5.0)]
    np.testing.assert_allclose(mean, expected, rtol=1e-6)


def test_confidence_bound_and_lower_bound_hand_computed():
    bound = dcf.confidence_bound(variance=0.5, t=2.0, n=jnp.array([3.0, 1.5]))
    width = 2 + 0.5 * math.log(4.0) / 4
    np.testing.assert_allclose(bound, [0.5 * width / 2.5, 0.5 * width / 1.0], rtol=1e-6)
    lcb = dcf.lower_confidence_bound(
        jnp.array([1.0, 0.5]), variance=0.5, t=2.0, n=jnp.array([3.0, 1.5])
    )
    np.testing.assert_allclose(lcb, [1.0 - 0.5 * width / 2.5, 0.0], rtol=1e-6)  # floored at 0


def test_rarely_selected_hard_sample_ranks_lower():
    # Same damped mean; the sample selected less often (a hard one) gets the lower bound.
    lcb = dcf.lower_confidence_bound(
        jnp.array([2.0, 2.0]), variance=0.1, t=3.0, n=jnp.array([10.0, 2.0])
    )
    assert float(lcb[1]) < float(lcb[0]) < 2.0


def test_schedules():
    values = [float(dcf.variance_schedule(e, variance=1e-4, epochs=5)) for e in (0, 2, 4, 10)]
    np.testing.assert_allclose(values, [1e-4, 5e-5, 0.0, 0.0], atol=1e-12)
    rates = [
        dcf.relabel_schedule(s, max_rate=0.2, num_gradual=100, relabel_ratio=0.25)
        for s in (0, 50, 200)
    ]
    np.testing.assert_allclose([float(r[0]) for r in rates], [0.0, 0.1, 0.2], rtol=1e-6)
    np.testing.assert_allclose([float(r[1]) for r in rates], [0.0, 0.025, 0.05], rtol=1e-6)


def test_masks_keep_drop_and_relabel_by_rank():
    # Eight positives with scores 1..8 (shuffled) and two negatives.
    scores = jnp.array([5.0, 0.3, 8.0, 1.0, 0.2, 7.0, 2.0, 6.0, 3.0, 4.0])
    labels = jnp.array([1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    keep, relabel = dcf.correction_masks(
        scores=scores, labels=labels, valid=jnp.ones(10), drop_rate=0.3, relabel_rate=0.1
    )
    # keep the floor(0.7·10) = 7 lowest (negatives rank as 0), relabel ranks >= 9: score 8;
    # drop ranks 7-8: scores 6 and 7.
    np.testing.assert_array_equal(keep, [1, 1, 0, 1, 1, 0, 1, 0, 1, 1])
    np.testing.assert_array_equal(relabel, [0, 0, 1, 0, 0, 0, 0, 0, 0, 0])


def test_masks_never_choose_padding():
    scores = jnp.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 99.0, 99.0])
    valid = jnp.array([1, 1, 1, 1, 1, 1, 1, 1, 0, 0])
    keep, relabel = dcf.correction_masks(
        scores=scores, labels=jnp.ones(10), valid=valid, drop_rate=0.25, relabel_rate=0.125
    )
    # n = 8: keep 6, relabel ranks >= 7 (score 8), drop score 7; padding neither.
    np.testing.assert_array_equal(keep, [1, 1, 1, 1, 1, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(relabel, [0, 0, 0, 0, 0, 0, 0, 1, 0, 0])


def test_loss_hand_computed():
    loss = dcf.dcf_loss(
        logits=jnp.array([2.0, -1.0, 0.5]),
        labels=jnp.array([1.0, 1.0, 0.0]),
        keep=jnp.array([1.0, 0.0, 1.0]),
        relabel=jnp.array([0.0, 1.0, 0.0]),
    )
    expected = [-math.log(sig(2.0)), -math.log(1 - sig(-1.0)), -math.log(1 - sig(0.5))]
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    as_code = dcf.dcf_loss(
        logits=jnp.array([-1.0]),
        labels=jnp.array([1.0]),
        keep=jnp.array([0.0]),
        relabel=jnp.array([1.0]),
        relabel_label=1.0,
    )
    np.testing.assert_allclose(as_code, [-math.log(sig(-1.0))], rtol=1e-5)


def test_noise_score_matches_batch_scores():
    history = recorded_history()
    full = dcf.noise_score(history, variance=0.1, t=3.0)
    part = dcf.batch_scores(history, jnp.array([2, 0]), variance=0.1, t=3.0)
    np.testing.assert_allclose(part, full[jnp.array([2, 0])])
    # Interaction 0 (mean of φ(5), φ(3)) scores above interaction 2 (φ(2)).
    assert float(full[0]) > float(full[2]) > 0.0


def step(history, logits, index, labels, valid, t):
    """A whole DCF step on one batch: record, score, mask, loss; returns (loss, history)."""
    losses = jnp.where(labels > 0, bce(logits=logits, labels=labels), 0.0)
    history = dcf.update_history(
        history, index=index, losses=losses, selected=jnp.ones_like(labels), valid=valid * labels
    )
    scores = dcf.batch_scores(history, index, variance=1e-4, t=t)
    rate, relabel_rate = dcf.relabel_schedule(
        t * 10, max_rate=0.4, num_gradual=20, relabel_ratio=0.5
    )
    keep, relabel = dcf.correction_masks(
        scores=scores, labels=labels, valid=valid, drop_rate=rate, relabel_rate=relabel_rate
    )
    per_example = dcf.dcf_loss(logits=logits, labels=labels, keep=keep, relabel=relabel)
    return jnp.sum(per_example) / jnp.maximum(jnp.sum(keep + relabel), 1.0), history


def test_jit_agrees_and_gradients_finite_at_extreme_logits():
    logits = jnp.array([-50.0, -20.0, 0.0, 20.0, 50.0, -50.0, 50.0, 3.0])
    labels = jnp.array([1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 1.0])
    index = jnp.arange(8)
    valid = jnp.array([1.0, 1, 1, 1, 1, 1, 1, 0])
    history = dcf.init_history(8, 3)
    eager, eager_history = step(history, logits, index, labels, valid, 2.0)
    compiled, compiled_history = jax.jit(step)(history, logits, index, labels, valid, 2.0)
    assert float(eager) == pytest.approx(float(compiled), rel=1e-6)
    np.testing.assert_allclose(eager_history.losses, compiled_history.losses, rtol=1e-6)
    assert np.isfinite(float(eager))
    grad = jax.grad(lambda x: step(history, x, index, labels, valid, 2.0)[0])(logits)
    assert np.all(np.isfinite(np.asarray(grad)))
    assert float(grad[7]) == 0.0  # padding gets no gradient
