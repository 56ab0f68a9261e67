"""Time the reference recommenders' grid search (fits, validation and test) per dataset.

    python benchmarks/bench_references.py [--datasets modcloth,ml-100k,synthetic-electronics]
                                          [--references popularity,itemknn,rp3beta,ease,ials]
                                          [--chunk-size C]

For each dataset, uses its preset (`dataset=NAME`), the library's loader and
`references.select.fit_references` exactly as a run does (validation set and selection metric
of the preset; Recall@20 is added to the cut-offs where the preset lacks it, e.g. Electronics'
10, 50), and prints one markdown row per reference: grid points, seconds for the whole grid,
the chosen setting, validation Recall@20 at that setting, and test Recall@20 on all test users
(paper) and on warm users. `synthetic-electronics` is the generator at Electronics' size
(1.16 M users, 9,560 items, about 1 M training pairs). The load averages are printed: the
timings scale with whatever else runs on the machine.
"""

from __future__ import annotations

import argparse
import logging
import os
import time

import jax
from page_option import add_page_option, printed_page

from dprec.config.presets import build_config
from dprec.config.run_config import run_spec_from_config
from dprec.data.registry import load_dataset
from dprec.references import REFERENCE_NAMES, select

HEADER = (
    "| reference | dataset | grid points | seconds | chosen setting | valid R@20 "
    "| test R@20 (paper) | test R@20 (warm) |"
)


def _format(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def bench_dataset(dataset: str, names: tuple[str, ...], chunk_size: int | None) -> list[str]:
    """The table rows of every reference on `dataset`."""
    spec = run_spec_from_config(build_config(f"dataset={dataset}"))
    tic = time.perf_counter()
    data = load_dataset(spec.data)
    print(f"{dataset}: {data.summary()} (loaded in {time.perf_counter() - tic:.1f} s)")
    valid_set = data.valid_clean if spec.eval.valid_set == "clean" else data.valid
    ks = tuple(sorted({*spec.eval.ks, 20}))
    rows = []
    for name in names:
        results = select.fit_references(
            data,
            valid_set,
            ks=ks,
            names=(name,),
            chunk_size=chunk_size or spec.eval.chunk_size,
            selection_metric=spec.eval.selection_metric,
        )
        setting = results.settings[name]
        if "skipped" in setting:
            rows.append(f"| {setting['label']} | {dataset} | – | – | skipped: {setting['skipped']} "
                        "| – | – | – |")  # fmt: skip
        else:
            hyper = ", ".join(f"{key}={value}" for key, value in setting["hyper"].items()) or "–"
            paper, warm = results.rows[f"{name}_paper"], results.rows[f"{name}_warm"]
            rows.append(
                f"| {setting['label']} | {dataset} | {len(setting['grid'])} "
                f"| {setting['seconds']:.1f} | {hyper} | {_format(setting['valid']['recall@20'])} "
                f"| {_format(paper['recall@20'])} | {_format(warm['recall@20'])} |"
            )
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="modcloth,ml-100k")
    parser.add_argument("--references", default=",".join(REFERENCE_NAMES))
    parser.add_argument("--chunk-size", type=int, default=None)
    add_page_option(parser)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    names = tuple(filter(None, args.references.split(",")))
    with printed_page(args.page, "Reference recommenders"):
        print(f"devices: {jax.devices()}; load averages {os.getloadavg()}")
        rows = []
        for dataset in filter(None, args.datasets.split(",")):
            rows += bench_dataset(dataset, names, args.chunk_size)
        print(f"\nload averages {os.getloadavg()}\n")
        print(HEADER)
        print("|" + " --- |" * 8)
        print("\n".join(rows))


if __name__ == "__main__":
    main()
