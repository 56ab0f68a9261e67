"""Base config and the presets of PROTOCOL.md per (dataset, model, method).

`build_config("dataset=modcloth,model=gmf,method=normal")` returns the ConfigDict that
`configs/default.py` hands to the CLI; any field can be overridden afterwards.
"""

from __future__ import annotations

import ml_collections

from dprec.errors import ConfigError

DATASETS = ("synthetic", "modcloth")
MODELS = ("gmf", "mf")
METHODS = ("normal", "dpi", "dvae")
MODES = ("alternate", "dp", "dn")
DEFAULT_CHOICE = {"dataset": "synthetic", "model": "gmf", "method": "dpi", "mode": "alternate"}

# Per dataset: the data section and the metric cut-offs.
_DATASET_PRESETS = {
    "synthetic": {
        "data": {
            "name": "synthetic",
            "split": "random",
            "clean_rule": "rating",
            "clean_threshold": 5.0,
            "columns": {"rating": "rating", "truth": "truth"},
        },
        "eval": {"ks": (5, 20)},
        "train": {"batch_size": 512, "num_epochs": 100},
    },
    "modcloth": {
        "data": {
            "name": "modcloth",
            "split": "column",
            "clean_rule": "rating",
            "clean_threshold": 5.0,
            "columns": {"user": "user_id", "item": "item_id", "rating": "rating", "split": "split"},
        },
        "eval": {"ks": (5, 20)},
        "train": {"batch_size": 2048},
    },
}

# (dataset, model, method) → C1 / C2 / α / λ0 / epochs (the authors' configs; PROTOCOL.md).
# The DVAE prior f' is pretrained with the normal preset's λ0 and epochs of the same model.
_PRESETS = {
    ("modcloth", "gmf", "normal"): {"l2": 0.1, "num_epochs": 40},
    ("modcloth", "gmf", "dpi"): {
        "c1": 100.0,
        "c2": 10.0,
        "alpha": 0.0,
        "l2": 0.1,
        "num_epochs": 40,
    },
    ("modcloth", "gmf", "dvae"): {
        "c1": 100.0,
        "c2": 10.0,
        "alpha": 1.0,
        "l2": 0.1,
        "num_epochs": 40,
    },
    ("synthetic", "gmf", "normal"): {"l2": 0.01},
    ("synthetic", "gmf", "dpi"): {"c1": 100.0, "c2": 10.0, "alpha": 0.0, "l2": 0.01},
    ("synthetic", "gmf", "dvae"): {"c1": 100.0, "c2": 10.0, "alpha": 1.0, "l2": 0.01},
}
_METHOD_FIELDS = ("c1", "c2", "alpha")


def base_config() -> ml_collections.ConfigDict:
    """Every field with its default (the synthetic quickstart)."""
    config = ml_collections.ConfigDict()
    config.seed = 0
    config.data = ml_collections.ConfigDict(
        {
            "name": "synthetic",
            "path": "",
            "split": "random",
            "split_ratios": (0.8, 0.1, 0.1),
            "split_seed": 0,
            "split_names": ("train", "valid", "test"),
            "clean_rule": "rating",
            "clean_threshold": 5.0,
            "columns": {
                "user": "user_id",
                "item": "item_id",
                "rating": "",
                "dwell": "",
                "timestamp": "",
                "split": "",
                "clean": "",
                "truth": "",
            },
            "synthetic": {
                "n_users": 2000,
                "n_items": 400,
                "dim": 8,
                "liked_fraction": 0.04,
                "exposure": 0.55,
                "noisy_positive_rate": 0.6,
                "popularity_exponent": 1.0,
                "seed": 0,
            },
        }
    )
    config.model = ml_collections.ConfigDict({"name": "gmf", "embed_dim": 32, "init_std": 0.01})
    config.method = ml_collections.ConfigDict(
        {
            "name": "normal",  # normal | dpi | dvae
            "c1": 1000.0,  # C1: weight of f on sampled negatives in DP (eq. 15)
            "c2": 10.0,  # C2: weight of 1 − f on interacted pairs in DN (eq. 16)
            "alpha": 0.5,  # α: α·KL(ref ‖ f) + (1 − α)·KL(f ‖ ref)
            "mode": "alternate",  # alternate (DP on even steps) | dp | dn
            "aux": {"name": "mf", "embed_dim": 32, "init_std": 0.01},  # g of DPI
            "noise": {"name": "mf", "embed_dim": 32, "init_std": 0.01},  # h and h'
            "prior_init": "seed",  # DVAE f': own seed (paper) | copy of f's init (authors' code)
            "prior_seed_offset": 10_007,
            "prior_epochs": 0,  # 0 = the normal preset's epochs
            "prior_l2": -1.0,  # < 0 = the normal preset's λ0
            "prior_cache_dir": "",
        }
    )
    config.train = ml_collections.ConfigDict(
        {
            "num_epochs": 40,
            "batch_size": 2048,
            "num_negatives": 1,
            "learning_rate": 1e-3,
            "l2": 0.1,  # λ0: loss += λ0 · ½ · ‖θ_f‖² / n_users
        }
    )
    config.eval = ml_collections.ConfigDict(
        {
            "ks": (5, 20),
            "chunk_size": 1024,
            "select_metric": "",
            "valid_set": "clean",
        }
    )
    return config


def parse_choice(arg: str | None) -> dict[str, str]:
    """'dataset=modcloth,model=gmf,method=dpi[,mode=dp]' → a dict with defaults for the rest."""
    choice = dict(DEFAULT_CHOICE)
    for part in filter(None, (arg or "").split(",")):
        key, sep, value = part.partition("=")
        if not sep or key.strip() not in choice:
            raise ConfigError(
                f"bad config argument {part!r}; use configs/default.py:dataset=NAME,model=NAME,"
                "method=NAME[,mode=alternate|dp|dn]"
            )
        choice[key.strip()] = value.strip()
    for key, names in (
        ("dataset", DATASETS),
        ("model", MODELS),
        ("method", METHODS),
        ("mode", MODES),
    ):
        if choice[key] not in names:
            raise ConfigError(f"unknown {key} {choice[key]!r}; choose one of {', '.join(names)}")
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
    config.method.mode = choice["mode"]
    preset = _PRESETS.get((choice["dataset"], choice["model"], choice["method"]), {})
    for key, value in preset.items():
        section = config.method if key in _METHOD_FIELDS else config.train
        section[key] = value
    if choice["method"] == "dvae":
        normal = _PRESETS.get((choice["dataset"], choice["model"], "normal"), {})
        config.method.prior_epochs = normal.get("num_epochs", config.train.num_epochs)
        config.method.prior_l2 = normal.get("l2", config.train.l2)
    return config
