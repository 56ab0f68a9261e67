"""Where a training epoch's time goes: the XLA operations of one epoch, by total time.

    python benchmarks/profile_epoch.py --preset dataset=modcloth,model=neumf,method=normal
        [--updates dense|lazy] [--batches N] [--repeats N] [--top K] [--trace-dir DIR]

Builds the run's setup as `python -m dprec.main` would (`train.create_setup`), compiles and
times `--repeats` epochs (the first `--batches` batches of each; 0 = all), then traces one more
with the JAX profiler (a Perfetto trace) and prints the operations of the compiled epoch (XLA
fusions, scatters, dots, each run once per step inside the `lax.scan`) with their summed time,
call count and output shape from the optimised HLO. On the CPU two threads run operations side
by side, so the sums can exceed the epoch's wall time; they tell which operations dominate, not
exact shares.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import re
import statistics
import tempfile
import time
from pathlib import Path

import jax
from absl import logging
from page_option import add_page_option, printed_page

from dprec.config.presets import build_config
from dprec.config.run_config import run_spec_from_config
from dprec.data.registry import load_dataset
from dprec.train import create_setup

# Host-side events of the trace (Python frames, the executor), not XLA operations.
_HOST_EVENT = re.compile(r"^\$|Execute|PjitFunction|^while\.|^cond\.")


def op_shapes(hlo_text: str) -> dict[str, str]:
    """Instruction name → its result shape (`f32[44784,128]`) in optimised HLO text."""
    shapes = {}
    for match in re.finditer(r"^\s*(?:ROOT )?%([\w.-]+) = (\S+)", hlo_text, re.MULTILINE):
        shapes.setdefault(match.group(1), match.group(2).split("{")[0])
    return shapes


def op_times(trace_dir: Path) -> tuple[collections.Counter, collections.Counter]:
    """Summed microseconds and call counts of every complete event in the newest Perfetto
    trace under `trace_dir`."""
    path = max(trace_dir.glob("**/*.trace.json.gz"), key=lambda file: file.stat().st_mtime)
    events = json.loads(gzip.decompress(path.read_bytes()))
    events = events["traceEvents"] if isinstance(events, dict) else events
    total, count = collections.Counter(), collections.Counter()
    for event in events:
        if event.get("ph") == "X" and "dur" in event:
            total[event["name"]] += event["dur"]
            count[event["name"]] += 1
    return total, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", required=True, help="the config argument, e.g. model=gmf")
    parser.add_argument("--updates", default="", help="train.updates (default: the preset's)")
    parser.add_argument("--batches", type=int, default=0, help="batches per epoch (0 = all)")
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs before the trace")
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--trace-dir", default="", help="keep the trace here (default: temp)")
    add_page_option(parser)
    args = parser.parse_args()
    logging.set_verbosity(logging.WARNING)
    with printed_page(args.page, "Where an epoch's time goes"):
        config = build_config(args.preset)
        if args.updates:
            config.train.updates = args.updates
        spec = run_spec_from_config(config)
        data = load_dataset(spec.data)
        setup = create_setup(spec, data)
        state = setup.initial_state

        def batches(index: int):
            epoch = setup.batches(index)
            return jax.tree.map(lambda x: x[: args.batches], epoch) if args.batches else epoch

        def epoch(index: int) -> float:
            nonlocal state
            epoch_batches = jax.block_until_ready(batches(index))
            tic = time.perf_counter()
            state, logs = setup.epoch_fn(state, epoch_batches, setup.graph)
            jax.block_until_ready((state, logs))
            return time.perf_counter() - tic

        epoch(0)  # compiles
        seconds = [epoch(i) for i in range(1, args.repeats + 1)]
        steps = jax.tree.leaves(batches(0))[0].shape[0]
        print(f"{args.preset} updates={spec.train.updates}: {steps} steps an epoch")
        print(f"epoch s: median {statistics.median(seconds):.3f}, min {min(seconds):.3f}")
        with tempfile.TemporaryDirectory() as temp:
            trace_dir = Path(args.trace_dir or temp)
            epoch_batches = jax.block_until_ready(batches(args.repeats + 1))
            jax.profiler.start_trace(str(trace_dir), create_perfetto_trace=True)
            state, logs = setup.epoch_fn(state, epoch_batches, setup.graph)
            jax.block_until_ready((state, logs))
            jax.profiler.stop_trace()
            total, count = op_times(trace_dir)
        compiled = setup.epoch_fn.lower(state, epoch_batches, setup.graph).compile()
        shapes = op_shapes(compiled.as_text())
        ops = [(name, us) for name, us in total.most_common() if not _HOST_EVENT.search(name)]
        print(f"{'ms in epoch':>11} {'calls':>6}  operation (output shape)")
        for name, micros in ops[: args.top]:
            print(f"{micros / 1e3:11.1f} {count[name]:6d}  {name} ({shapes.get(name, '?')})")


if __name__ == "__main__":
    main()
