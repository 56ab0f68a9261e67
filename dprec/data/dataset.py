"""Interaction data after id remapping and splitting: the host-side input of every run."""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pandas as pd

from dprec.data import splits
from dprec.errors import ConfigError, DataError
from dprec.specs import DataSpec


@dataclasses.dataclass(frozen=True)
class Interactions:
    """One set of (user, item) pairs with optional per-pair columns. Arrays are `[N]`."""

    users: np.ndarray  # int32 contiguous user index
    items: np.ndarray  # int32 contiguous item index
    ratings: np.ndarray | None = None  # rating, where the data has one
    truth: np.ndarray | None = None  # 1 = truly clean (synthetic data only)

    def __len__(self) -> int:
        return int(self.users.shape[0])

    def select(self, keep: np.ndarray) -> Interactions:
        """The rows where boolean `keep` `[N]` is true."""
        return Interactions(
            users=self.users[keep],
            items=self.items[keep],
            ratings=None if self.ratings is None else self.ratings[keep],
            truth=None if self.truth is None else self.truth[keep],
        )


@dataclasses.dataclass(frozen=True)
class InteractionData:
    """Train / validation / test interactions over contiguous ids `0..n_users-1`, `0..n_items-1`.

    Training uses `train` binarised; `valid_clean` and `test_clean` hold the interactions that
    pass the clean rule; `valid` and `test` hold all held-out interactions (the noisy sets).
    `user_ids[u]` and `item_ids[i]` give the original ids back.
    """

    n_users: int
    n_items: int
    train: Interactions
    valid: Interactions
    valid_clean: Interactions
    test: Interactions
    test_clean: Interactions
    user_ids: np.ndarray
    item_ids: np.ndarray
    dropped_rows: int = 0  # input rows without a usable user or item id
    duplicate_rows: int = 0  # repeated (user, item) rows dropped (the first one is kept)
    # data.train_truth=clean (the oracle): the training rows before only the truly clean ones
    # were kept; 0 = not restricted.
    train_rows_before_truth: int = 0

    @property
    def fingerprint(self) -> str:
        """sha256 (first 16 hex digits) of every split's ids and clean sets."""
        digest = hashlib.sha256(f"{self.n_users},{self.n_items}".encode())
        for part in (self.train, self.valid, self.valid_clean, self.test, self.test_clean):
            digest.update(part.users.tobytes())
            digest.update(part.items.tobytes())
        if self.train_rows_before_truth:  # the oracle differs even where no row was noisy
            digest.update(f"train_truth=clean of {self.train_rows_before_truth}".encode())
        return digest.hexdigest()[:16]

    def train_degree(self) -> np.ndarray:
        """Training interactions per user `[n_users]`."""
        return np.bincount(self.train.users, minlength=self.n_users)

    def item_popularity(self) -> np.ndarray:
        """Training interactions per item `[n_items]`."""
        return np.bincount(self.train.items, minlength=self.n_items)

    def summary(self) -> str:
        """One line of sizes for progress output."""
        return (
            f"{self.n_users} users, {self.n_items} items, train {len(self.train)}, "
            f"valid {len(self.valid)} (clean {len(self.valid_clean)}), "
            f"test {len(self.test)} (clean {len(self.test_clean)})"
            + (
                f"; dropped {self.dropped_rows} rows with a blank or NaN user/item id"
                if self.dropped_rows
                else ""
            )
            + (
                f"; dropped {self.duplicate_rows} repeated (user, item) rows (kept the first)"
                if self.duplicate_rows
                else ""
            )
            + (
                f"; train restricted to truth-clean rows ({len(self.train)} of "
                f"{self.train_rows_before_truth})"
                if self.train_rows_before_truth
                else ""
            )
        )


def check_ks_against_data(ks: tuple[int, ...], data: InteractionData) -> None:
    """Every cut-off K must be at most the number of items."""
    if max(ks) > data.n_items:
        raise ConfigError(
            f"eval.ks has K={max(ks)} but the data has only {data.n_items} items; "
            f"choose K <= {data.n_items} with --config.eval.ks"
        )


def _remap(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Contiguous indices in sorted order of the original ids, so integer ids keep their order."""
    raw = values.to_numpy()
    if raw.dtype == object:
        raw = raw.astype(str)
    originals, index = np.unique(raw, return_inverse=True)
    return originals, index.astype(np.int32)


def _index(values: pd.Series, size: int, field: str, source: str) -> tuple[np.ndarray, np.ndarray]:
    """(original ids, indices `[N]`): remapped when `size` is 0, else kept as indices of a fixed
    id space `0..size-1` (ids of the full dataset, as in the Adressa and Electronics files)."""
    if size == 0:
        return _remap(values)
    index = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    bad = np.isnan(index) | (index < 0) | (index >= size) | (index != np.round(index))
    if bad.any():
        raise DataError(
            f"{field} id {values.to_numpy()[bad][0]} in {source} is not an index in "
            f"0..{size - 1}; set data.n_{field}s to the full id count, or 0 to remap the ids"
        )
    return np.arange(size), index.astype(np.int32)


def _blank(values: pd.Series) -> np.ndarray:
    """`[N]` bool: NaN, None or an all-whitespace string."""
    blank = values.isna().to_numpy()
    if values.dtype == object:
        blank = blank | values.astype(str).str.strip().eq("").to_numpy()
    return blank


def _drop_blank_ids(
    frame: pd.DataFrame, max_fraction: float, source: str
) -> tuple[pd.DataFrame, int]:
    """The rows with both ids, and how many were dropped.

    Raises:
      DataError: no row is left, or more than `max_fraction` of the rows were dropped.
    """
    blank = _blank(frame["user"]) | _blank(frame["item"])
    dropped = int(blank.sum())
    if dropped == len(frame):
        raise DataError(f"no interactions in {source}; check the file and data.columns")
    if dropped > max_fraction * len(frame):
        raise DataError(
            f"{dropped} of {len(frame)} rows of {source} ({dropped / len(frame):.1%}) have a "
            "blank or NaN user/item id; check data.columns and the file's separator, or accept "
            f"dropping them with --config.data.max_dropped_fraction={dropped / len(frame):.3g}"
        )
    return frame[~blank], dropped


def _truth_clean(truth: np.ndarray | None, train_truth: str, source: str) -> np.ndarray | bool:
    """Which rows `[N]` training may use: every row (`all`), or those whose truth is 1 (`clean`).

    Raises:
      DataError: `clean` without a truth column.
    """
    if train_truth != "clean":
        return True
    if truth is None:
        raise DataError(
            f"data.train_truth=clean keeps the training rows whose truth is 1, but {source} has "
            "no truth column; set data.columns.truth (planted tables: "
            "--config.data.columns.truth=truth) or data.train_truth=all"
        )
    return truth == 1


def build_interaction_data(frame: pd.DataFrame, spec: DataSpec, source: str) -> InteractionData:
    """Clean, deduplicate, remap, split and apply the clean rule to a standard-column frame.

    `frame` has at least `user` and `item`, plus whatever `spec` needs (`rating`, `dwell`,
    `timestamp`, `split`, `clean`, `truth`). Duplicate (user, item) pairs keep their first row
    (in time order for a chronological split). Rows of a clean-test-only part (a fourth
    `split_names` entry, e.g. DenoisingRec's test.negative) are the clean test set when there
    are any; the noisy test set is the TEST rows, or the clean test set when there are none.
    With `spec.train_truth == "clean"` (the oracle) only the training rows whose `truth` is 1
    are kept, after the split: ids, validation and test are those of the `all` run.

    Raises:
      DataError: empty data, missing or out-of-range ids, a column the split or clean rule
      needs is unusable, or `train_truth=clean` without a truth column.
    """
    frame, dropped = _drop_blank_ids(frame, spec.max_dropped_fraction, source)
    is_clean = splits.clean_flags(frame, spec.clean_rule, spec.clean_threshold, source)
    frame = frame.assign(_clean=is_clean)
    if spec.split == "chrono":
        if "timestamp" not in frame:
            raise DataError(
                "data.split=chrono needs a timestamp column; set data.columns.timestamp "
                "or use data.split=random"
            )
        frame = frame.sort_values(by="timestamp", kind="stable")
    # A split column labels rows before deduplication; random and chronological proportions
    # count the distinct pairs after it.
    labels = splits.assign_splits(frame, spec, source) if spec.split == "column" else None
    clean_only = labels == splits.CLEAN_TEST if labels is not None else np.zeros(len(frame), bool)
    extra = frame[clean_only].drop_duplicates(subset=["user", "item"], keep="first")
    keep = ~frame[~clean_only].duplicated(subset=["user", "item"], keep="first").to_numpy()
    duplicates = int((~keep).sum()) + int(clean_only.sum()) - len(extra)
    frame = frame[~clean_only][keep]
    part = (
        labels[~clean_only][keep]
        if labels is not None
        else splits.assign_splits(frame, spec, source)
    )
    both = pd.concat([frame, extra], ignore_index=True)
    n_main = len(frame)
    part = np.concatenate([part, np.full(len(extra), splits.CLEAN_TEST, np.int8)])
    # The clean rule must be decidable on the held-out rows; train values may be absent.
    splits.check_known(
        both[(part == splits.VALID) | (part == splits.TEST)], spec.clean_rule, source
    )
    clean = both["_clean"].to_numpy()
    user_ids, users = _index(both["user"], spec.n_users, "user", source)
    item_ids, items = _index(both["item"], spec.n_items, "item", source)
    ratings = both["rating"].to_numpy() if "rating" in both else None
    truth = both["truth"].to_numpy().astype(np.int8) if "truth" in both else None
    everything = Interactions(users=users, items=items, ratings=ratings, truth=truth)
    test_part = splits.TEST if (part[:n_main] == splits.TEST).any() else splits.CLEAN_TEST
    train = part == splits.TRAIN
    # The oracle drops rows after the split, so its ids, validation and test sets are the
    # full run's.
    train_truth_clean = _truth_clean(truth, spec.train_truth, source)
    data = InteractionData(
        n_users=len(user_ids),
        n_items=len(item_ids),
        train=everything.select(train & train_truth_clean),
        valid=everything.select(part == splits.VALID),
        valid_clean=everything.select((part == splits.VALID) & clean),
        test=everything.select(part == test_part),
        test_clean=everything.select(
            (part == splits.CLEAN_TEST) if len(extra) else (part == splits.TEST) & clean
        ),
        user_ids=user_ids,
        item_ids=item_ids,
        dropped_rows=dropped,
        duplicate_rows=duplicates,
        train_rows_before_truth=int(train.sum()) if spec.train_truth == "clean" else 0,
    )
    for name in ("train", "valid", "test", "test_clean"):
        if len(getattr(data, name)) == 0:
            raise DataError(
                f"the {name} set of {source} is empty after filtering; check data.split, "
                f"data.split_ratios and data.clean_rule/data.clean_threshold"
            )
    return data
