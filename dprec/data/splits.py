"""Train/valid/test assignment (split column, seeded random, chronological) and clean rules."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dprec.errors import DataError
from dprec.specs import DataSpec

TRAIN, VALID, TEST = 0, 1, 2
CLEAN_TEST = 3  # rows of the clean test set only (not of the noisy test set)


def split_sizes(n: int, ratios: tuple[float, float, float]) -> tuple[int, int, int]:
    """Rows per part for `n` rows: train and valid rounded down, test takes the rest."""
    n_train = int(np.floor(n * ratios[0] + 1e-9))
    n_valid = int(np.floor(n * ratios[1] + 1e-9))
    return n_train, n_valid, n - n_train - n_valid


def ordered_split(n: int, ratios: tuple[float, float, float]) -> np.ndarray:
    """Part ids `[n]` for rows already in split order (first train, then valid, then test)."""
    n_train, n_valid, n_test = split_sizes(n, ratios)
    return np.repeat(np.array([TRAIN, VALID, TEST], np.int8), [n_train, n_valid, n_test])


def random_split(n: int, ratios: tuple[float, float, float], seed: int) -> np.ndarray:
    """Part ids `[n]` of a seeded random split with the given proportions."""
    part = ordered_split(n, ratios)
    return part[np.random.default_rng(seed).permutation(n)]


def assign_splits(frame: pd.DataFrame, spec: DataSpec, source: str) -> np.ndarray:
    """Part id per row `[N]` (TRAIN, VALID, TEST, or CLEAN_TEST for a split column with a
    fourth name) following `spec.split`.

    `chrono` expects `frame` already sorted by time.
    """
    if spec.split == "random":
        return random_split(len(frame), spec.split_ratios, spec.split_seed)
    if spec.split == "chrono":
        return ordered_split(len(frame), spec.split_ratios)
    if "split" not in frame:
        raise DataError(
            f"data.split=column needs a split column in {source}; set data.columns.split "
            "or use data.split=random"
        )
    names = {name: part for part, name in enumerate(spec.split_names)}  # 4th: CLEAN_TEST
    values = frame["split"].astype(str)
    unknown = sorted(set(values.unique()) - set(names))
    if unknown:
        raise DataError(
            f"split column of {source} has values {unknown} outside data.split_names="
            f"{list(spec.split_names)}; set data.split_names to its train, valid, test names"
            " (and optionally the name of clean-test-only rows)"
        )
    return values.map(names).to_numpy().astype(np.int8)


def clean_flags(frame: pd.DataFrame, rule: str, threshold: float, source: str) -> np.ndarray:
    """Boolean `[N]`: which interactions pass the clean rule (all of them for rule `none`).

    rating: rating >= threshold, ratings must be integers; dwell: dwell > threshold;
    flag: clean == 1. Missing values are allowed (they fail the rule); `check_known` rejects
    them where the rule must be decided.
    """
    if rule == "none":
        return np.ones(len(frame), bool)
    column = _rule_column(frame, rule, source)
    missing = frame[column].isna().to_numpy()
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
    bad = np.isnan(values) & ~missing
    if bad.any():
        raise DataError(
            f"{column} column of {source} has a non-numeric value {frame[column][bad].iloc[0]!r}; "
            "clean the column or choose another data.clean_rule"
        )
    known = ~missing
    if rule == "rating":
        fractional = known & (values != np.round(values))
        if fractional.any():
            raise DataError(
                f"rating column of {source} has the non-integer rating {values[fractional][0]}; "
                "data.clean_rule=rating needs integer ratings: round them or use "
                "data.clean_rule=none"
            )
        return known & (values >= threshold)
    if rule == "dwell":
        return known & (values > threshold)
    return known & (values == 1)


def _rule_column(frame: pd.DataFrame, rule: str, source: str) -> str:
    column = {"rating": "rating", "dwell": "dwell", "flag": "clean"}[rule]
    if column not in frame:
        field = "clean" if rule == "flag" else column
        raise DataError(
            f"data.clean_rule={rule} needs a {column} column in {source}; set "
            f"data.columns.{field}=<name> or data.clean_rule=none"
        )
    return column


def check_known(frame: pd.DataFrame, rule: str, source: str) -> None:
    """Raise DataError if a row of `frame` (held-out rows) lacks the clean rule's value."""
    if rule == "none":
        return
    column = _rule_column(frame, rule, source)
    if frame[column].isna().any():
        raise DataError(
            f"{column} column of {source} is empty in {int(frame[column].isna().sum())} "
            "validation or test rows; the clean rule needs a value there: fill them or set "
            "data.clean_rule=none"
        )
