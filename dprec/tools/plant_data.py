"""Write a planted-noise table (known truth) of one world as CSV, and print the flags that load it.

    python -m dprec.tools.plant_data --world latent --kind popularity --rate 0.4 \\
        --out latent-popularity-0.4.csv.gz
    python -m dprec.tools.plant_data --world real --dataset ml-100k --kind user --rate 0.2 \\
        --out ml100k-user-0.2.csv.gz
    python -m dprec.tools.plant_data --world block --kind uniform --rate 0.3 --n-users 2000 \\
        --n-items 400 --out block-uniform-0.3.csv.gz

The table has the loader's default column names (user_id, item_id, rating, truth); with
`exposure`, the hidden interactions go to OUT's stem + `.hidden.csv.gz`. Options a world does
not take are an error; unset ones keep the world's defaults (docs/worlds.md).
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Sequence

from dprec.cli import OneLineErrorParser, run_tool
from dprec.data.planted import KINDS, WORLDS, plant
from dprec.errors import UserInputError

TOOL = "plant-data"
# command-line option -> (keyword of the world functions, type); only the ones given are passed
_WORLD_OPTIONS = {
    "--n-users": ("n_users", int),
    "--n-items": ("n_items", int),
    "--n-interactions": ("n_interactions", int),
    "--n-clusters": ("n_clusters", int),
    "--mean-degree": ("mean_degree", float),
    "--dim": ("dim", int),
    "--top-m": ("top_m", int),
    "--popularity-exponent": ("popularity_exponent", float),
    "--bias-weight": ("bias_weight", float),
    "--exposure-gamma": ("exposure_gamma", float),
    "--beta": ("beta", float),
    "--minority": ("minority", float),
    "--concentration": ("concentration", float),
    "--dataset": ("dataset", str),
    "--path": ("path", str),
}


def load_flags(out: str) -> str:
    """The `--config.data.*` flags that load a written table (clean test: rating >= 4)."""
    return (
        f"--config.data.name=table --config.data.path={out} "
        "--config.data.columns.rating=rating --config.data.columns.truth=truth "
        "--config.data.clean_rule=rating --config.data.clean_threshold=4"
    )


def _world_options(args) -> dict:
    """The world options given on the command line, as keyword arguments of `args.world`.

    Raises:
      UserInputError: an option that world does not take.
    """
    takes = inspect.signature(WORLDS[args.world]).parameters
    options = {}
    for flag, (name, _) in _WORLD_OPTIONS.items():
        value = getattr(args, flag[2:].replace("-", "_"))
        if value is None:
            continue
        if name not in takes:
            accepted = [f for f, (n, _) in _WORLD_OPTIONS.items() if n in takes]
            raise UserInputError(
                f"{flag} is not an option of the {args.world} world; it takes {', '.join(accepted)}"
            )
        options[name] = value
    return options


def main(argv: Sequence[str] | None = None) -> int:
    """Parse `argv`, plant, write OUT (gzip from `.gz`) and print its size and load flags."""
    parser = OneLineErrorParser(
        prog="python -m dprec.tools.plant_data",
        description=__doc__.splitlines()[0],
        tool=TOOL,
    )
    parser.add_argument("--world", choices=tuple(WORLDS), default="block")
    parser.add_argument("--kind", choices=KINDS, required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=0)
    for flag, (_, kind) in _WORLD_OPTIONS.items():
        parser.add_argument(flag, type=kind, default=None)
    args = parser.parse_args(argv)

    def body() -> int:
        options = _world_options(args)
        try:
            planted = plant(args.kind, args.rate, world=args.world, seed=args.seed, **options)
        except ValueError as err:
            raise UserInputError(str(err)) from err
        renamed = {"user": "user_id", "item": "item_id"}  # the table loader's default names
        planted.frame.rename(columns=renamed).to_csv(args.out, index=False)
        if len(planted.hidden):
            stem = args.out.removesuffix(".gz").removesuffix(".csv")
            planted.hidden.rename(columns=renamed).to_csv(stem + ".hidden.csv.gz", index=False)
        frame = planted.frame
        print(
            f"{args.out}: {args.world} world, {len(frame)} rows, {frame.user.nunique()} users, "
            f"{frame.item.nunique()} items, {1.0 - frame.truth.mean():.3f} noisy, "
            f"{len(planted.hidden)} hidden"
        )
        print(f"load with: {load_flags(args.out)}")
        return 0

    return run_tool(TOOL, body)


if __name__ == "__main__":
    sys.exit(main())
