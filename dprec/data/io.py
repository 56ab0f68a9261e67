"""Read an interaction table (CSV/TSV/Parquet, optionally gzip) into standard columns."""

from __future__ import annotations

import os

import pandas as pd

from dprec.errors import DataError
from dprec.specs import ColumnSpec

# Standard column names used by the rest of the data layer.
STANDARD_COLUMNS = ("user", "item", "rating", "dwell", "timestamp", "split", "clean", "truth")


def read_table(path: str, columns: ColumnSpec) -> pd.DataFrame:
    """Read `path` and return a frame with the standard columns that `columns` names.

    The format follows the file name: `.parquet`, `.tsv`/`.tsv.gz`/`.rating`, otherwise CSV
    (gzip is detected from `.gz`). Columns renamed to `user`, `item`, `rating`, `dwell`,
    `timestamp`, `split`, `clean`, `truth`; columns the spec leaves empty are absent.

    Raises:
      DataError: the file is missing or unreadable, or a named column is not in it.
    """
    if not os.path.exists(path):
        raise DataError(f"data file not found: {path}; pass --config.data.path=/path/to/file")
    if os.path.isdir(path):
        raise DataError(f"data path is a directory: {path}; point --config.data.path at a file")
    name = path.lower().removesuffix(".gz")
    try:
        if name.endswith(".parquet"):
            frame = pd.read_parquet(path)
        else:
            sep = "\t" if name.endswith((".tsv", ".rating", ".negative", ".noisy")) else ","
            frame = pd.read_csv(path, sep=sep)
    except (OSError, ValueError, pd.errors.ParserError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DataError(f"cannot read {path}: {first}; check the file format") from err
    wanted = {
        getattr(columns, field): field for field in STANDARD_COLUMNS if getattr(columns, field, "")
    }
    missing = [source for source in wanted if source not in frame.columns]
    if missing:
        field = wanted[missing[0]]
        raise DataError(
            f"column {missing[0]!r} (data.columns.{field}) is not in {path}; its columns are "
            f"{list(frame.columns)}; set --config.data.columns.{field}=<name>"
        )
    return frame[list(wanted)].rename(columns=wanted)
