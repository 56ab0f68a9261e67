"""LightGCN propagation (forward + backward, 3 layers × 64 dims): 1 vs N devices, the item-side
formulation (`propagate`), a training step's (`propagate_users`: the batch's users only) and
the former layer-by-layer one (`propagate_layerwise`).

    python benchmarks/bench_propagation.py [--devices 1,4] [--repeats N] [--data PATH]
        [--dataset modcloth|synthetic-electronics]
        [--formulations item-side,batch-users,layerwise]
        [--dtype float32|bfloat16]

Each device count runs in its own process (XLA fixes the CPU device count at start-up, so N
devices are simulated with --xla_force_host_platform_device_count=N). The edges are split
across the devices inside `jax.shard_map`. item-side: T = AᵀA on the items, two products with A
forward and two backward (`dprec/graph/propagate.py`); layerwise: both sides every layer with
BCOO blocks (2·L products each way); batch-users: item-side, but the final user embeddings of
the pairs' distinct users only (their edges, `graph.rows`), so one product with A each way
over all edges (what a LightGCN training step runs). The loss reads the rows of 4,096 random
(user, item) pairs, as a training step does. The formulations alternate within each repeat;
the rows print the median and min over repeats after compilation. On a 2-core CPU the
simulated devices share the two cores, so more devices cannot be faster here: the figure shows
the overhead of the sharded path, the speed-up needs real devices.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

from page_option import add_page_option, printed_page


def measure(
    repeats: int, data_path: str, dataset: str, formulations: list[str], dtype: str
) -> None:
    """Run inside the child process: time propagation on all visible devices."""
    import dataclasses

    import jax
    import jax.numpy as jnp
    import numpy as np
    from absl import logging

    from dprec import sharding
    from dprec.config.presets import build_config
    from dprec.config.run_config import run_spec_from_config
    from dprec.data.registry import load_dataset
    from dprec.data.touched import touched_rows
    from dprec.graph.adjacency import build_graph_arrays, put_graph
    from dprec.graph.propagate import propagate, propagate_layerwise, propagate_users

    logging.set_verbosity(logging.WARNING)
    spec = run_spec_from_config(build_config(f"dataset={dataset},model=lightgcn,method=normal"))
    data = load_dataset(dataclasses.replace(spec.data, path=data_path or spec.data.path))
    mesh = sharding.create_mesh()
    train = data.train
    shards = sharding.num_shards(mesh)

    def graph(item_graph, row_users=0):
        arrays = build_graph_arrays(
            train.users,
            train.items,
            data.n_users,
            data.n_items,
            shards,
            item_graph=item_graph,
            row_users=row_users,
        )
        return put_graph(arrays, data.n_users, data.n_items, mesh)

    keys = jax.random.split(jax.random.key(0), 4)
    users = 0.1 * jax.random.normal(keys[0], (data.n_users, 64))
    items = 0.1 * jax.random.normal(keys[1], (data.n_items, 64))
    pair_users = jax.random.randint(keys[2], (4096,), 0, data.n_users)
    pair_items = jax.random.randint(keys[3], (4096,), 0, data.n_items)

    def step_of(fn):
        def loss(users, items, graph):
            user_final, item_final = fn(graph, users, items)
            return jnp.sum(user_final[pair_users] * item_final[pair_items])

        return jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))

    # A step's distinct users and each pair's position among them, as a batch carries them.
    host_users = np.asarray(pair_users)[None]
    step_rows = touched_rows(
        host_users,
        np.asarray(pair_items)[None],
        np.zeros((*host_users.shape, 1), np.int32),
        np.ones(host_users.shape, np.float32),
        n_users=data.n_users,
        n_items=data.n_items,
        multiple=shards,
        items=False,
    )
    touched = jnp.asarray(step_rows["touched_users"][0])
    local = jnp.asarray(step_rows["local_users"][0])

    def batch_step(users, items, graph):
        user_final, item_final = propagate_users(graph, users, items, 3, touched, dtype=dtype)
        return jnp.sum(user_final[local] * item_final[pair_items])

    runs = {
        "item-side": (
            step_of(lambda g, u, i: propagate(g, u, i, 3, dtype=dtype)),
            graph(item_graph=True),
        ),
        "batch-users": (
            jax.jit(jax.value_and_grad(batch_step, argnums=(0, 1))),
            graph(item_graph=True, row_users=touched.shape[0]),
        ),
        "layerwise": (step_of(lambda g, u, i: propagate_layerwise(g, u, i, 3)), graph(False)),
    }
    runs = {name: runs[name] for name in formulations}
    for step, graph_arrays in runs.values():
        jax.block_until_ready(step(users, items, graph_arrays))
    seconds = {name: [] for name in runs}
    for _ in range(repeats):
        for name, (step, graph_arrays) in runs.items():
            tic = time.perf_counter()
            jax.block_until_ready(step(users, items, graph_arrays))
            seconds[name].append(time.perf_counter() - tic)
    for name, values in seconds.items():
        print(
            f"ROW {jax.device_count()} {name} {statistics.median(values):.4f} "
            f"{min(values):.4f} {runs[name][1].users.shape[0]}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", default="1,4")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--data", default="", help="data path (default: the preset's)")
    parser.add_argument("--dataset", default="modcloth")
    parser.add_argument("--formulations", default="item-side,batch-users,layerwise")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    add_page_option(parser)
    args = parser.parse_args()
    if args.child:
        formulations = args.formulations.split(",")
        measure(args.repeats, args.data, args.dataset, formulations, args.dtype)
        return
    with printed_page(args.page, "LightGCN propagation"):
        print(f"{args.dataset}, formulations alternating, load {os.getloadavg()[0]:.2f}")
        print(f"{'devices':>7} {'formulation':>11} {'median s':>9} {'min s':>9} {'edges':>8}")
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
                    "--dataset",
                    args.dataset,
                    "--formulations",
                    args.formulations,
                    "--dtype",
                    args.dtype,
                ],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            if out.returncode != 0:
                sys.exit(f"bench_propagation: {count} devices failed:\n{out.stderr[-2000:]}")
            for line in out.stdout.splitlines():
                if line.startswith("ROW "):
                    devices, name, median, best, edges = line.split()[1:]
                    times = f"{float(median):>9.4f} {float(best):>9.4f}"
                    print(f"{devices:>7} {name:>11} {times} {edges:>8}")
        print(f"load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
