"""LightGCN propagation (forward + backward, 3 layers × 64 dims) on Modcloth: 1 vs N devices.

    python benchmarks/bench_propagation.py [--devices 1,4] [--repeats N] [--data PATH]

Each device count runs in its own process (XLA fixes the CPU device count at start-up, so N
devices are simulated with --xla_force_host_platform_device_count=N). The edges are split
across the devices and each device multiplies its BCOO block inside `jax.shard_map`; the rows
print the median over repeats after compilation. On a 2-core CPU the simulated devices share
the two cores, so more devices cannot be faster here: the figure shows the overhead of the
sharded path, the speed-up needs real devices.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time


def measure(repeats: int, data_path: str) -> None:
    """Run inside the child process: time propagation on all visible devices."""
    import dataclasses

    import jax
    import jax.numpy as jnp
    from absl import logging

    from dprec import sharding
    from dprec.data.registry import load_dataset
    from dprec.graph.adjacency import build_graph_arrays, put_graph
    from dprec.graph.propagate import propagate
    from dprec.presets import build_config
    from dprec.run_config import run_spec_from_config

    logging.set_verbosity(logging.WARNING)
    spec = run_spec_from_config(build_config("dataset=modcloth,model=lightgcn,method=normal"))
    data = load_dataset(dataclasses.replace(spec.data, path=data_path))
    mesh = sharding.create_mesh()
    train = data.train
    graph = put_graph(
        build_graph_arrays(
            train.users, train.items, data.n_users, data.n_items, sharding.num_shards(mesh)
        ),
        data.n_users,
        data.n_items,
        mesh,
    )
    key_u, key_i = jax.random.split(jax.random.key(0))
    users = 0.1 * jax.random.normal(key_u, (data.n_users, 64))
    items = 0.1 * jax.random.normal(key_i, (data.n_items, 64))

    def loss(users, items, graph):
        user_final, item_final = propagate(graph, users, items, 3)
        return jnp.sum(user_final**2) + jnp.sum(item_final**2)

    step = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
    jax.block_until_ready(step(users, items, graph))
    seconds = []
    for _ in range(repeats):
        tic = time.perf_counter()
        jax.block_until_ready(step(users, items, graph))
        seconds.append(time.perf_counter() - tic)
    print(
        f"{jax.device_count()} {statistics.median(seconds):.4f} {min(seconds):.4f} "
        f"{graph.users.shape[0]}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", default="1,4")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--data", default="")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        measure(args.repeats, args.data)
        return
    print(f"{'devices':>7} {'median s':>9} {'min s':>9} {'edges':>7}")
    for count in args.devices.split(","):
        env = dict(
            os.environ,
            JAX_PLATFORMS="cpu",
            XLA_FLAGS=f"--xla_force_host_platform_device_count={int(count)}",
        )
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                "--repeats",
                str(args.repeats),
                "--data",
                args.data,
            ],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode != 0:
            sys.exit(f"bench_propagation: {count} devices failed:\n{out.stderr[-2000:]}")
        devices, median, best, edges = out.stdout.split()[-4:]
        print(f"{devices:>7} {float(median):>9.4f} {float(best):>9.4f} {edges:>7}")


if __name__ == "__main__":
    main()
