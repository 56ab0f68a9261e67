"""Base config and the presets per (dataset, model, method): the dataset and model sections
here, the method entries of PROTOCOL.md in each method's card (`dprec.methods.cards`).

Imports no JAX, so that the command line checks a config before JAX starts.

`build_config("dataset=modcloth,model=gmf,method=normal")` returns the ConfigDict that
`configs/default.py` hands to the CLI; any field can be overridden afterwards.
"""

from __future__ import annotations

import dataclasses

import ml_collections

from dprec import specs
from dprec.errors import ConfigError
from dprec.methods import METHOD_NAMES, get_card, is_method, method_names

DATASETS = (
    "synthetic",
    "synthetic-electronics",
    "modcloth",
    "adressa",
    "electronics",
    "ml-100k",
    "table",
)
METHODS = METHOD_NAMES
MODES = specs.DENOISING_MODES
DEFAULT_CHOICE = {"dataset": "synthetic", "model": "gmf", "method": "dpi", "mode": "alternate"}

# Table 1's Electronics: the published files index these full id sets.
_ELECTRONICS_SIZE = {"n_users": 1_157_633, "n_items": 9_560}
# The paper's datasets keep the authors' L2 rule (λ0·½·‖θ‖²/n_users every step), under which
# the presets of PROTOCOL.md reproduce Table 2; every other dataset uses the "batch" rule.
_PAPER_TRAIN = {"batch_size": 2048, "l2_rule": "paper"}
_ELECTRONICS_RUN = {"eval": {"ks": (10, 50)}, "train": {**_PAPER_TRAIN, "updates": "lazy"}}

# Per dataset: the data section and the metric cut-offs.
_DATASET_PRESETS = {
    "synthetic": {
        "data": {
            "name": "synthetic",
            "split": "random",
            "clean_rule": "rating",
            "clean_threshold": 5.0,
        },
        "eval": {"ks": (5, 20)},
        "train": {"batch_size": 512, "num_epochs": 100},
    },
    # Your own log (`data.path=FILE`): neutral settings; name the columns and the clean rule
    # that your file supports (README, "Your own data").
    "table": {
        "data": {"name": "table", "split": "random", "clean_rule": "none"},
        "eval": {"ks": (5, 20)},
        "train": {"batch_size": 2048},
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
        "train": _PAPER_TRAIN,
    },
    # The DenoisingRec files, already split chronologically by their authors; the ids index the
    # full dataset (Table 1 counts). Third column: 1 = dwell time > 10 s (../shared/data README).
    "adressa": {
        "data": {
            "name": "adressa",
            "format": "denoisingrec",
            "split": "column",
            "clean_rule": "flag",
            "n_users": 212_231,
            "n_items": 6_596,
        },
        "eval": {"ks": (5, 20)},
        "train": _PAPER_TRAIN,
    },
    "electronics": {
        "data": {
            "name": "electronics",
            "format": "denoisingrec",
            "split": "column",
            "clean_rule": "rating",
            "clean_threshold": 5.0,
            **_ELECTRONICS_SIZE,
        },
        **_ELECTRONICS_RUN,
    },
    # Electronics' size (Table 1) and statistics: power-law user degrees (mean 1.12), Zipf
    # item popularity (exponent 1.1, fitted on the held-out files), 41 % noisy clicks.
    "synthetic-electronics": {
        "data": {
            "name": "synthetic-electronics",
            "split": "random",
            "clean_rule": "rating",
            "clean_threshold": 5.0,
            **_ELECTRONICS_SIZE,
            "synthetic": {
                **_ELECTRONICS_SIZE,
                "n_interactions": 1_292_954,
                "popularity_exponent": 1.1,
                "noisy_positive_rate": 0.7,
                "n_clusters": 50,
            },
        },
        **_ELECTRONICS_RUN,
    },
    "ml-100k": {
        "data": {
            "name": "ml-100k",
            "split": "random",
            "split_ratios": (0.8, 0.1, 0.1),
            "clean_rule": "rating",
            "clean_threshold": 5.0,
            "columns": {
                "user": "user_id",
                "item": "item_id",
                "rating": "rating",
                "timestamp": "timestamp",
            },
        },
        "eval": {"ks": (5, 20)},
        "train": {"batch_size": 2048},
    },
}

# Per model: architecture (PROTOCOL.md) and evaluation chunk (NeuMF scores every item through
# its MLP tower: a [chunk, n_items, 128] activation; 16 users keep it in cache, measured fastest
# on Modcloth with benchmarks/bench_epoch.py --model neumf --chunk-size C).
_MODEL_PRESETS = {
    "mf": {"model": {"embed_dim": 32, "init_std": 0.01}},
    "gmf": {"model": {"embed_dim": 32, "init_std": 0.01}},
    "neumf": {
        "model": {"embed_dim": 32, "init_std": 0.01, "mlp_embed_dim": 128},
        "eval": {"chunk_size": 16},
    },
    "cdae": {"model": {"embed_dim": 32, "init_std": 0.01, "corruption": 0.5}},
    "lightgcn": {"model": {"embed_dim": 64, "init_std": 0.1, "num_layers": 3}},
}
# The models of `dprec.models` (a test checks the two lists agree): their registry imports JAX.
MODELS = tuple(_MODEL_PRESETS)


# Datasets that take another's hyper-parameters.
_PRESET_SOURCE = {"synthetic-electronics": "electronics"}


def base_config() -> ml_collections.ConfigDict:
    """Every field with its default: the spec dataclasses' defaults (see `dprec.specs`); the
    `method` section holds the fields of every registered method's card."""
    config = ml_collections.ConfigDict()
    config.seed = 0
    for name, section in (
        ("data", dataclasses.asdict(specs.DataSpec())),
        ("model", dataclasses.asdict(specs.ModelSpec())),
        ("method", specs.MethodSpec().to_dict()),
        ("train", dataclasses.asdict(specs.TrainSpec())),
        ("eval", dataclasses.asdict(specs.EvalSpec())),
    ):
        config[name] = ml_collections.ConfigDict(section)
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
        ("method", method_names()),
        ("mode", MODES),
    ):
        # A method is also one that a module of dprec.methods defines (found by its name).
        if choice[key] not in names and not (key == "method" and is_method(choice[key])):
            raise ConfigError(f"unknown {key} {choice[key]!r}; choose one of {', '.join(names)}")
    return choice


def _update(section: ml_collections.ConfigDict, values: dict) -> None:
    for key, value in values.items():
        if isinstance(value, dict):
            _update(section[key], value)
        else:
            section[key] = value


def _preset(dataset: str, model: str, method_name: str) -> dict:
    """The method's preset entries for (dataset, model), on top of its ("*", "*") entries
    (every dataset and model), on top of its `preset_base`'s."""
    dataset = _PRESET_SOURCE.get(dataset, dataset)
    card = get_card(method_name)
    base = _preset(dataset, model, card.preset_base) if card.preset_base else {}
    everywhere = card.presets.get(("*", "*"), {})
    own = card.presets.get((dataset, model), card.presets.get((dataset, "*"), {}))
    return {**base, **everywhere, **own}


def build_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """The base config with the presets of the (dataset, model, method) in `arg` applied."""
    choice = parse_choice(arg)
    card = get_card(choice["method"])  # before the base config: its fields are in it
    config = base_config()
    _update(config, _DATASET_PRESETS[choice["dataset"]])
    config.model.name = choice["model"]
    _update(config, _MODEL_PRESETS[choice["model"]])
    config.method.name = choice["method"]
    config.method.mode = choice["mode"]
    for key, value in _preset(choice["dataset"], choice["model"], card.name).items():
        section = config.method if key in card.fields else config.train
        section[key] = value
    if card.complete_config is not None:
        card.complete_config(config, lambda name: _preset(choice["dataset"], choice["model"], name))
    return config
