"""Statistics of an interaction table: what the synthetic generator is matched to.

    dprec-profile-data synthetic-electronics
    dprec-profile-data ../shared/data/electronics/electronics_valid_test.csv.gz \\
        --columns user_id,item_id,rating

A dataset name profiles the preset's whole table before the split (the generator's output for
the synthetic presets); a file path profiles that file.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np
import pandas as pd

from dprec.cli import OneLineErrorParser, run_tool
from dprec.errors import UserInputError


def zipf_slope(counts: np.ndarray) -> float:
    """Slope of log(count) against log(rank), ranks 10 to half the items (the head and the
    sparse tail left out): about −exponent for Zipf popularity."""
    ordered = np.sort(counts[counts > 0])[::-1].astype(np.float64)
    ranks = np.arange(1, ordered.size + 1)
    window = slice(min(10, ordered.size // 4), max(ordered.size // 2, 2))
    if ranks[window].size < 3:  # too few items to fit a line
        return float("nan")
    return float(np.polyfit(np.log(ranks[window]), np.log(ordered[window]), 1)[0])


def profile(frame: pd.DataFrame) -> dict[str, float]:
    """Statistics of a frame with columns user, item and optionally rating and truth."""
    user_degree = frame["user"].value_counts().to_numpy()
    item_degree = frame["item"].value_counts().to_numpy()
    stats = {
        "interactions": len(frame),
        "distinct pairs": int((~frame.duplicated(["user", "item"])).sum()),
        "users": user_degree.size,
        "items": item_degree.size,
        "mean user degree": float(user_degree.mean()),
        "users with one interaction": float(np.mean(user_degree == 1)),
        "max user degree": int(user_degree.max()),
        "item popularity log-log slope": zipf_slope(item_degree),
    }
    if "rating" in frame:
        stats["rated 5"] = float(np.mean(frame["rating"].to_numpy() == 5))
    if "truth" in frame:
        stats["truly clean"] = float(frame["truth"].mean())
    return stats


def _table(source: str, columns: str) -> pd.DataFrame:
    from dprec.config.presets import DATASETS, build_config
    from dprec.config.run_config import run_spec_from_config
    from dprec.data import synthetic
    from dprec.data.io import read_table
    from dprec.specs import ColumnSpec

    if source in DATASETS:
        spec = run_spec_from_config(build_config(f"dataset={source}")).data
        if spec.synthetic.n_interactions or source == "synthetic":
            return synthetic.generate(spec.synthetic)
        from dprec.data.registry import resolve_path

        return read_table(resolve_path(spec.name, spec.path), spec.columns)
    names = columns.split(",")
    if len(names) not in (2, 3):
        raise UserInputError(f"--columns={columns!r}: give user,item[,rating] column names")
    rating = names[2] if len(names) == 3 else ""
    return read_table(source, ColumnSpec(user=names[0], item=names[1], rating=rating))


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineErrorParser(
        prog="dprec-profile-data", description=__doc__.splitlines()[0], tool="profile"
    )
    parser.add_argument("source", help="a dataset preset name or a table file")
    parser.add_argument(
        "--columns", default="user_id,item_id,rating", help="user,item[,rating] of a file"
    )
    args = parser.parse_args(argv)

    def body() -> int:
        stats = profile(_table(args.source, args.columns))
        for name, value in stats.items():
            print(
                f"{name:<32} {value:.4f}" if isinstance(value, float) else f"{name:<32} {value:,}"
            )
        return 0

    return run_tool("profile", body)


if __name__ == "__main__":
    sys.exit(main())
