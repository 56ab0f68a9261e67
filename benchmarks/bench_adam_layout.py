"""The dense Adam step of one big table: optax's separate arrays against an interleaved layout.

    python benchmarks/bench_adam_layout.py [--rows 1157633] [--dim 64] [--repeats 20]

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
update safe in place.)
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

B1, B2, EPS, LR, L2 = 0.9, 0.999, 1e-8, 1e-3, 1e-4


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_157_633)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    keys = jax.random.split(jax.random.key(0), 2)
    shape = (args.rows, args.dim)
    pair_grad = jax.random.normal(keys[1], shape) * 0.01
    optimizer = optax.adam(LR, b1=B1, b2=B2, eps=EPS)
    separate = jax.jit(lambda p, s, g: separate_step(p, s, g, optimizer), donate_argnums=(0, 1))
    interleaved = jax.jit(interleaved_step, donate_argnums=(0,))

    params = jax.random.normal(keys[0], shape) * 0.1
    opt_state = optimizer.init(params)
    table = jnp.stack([params, jnp.zeros(shape), jnp.zeros(shape)], axis=1)
    count = jnp.zeros((), jnp.int32)
    for _ in range(3):  # compile, then check the two agree after a few steps
        params, opt_state = separate(params, opt_state, pair_grad)
        table, count = interleaved(table, count, pair_grad)
    jax.block_until_ready((params, table))
    difference = float(jnp.max(jnp.abs(table[:, 0] - params)))
    seconds = {"separate [N, D] x 3 (optax)": [], "interleaved [N, 3, D]": []}
    for _ in range(args.repeats):
        tic = time.perf_counter()
        params, opt_state = jax.block_until_ready(separate(params, opt_state, pair_grad))
        seconds["separate [N, D] x 3 (optax)"].append(time.perf_counter() - tic)
        tic = time.perf_counter()
        table, count = jax.block_until_ready(interleaved(table, count, pair_grad))
        seconds["interleaved [N, 3, D]"].append(time.perf_counter() - tic)
    megabytes = args.rows * args.dim * 4 / 1e6
    print(
        f"table {args.rows} x {args.dim} ({megabytes:.0f} MB a copy), load "
        f"{os.getloadavg()[0]:.2f}; max |difference| of the parameters {difference:.2e}"
    )
    for name, values in seconds.items():
        median = statistics.median(values)
        print(f"{name:28s} median {median * 1e3:7.1f} ms, min {min(values) * 1e3:7.1f} ms")
    ratio = np.median(seconds["interleaved [N, 3, D]"]) / np.median(
        seconds["separate [N, D] x 3 (optax)"]
    )
    print(f"interleaved / separate (medians): {ratio:.2f}")


if __name__ == "__main__":
    main()
