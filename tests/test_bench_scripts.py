"""The pieces of benchmarks/profile_epoch.py and bench_adam_layout.py that their figures rest
on: the HLO shape table, and the interleaved and blocked Adam steps computing optax's numbers; and
bench_cli_errors.py's cases, each a one-line error reported before JAX is imported."""

import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_adam_layout  # noqa: E402
import bench_cli_errors  # noqa: E402
from profile_epoch import op_shapes  # noqa: E402


def test_op_shapes_reads_the_result_shape_of_each_instruction():
    def fn(x, y):
        return jnp.tanh(x @ y).sum(axis=0), x * 2.0

    compiled = jax.jit(fn).lower(jnp.ones((6, 4)), jnp.ones((4, 3))).compile()
    shapes = op_shapes(compiled.as_text())
    assert set(shapes.values()) >= {"f32[6,4]", "f32[3]"}
    root = [name for name, shape in shapes.items() if shape.startswith("(f32[3]")]
    assert root, shapes  # the tuple of the two results, layouts stripped
    assert all("{" not in shape for shape in shapes.values())


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


def test_bench_cli_errors_cases_fail_before_jax_starts():
    proc = subprocess.run(
        [sys.executable, bench_cli_errors.__file__, "--repeats", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = proc.stdout.strip().splitlines()[1:]
    assert len(rows) == len(bench_cli_errors.CASES)
    assert all(row.endswith("JAX imported: no") for row in rows), rows
