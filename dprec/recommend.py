"""Top-K recommendations of a trained run, with the original ids, excluding seen items.

    python -m dprec.recommend --workdir DIR [--k 20] [--users FILE] [--out FILE.csv|.parquet]

Writes one row per (user, rank): user, rank (1..K), item, score (the target model's logit at
the best validation epoch). Seen items (every interaction of the data: train, valid and test)
are never recommended. Users come from FILE (one original user id per line) or are all users.
Blocks of users are ranked and written one after another, so memory stays bounded; the output
appears atomically when complete. Default output: DIR/recommendations.csv.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from dprec import evaluation
from dprec.cli import OneLineErrorParser, run_tool
from dprec.data.dataset import Interactions
from dprec.errors import UserInputError
from dprec.run_loading import LoadedRun, load_run

_CHUNKS_PER_BLOCK = 16  # evaluation chunks ranked per jitted call and written at once


def user_indices(run: LoadedRun, users_file: str | None) -> np.ndarray:
    """Indices of the requested users (original ids from `users_file`), or of every user."""
    if users_file is None:
        return np.arange(run.data.n_users, dtype=np.int32)
    if not os.path.isfile(users_file):
        raise UserInputError(f"users file not found: {users_file}; give one user id per line")
    wanted = pd.read_csv(users_file, header=None, dtype=str)[0].str.strip()
    known = pd.Series(np.arange(run.data.n_users), index=run.data.user_ids.astype(str))
    missing = wanted[~wanted.isin(known.index)]
    if len(missing):
        raise UserInputError(
            f"user id {missing.iloc[0]!r} of {users_file} is not in the data "
            f"({len(missing)} unknown ids); list ids from the training data"
        )
    return known[wanted].to_numpy().astype(np.int32)


def recommend_blocks(run: LoadedRun, users: np.ndarray, k: int):
    """Yield DataFrames (user, rank, item, score) block by block, in `users` order."""
    data = run.data
    if k > data.n_items:
        raise UserInputError(f"--k {k} exceeds the {data.n_items} items; choose a smaller K")
    seen = [data.train, data.valid, data.test]
    topk = evaluation.make_topk_fn(run.setup.roles.score["target"], k, with_scores=True)
    block = run.spec.eval.chunk_size * _CHUNKS_PER_BLOCK
    for start in range(0, users.shape[0], block):
        part = users[start : start + block]
        # Ranking tasks order users by index: map the rows back to the requested order.
        task = evaluation.make_ranking_task(
            Interactions(users=part, items=np.zeros_like(part)),
            seen,
            n_items=data.n_items,
            chunk_size=run.spec.eval.chunk_size,
        )
        scores, items = topk(
            run.best_params["target"],
            run.setup.graph,
            task.user_chunks,
            task.excluded_rows,
            task.excluded_items,
        )
        scores = np.asarray(scores).reshape(-1, k)[: task.users.shape[0]]
        items = np.asarray(items).reshape(-1, k)[: task.users.shape[0]]
        order = np.searchsorted(task.users, part)
        yield pd.DataFrame(
            {
                "user": np.repeat(data.user_ids[part], k),
                "rank": np.tile(np.arange(1, k + 1), part.shape[0]),
                "item": data.item_ids[items[order].reshape(-1)],
                "score": scores[order].reshape(-1),
            }
        )


def write_streaming(blocks, out: Path) -> int:
    """Write the blocks to `out` (CSV, or Parquet by suffix) through a temporary file."""
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    os.close(fd)
    rows, writer = 0, None
    try:
        for i, frame in enumerate(blocks):
            if out.suffix == ".parquet":
                table = pa.Table.from_pandas(frame, preserve_index=False)
                writer = writer or pq.ParquetWriter(tmp, table.schema)
                writer.write_table(table)
            else:
                frame.to_csv(tmp, mode="w" if i == 0 else "a", header=i == 0, index=False)
            rows += len(frame)
        if writer is not None:
            writer.close()
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = OneLineErrorParser(
        prog="python -m dprec.recommend", description=__doc__.splitlines()[0], tool="recommend"
    )
    parser.add_argument("--workdir", required=True, help="a trained run directory")
    parser.add_argument("--k", type=int, default=20, help="items per user (default 20)")
    parser.add_argument("--users", help="file of original user ids, one per line")
    parser.add_argument("--out", help="output .csv or .parquet (default DIR/recommendations.csv)")
    args = parser.parse_args(argv)

    def body() -> int:
        if args.k <= 0:
            raise UserInputError(f"--k must be positive, got {args.k}")
        out = Path(args.out or Path(args.workdir) / "recommendations.csv")
        if out.suffix not in (".csv", ".parquet"):
            raise UserInputError(f"--out {out} must end in .csv or .parquet")
        run = load_run(args.workdir)
        users = user_indices(run, args.users)
        rows = write_streaming(recommend_blocks(run, users, args.k), out)
        print(f"wrote {rows} rows ({users.shape[0]} users × top {args.k}) to {out}")
        return 0

    return run_tool("recommend", body)


if __name__ == "__main__":
    sys.exit(main())
