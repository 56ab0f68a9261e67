"""DPI/DVAE loss terms against hand-computed values, and their numerics."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dprec.objectives import likelihood
from dprec.objectives.bce import bce
from dprec.objectives.kl import bernoulli_kl, mixed_kl
from dprec.objectives.reduce import l2_penalty, masked_mean


def sig(x):
    return 1 / (1 + math.exp(-x))


def kl(p, q):
    return p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))


F, H, HP = 0.7, -1.2, 2.0  # logits of f, h and h'


def test_bernoulli_kl_hand_computed_and_asymmetric():
    value = bernoulli_kl(p_logits=jnp.array(F), q_logits=jnp.array(H))
    assert float(value) == pytest.approx(kl(sig(F), sig(H)), rel=1e-5)
    reverse = bernoulli_kl(p_logits=jnp.array(H), q_logits=jnp.array(F))
    assert float(reverse) == pytest.approx(kl(sig(H), sig(F)), rel=1e-5)
    assert abs(float(value) - float(reverse)) > 1e-3  # the two directions differ here


def test_kl_is_zero_when_models_agree():
    x = jnp.linspace(-30, 30, 13)
    np.testing.assert_allclose(bernoulli_kl(p_logits=x, q_logits=x), 0.0, atol=1e-6)
    np.testing.assert_allclose(mixed_kl(f_logits=x, ref_logits=x, alpha=0.3), 0.0, atol=1e-6)


def test_mixed_kl_weights_the_two_directions():
    g = -0.4
    expected = 0.3 * kl(sig(g), sig(F)) + 0.7 * kl(sig(F), sig(g))
    value = mixed_kl(f_logits=jnp.array(F), ref_logits=jnp.array(g), alpha=0.3)
    assert float(value) == pytest.approx(expected, rel=1e-5)
    only_ref_f = mixed_kl(f_logits=jnp.array(F), ref_logits=jnp.array(g), alpha=1.0)
    assert float(only_ref_f) == pytest.approx(kl(sig(g), sig(F)), rel=1e-5)


def test_dp_terms_hand_computed():
    f, h = sig(F), sig(H)
    pos = likelihood.dp_positive(f_logits=jnp.array(F), h_logits=jnp.array(H))
    assert float(pos) == pytest.approx(math.log(h) * (1 - f), rel=1e-5)
    neg = likelihood.dp_negative(f_logits=jnp.array(F), h_logits=jnp.array(H), c1=100.0)
    assert float(neg) == pytest.approx(math.log(1 - h) * (1 - f) - 100.0 * f, rel=1e-5)


def test_dn_terms_hand_computed():
    f, hp = sig(F), sig(HP)
    pos = likelihood.dn_positive(f_logits=jnp.array(F), h_prime_logits=jnp.array(HP), c2=10.0)
    assert float(pos) == pytest.approx(math.log(hp) * f - 10.0 * (1 - f), rel=1e-5)
    neg = likelihood.dn_negative(f_logits=jnp.array(F), h_prime_logits=jnp.array(HP))
    assert float(neg) == pytest.approx(math.log(1 - hp) * f, rel=1e-5)


def test_full_likelihood_and_posterior_hand_computed():
    f, h, hp = sig(F), sig(H), sig(HP)
    args = {"f_logits": jnp.array(F), "h_logits": jnp.array(H), "h_prime_logits": jnp.array(HP)}
    pos = likelihood.full_positive(**args)
    assert float(pos) == pytest.approx(math.log(hp) * f + math.log(h) * (1 - f), rel=1e-5)
    neg = likelihood.full_negative(**args)
    assert float(neg) == pytest.approx(math.log(1 - hp) * f + math.log(1 - h) * (1 - f), rel=1e-5)
    post = likelihood.posterior_real_positive(**args)
    assert float(post) == pytest.approx(hp * f / (hp * f + h * (1 - f)), rel=1e-5)


def test_bce_and_reductions_hand_computed():
    value = bce(logits=jnp.array([F, F]), labels=jnp.array([1.0, 0.0]))
    np.testing.assert_allclose(value, [-math.log(sig(F)), -math.log(1 - sig(F))], rtol=1e-5)
    mean = masked_mean(jnp.array([[1.0, 3.0], [5.0, 7.0], [100.0, 100.0]]), jnp.array([1, 1, 0]))
    assert float(mean) == pytest.approx(4.0)
    params = {"a": jnp.array([3.0, 4.0]), "b": {"c": jnp.array([[1.0]])}}
    assert float(l2_penalty(params, lambda0=0.5, n_users=10)) == pytest.approx(0.5 * 0.5 * 26 / 10)


@pytest.mark.parametrize("c", [1.0, 1000.0])
def test_terms_finite_with_large_weights_and_logits(c):
    x = jnp.array([-50.0, -20.0, 0.0, 20.0, 50.0])

    def total(f, h, g):
        terms = (
            likelihood.dp_positive(f_logits=f, h_logits=h),
            likelihood.dp_negative(f_logits=f, h_logits=h, c1=c),
            likelihood.dn_positive(f_logits=f, h_prime_logits=h, c2=c),
            likelihood.dn_negative(f_logits=f, h_prime_logits=h),
            mixed_kl(f_logits=f, ref_logits=g, alpha=0.5),
            likelihood.posterior_real_positive(f_logits=f, h_logits=h, h_prime_logits=g),
        )
        return sum(jnp.sum(t) for t in terms)

    for f, h, g in [(x, x[::-1], x), (x, x, x[::-1]), (-x, x, x)]:
        value, grads = jax.value_and_grad(total, argnums=(0, 1, 2))(f, h, g)
        assert np.isfinite(float(value))
        for grad in grads:
            assert np.all(np.isfinite(np.asarray(grad)))
