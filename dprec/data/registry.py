"""Dataset presets: name → how to obtain the standard-column frame and build the splits."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from dprec.data import synthetic
from dprec.data.dataset import InteractionData, build_interaction_data
from dprec.data.io import DENOISINGREC_SPLIT_NAMES, read_denoisingrec, read_table
from dprec.errors import ConfigError, DataError

SYNTHETIC_NAMES = ("synthetic", "synthetic-electronics")
DATASET_NAMES = (*SYNTHETIC_NAMES, "modcloth", "adressa", "electronics", "ml-100k", "table")

# Default files, relative to the data directory (`$DPREC_DATA_DIR` or ../shared/data beside
# the checkout). The files are never copied into the repository (licences). Adressa and
# Electronics point at the DenoisingRec layout NAME.train.rating…: ../shared/data has only
# their held-out splits, so their train files must be added there or given with data.path.
DEFAULT_FILES = {
    "modcloth": "modcloth/modcloth.csv.gz",
    "ml-100k": "ml-100k/ml-100k.csv.gz",
    "adressa": "adressa/adressa",
    "electronics": "electronics/electronics_5",
}
# The third column of a DenoisingRec file, named after the clean rule that reads it.
_VALUE_COLUMN = {"rating": "rating", "flag": "clean", "dwell": "dwell", "none": ""}


def data_dir() -> Path:
    """`$DPREC_DATA_DIR` if set, else `shared/data` beside the repository checkout (or beside
    the working directory, for a non-editable install)."""
    if os.environ.get("DPREC_DATA_DIR"):
        return Path(os.environ["DPREC_DATA_DIR"])
    candidates = [
        Path(__file__).resolve().parents[3] / "shared" / "data",
        Path.cwd().parent / "shared" / "data",
    ]
    return next((path for path in candidates if path.is_dir()), candidates[0])


def resolve_path(name: str, path: str) -> str:
    """The file to read for dataset `name`: `path` if given, else the preset's default."""
    if path:
        return os.path.expanduser(path)
    if name not in DEFAULT_FILES:
        raise DataError(f"dataset {name!r} has no default file; pass --config.data.path=FILE")
    return str(data_dir() / DEFAULT_FILES[name])


def load_dataset(spec) -> InteractionData:
    """Load and split the dataset that `spec` (a `DataSpec`) describes."""
    if spec.name in SYNTHETIC_NAMES:
        frame = synthetic.generate(spec.synthetic)
        return build_interaction_data(frame, spec, source="the synthetic generator")
    if spec.name not in DATASET_NAMES:
        raise DataError(f"unknown dataset {spec.name!r}; choose one of {', '.join(DATASET_NAMES)}")
    path = resolve_path(spec.name, spec.path)
    if spec.format == "table":
        return build_interaction_data(read_table(path, spec.columns), spec, source=path)
    if spec.split != "column":
        raise ConfigError(
            f"data.format=denoisingrec takes the split from its files, but data.split="
            f"{spec.split}; set --config.data.split=column"
        )
    try:
        frame = read_denoisingrec(path, _VALUE_COLUMN[spec.clean_rule])
    except DataError as err:
        if spec.path:
            raise
        raise DataError(
            f"{err}. ../shared/data has only the held-out splits of {spec.name} (see its "
            "README): put the published DenoisingRec files there or pass --config.data.path"
        ) from err
    spec = dataclasses.replace(spec, split_names=DENOISINGREC_SPLIT_NAMES)
    return build_interaction_data(frame, spec, source=path)
