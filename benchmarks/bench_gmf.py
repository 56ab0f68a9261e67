"""Time one GMF training epoch and one test evaluation on Modcloth, after compilation.

    python benchmarks/bench_gmf.py [--repeats N] [--data PATH]

Uses the preset `dataset=modcloth,model=gmf,method=normal` and the same library functions as
`dprec.train.run`: `epoch_batches` (host negative sampling and batch building),
`sharding.shard_epoch` (device transfer), the jitted `make_epoch_fn`, and the `Evaluator`.
Every timing is the median (and min) over `--repeats` runs after one warm-up run that compiles.
Goals (2 CPU cores): one epoch <= 0.12 s, one test evaluation <= 0.5 s. XLA uses both cores, so
another busy process roughly doubles the device epoch; the load averages are printed for that.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import jax
import optax
from absl import logging

from dprec import evaluation, sharding
from dprec.batch_loss import make_normal_loss
from dprec.data.batches import padded_batch_size
from dprec.data.registry import load_dataset, resolve_path
from dprec.data.sampling import PositiveSet
from dprec.errors import UserInputError
from dprec.evaluator import create_evaluator
from dprec.models import init_model, make_score_fns
from dprec.presets import build_config
from dprec.specs import run_spec_from_config
from dprec.state import create_train_state
from dprec.steps import make_epoch_fn, make_train_step
from dprec.train import check_spec_against_data, epoch_batches

PRESET = "dataset=modcloth,model=gmf,method=normal"
EPOCH_GOAL_S = 0.12
EVAL_GOAL_S = 0.5


def timed(fn: Callable[[int], Any], repeats: int) -> list[float]:
    """Seconds of `fn(i)` for i = 1..repeats, after one untimed warm-up call `fn(0)`."""
    fn(0)
    seconds = []
    for i in range(1, repeats + 1):
        tic = time.perf_counter()
        fn(i)
        seconds.append(time.perf_counter() - tic)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10, help="timed runs per row (default 10)")
    parser.add_argument(
        "--data", default="", help="modcloth.csv.gz (default: the registry's Modcloth file)"
    )
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    logging.set_verbosity(logging.WARNING)

    spec = run_spec_from_config(build_config(PRESET))
    spec = dataclasses.replace(spec, data=dataclasses.replace(spec.data, path=args.data))
    path = resolve_path(spec.data.name, spec.data.path)
    try:
        data = load_dataset(spec.data)
        check_spec_against_data(spec, data)
    except UserInputError as err:
        parser.exit(2, f"bench_gmf: error: {err}\n")

    # Other processes on a 2-core machine double the device epoch: report the load with the table.
    load_before = ", ".join(f"{x:.2f}" for x in os.getloadavg())

    # The setup of `dprec.train.run`, without the epoch loop.
    mesh = sharding.create_mesh()
    batch_size = padded_batch_size(spec.train.batch_size, sharding.num_shards(mesh))
    init_key, train_key = jax.random.split(jax.random.key(spec.seed))
    graphdef, params = init_model(spec.model, data.n_users, data.n_items, init_key)
    score = make_score_fns(graphdef)
    optimizer = optax.adam(spec.train.learning_rate)
    state = sharding.replicate(create_train_state({"target": params}, optimizer, train_key), mesh)
    loss_fn = make_normal_loss(score, lambda0=spec.train.l2, n_users=data.n_users)
    epoch_fn = make_epoch_fn(make_train_step(loss_fn, optimizer))
    evaluator = create_evaluator(data, spec.eval, score.all_items)
    positives = PositiveSet.from_pairs(data.train.users, data.train.items, data.n_items)

    # (a) Training epoch. The epoch function donates the state, so each call takes the last one.
    def full_epoch(epoch: int) -> None:
        nonlocal state
        batches = sharding.shard_epoch(
            epoch_batches(spec, data, positives, epoch, batch_size), mesh
        )
        state, logs = epoch_fn(state, batches)
        jax.block_until_ready((state, jax.device_get(logs)))

    def host_sampling(epoch: int) -> None:
        epoch_batches(spec, data, positives, epoch, batch_size)

    host_batches = epoch_batches(spec, data, positives, 0, batch_size)

    def transfer(epoch: int) -> None:
        del epoch
        jax.block_until_ready(sharding.shard_epoch(host_batches, mesh))

    device_batches = sharding.shard_epoch(host_batches, mesh)

    def device_epoch(epoch: int) -> None:
        nonlocal state
        del epoch
        state, logs = epoch_fn(state, device_batches)
        jax.block_until_ready((state, logs))

    rows = [
        ("epoch: sample + transfer + train", timed(full_epoch, args.repeats), EPOCH_GOAL_S),
        ("  host sampling (epoch_batches)", timed(host_sampling, args.repeats), None),
        ("  device transfer (shard_epoch)", timed(transfer, args.repeats), None),
        ("  device epoch (jitted scan)", timed(device_epoch, args.repeats), None),
    ]

    # (b) Evaluation, on the trained parameters (copied: the next epoch would donate them).
    params = jax.tree.map(lambda x: x.copy(), state.params["target"])
    task = evaluator.test_task

    def test_all(epoch: int) -> None:
        del epoch
        evaluator.test(params)

    def rank_clean(epoch: int) -> None:
        del epoch
        evaluation.hits_of(evaluation.rank(evaluator.topk_fn, params, task), task)

    rows += [
        ("evaluation: Evaluator.test", timed(test_all, args.repeats), EVAL_GOAL_S),
        ("  rank + hits_of, clean test users", timed(rank_clean, args.repeats), None),
    ]

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"jax {jax.__version__} devices: {jax.devices()}  (os.cpu_count() = {os.cpu_count()})")
    print(f"load average before / after the timings: {load_before} / {load}")
    print(f"data {path}: {data.summary()}")
    print(
        f"interactions: {len(data.train) + len(data.valid) + len(data.test)} "
        f"(train {len(data.train)}); clean test users ranked: {task.users.shape[0]} "
        f"(warm {int(evaluator.warm_test_users.sum())}), noisy test users: "
        f"{evaluator.noisy_task.users.shape[0]}"
    )
    print(
        f"epoch: {host_batches['users'].shape[0]} batches of {batch_size}, "
        f"{spec.train.num_negatives} negative(s) per positive; eval chunk {task.chunk_size}, "
        f"ks {spec.eval.ks}"
    )
    print()
    header = f"{'what':<36} {'median s':>9} {'min s':>9} {'repeats':>7}  goal"
    print(header)
    print("-" * len(header))
    for what, seconds, goal in rows:
        median = statistics.median(seconds)
        if goal is None:
            verdict = ""
        else:
            verdict = f"<= {goal:g} s ({'met' if median <= goal else 'NOT met'})"
        line = f"{what:<36} {median:>9.4f} {min(seconds):>9.4f} {len(seconds):>7}  {verdict}"
        print(line.rstrip())


if __name__ == "__main__":
    main()
