"""How long the planted-noise generator takes at a tenth of Electronics, per noise kind.

    python benchmarks/bench_planted.py [--kinds uniform,popularity,user,item,exposure]
        [--users 115763] [--items 9560] [--interactions 130000] [--rate 0.3] [--repeats 3]
        [--page FILE]

`dprec.data.planted.plant` in the block world at Electronics' mean degree (1.12 interactions a
user, where the user kind has least room for its extra rows): the median and min wall seconds
over `--repeats` calls, the table's rows and its noisy share (for exposure: the share of the
clean interactions hidden). The generator is vectorised NumPy with no users × items array, so
the time should grow with the interactions and items, not with users × items
(tests/test_planted.py checks the rates at this size; the time is only printed here).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from page_option import add_page_option, printed_page

from dprec.data.planted import KINDS, plant


def measure(kind: str, args: argparse.Namespace) -> dict:
    """Seconds of each of `args.repeats` calls, and the last table's size and noisy share."""
    seconds = []
    for _ in range(args.repeats):
        tic = time.perf_counter()
        planted = plant(
            kind,
            args.rate,
            n_users=args.users,
            n_items=args.items,
            n_interactions=args.interactions,
            seed=0,
        )
        seconds.append(time.perf_counter() - tic)
    rows = len(planted.frame)
    if kind == "exposure":
        share = len(planted.hidden) / (len(planted.hidden) + rows)
    else:
        share = 1.0 - float(planted.frame["truth"].mean())
    return {"seconds": seconds, "rows": rows, "share": share}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--users", type=int, default=115_763)
    parser.add_argument("--items", type=int, default=9_560)
    parser.add_argument("--interactions", type=int, default=130_000)
    parser.add_argument("--rate", type=float, default=0.3)
    parser.add_argument("--repeats", type=int, default=3, help="calls per kind (default 3)")
    add_page_option(parser)
    args = parser.parse_args()
    kinds = args.kinds.split(",")
    if unknown := sorted(set(kinds) - set(KINDS)):
        parser.error(f"unknown kinds {unknown}; choose from {', '.join(KINDS)}")
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    with printed_page(args.page, "Planted-noise generator"):
        print(
            f"block world, {args.users:,} users, {args.items:,} items, "
            f"{args.interactions:,} interactions, rate {args.rate}; load "
            f"{os.getloadavg()[0]:.2f}; median and min of {args.repeats} calls"
        )
        print(f"{'kind':<10} {'rows':>9} {'noisy share':>11} {'median s':>9} {'min s':>7}")
        for kind in kinds:
            row = measure(kind, args)
            print(
                f"{kind:<10} {row['rows']:>9,} {row['share']:>11.3f} "
                f"{statistics.median(row['seconds']):>9.3f} {min(row['seconds']):>7.3f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
