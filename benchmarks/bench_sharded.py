"""Row-sharded tables (`train.shard_tables`): per-device state bytes, epoch and evaluation time
on 1 and 4 devices, for a synthetic GMF-DPI run.

    python benchmarks/bench_sharded.py [--users 40000] [--items 4000] [--interactions 200000]
                                       [--updates dense|lazy] [--repeats 3]
                                       [--setups 1:replicated,4:replicated,4:sharded]
    # the large run: 5 M users, 4 devices, row-sharded tables only
    python benchmarks/bench_sharded.py --users 5000000 --items 10000 \
        --interactions 5000000 --updates lazy --repeats 1 --setups 4:sharded

Simulates 4 CPU devices (`--xla_force_host_platform_device_count=4`, set before JAX starts)
and builds the library's own `train.create_setup` three times on the synthetic-electronics
generator at the given size: 1 device, 4 devices with replicated tables, 4 devices with
row-sharded tables. Per setup it prints the train state's bytes on device 0 (the sum over
leaves of their shards there), the median epoch (host sampling + transfer + the jitted scan)
and the median validation pass, each after one warm-up call that compiles. The 4 simulated
devices share this machine's cores, so the times show the cost of the collectives, not a
speed-up; the bytes are what a real 4-device mesh holds per device. The last column is the
process's peak resident memory so far (`ru_maxrss`: the data, host batches and all 4
simulated devices' buffers, which share this host).
"""

from __future__ import annotations

import os

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
).strip()

import argparse  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402

import jax  # noqa: E402
from absl import logging  # noqa: E402
from bench_epoch import timed  # noqa: E402
from page_option import add_page_option, printed_page  # noqa: E402

from dprec import sharding  # noqa: E402
from dprec.config.presets import build_config  # noqa: E402
from dprec.config.run_config import run_spec_from_config  # noqa: E402
from dprec.data.registry import load_dataset  # noqa: E402
from dprec.train import create_setup  # noqa: E402

SETUPS = "1:replicated,4:replicated,4:sharded"  # devices:tables


def parse_setups(text: str) -> list[tuple[int, bool]]:
    """'1:replicated,4:sharded' → [(1, False), (4, True)]."""
    setups = []
    for item in text.split(","):
        devices, _, tables = item.partition(":")
        if not devices.isdigit() or tables not in ("replicated", "sharded"):
            raise SystemExit(f"bad --setups item {item!r}; use DEVICES:replicated|sharded")
        setups.append((int(devices), tables == "sharded"))
    return setups


def peak_gb() -> float:
    """Peak resident memory of this process so far, GB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def device0_bytes(tree) -> int:
    """Bytes of `tree`'s arrays held on the first device of their mesh."""
    total = 0
    for leaf in jax.tree.leaves(tree):
        first = min(leaf.sharding.device_set, key=lambda d: d.id)
        total += sum(s.data.nbytes for s in leaf.addressable_shards if s.device == first)
    return total


def spec_for(args, shard_tables: bool):
    config = build_config("dataset=synthetic-electronics,model=gmf,method=dpi")
    config.data.n_users = config.data.synthetic.n_users = args.users
    config.data.n_items = config.data.synthetic.n_items = args.items
    config.data.synthetic.n_interactions = args.interactions
    config.train.updates = args.updates
    config.train.shard_tables = shard_tables
    return run_spec_from_config(config)


def measure(spec, data, devices: int, repeats: int) -> dict:
    setup = create_setup(spec, data, mesh=sharding.create_mesh(devices))
    state = setup.initial_state
    row = {"state_mb": device0_bytes(state) / 1e6}

    def epoch(index: int) -> None:
        nonlocal state
        state, logs = setup.epoch_fn(state, setup.batches(index), setup.graph)
        jax.block_until_ready((state, jax.device_get(logs)))

    def validate(index: int) -> None:
        del index
        setup.evaluator.validate(state.params["target"])

    row["epoch_s"] = statistics.median(timed(epoch, repeats))
    row["eval_s"] = statistics.median(timed(validate, repeats))
    table = state.params["target"]["user_embedding"]["embedding"]
    row["user_table"] = f"{table.sharding.spec} {table.addressable_shards[0].data.shape}"
    row["state_mb_after"] = device0_bytes(state) / 1e6
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=40_000)
    parser.add_argument("--items", type=int, default=4_000)
    parser.add_argument("--interactions", type=int, default=200_000)
    parser.add_argument("--updates", default="dense", choices=("dense", "lazy"))
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per row (default 3)")
    parser.add_argument("--setups", default=SETUPS, help=f"default {SETUPS}")
    add_page_option(parser)
    args = parser.parse_args()
    setups = parse_setups(args.setups)
    logging.set_verbosity(logging.WARNING)
    with printed_page(args.page, "Row-sharded tables"):
        data = load_dataset(spec_for(args, False).data)
        print(
            f"jax {jax.__version__}, {len(jax.devices())} simulated devices, {os.cpu_count()} CPUs"
        )
        print(f"GMF-DPI {args.updates}, data: {data.summary()}")
        header = (
            f"{'devices':>7} {'tables':>10} {'state MB/device':>15} {'after epochs':>12} "
            f"{'epoch s':>8} {'eval s':>7} {'peak GB':>7}  user table (spec, shard on device 0)"
        )
        print(header)
        print("-" * len(header))
        for devices, shard_tables in setups:
            row = measure(spec_for(args, shard_tables), data, devices, args.repeats)
            tables = "sharded" if shard_tables else "replicated"
            sizes = f"{row['state_mb']:>15.2f} {row['state_mb_after']:>12.2f}"
            times = f"{row['epoch_s']:>8.3f} {row['eval_s']:>7.3f} {peak_gb():>7.2f}"
            print(f"{devices:>7} {tables:>10} {sizes} {times}  {row['user_table']}", flush=True)


if __name__ == "__main__":
    main()
