"""Base config and the presets of PROTOCOL.md per (dataset, model, method).

`build_config("dataset=modcloth,model=gmf,method=normal")` returns the ConfigDict that
`configs/default.py` hands to the CLI; any field can be overridden afterwards.
"""

from __future__ import annotations

import ml_collections

from dprec.errors import ConfigError

DATASETS = ("synthetic", "modcloth")
MODELS = ("gmf", "mf")
METHODS = ("normal",)
DEFAULT_CHOICE = {"dataset": "synthetic", "model": "gmf", "method": "normal"}

# Per dataset: the data section and the metric cut-offs.
_DATASET_PRESETS = {
    "synthetic": {
        "data": {"name": "synthetic", "split": "random", "clean_rule": "rating",
                 "clean_threshold": 5.0,
                 "columns": {"rating": "rating", "truth": "truth"}},
        "eval": {"ks": (5, 20)},
        "train": {"batch_size": 512, "num_epochs": 100},
    },
    "modcloth": {
        "data": {"name": "modcloth", "split": "column", "clean_rule": "rating",
                 "clean_threshold": 5.0,
                 "columns": {"user": "user_id", "item": "item_id", "rating": "rating",
                             "split": "split"}},
        "eval": {"ks": (5, 20)},
        "train": {"batch_size": 2048},
    },
}

# (dataset, model, method) → λ0 and epochs (the authors' configs; PROTOCOL.md).
_TRAIN_PRESETS = {
    ("modcloth", "gmf", "normal"): {"l2": 0.1, "num_epochs": 40},
    ("modcloth", "mf", "normal"): {"l2": 0.1, "num_epochs": 40},
    ("synthetic", "gmf", "normal"): {"l2": 0.01},
    ("synthetic", "mf", "normal"): {"l2": 0.01},
}


def base_config() -> ml_collections.ConfigDict:
    """Every field with its default (the synthetic quickstart)."""
    config = ml_collections.ConfigDict()
    config.seed = 0
    config.data = ml_collections.ConfigDict({
        "name": "synthetic", "path": "", "split": "random", "split_ratios": (0.8, 0.1, 0.1),
        "split_seed": 0, "split_names": ("train", "valid", "test"), "clean_rule": "rating",
        "clean_threshold": 5.0,
        "columns": {"user": "user_id", "item": "item_id", "rating": "", "dwell": "",
                    "timestamp": "", "split": "", "clean": "", "truth": ""},
        "synthetic": {"n_users": 2000, "n_items": 400, "dim": 8, "liked_fraction": 0.04,
                      "exposure": 0.55, "noisy_positive_rate": 0.6,
                      "popularity_exponent": 1.0, "seed": 0},
    })
    config.model = ml_collections.ConfigDict({"name": "gmf", "embed_dim": 32, "init_std": 0.01})
    config.method = ml_collections.ConfigDict({"name": "normal"})
    config.train = ml_collections.ConfigDict({
        "num_epochs": 40, "batch_size": 2048, "num_negatives": 1, "learning_rate": 1e-3,
        "l2": 0.1,  # λ0: loss += λ0 · ½ · ‖θ_f‖² / n_users
    })
    config.eval = ml_collections.ConfigDict({
        "ks": (5, 20), "chunk_size": 1024, "select_metric": "", "valid_set": "clean",
    })
    return config


def parse_choice(arg: str | None) -> dict[str, str]:
    """'dataset=modcloth,model=gmf,method=dpi' → a dict with defaults for missing keys."""
    choice = dict(DEFAULT_CHOICE)
    for part in filter(None, (arg or "").split(",")):
        key, sep, value = part.partition("=")
        if not sep or key.strip() not in choice:
            raise ConfigError(
                f"bad config argument {part!r}; use configs/default.py:dataset=NAME,model=NAME,"
                "method=NAME"
            )
        choice[key.strip()] = value.strip()
    for key, names in (("dataset", DATASETS), ("model", MODELS), ("method", METHODS)):
        if choice[key] not in names:
            raise ConfigError(
                f"unknown {key} {choice[key]!r}; choose one of {', '.join(names)}"
            )
    return choice


def _update(section: ml_collections.ConfigDict, values: dict) -> None:
    for key, value in values.items():
        if isinstance(value, dict):
            _update(section[key], value)
        else:
            section[key] = value


def build_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """The base config with the presets of the (dataset, model, method) in `arg` applied."""
    choice = parse_choice(arg)
    config = base_config()
    _update(config, _DATASET_PRESETS[choice["dataset"]])
    config.model.name = choice["model"]
    config.method.name = choice["method"]
    _update(config.train, _TRAIN_PRESETS.get(
        (choice["dataset"], choice["model"], choice["method"]), {}))
    return config
