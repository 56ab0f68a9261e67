"""experiments/bench_adam_layout.py's two alternatives compute optax's numbers: the interleaved
`[N, 3, D]` Adam step and the row-block `fori_loop` step, each with the L2 gradient (and the
blocked one with the L2 term's value), against optax's Adam on the same gradients."""

import bench_adam_layout  # experiments/conftest.py puts this folder on sys.path
import jax.numpy as jnp
import numpy as np
import optax


def optax_adam_steps(seed, steps=4, shape=(50, 8)):
    """optax's Adam (with the script's L2 gradient) on a random table for `steps` steps:
    yields each step's gradient and the parameters before it, then the final
    (parameters, first moment, second moment)."""
    rng = np.random.default_rng(seed)
    params = jnp.asarray(rng.normal(size=shape), jnp.float32)
    optimizer = optax.adam(bench_adam_layout.LR, b1=bench_adam_layout.B1, b2=bench_adam_layout.B2)
    opt_state = optimizer.init(params)
    for step in range(steps):
        grad = jnp.asarray(rng.normal(size=shape) * (step + 1), jnp.float32)
        yield grad, params
        params, opt_state = bench_adam_layout.separate_step(params, opt_state, grad, optimizer)
    yield params, opt_state[0].mu, opt_state[0].nu


def assert_same_adam_state(got, want):
    for got_array, want_array in zip(got, want, strict=True):
        np.testing.assert_allclose(
            np.asarray(got_array), np.asarray(want_array), rtol=1e-6, atol=1e-7
        )


def test_interleaved_adam_step_computes_optax_adam_with_l2():
    *steps, optax_state = optax_adam_steps(seed=0)
    params = steps[0][1]
    table = jnp.stack([params, jnp.zeros_like(params), jnp.zeros_like(params)], axis=1)
    count = jnp.zeros((), jnp.int32)
    for grad, _ in steps:
        table, count = bench_adam_layout.interleaved_step(table, count, grad)
    assert_same_adam_state((table[:, 0], table[:, 1], table[:, 2]), optax_state)
    assert int(count) == 4 and not np.allclose(np.asarray(table[:, 0]), 0.0)


def test_blocked_adam_step_computes_optax_adam_with_l2_and_its_value():
    """Blocks of 16 rows over 50: three in the loop, the last 2 rows after it."""
    *steps, optax_state = optax_adam_steps(seed=1)
    params = steps[0][1]
    state = (params, jnp.zeros_like(params), jnp.zeros_like(params), jnp.zeros((), jnp.int32))
    for grad, params_before in steps:
        *state, squares = bench_adam_layout.blocked_step(*state, grad, block_rows=16)
        np.testing.assert_allclose(float(squares), float(jnp.sum(params_before**2)), rtol=1e-6)
    assert_same_adam_state(state[:3], optax_state)
    assert int(state[3]) == 4
