"""The dense Adam step of one big table: optax's separate arrays against an interleaved layout
and against one loop over row blocks.

    python experiments/bench_adam_layout.py [--rows 1157633] [--dim 64] [--repeats 20]
        [--block-rows 4096] [--no-in-place]

The exact dense update (LightGCN's f at Electronics scale, NeuMF's user tables) is bound by
memory traffic. With parameters, first and second moments as three `[N, D]` arrays (optax's
layout, what dprec trains with), XLA:CPU computes them in three loops that read the gradient
and the moments again: 10 passes over the table a step, plus the L2 gradient λ·θ the loss adds.
Stored interleaved, `[N, 3, D]` (each row's parameters and moments side by side), one loop
could read the row once and write it once: 7 passes. This script times both, each jitted
with its state donated, alternating, on random data, and checks that they compute the same
numbers: what the layout would gain, before anyone rebuilds the state around it. (Written
with `jnp.stack`, XLA:CPU makes the interleaved step one concatenate loop that computes each
of the three outputs separately, and then copies the whole state, since it cannot prove the
update safe in place.) The third form keeps optax's layout and walks the table in blocks of
`--block-rows` rows in a `lax.fori_loop`: each block's moments and parameters are read once
from memory and updated in place (`dynamic_update_slice`, the moments first, so that no update
overwrites what another still reads), the L2 gradient and the L2 term's value computed on the
way: 7 passes over the table instead of about 13, but in one thread.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

B1, B2, EPS, LR, L2 = 0.9, 0.999, 1e-8, 1e-3, 1e-4
# The epoch's compiler option (dprec.steps.EPOCH_COMPILER_OPTIONS), for all three steps: it
# lets XLA:CPU update donated buffers in place (without it the optax step took 1.9x longer).
IN_PLACE = {"xla_cpu_copy_insertion_use_region_analysis": True}


def separate_step(params, opt_state, pair_grad, optimizer):
    """optax.adam on `[N, D]` arrays; the gradient adds the L2 term L2·θ."""
    grads = pair_grad + L2 * params
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state


def interleaved_step(table, count, pair_grad):
    """The same update on `[N, 3, D]` (parameters, first moment, second moment) in one loop."""
    params, mu, nu = table[:, 0], table[:, 1], table[:, 2]
    grads = pair_grad + L2 * params
    count = count + 1
    mu = (1 - B1) * grads + B1 * mu
    nu = (1 - B2) * grads**2 + B2 * nu
    mu_hat = mu / (1 - B1**count).astype(mu.dtype)
    nu_hat = nu / (1 - B2**count).astype(nu.dtype)
    params = params + (-LR) * (mu_hat / (jnp.sqrt(nu_hat) + EPS))
    return jnp.stack([params, mu, nu], axis=1), count


def _block_update(params, mu, nu, pair_grad, squares, start, size, corrections):
    """Adam on rows `start : start + size` of `params`, `mu`, `nu` in place; adds the rows'
    Σθ² (before the update) to `squares`."""
    mu_correction, nu_correction = corrections

    def rows(table):
        return jax.lax.dynamic_slice_in_dim(table, start, size)

    def write(table, block):
        return jax.lax.dynamic_update_slice_in_dim(table, block, start, 0)

    block = rows(params)
    squares = squares + jnp.sum(block * block)
    grads = rows(pair_grad) + L2 * block
    mu = write(mu, (1 - B1) * grads + B1 * rows(mu))
    nu = write(nu, (1 - B2) * grads * grads + B2 * rows(nu))
    step = (rows(mu) / mu_correction) / (jnp.sqrt(rows(nu) / nu_correction) + EPS)
    return write(params, block + (-LR) * step), mu, nu, squares


def blocked_step(params, mu, nu, count, pair_grad, block_rows):
    """The same update in one `fori_loop` over blocks of `block_rows` rows (then the rest);
    also returns Σθ² before the update (the L2 term's value)."""
    count = count + 1
    corrections = (
        (1 - B1**count).astype(jnp.float32),
        (1 - B2**count).astype(jnp.float32),
    )
    n_blocks = params.shape[0] // block_rows

    def body(index, carry):
        return _block_update(
            *carry[:3], pair_grad, carry[3], index * block_rows, block_rows, corrections
        )

    carry = (params, mu, nu, jnp.zeros((), jnp.float32))
    params, mu, nu, squares = jax.lax.fori_loop(0, n_blocks, body, carry)
    done = n_blocks * block_rows
    if done < params.shape[0]:
        params, mu, nu, squares = _block_update(
            params, mu, nu, pair_grad, squares, done, params.shape[0] - done, corrections
        )
    return params, mu, nu, count, squares


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_157_633)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--block-rows", type=int, default=4096)
    parser.add_argument(
        "--no-in-place", action="store_true", help="compile without the in-place option"
    )
    args = parser.parse_args()
    options = {} if args.no_in_place else IN_PLACE
    keys = jax.random.split(jax.random.key(0), 2)
    shape = (args.rows, args.dim)
    pair_grad = jax.random.normal(keys[1], shape) * 0.01
    optimizer = optax.adam(LR, b1=B1, b2=B2, eps=EPS)
    # The separate and interleaved steps also compute the L2 term's value Σθ², as an epoch
    # does (and the blocked step does on the way).
    separate = jax.jit(
        lambda p, s, g: (*separate_step(p, s, g, optimizer), jnp.sum(jnp.square(p))),
        donate_argnums=(0, 1),
        compiler_options=options,
    )
    interleaved = jax.jit(
        lambda t, c, g: (*interleaved_step(t, c, g), jnp.sum(jnp.square(t[:, 0]))),
        donate_argnums=(0,),
        compiler_options=options,
    )
    blocked = jax.jit(
        functools.partial(blocked_step, block_rows=args.block_rows),
        donate_argnums=(0, 1, 2),
        compiler_options=options,
    )

    params = jax.random.normal(keys[0], shape) * 0.1
    opt_state = optimizer.init(params)
    table = jnp.stack([params, jnp.zeros(shape), jnp.zeros(shape)], axis=1)
    count = jnp.zeros((), jnp.int32)
    block_state = (params + 0.0, jnp.zeros(shape), jnp.zeros(shape), count)
    for _ in range(3):  # compile, then check the three agree after a few steps
        params, opt_state, _ = separate(params, opt_state, pair_grad)
        table, count, _ = interleaved(table, count, pair_grad)
        *block_state, _ = blocked(*block_state, pair_grad)
    jax.block_until_ready((params, table, block_state))
    difference = max(
        float(jnp.max(jnp.abs(table[:, 0] - params))),
        float(jnp.max(jnp.abs(block_state[0] - params))),
    )
    names = ("separate [N, D] x 3 (optax)", "interleaved [N, 3, D]", "row blocks, one loop")
    seconds = {name: [] for name in names}
    for _ in range(args.repeats):
        tic = time.perf_counter()
        params, opt_state, _ = jax.block_until_ready(separate(params, opt_state, pair_grad))
        seconds[names[0]].append(time.perf_counter() - tic)
        tic = time.perf_counter()
        table, count, _ = jax.block_until_ready(interleaved(table, count, pair_grad))
        seconds[names[1]].append(time.perf_counter() - tic)
        tic = time.perf_counter()
        *block_state, _ = jax.block_until_ready(blocked(*block_state, pair_grad))
        seconds[names[2]].append(time.perf_counter() - tic)
    megabytes = args.rows * args.dim * 4 / 1e6
    print(
        f"table {args.rows} x {args.dim} ({megabytes:.0f} MB a copy), in-place option "
        f"{'off' if args.no_in_place else 'on'}, load "
        f"{os.getloadavg()[0]:.2f}; max |difference| of the parameters {difference:.2e}"
    )
    for name, values in seconds.items():
        median = statistics.median(values)
        print(f"{name:28s} median {median * 1e3:7.1f} ms, min {min(values) * 1e3:7.1f} ms")
    for name in names[1:]:
        ratio = np.median(seconds[name]) / np.median(seconds[names[0]])
        print(f"{name} / separate (medians): {ratio:.2f}")


if __name__ == "__main__":
    main()
