"""Read an interaction table (CSV/TSV/Parquet, optionally gzip) into standard columns."""

from __future__ import annotations

import os
import zlib

import pandas as pd

from dprec.errors import DataError
from dprec.specs import ColumnSpec

# Standard column names used by the rest of the data layer.
STANDARD_COLUMNS = ("user", "item", "rating", "dwell", "timestamp", "split", "clean", "truth")


# EOFError: a truncated .gz; zlib.error: a corrupt one; UnicodeDecodeError is a ValueError.
_READ_ERRORS = (OSError, ValueError, EOFError, zlib.error, pd.errors.ParserError)


def _unreadable(path: str, err: Exception) -> DataError:
    first = str(err).splitlines()[0] if str(err) else type(err).__name__
    if isinstance(err, (EOFError, zlib.error)):
        first = f"the compressed file is truncated or corrupt ({first})"
    return DataError(f"cannot read {path}: {first}; check the file format")


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
    except _READ_ERRORS as err:
        raise _unreadable(path, err) from err
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


# DenoisingRec / DeCA layout: NAME.train.rating, NAME.valid.rating, NAME.test.negative (the
# clean test set) and, optionally, NAME.test.noisy (the whole test set); tab-separated
# `user item [value ...]` with no header. DenoisingRec's Adressa test.negative starts each line
# with "(user, item)" followed by sampled negatives (ignored here).
DENOISINGREC_PARTS = (
    ("train", ".train.rating", True),
    ("valid", ".valid.rating", True),
    ("test", ".test.noisy", False),
    ("test_clean", ".test.negative", True),
)
DENOISINGREC_SPLIT_NAMES = ("train", "valid", "test", "test_clean")
_PAIR = r"^\(\s*(-?\d+)\s*,\s*(-?\d+)\s*\)$"


def denoisingrec_prefix(path: str) -> str:
    """`DIR/NAME` from `DIR/NAME`, `DIR/NAME.train.rating` or a directory holding one
    `*.train.rating` file.

    Raises:
      DataError: the directory holds no, or several, `*.train.rating` files.
    """
    if os.path.isdir(path):
        names = sorted(
            f.removesuffix(".train.rating") for f in os.listdir(path) if f.endswith(".train.rating")
        )
        if len(names) != 1:
            found = "no" if not names else f"{len(names)} ({', '.join(names)})"
            raise DataError(
                f"{path} holds {found} *.train.rating files; pass --config.data.path=DIR/NAME "
                "for the files NAME.train.rating, NAME.valid.rating, NAME.test.negative"
            )
        return os.path.join(path, names[0])
    return path.removesuffix(".train.rating")


def _read_pairs(path: str, value_column: str) -> pd.DataFrame:
    """One DenoisingRec file as columns user, item and (if the file has it) `value_column`."""
    try:
        raw = pd.read_csv(path, sep="\t", header=None, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        return pd.DataFrame({"user": [], "item": []})
    except _READ_ERRORS as err:
        raise _unreadable(path, err) from err
    pair = raw[0].str.extract(_PAIR)
    if pair.notna().all().all():  # "(user, item)\tneg\tneg…": no value column
        frame = pd.DataFrame({"user": pair[0], "item": pair[1]})
    elif raw.shape[1] >= 2:
        frame = pd.DataFrame({"user": raw[0], "item": raw[1]})
        if value_column and raw.shape[1] >= 3:
            frame[value_column] = raw[2]
    else:
        raise DataError(
            f"{path} has one column; a DenoisingRec file has tab-separated user, item, value"
        )
    for column in frame.columns:
        numbers = pd.to_numeric(frame[column], errors="coerce")
        if numbers.isna().any():
            bad = frame[column][numbers.isna()].iloc[0]
            raise DataError(
                f"{path} has the non-numeric {column} {bad!r}; a DenoisingRec file has "
                "tab-separated integer user, item and a rating or flag"
            )
        frame[column] = numbers
    return frame


def read_denoisingrec(path: str, value_column: str) -> pd.DataFrame:
    """The DenoisingRec files at `path` (see `denoisingrec_prefix`) as one standard frame.

    The third column of each file becomes `value_column` ("rating", "clean" or "dwell"; ''
    drops it); the `split` column holds DENOISINGREC_SPLIT_NAMES.

    Raises:
      DataError: a required file is missing or unreadable.
    """
    prefix = denoisingrec_prefix(os.path.expanduser(path))
    frames = []
    for split, suffix, required in DENOISINGREC_PARTS:
        file = prefix + suffix
        if not os.path.exists(file) and os.path.exists(file + ".gz"):
            file += ".gz"
        if not os.path.exists(file):
            if required:
                raise DataError(
                    f"DenoisingRec file not found: {file}; the layout needs NAME.train.rating, "
                    "NAME.valid.rating and NAME.test.negative: pass --config.data.path=DIR/NAME"
                )
            continue
        frames.append(_read_pairs(file, value_column).assign(split=split))
    return pd.concat(frames, ignore_index=True)
