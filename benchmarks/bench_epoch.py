"""Time training epochs and one test evaluation on Modcloth, after compilation.

    python benchmarks/bench_epoch.py [--methods normal,dpi,dvae] [--model gmf] [--repeats N]
                                     [--updates dense|lazy] [--chunk-size C] [--data PATH]

For each method, uses the preset `dataset=modcloth,model=MODEL,method=METHOD` and the library's
own `train.create_setup` (mesh, roles, state, jitted epoch, evaluator): `Setup.batches` (host
negative sampling, batch building and device transfer) and the jitted `lax.scan` epoch. DVAE is
timed with a placeholder prior (the prior's values do not change the work). The first method
also times one validation pass and one test evaluation (`--chunk-size`: the users scored at
once; default the preset's `eval.chunk_size`). `--updates`: the `train.updates` mode.
Every timing is the median (and min) over `--repeats` runs after one warm-up run that compiles.
Goals (2 CPU cores): GMF epoch <= 0.12 s (normal) and <= 0.30 s (DPI, DVAE; the authors'
PyTorch code: 2.2 s normal, 2.75 s DPI, `profile_authors_gmf.py`); one GMF test evaluation
<= 0.5 s; NeuMF epoch <= 0.25 s and one NeuMF validation pass <= 0.2 s; LightGCN normal epoch
<= 0.5 s, any method <= 4 s. XLA uses both cores, so another busy process roughly doubles the
device epoch; the load averages are printed for that.
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
from absl import logging
from page_option import add_page_option, printed_page

from dprec.config.presets import build_config
from dprec.config.run_config import run_spec_from_config
from dprec.data.registry import load_dataset, resolve_path
from dprec.errors import UserInputError
from dprec.evaluation import ranking
from dprec.train import check_spec_against_data, create_setup

# Goals of the issues, on 2 CPU cores: (model, method) → seconds per epoch; None = any method.
EPOCH_GOAL_S = {
    ("gmf", "normal"): 0.12,
    ("gmf", "dpi"): 0.30,
    ("gmf", "dvae"): 0.30,
    ("neumf", "normal"): 0.25,
    ("lightgcn", "normal"): 0.5,
    ("lightgcn", None): 4.0,
}
EVAL_GOAL_S = {"gmf": 0.5}  # one evaluation of all Modcloth test users
VALID_GOAL_S = {"neumf": 0.2}  # one ranking of all Modcloth validation users


def timed(fn: Callable[[int], Any], repeats: int) -> list[float]:
    """Seconds of `fn(i)` for i = 1..repeats, after one untimed warm-up call `fn(0)`."""
    fn(0)
    seconds = []
    for i in range(1, repeats + 1):
        tic = time.perf_counter()
        fn(i)
        seconds.append(time.perf_counter() - tic)
    return seconds


def epoch_rows(
    spec, data, repeats: int, *, with_evaluation: bool
) -> list[tuple[str, list[float], float | None]]:
    """Timings of one method's epoch: the whole epoch, host sampling alone, device alone;
    `with_evaluation`: also one test evaluation."""
    setup = create_setup(spec, data)  # a DVAE prior's values do not change the work
    state = setup.initial_state
    name = spec.method.name

    def full_epoch(epoch: int) -> None:
        nonlocal state
        state, logs = setup.epoch_fn(state, setup.batches(epoch), setup.graph)
        jax.block_until_ready((state, jax.device_get(logs)))

    def host_sampling(epoch: int) -> None:
        setup.host_batches(epoch)

    device_batches = setup.batches(0)

    def device_epoch(epoch: int) -> None:
        nonlocal state
        del epoch
        state, logs = setup.epoch_fn(state, device_batches, setup.graph)
        jax.block_until_ready((state, logs))

    rows = [
        (
            f"{name} epoch: sample + transfer + train",
            timed(full_epoch, repeats),
            EPOCH_GOAL_S.get((spec.model.name, name), EPOCH_GOAL_S.get((spec.model.name, None))),
        ),
        (f"  {name} host sampling", timed(host_sampling, repeats), None),
        (f"  {name} device epoch (jitted scan)", timed(device_epoch, repeats), None),
    ]
    if with_evaluation:
        params = jax.tree.map(lambda x: x.copy(), state.params["target"])
        evaluator, task = setup.evaluator, setup.evaluator.test_task

        def validate(epoch: int) -> None:
            del epoch
            evaluator.validate(params)

        def test_all(epoch: int) -> None:
            del epoch
            evaluator.test(params)

        def rank_clean(epoch: int) -> None:
            del epoch
            ranking.hits_of(ranking.rank(evaluator.topk_fn, params, task, setup.graph), task)

        rows += [
            (
                f"evaluation: Evaluator.validate ({evaluator.valid_task.users.shape[0]} users)",
                timed(validate, repeats),
                VALID_GOAL_S.get(spec.model.name),
            ),
            (
                "evaluation: Evaluator.test",
                timed(test_all, repeats),
                EVAL_GOAL_S.get(spec.model.name),
            ),
            ("  rank + hits_of, clean test users", timed(rank_clean, repeats), None),
        ]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="normal,dpi,dvae")
    parser.add_argument("--model", default="gmf")
    parser.add_argument("--repeats", type=int, default=10, help="timed runs per row (default 10)")
    parser.add_argument("--updates", default="dense", choices=("dense", "lazy"))
    parser.add_argument(
        "--chunk-size", type=int, default=0, help="eval.chunk_size (default: the preset's)"
    )
    parser.add_argument(
        "--data", default="", help="modcloth.csv.gz (default: the registry's Modcloth file)"
    )
    add_page_option(parser)
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    logging.set_verbosity(logging.WARNING)

    specs = []
    for method in args.methods.split(","):
        config = build_config(f"dataset=modcloth,model={args.model},method={method}")
        config.train.updates = args.updates
        if args.chunk_size:
            config.eval.chunk_size = args.chunk_size
        spec = run_spec_from_config(config)
        specs.append(dataclasses.replace(spec, data=dataclasses.replace(spec.data, path=args.data)))
    path = resolve_path(specs[0].data.name, specs[0].data.path)
    try:
        data = load_dataset(specs[0].data)
        check_spec_against_data(specs[0], data)
    except UserInputError as err:
        parser.exit(2, f"bench_epoch: error: {err}\n")

    with printed_page(args.page, "Modcloth epochs"):
        load_before = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        rows = [
            row
            for index, spec in enumerate(specs)
            for row in epoch_rows(spec, data, args.repeats, with_evaluation=index == 0)
        ]
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(
            f"jax {jax.__version__} devices: {jax.devices()}  (os.cpu_count() = {os.cpu_count()})"
        )
        print(f"load average before / after the timings: {load_before} / {load}")
        print(f"data {path}: {data.summary()}")
        print(
            f"model {args.model}, updates {args.updates}, batch {specs[0].train.batch_size}, "
            f"eval chunk {specs[0].eval.chunk_size}, ks {specs[0].eval.ks}"
        )
        print()
        header = f"{'what':<50} {'median s':>9} {'min s':>9} {'repeats':>7}  goal"
        print(header)
        print("-" * len(header))
        for what, seconds, goal in rows:
            median = statistics.median(seconds)
            verdict = (
                "" if goal is None else f"<= {goal:g} s ({'met' if median <= goal else 'NOT met'})"
            )
            line = f"{what:<50} {median:>9.4f} {min(seconds):>9.4f} {len(seconds):>7}  {verdict}"
            print(line.rstrip())


if __name__ == "__main__":
    main()
