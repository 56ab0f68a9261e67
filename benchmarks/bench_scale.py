"""Electronics-scale timings and peak memory: synthetic-electronics (1,157,633 users, 9,560
items, about 1.03 M training interactions), one epoch and the full evaluation.

    python benchmarks/bench_scale.py                       # the standard set, one process each
    python benchmarks/bench_scale.py --model gmf --method dpi --updates lazy [--epochs 2]

Each configuration runs in its own process (peak memory is per process: `ru_maxrss`, which
includes the data, the host epoch arrays and XLA's buffers). Per configuration it prints: data
generation + split, setup (state, graph, evaluator tasks), the first epoch (compiles), the
median of `--epochs` further epochs (host sampling + transfer + the jitted scan; wall time,
and the process's CPU time `epoch_cpu_s`, steadier on shared cores), one
validation pass, `Evaluator.test` (clean test of every test user, warm/cold, noisy test), and
ranking + hits of 100,000 test users alone. Goals (2 CPU cores): GMF-DPI epoch <= 3 s,
100 k users <= 20 s, peak <= 6 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import jax
import numpy as np
from absl import logging
from page_option import add_page_option, printed_page

from dprec.config.presets import build_config
from dprec.config.run_config import run_spec_from_config
from dprec.data.dataset import Interactions
from dprec.data.registry import load_dataset
from dprec.evaluation import ranking
from dprec.train import create_setup

# (model, method, updates, timed epochs): the slow ones get one.
STANDARD = (
    ("gmf", "dpi", "lazy", 3),
    ("gmf", "dpi", "dense", 1),
    ("lightgcn", "dpi", "lazy", 1),
    ("cdae", "dpi", "lazy", 1),
)
GOALS = {"epoch_s": 3.0, "rank_100k_s": 20.0, "peak_gb": 6.0}  # epoch goal: GMF-DPI
EVAL_USERS = 100_000


def peak_gb() -> float:
    """Peak resident memory of this process so far, GB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def first_users(part: Interactions, count: int) -> Interactions:
    """The interactions of the `count` lowest user indices of `part`."""
    users = np.unique(part.users)[:count]
    return part.select(np.isin(part.users, users))


def measure(
    model: str, method: str, updates: str, epochs: int, batch_size: int, evaluate: bool = True
) -> dict:
    """One configuration's timings (seconds) and peak memory (GB); `evaluate` False: the
    epochs only."""
    config = build_config(f"dataset=synthetic-electronics,model={model},method={method}")
    config.train.updates = updates
    if batch_size:
        config.train.batch_size = batch_size
    spec = run_spec_from_config(config)
    out = {"model": model, "method": method, "updates": updates, "batch": spec.train.batch_size}

    tic = time.perf_counter()
    data = load_dataset(spec.data)
    out["data_s"] = time.perf_counter() - tic
    out["train"] = len(data.train)
    tic = time.perf_counter()
    setup = create_setup(spec, data)  # a DVAE prior's values do not change the work
    out["setup_s"] = time.perf_counter() - tic
    out["state_gb"] = sum(x.nbytes for x in jax.tree.leaves(setup.initial_state)) / 1e9
    state = setup.initial_state

    cpu = []

    def epoch(index: int) -> float:
        nonlocal state
        tic, cpu_tic = time.perf_counter(), time.process_time()
        state, logs = setup.epoch_fn(state, setup.batches(index), setup.graph)
        jax.block_until_ready((state, jax.device_get(logs)))
        cpu.append(time.process_time() - cpu_tic)
        return time.perf_counter() - tic

    out["first_epoch_s"] = epoch(0)
    out["epoch_s"] = statistics.median(epoch(i) for i in range(1, epochs + 1))
    # CPU seconds of the process (all threads): steadier than wall time on shared cores.
    out["epoch_cpu_s"] = statistics.median(cpu[1:])
    out["steps"] = int(state.step) // (epochs + 1)
    out["load_1m"] = os.getloadavg()[0]  # after the epochs: other processes on the cores
    if not evaluate:
        out["peak_gb"] = peak_gb()
        return out

    params = state.params["target"]
    evaluator = setup.evaluator
    evaluator.validate(params)  # compile
    tic = time.perf_counter()
    evaluator.validate(params)
    out["validate_s"] = time.perf_counter() - tic
    out["valid_users"] = int(evaluator.valid_task.users.shape[0])
    tic = time.perf_counter()
    evaluator.test(params)
    out["test_s"] = time.perf_counter() - tic
    out["test_users"] = int(evaluator.test_task.users.shape[0])

    relevant = first_users(data.test, EVAL_USERS)
    task = ranking.make_ranking_task(
        relevant, [data.train, data.valid], n_items=data.n_items, chunk_size=spec.eval.chunk_size
    )
    tic = time.perf_counter()
    ranking.hits_of(ranking.rank(evaluator.topk_fn, params, task, setup.graph), task)
    out["rank_100k_s"] = time.perf_counter() - tic
    out["rank_users"] = int(task.users.shape[0])
    out["peak_gb"] = peak_gb()
    return out


def print_table(rows: list[dict]) -> None:
    columns = (
        ("model", "model", "{}"),
        ("method", "method", "{}"),
        ("updates", "updates", "{}"),
        ("batch", "batch", "{}"),
        ("steps", "steps", "{}"),
        ("epoch_s", "epoch s", "{:.2f}"),
        ("first_epoch_s", "1st epoch s", "{:.1f}"),
        ("validate_s", "valid s", "{:.1f}"),
        ("test_s", "test s", "{:.1f}"),
        ("rank_100k_s", "100k users s", "{:.1f}"),
        ("state_gb", "state GB", "{:.2f}"),
        ("peak_gb", "peak GB", "{:.2f}"),
    )
    print("| " + " | ".join(title for _, title, _ in columns) + " |")
    print("|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(fmt.format(row[key]) for key, _, fmt in columns) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="one configuration (default: the standard set)")
    parser.add_argument("--method", default="dpi")
    parser.add_argument("--updates", default="lazy", choices=("dense", "lazy"))
    parser.add_argument("--epochs", type=int, default=0, help="timed epochs after the first")
    parser.add_argument("--batch-size", type=int, default=0, help="0 = the preset's")
    parser.add_argument(
        "--epochs-only", action="store_true", help="one configuration: skip the evaluation"
    )
    add_page_option(parser)
    args = parser.parse_args()
    logging.set_verbosity(logging.WARNING)
    if args.model:
        epochs = args.epochs or 2
        row = measure(
            args.model,
            args.method,
            args.updates,
            epochs,
            args.batch_size,
            evaluate=not args.epochs_only,
        )
        print("RESULT " + json.dumps(row))
        return
    with printed_page(args.page, "Electronics scale"):
        print(f"jax {jax.__version__}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
        rows = []
        for model, method, updates, epochs in STANDARD:
            command = [sys.executable, __file__, "--model", model, "--method", method]
            command += ["--updates", updates, "--epochs", str(args.epochs or epochs)]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
            if done.returncode or not lines:
                print(f"{model}-{method} {updates} failed:\n{done.stderr[-2000:]}", file=sys.stderr)
                continue
            rows.append(json.loads(lines[-1].removeprefix("RESULT ")))
            print(f"  {model}-{method} {updates}: {rows[-1]}", flush=True)
        print()
        print_table(rows)
        print(
            f"\ngoals (2 CPU cores): GMF-DPI epoch <= {GOALS['epoch_s']} s, 100k users <= "
            f"{GOALS['rank_100k_s']} s, peak <= {GOALS['peak_gb']} GB"
        )


if __name__ == "__main__":
    main()
