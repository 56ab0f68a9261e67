"""Top-K recommendations of a trained run, with the original ids, excluding seen items.

    dprec-recommend --workdir DIR [--k 20] [--users FILE] [--out FILE.csv|.parquet]
        [--exclude train|train,valid|all] [--cold popularity]

Writes one row per (user, rank): user, rank (1..K), item, score (the target model's logit at
the best validation epoch). Excluded items are never recommended: with `--exclude all` (the
default) every interaction the user has in the data (train, valid and test); with
`--exclude train,valid` the train and valid ones, which is the test protocol, so the export can
be scored against the clean test set and reproduces results.json's `test` `paper` metrics;
with `--exclude train` the training ones only (the validation protocol).
Users come from FILE (one original user id per line) or are all users. Ids of FILE that are
not in the data are skipped, with their count on stderr (an error if none is known), or, with
`--cold popularity`, ranked by training popularity (nothing to exclude: they have no
interactions). With `--cold`, the output has a fifth column, source (`model`, or `popularity`
for those rows, whose score is the item's training interaction count), and user ids are
written as text.
Blocks of users are ranked and written one after another, so memory stays bounded; the output
appears atomically when complete, and the last line printed names it with its row count.
Default output: DIR/recommendations.csv.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from dprec.cli import OneLineErrorParser, run_tool
from dprec.data.dataset import Interactions
from dprec.errors import UserInputError
from dprec.evaluation import ranking
from dprec.runs import rundir
from dprec.tools.run_loading import LoadedRun, load_run

_CHUNKS_PER_BLOCK = 16  # evaluation chunks ranked per jitted call and written at once


EXCLUDE = {
    "train": ("train",),
    "train,valid": ("train", "valid"),
    "all": ("train", "valid", "test"),
}


@dataclasses.dataclass(frozen=True)
class Request:
    """The users to rank, in the requested order.

    ids `[R]` the original ids written out; index `[R]` their user index, or -1 for an id the
    data do not have (ranked by popularity with `--cold popularity`).
    """

    ids: np.ndarray
    index: np.ndarray

    @property
    def n_cold(self) -> int:
        return int((self.index < 0).sum())


def read_request(run: LoadedRun, users_file: str | None, cold: str | None) -> Request:
    """The requested users (original ids from `users_file`, one per line), or every user.

    Unknown ids are dropped with a line on stderr unless `cold` is given; none known (and no
    `cold`) is an error.
    """
    data = run.data
    if users_file is None:
        ids = data.user_ids if cold is None else data.user_ids.astype(str).astype(object)
        return Request(ids=ids, index=np.arange(data.n_users, dtype=np.int32))
    if not os.path.isfile(users_file):
        raise UserInputError(f"users file not found: {users_file}; give one user id per line")
    lines = Path(users_file).read_text(errors="replace").splitlines()
    wanted = np.array([s for s in (line.strip() for line in lines) if s], dtype=object)
    if not wanted.shape[0]:
        raise UserInputError(f"users file {users_file} lists no user ids; give one per line")
    known = pd.Series(np.arange(data.n_users), index=data.user_ids.astype(str))
    index = known.reindex(wanted).fillna(-1).to_numpy().astype(np.int32)
    unknown = wanted[index < 0]
    if unknown.shape[0] and cold is None:
        if unknown.shape[0] == wanted.shape[0]:
            raise UserInputError(
                f"none of the {wanted.shape[0]} user ids of {users_file} is in the data "
                f"(first: {unknown[0]!r}); list ids from the training data, or pass "
                "--cold popularity to rank unknown users by training popularity"
            )
        print(
            f"recommend: skipped {unknown.shape[0]} unknown user ids (first: {unknown[0]!r}); "
            "pass --cold popularity to rank them by training popularity",
            file=sys.stderr,
        )
        keep = index >= 0
        return Request(ids=data.user_ids[index[keep]], index=index[keep])
    if unknown.shape[0]:
        print(
            f"recommend: ranking {unknown.shape[0]} unknown user ids by training popularity "
            f"(first: {unknown[0]!r}; source 'popularity')",
            file=sys.stderr,
        )
    if cold is None:
        return Request(ids=data.user_ids[index], index=index)
    # One column type for known and unknown ids alike (Parquet needs one): text.
    known_ids = data.user_ids[np.maximum(index, 0)].astype(str).astype(object)
    return Request(ids=np.where(index >= 0, known_ids, wanted), index=index)


def popularity_top(run: LoadedRun, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The popularity ranker's top-`k` (scores, item indices) `[k]`, nothing excluded."""
    data = run.data
    topk = ranking.make_topk_fn(
        ranking.popularity_scores(data.item_popularity()), k, with_scores=True
    )
    task = ranking.make_ranking_task(
        Interactions(users=np.zeros(1, np.int32), items=np.zeros(1, np.int32)),
        [],
        n_items=data.n_items,
        chunk_size=1,
    )
    scores, items = topk(None, None, task.user_chunks, task.excluded_rows, task.excluded_items)
    return np.asarray(scores).reshape(-1), np.asarray(items).reshape(-1)


def model_top(run: LoadedRun, topk, users: np.ndarray, excluded) -> tuple[np.ndarray, ...]:
    """The model's top-K (scores, item indices) `[len(users), K]`, rows in `users` order."""
    task = ranking.make_ranking_task(
        Interactions(users=users, items=np.zeros_like(users)),
        excluded,
        n_items=run.data.n_items,
        chunk_size=run.spec.eval.chunk_size,
    )
    scores, items = topk(
        run.best_params["target"],
        run.setup.graph,
        task.user_chunks,
        task.excluded_rows,
        task.excluded_items,
    )
    k = scores.shape[-1]
    # Ranking tasks order users by index: map the rows back to the requested order.
    order = np.searchsorted(task.users, users)
    scores = np.asarray(scores).reshape(-1, k)[: task.users.shape[0]][order]
    items = np.asarray(items).reshape(-1, k)[: task.users.shape[0]][order]
    return scores, items


def recommend_blocks(
    run: LoadedRun,
    request: Request,
    k: int,
    exclude: str = "all",
    with_source: bool = False,
):
    """Yield DataFrames (user, rank, item, score[, source]) block by block, in request order."""
    data = run.data
    if k > data.n_items:
        raise UserInputError(f"--k {k} exceeds the {data.n_items} items; choose a smaller K")
    excluded = [getattr(data, name) for name in EXCLUDE[exclude]]
    topk = ranking.make_topk_fn(run.setup.roles.score["target"], k, with_scores=True)
    popular = popularity_top(run, k) if request.n_cold else None
    block = run.spec.eval.chunk_size * _CHUNKS_PER_BLOCK
    for start in range(0, request.index.shape[0], block):
        part = request.index[start : start + block]
        warm = part >= 0
        scores = np.zeros((part.shape[0], k), np.float32)
        items = np.zeros((part.shape[0], k), np.int64)
        if warm.any():
            scores[warm], items[warm] = model_top(run, topk, part[warm], excluded)
        if popular is not None:
            scores[~warm], items[~warm] = popular
        frame = pd.DataFrame(
            {
                "user": np.repeat(request.ids[start : start + block], k),
                "rank": np.tile(np.arange(1, k + 1), part.shape[0]),
                "item": data.item_ids[items.reshape(-1)],
                "score": scores.reshape(-1),
            }
        )
        if with_source:
            frame["source"] = np.repeat(np.where(warm, "model", "popularity"), k)
        yield frame


def write_streaming(blocks, out: Path) -> int:
    """Write the blocks to `out` (CSV, or Parquet by suffix) through a temporary file, with
    the permissions the umask gives (as every other output)."""
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    os.fchmod(fd, 0o666 & ~rundir.process_umask())  # mkstemp makes 0600
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


def output_path(run: LoadedRun, out: str | None) -> Path:
    """--out, or DIR/recommendations.csv; an unfinished run's epoch goes into the name."""
    path = Path(out) if out else run.path / "recommendations.csv"
    return path.with_name(run.output_name(path.name))


def main(argv: list[str] | None = None) -> int:
    parser = OneLineErrorParser(
        prog="dprec-recommend",
        description=__doc__.splitlines()[0],
        epilog="Score an export against the test set with --exclude train,valid (the test "
        "protocol: train and valid items masked, as in results.json's test metrics).",
        tool="recommend",
    )
    parser.add_argument("--workdir", required=True, help="a trained run directory")
    parser.add_argument("--k", type=int, default=20, help="items per user (default 20)")
    parser.add_argument(
        "--users",
        help="file of original user ids, one per line; ids not in the data are skipped "
        "(with their count) unless --cold is given",
    )
    parser.add_argument("--out", help="output .csv or .parquet (default DIR/recommendations.csv)")
    parser.add_argument(
        "--exclude",
        choices=tuple(EXCLUDE),
        default="all",
        metavar="|".join(EXCLUDE),
        help="a user's items never recommended: train; train,valid (the test protocol, to "
        "score the export against the test set); all = train, valid and test (default)",
    )
    parser.add_argument(
        "--cold",
        choices=("popularity",),
        help="rank --users ids that are not in the data by training popularity (adds a "
        "source column, model or popularity) instead of skipping them",
    )
    parser.add_argument(
        "--allow-unfinished",
        action="store_true",
        help="recommend from a run that has not finished (its last checkpoint; the output "
        "name carries its epoch, e.g. recommendations.epoch3.csv)",
    )
    args = parser.parse_args(argv)

    def body() -> int:
        if args.k <= 0:
            raise UserInputError(f"--k must be positive, got {args.k}")
        out = Path(args.out or Path(args.workdir) / "recommendations.csv")
        if out.suffix not in (".csv", ".parquet"):
            raise UserInputError(f"--out {out} must end in .csv or .parquet")
        if not out.parent.is_dir():
            raise UserInputError(f"--out {out}: no directory {out.parent}; create it first")
        run = load_run(args.workdir, allow_unfinished=args.allow_unfinished)
        out = output_path(run, args.out)
        if not run.finished:
            print(
                f"recommend: the run is unfinished: using epoch {run.epoch} of "
                f"{run.spec.train.num_epochs} (best so far: the parameters of its best epoch)",
                file=sys.stderr,
            )
        request = read_request(run, args.users, args.cold)
        blocks = recommend_blocks(
            run, request, args.k, args.exclude, with_source=args.cold is not None
        )
        rows = write_streaming(blocks, out)
        cold = f", {request.n_cold} by popularity" if request.n_cold else ""
        print(
            f"wrote {rows} rows ({request.index.shape[0]} users{cold} × top {args.k}, "
            f"--exclude {args.exclude}) to {out}"
        )
        return 0

    return run_tool("recommend", body)


if __name__ == "__main__":
    sys.exit(main())
