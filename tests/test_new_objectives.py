"""BPR, SL, BSL, PD/PDA, Rel-MF, UDT and PLD pieces against hand-computed values, their
gradients, masking, and numerics at large logits."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dprec.objectives import pda, pld, relmf, udt
from dprec.objectives.bpr import bpr_loss
from dprec.objectives.bsl import bsl_loss
from dprec.objectives.reduce import masked_mean
from dprec.objectives.softmax import softmax_loss


def sig(x):
    return 1 / (1 + math.exp(-x))


def softplus(x):
    return math.log1p(math.exp(x))


def np_softmax(x):
    e = np.exp(np.asarray(x, np.float64) - np.max(x))
    return e / e.sum()


LARGE = jnp.array([-50.0, -20.0, 0.0, 20.0, 50.0])


def assert_finite(*arrays):
    for array in arrays:
        assert np.all(np.isfinite(np.asarray(array)))


# BPR -------------------------------------------------------------------------------------

POS = jnp.array([1.0, -0.5])
NEG = jnp.array([[0.0, 2.0], [-1.0, -0.5]])


def test_bpr_hand_computed():
    value = bpr_loss(pos_logits=POS, neg_logits=NEG)
    row0 = (-math.log(sig(1.0 - 0.0)) - math.log(sig(1.0 - 2.0))) / 2  # (0.3133 + 1.3133) / 2
    row1 = (-math.log(sig(-0.5 + 1.0)) - math.log(sig(0.0))) / 2  # (0.4741 + 0.6931) / 2
    np.testing.assert_allclose(value, [row0, row1], rtol=1e-6)
    assert row0 == pytest.approx(0.813262, abs=1e-6)


def test_bpr_gradient_matches_analytic():
    grad_pos, grad_neg = jax.grad(
        lambda p, n: jnp.sum(bpr_loss(pos_logits=p, neg_logits=n)), argnums=(0, 1)
    )(POS, NEG)
    # ∂/∂s⁺ = −(1/N) Σ_j σ(s⁻_j − s⁺); ∂/∂s⁻_j = σ(s⁻_j − s⁺) / N
    pull = np.array(
        [[sig(n - p) for n in row] for p, row in zip(POS.tolist(), NEG.tolist(), strict=True)]
    )
    np.testing.assert_allclose(grad_pos, -pull.mean(axis=1), rtol=1e-5)
    np.testing.assert_allclose(grad_neg, pull / 2, rtol=1e-5)


def test_bpr_neg_mask_drops_padding():
    padded = jnp.array([[0.0, 2.0, 1e4], [-1.0, -0.5, -1e4]])
    mask = jnp.array([[1, 1, 0], [1, 1, 0]])
    np.testing.assert_allclose(
        bpr_loss(pos_logits=POS, neg_logits=padded, neg_mask=mask),
        bpr_loss(pos_logits=POS, neg_logits=NEG),
        rtol=1e-6,
    )
    one = bpr_loss(pos_logits=POS, neg_logits=NEG, neg_mask=jnp.array([[1, 0], [0, 0]]))
    np.testing.assert_allclose(one, [-math.log(sig(1.0)), 0.0], rtol=1e-6)


def test_bpr_padded_rows_leave_the_masked_mean_unchanged():
    padded = bpr_loss(
        pos_logits=jnp.concatenate([POS, jnp.array([7.0])]),
        neg_logits=jnp.concatenate([NEG, jnp.array([[-3.0, 9.0]])]),
    )
    real = bpr_loss(pos_logits=POS, neg_logits=NEG)
    mean = masked_mean(padded, jnp.array([1.0, 1.0, 0.0]))
    assert float(mean) == pytest.approx(float(jnp.mean(real)), rel=1e-6)


def test_bpr_finite_at_large_logits():
    neg = jnp.stack([LARGE[::-1], LARGE], axis=1)
    value, grads = jax.value_and_grad(
        lambda p, n: jnp.sum(bpr_loss(pos_logits=p, neg_logits=n)), argnums=(0, 1)
    )(LARGE, neg)
    assert_finite(value, *grads)
    assert float(bpr_loss(pos_logits=jnp.array([-50.0]), neg_logits=jnp.array([[50.0]]))[0]) == (
        pytest.approx(100.0, rel=1e-6)
    )


# Sampled softmax --------------------------------------------------------------------------


def test_softmax_loss_hand_computed():
    tau = 0.5
    value = softmax_loss(pos_logits=POS, neg_logits=NEG, temperature=tau)
    # row 0: −log(e² / (e² + e⁰ + e⁴)) = log(1 + e⁻² + e²)
    row0 = math.log(1 + math.exp(-2) + math.exp(2))
    row1 = -math.log(math.exp(-1) / (math.exp(-1) + math.exp(-2) + math.exp(-1)))
    np.testing.assert_allclose(value, [row0, row1], rtol=1e-6)
    without = softmax_loss(pos_logits=POS, neg_logits=NEG, temperature=tau, include_positive=False)
    np.testing.assert_allclose(
        without,
        [-2 + math.log(1 + math.exp(4)), 1 + math.log(math.exp(-2) + math.exp(-1))],
        rtol=1e-6,
    )


def test_softmax_loss_gradient_matches_analytic():
    tau = 0.5
    grad_pos, grad_neg = jax.grad(
        lambda p, n: jnp.sum(softmax_loss(pos_logits=p, neg_logits=n, temperature=tau)),
        argnums=(0, 1),
    )(POS, NEG)
    for row in range(2):
        p = np_softmax(np.r_[POS[row], NEG[row]] / tau)
        assert float(grad_pos[row]) == pytest.approx((p[0] - 1) / tau, rel=1e-5)
        np.testing.assert_allclose(grad_neg[row], p[1:] / tau, rtol=1e-5)


def test_softmax_loss_mask_and_one_negative_is_logistic():
    padded = jnp.array([[0.0, 2.0, 1e4], [-1.0, -0.5, 1e4]])
    mask = jnp.array([[1, 1, 0], [1, 1, 0]])
    np.testing.assert_allclose(
        softmax_loss(pos_logits=POS, neg_logits=padded, temperature=0.5, neg_mask=mask),
        softmax_loss(pos_logits=POS, neg_logits=NEG, temperature=0.5),
        rtol=1e-6,
    )
    # one negative, τ = 1: −log(e^a / (e^a + e^b)) = −log σ(a − b), BPR's pair loss
    single = softmax_loss(pos_logits=POS, neg_logits=NEG[:, :1], temperature=1.0)
    np.testing.assert_allclose(single, bpr_loss(pos_logits=POS, neg_logits=NEG[:, :1]), rtol=1e-6)


def test_softmax_loss_finite_at_large_logits():
    neg = jnp.stack([LARGE[::-1], LARGE, -LARGE], axis=1)
    for include in (True, False):
        value, grads = jax.value_and_grad(
            lambda p, n, include=include: jnp.sum(
                softmax_loss(pos_logits=p, neg_logits=n, temperature=0.05, include_positive=include)
            ),
            argnums=(0, 1),
        )(LARGE, neg)
        assert_finite(value, *grads)


@pytest.mark.parametrize("bad", [0.0, -1.0, math.inf, math.nan])
def test_non_finite_or_non_positive_temperatures_are_rejected(bad):
    with pytest.raises(ValueError, match="temperature"):
        softmax_loss(pos_logits=POS, neg_logits=NEG, temperature=bad)
    with pytest.raises(ValueError, match="τ1"):
        bsl_loss(
            pos_logits=POS,
            neg_logits=NEG,
            users=jnp.array([0, 1]),
            mask=jnp.ones(2),
            pos_temperature=bad,
            neg_temperature=0.1,
        )
    with pytest.raises(ValueError, match="temperature"):
        pld.resampling_probabilities(pool_losses=NEG, pool_mask=jnp.ones((2, 2)), temperature=bad)


# BSL -------------------------------------------------------------------------------------

BSL_POS = jnp.array([1.0, -1.0, 0.5, 0.2])
BSL_NEG = jnp.array([[0.0, 0.4], [0.5, -0.3], [-0.2, 0.1], [0.3, 0.3]])
BSL_USERS = jnp.array([7, 7, 3, 7])
TAU1, TAU2 = 0.5, 0.2


def bsl_numpy(pos, neg, users, tau1, tau2):
    pos, neg, users = (np.asarray(a, np.float64) for a in (pos, neg, users))
    out = []
    for b in range(len(pos)):
        group = pos[users == users[b]]
        positive = -tau1 * np.log(np.mean(np.exp(group / tau1)))
        negative = tau2 * np.log(np.mean(np.exp(neg[b] / tau2)))
        out.append(positive + negative)
    return np.array(out)


def bsl(pos=BSL_POS, neg=BSL_NEG, users=BSL_USERS, mask=None, tau1=TAU1, tau2=TAU2):
    mask = jnp.ones(pos.shape[0]) if mask is None else mask
    return bsl_loss(
        pos_logits=pos,
        neg_logits=neg,
        users=users,
        mask=mask,
        pos_temperature=tau1,
        neg_temperature=tau2,
    )


def test_bsl_hand_computed():
    value = bsl()
    np.testing.assert_allclose(value, bsl_numpy(BSL_POS, BSL_NEG, BSL_USERS, TAU1, TAU2), rtol=1e-5)
    # row 2 is user 3's only row: −s⁺ + τ2·log mean exp(s⁻/τ2), written out
    row2 = -0.5 + 0.2 * math.log((math.exp(-1.0) + math.exp(0.5)) / 2)
    assert float(value[2]) == pytest.approx(row2, rel=1e-5)


def test_bsl_with_one_positive_per_user_is_scaled_shifted_sl():
    users = jnp.arange(4)
    sl = softmax_loss(
        pos_logits=BSL_POS, neg_logits=BSL_NEG, temperature=TAU2, include_positive=False
    )
    np.testing.assert_allclose(bsl(users=users), TAU2 * (sl - math.log(2)), rtol=1e-5, atol=1e-6)


def test_bsl_tends_to_sl_as_tau1_grows():
    sl = softmax_loss(
        pos_logits=BSL_POS, neg_logits=BSL_NEG, temperature=TAU2, include_positive=False
    )
    target = float(jnp.sum(TAU2 * (sl - math.log(2))))
    gaps = [abs(float(jnp.sum(bsl(tau1=t))) - target) for t in (1.0, 10.0, 1000.0)]
    assert gaps[0] > gaps[1] > gaps[2]
    assert gaps[2] < 2e-3
    # the row-wise limit: each row's positive part → −(its user's mean s⁺)
    users = np.asarray(BSL_USERS)
    group_mean = np.array([np.mean(np.asarray(BSL_POS)[users == u]) for u in users])
    negative = TAU2 * (np.log(np.mean(np.exp(np.asarray(BSL_NEG) / TAU2), axis=1)))
    np.testing.assert_allclose(bsl(tau1=1000.0), -group_mean + negative, atol=2e-3)


def test_bsl_gradient_matches_analytic_and_spares_low_scored_positives():
    grad_pos, grad_neg = jax.grad(lambda p, n: jnp.sum(bsl(pos=p, neg=n)), argnums=(0, 1))(
        BSL_POS, BSL_NEG
    )
    group = np.array([0, 1, 3])  # user 7's rows
    weights = np_softmax(np.asarray(BSL_POS)[group] / TAU1)
    expected_pos = np.zeros(4)
    expected_pos[group] = -len(group) * weights  # each of the 3 rows pulls −softmax_k
    expected_pos[2] = -1.0
    np.testing.assert_allclose(grad_pos, expected_pos, rtol=1e-5)
    for row in range(4):
        np.testing.assert_allclose(grad_neg[row], np_softmax(BSL_NEG[row] / TAU2), rtol=1e-5)
    # user 7's lowest-scored positive (row 1, s⁺ = −1) gets the smallest pull
    assert abs(float(grad_pos[1])) < abs(float(grad_pos[3])) < abs(float(grad_pos[0]))


def test_bsl_padding_rows_are_zero_and_invisible():
    pos = jnp.concatenate([BSL_POS, jnp.array([40.0])])
    neg = jnp.concatenate([BSL_NEG, jnp.array([[9.0, -9.0]])])
    users = jnp.concatenate([BSL_USERS, jnp.array([7])])  # padding shares user 7's id
    value = bsl(pos=pos, neg=neg, users=users, mask=jnp.array([1, 1, 1, 1, 0]))
    np.testing.assert_allclose(value[:4], bsl(), rtol=1e-6)
    assert float(value[4]) == 0.0
    neg_mask = jnp.array([[1, 1, 0]] * 4)
    padded_neg = jnp.concatenate([BSL_NEG, jnp.full((4, 1), 1e4)], axis=1)
    np.testing.assert_allclose(
        bsl_loss(
            pos_logits=BSL_POS,
            neg_logits=padded_neg,
            users=BSL_USERS,
            mask=jnp.ones(4),
            pos_temperature=TAU1,
            neg_temperature=TAU2,
            neg_mask=neg_mask,
        ),
        bsl(),
        rtol=1e-6,
    )


def test_bsl_finite_at_large_logits_under_jit():
    pos = LARGE
    neg = jnp.stack([LARGE[::-1], LARGE], axis=1)
    users = jnp.array([0, 0, 1, 1, 1])
    loss_fn = jax.jit(functools.partial(bsl_loss, pos_temperature=0.05, neg_temperature=0.05))
    value, grads = jax.value_and_grad(
        lambda p, n: jnp.sum(loss_fn(pos_logits=p, neg_logits=n, users=users, mask=jnp.ones(5))),
        argnums=(0, 1),
    )(pos, neg)
    assert_finite(value, *grads)


# PD / PDA --------------------------------------------------------------------------------


def test_log_elu_plus_one():
    x = jnp.array([-120.0, -3.0, 0.0, 2.0, 50.0])
    np.testing.assert_allclose(
        pda.log_elu_plus_one(x), [-120.0, -3.0, 0.0, math.log(3.0), math.log(51.0)], rtol=1e-6
    )
    grads = jax.grad(lambda v: jnp.sum(pda.log_elu_plus_one(v)))(x)
    np.testing.assert_allclose(grads, [1.0, 1.0, 1.0, 1 / 3, 1 / 51], rtol=1e-6)


def test_pda_loss_hand_computed():
    gamma = 0.5
    value = pda.pda_loss(
        pos_logits=jnp.array([0.5, -1.0]),
        neg_logits=jnp.array([[-1.0], [2.0]]),
        pos_popularity=jnp.array([0.8, 0.3]),
        neg_popularity=jnp.array([[0.1], [1.0]]),
        gamma=gamma,
    )
    pos0, neg0 = 1.5 * 0.8**gamma, math.exp(-1.0) * 0.1**gamma  # ELU'(f)·m^γ
    pos1, neg1 = math.exp(-1.0) * 0.3**gamma, 3.0 * 1.0**gamma
    np.testing.assert_allclose(
        value, [-math.log(sig(pos0 - neg0)), -math.log(sig(pos1 - neg1))], rtol=1e-6
    )


def test_pda_loss_gradient_and_zero_popularity():
    gamma = 0.5
    f_pos, f_neg, m_pos, m_neg = 0.5, -1.0, 0.8, 0.1

    def loss(p, n, mp=m_pos):
        return jnp.sum(
            pda.pda_loss(
                pos_logits=p,
                neg_logits=n,
                pos_popularity=jnp.array([mp]),
                neg_popularity=jnp.array([[m_neg]]),
                gamma=gamma,
            )
        )

    grad_pos, grad_neg = jax.grad(loss, argnums=(0, 1))(jnp.array([f_pos]), jnp.array([[f_neg]]))
    diff = 1.5 * m_pos**gamma - math.exp(f_neg) * m_neg**gamma
    # ∂/∂f⁺ = −σ(−diff)·ELU''(f⁺)·m⁺^γ with ELU''(f) = 1 for f > 0, e^f for f ≤ 0
    assert float(grad_pos[0]) == pytest.approx(-sig(-diff) * m_pos**gamma, rel=1e-5)
    assert float(grad_neg[0, 0]) == pytest.approx(
        sig(-diff) * math.exp(f_neg) * m_neg**gamma, rel=1e-5
    )
    # the least popular item (m = 0, as the authors' min-max gives) scores 0: finite, no pull
    value, grads = jax.value_and_grad(lambda p: loss(p, jnp.array([[f_neg]]), mp=0.0))(
        jnp.array([f_pos])
    )
    assert float(value) == pytest.approx(-math.log(sig(-math.exp(f_neg) * m_neg**gamma)), rel=1e-6)
    assert float(grads[0]) == 0.0


def test_pda_gamma_zero_is_bpr_on_elu_scores_even_at_zero_popularity():
    pos, neg = jnp.array([0.5, -2.0]), jnp.array([[1.0], [-3.0]])
    value = pda.pda_loss(
        pos_logits=pos,
        neg_logits=neg,
        pos_popularity=jnp.array([0.0, 0.5]),
        neg_popularity=jnp.array([[0.0], [1.0]]),
        gamma=0.0,
    )
    expected = [-math.log(sig(1.5 - 2.0)), -math.log(sig(math.exp(-2.0) - math.exp(-3.0)))]
    np.testing.assert_allclose(value, expected, rtol=1e-6)


def test_pda_finite_at_large_logits():
    popularity = jnp.array([0.0, 1e-6, 0.3, 0.9, 1.0])
    value, grads = jax.value_and_grad(
        lambda p, n: jnp.sum(
            pda.pda_loss(
                pos_logits=p,
                neg_logits=n[:, None],
                pos_popularity=popularity,
                neg_popularity=popularity[::-1, None],
                gamma=0.2,
            )
        ),
        argnums=(0, 1),
    )(LARGE, LARGE[::-1])
    assert_finite(value, *grads)


def test_pd_and_pda_ranking():
    logits = jnp.array([[1.0, 0.5, -2.0]])
    target = jnp.array([0.1, 1.0, 1.0])
    pd_order = jnp.argsort(-pda.ranking_score(logits=logits)[0])
    assert pd_order.tolist() == [0, 1, 2]  # PD: the order of f
    pda_score = pda.ranking_score(logits=logits, target_popularity=target, target_gamma=1.0)
    # ELU'(f)·m̃: 2·0.1 = 0.2, 1.5·1 = 1.5, e⁻²·1 = 0.135
    np.testing.assert_allclose(jnp.exp(pda_score[0]), [0.2, 1.5, math.exp(-2.0)], rtol=1e-6)
    assert jnp.argsort(-pda_score[0]).tolist() == [1, 0, 2]


def test_popularity_from_counts_and_bad_gamma():
    np.testing.assert_allclose(
        pda.popularity_from_counts(jnp.array([0, 2, 6])), [0.0, 1 / 3, 1.0], rtol=1e-6
    )
    np.testing.assert_allclose(pda.popularity_from_counts(jnp.array([4, 4])), [1.0, 1.0])
    with pytest.raises(ValueError, match="gamma"):
        pda.log_score(logits=POS, popularity=jnp.ones(2), gamma=-0.1)


# Rel-MF ----------------------------------------------------------------------------------


def test_propensity_hand_computed():
    counts = jnp.array([0, 1, 4, 16])
    np.testing.assert_allclose(relmf.propensity(counts), [0.1, 0.25, 0.5, 1.0], rtol=1e-6)
    np.testing.assert_allclose(
        relmf.propensity(counts, eta=1.0, min_propensity=0.01), [0.01, 1 / 16, 0.25, 1.0]
    )
    np.testing.assert_allclose(relmf.propensity(jnp.zeros(3)), [0.1, 0.1, 0.1])
    for bad in ({"min_propensity": 0.0}, {"min_propensity": 1.5}, {"eta": math.nan}):
        with pytest.raises(ValueError):
            relmf.propensity(counts, **bad)


def test_relmf_loss_hand_computed():
    logits = jnp.array([0.3, 0.3, -0.7, 2.0])
    labels = jnp.array([1.0, 1.0, 0.0, 1.0])
    theta = jnp.array([0.25, 1.0, 0.2, 0.5])
    raw = relmf.relmf_loss(logits=logits, labels=labels, propensity=theta, nonnegative=False)
    expected = [
        4 * softplus(-0.3) + (1 - 4) * softplus(0.3),  # clicked, θ = 0.25: negative here
        softplus(-0.3),  # θ = 1: plain BCE of label 1
        softplus(-0.7),  # unclicked: BCE of label 0 whatever θ
        2 * softplus(-2.0) + (1 - 2) * softplus(2.0),
    ]
    np.testing.assert_allclose(raw, expected, rtol=1e-5)
    assert expected[0] < 0
    clipped = relmf.relmf_loss(logits=logits, labels=labels, propensity=theta)
    np.testing.assert_allclose(clipped, np.maximum(expected, 0.0), rtol=1e-5)
    squared = relmf.relmf_loss(
        logits=logits, labels=labels, propensity=theta, local_loss="squared", nonnegative=False
    )
    s = sig(0.3)
    assert float(squared[0]) == pytest.approx(4 * (1 - s) ** 2 + (1 - 4) * s**2, rel=1e-5)
    assert float(squared[2]) == pytest.approx(sig(-0.7) ** 2, rel=1e-5)


@pytest.mark.parametrize("local_loss", ["log", "squared"])
def test_relmf_is_unbiased_for_a_relevant_item(local_loss):
    # A relevant pair is clicked with probability θ: E[loss] = θ·ℓ(y=1) + (1−θ)·ℓ(y=0) = δ¹.
    logits = jnp.array([-1.0, 0.4, 2.5])
    theta = jnp.array([0.2, 0.5, 0.9])

    def loss(label):
        return relmf.relmf_loss(
            logits=logits,
            labels=jnp.full(3, label),
            propensity=theta,
            local_loss=local_loss,
            nonnegative=False,
        )

    expected = theta * loss(1.0) + (1 - theta) * loss(0.0)
    ideal = relmf.relmf_loss(
        logits=logits, labels=jnp.ones(3), propensity=jnp.ones(3), local_loss=local_loss
    )
    np.testing.assert_allclose(expected, ideal, rtol=1e-5)


def test_relmf_boundedness_and_large_logits():
    theta = jnp.full(5, 0.1)
    labels = jnp.ones(5)
    squared = relmf.relmf_loss(
        logits=LARGE, labels=labels, propensity=theta, local_loss="squared", nonnegative=False
    )
    assert float(jnp.min(squared)) >= 1 - 1 / 0.1 - 1e-5  # bounded by the clip of θ
    value, grads = jax.value_and_grad(
        lambda f: jnp.sum(relmf.relmf_loss(logits=f, labels=labels, propensity=theta))
    )(LARGE)
    assert_finite(value, grads)
    clipped = relmf.relmf_loss(logits=LARGE, labels=labels, propensity=theta)
    assert float(jnp.min(clipped)) == 0.0  # f = 50 would give 1 + (1 − 10)·50 < 0 unclipped
    with pytest.raises(ValueError, match="local_loss"):
        relmf.relmf_loss(logits=LARGE, labels=labels, propensity=theta, local_loss="hinge")


# UDT -------------------------------------------------------------------------------------


def test_user_mean_loss_is_a_masked_segment_mean():
    mean, count = udt.user_mean_loss(
        losses=jnp.array([1.0, 2.0, 3.0, 4.0, 10.0]),
        users=jnp.array([0, 0, 1, 1, 2]),
        n_users=4,
        mask=jnp.array([1, 1, 1, 1, 0]),
    )
    np.testing.assert_allclose(mean, [1.5, 3.5, 0.0, 0.0])
    np.testing.assert_allclose(count, [2, 2, 0, 0])


def test_user_temperature_and_factor_follow_the_loss_rank():
    temperature, factor = udt.user_temperature_and_factor(
        jnp.array([0.3, 0.1, 0.9, 0.5]), valid=jnp.ones(4)
    )
    # ascending loss: user 1, 0, 3, 2 at positions 0, 1/3, 2/3, 1
    np.testing.assert_allclose(temperature, [0.3, 0.2, 0.5, 0.4], rtol=1e-6)
    np.testing.assert_allclose(factor, [1 / 3, 0.5, 0.0, 1 / 6], rtol=1e-6, atol=1e-7)
    tied, _ = udt.user_temperature_and_factor(
        jnp.array([0.1, 0.5, 0.5, 0.9, 7.0]), valid=jnp.array([1, 1, 1, 1, 0])
    )
    # positions 0, 1/2, 1/2, 1 among the 4 valid; the invalid user gets the middle
    np.testing.assert_allclose(tied, [0.2, 0.35, 0.35, 0.5, 0.35], rtol=1e-6)
    with pytest.raises(ValueError, match="temp1"):
        udt.user_temperature_and_factor(jnp.zeros(2), valid=jnp.ones(2), temperature_range=(0, 1))


UDT_LOSSES = jnp.array([0.2, 1.0, 0.5, 0.3, 0.3, 9.0])
UDT_USERS = jnp.array([0, 0, 0, 1, 1, 1])
UDT_MASK = jnp.array([1, 1, 1, 1, 1, 0])
UDT_TEMPERATURE = jnp.array([0.5, 0.2, 1.0])


def test_positive_weights_are_a_per_user_softmax():
    weights = udt.positive_weights(
        losses=UDT_LOSSES, users=UDT_USERS, temperature=UDT_TEMPERATURE, n_users=3, mask=UDT_MASK
    )
    user0 = np_softmax(-np.array([0.2, 1.0, 0.5]) / 0.5)
    np.testing.assert_allclose(weights, [*user0, 0.5, 0.5, 0.0], rtol=1e-5)
    sums = jax.ops.segment_sum(weights, UDT_USERS, num_segments=3)
    np.testing.assert_allclose(sums, [1.0, 1.0, 0.0], rtol=1e-6)
    assert int(jnp.argmin(weights[:3])) == 1  # user 0's highest loss gets the lowest weight


def test_interaction_weights_scale_by_count_and_factor():
    factor = jnp.array([0.5, 0.25, 0.1])
    weights = udt.interaction_weights(
        losses=UDT_LOSSES,
        users=UDT_USERS,
        temperature=UDT_TEMPERATURE,
        factor=factor,
        n_users=3,
        mask=UDT_MASK,
    )
    user0 = np_softmax(-np.array([0.2, 1.0, 0.5]) / 0.5) * 3 * 0.5
    # user 1's recorded positives: 0.5 · 2 · 0.25; the unrecorded one: a_u = 0.25
    np.testing.assert_allclose(weights, [*user0, 0.25, 0.25, 0.25], rtol=1e-5)
    assert not bool(udt.weights_active(1)) and bool(udt.weights_active(2))


def test_segment_softmax_finite_with_extreme_losses():
    losses = jnp.array([50.0, 0.0, 1e-3, 50.0, 50.0])
    users = jnp.array([0, 0, 0, 1, 1])

    def total(values):
        weights = udt.positive_weights(
            losses=values,
            users=users,
            temperature=jnp.array([0.01, 0.01]),
            n_users=2,
            mask=jnp.ones(5),
        )
        return jnp.sum(weights * values), weights

    (_, weights) = total(losses)
    assert_finite(weights)
    np.testing.assert_allclose(
        jax.ops.segment_sum(weights, users, num_segments=2), [1.0, 1.0], rtol=1e-6
    )
    assert float(weights[0]) == 0.0 and float(weights[1]) > float(weights[2]) > 0.0
    assert_finite(jax.grad(lambda v: total(v)[0])(losses))


# PLD -------------------------------------------------------------------------------------

POOL = jnp.array([[0.1, 0.5, 2.0, 0.3, 0.2], [0.4, 0.1, 0.3, 0.0, 0.0]])
POOL_MASK = jnp.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])


def test_candidate_losses_are_bpr_pair_losses():
    pool_logits = jnp.array([[2.0, -1.0, 0.0]])
    losses = pld.candidate_losses(pool_logits=pool_logits, neg_logits=jnp.array([0.5]))
    np.testing.assert_allclose(losses, [[softplus(-1.5), softplus(1.5), softplus(0.5)]], rtol=1e-6)


def test_resampling_probabilities_hand_computed():
    probabilities = pld.resampling_probabilities(pool_losses=POOL, pool_mask=POOL_MASK)
    row0 = np_softmax(-np.asarray(POOL[0]) / 0.1)
    row1 = np_softmax(-np.array([0.4, 0.1, 0.3]) / 0.1)
    np.testing.assert_allclose(probabilities, [row0, [*row1, 0.0, 0.0]], rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(jnp.sum(probabilities, axis=-1), [1.0, 1.0], rtol=1e-6)
    assert int(jnp.argmin(probabilities[0])) == 2  # the highest loss is least likely
    empty = pld.resampling_probabilities(pool_losses=POOL, pool_mask=jnp.zeros((2, 5)))
    np.testing.assert_allclose(empty, 0.0)
    extreme = pld.resampling_probabilities(
        pool_losses=jnp.array([[100.0, 0.0, 50.0]]), pool_mask=jnp.ones((1, 3))
    )
    assert_finite(extreme)
    np.testing.assert_allclose(extreme, [[0.0, 1.0, 0.0]], atol=1e-7)


def test_resample_frequencies_match_probabilities():
    draws = 20000
    losses = jnp.array([0.3, 0.1, 0.6, 0.2, 0.0])
    mask = jnp.array([1, 1, 1, 1, 0])
    tiled_losses = jnp.tile(losses, (draws, 1))
    tiled_mask = jnp.tile(mask, (draws, 1))
    slots = pld.resample(
        jax.random.key(0), pool_losses=tiled_losses, pool_mask=tiled_mask, temperature=0.5
    )
    frequency = np.bincount(np.asarray(slots), minlength=5) / draws
    expected = np_softmax(-np.array([0.3, 0.1, 0.6, 0.2]) / 0.5)
    tolerance = 4 * np.sqrt(expected * (1 - expected) / draws)
    assert np.all(np.abs(frequency[:4] - expected) < tolerance)
    assert frequency[4] == 0.0  # a masked slot is never drawn
    empty = pld.resample(jax.random.key(1), pool_losses=POOL, pool_mask=jnp.zeros((2, 5)))
    assert empty.tolist() == [0, 0]
    assert not bool(pld.resampling_active(4)) and bool(pld.resampling_active(5))
