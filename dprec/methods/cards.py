"""What the config layer knows of each method, without importing JAX: its name and label, the
`MethodSpec` fields it reads, its presets (PROTOCOL.md's table) and how it completes a config.

The command line builds and checks a config from these cards before JAX starts, so a bad
input is reported in well under a second. A `Method` object (`dprec.methods.<name>`: its
losses, roles and steps) reads its card (`Method.card`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from dprec.errors import ConfigError

# (dataset, model or "*") → config values of that preset (method fields and train fields)
Presets = Mapping[tuple[str, str], Mapping[str, Any]]
# (config, preset) → None: sets fields that follow from another method's preset (`preset(name)`)
CompleteConfig = Callable[[Any, Callable[[str], Mapping[str, Any]]], None]


@dataclasses.dataclass(frozen=True)
class MethodCard:
    """name: the registry and config name; label: its name in tables and figures.
    config_fields: the `MethodSpec` fields it reads (its preset entries go to `config.method`).
    presets: its entries of PROTOCOL.md's table; preset_base: a method whose preset it starts
    from (the baselines keep the model's normal-training λ0 and epochs). complete_config: sets
    the config fields that follow from another method's preset, or None."""

    name: str
    label: str
    config_fields: tuple[str, ...] = ()
    presets: Presets = dataclasses.field(default_factory=dict)
    preset_base: str | None = None
    complete_config: CompleteConfig | None = None


# (c1, c2, alpha, l2, num_epochs) rows of PROTOCOL.md's table → preset entries.
_PAPER_FIELDS = ("c1", "c2", "alpha", "l2", "num_epochs")


def paper_presets(rows: dict[tuple[str, str], tuple]) -> dict[tuple[str, str], dict]:
    return {key: dict(zip(_PAPER_FIELDS, values, strict=True)) for key, values in rows.items()}


def _dvae_prior_config(config: Any, preset: Callable[[str], Mapping[str, Any]]) -> None:
    # f' is pretrained with the normal preset's λ0 and epochs of the same model.
    normal = preset("normal")
    config.method.prior_epochs = normal.get("num_epochs", config.train.num_epochs)
    config.method.prior_l2 = normal.get("l2", config.train.l2)


_TCE_SCHEDULE = ("drop_rate", "num_gradual")
_DENOISING_FIELDS = ("c1", "c2", "alpha", "mode")

NORMAL = MethodCard(
    "normal",
    "Normal",
    # PROTOCOL.md: (λ0, epochs) of normal training per (dataset, model).
    presets={
        ("modcloth", "gmf"): {"l2": 0.1, "num_epochs": 40},
        ("modcloth", "neumf"): {"l2": 10.0, "num_epochs": 40},
        ("modcloth", "cdae"): {"l2": 1.0, "num_epochs": 40},
        ("modcloth", "lightgcn"): {"l2": 0.1, "num_epochs": 40},
        ("electronics", "gmf"): {"l2": 0.01, "num_epochs": 10},
        ("electronics", "neumf"): {"l2": 100.0, "num_epochs": 10},
        ("electronics", "cdae"): {"l2": 0.1, "num_epochs": 15},
        ("electronics", "lightgcn"): {"l2": 0.01, "num_epochs": 10},
        ("adressa", "gmf"): {"l2": 0.01, "num_epochs": 10},
        ("adressa", "neumf"): {"l2": 1.0, "num_epochs": 10},
        ("adressa", "cdae"): {"l2": 1.0, "num_epochs": 50},
        ("adressa", "lightgcn"): {"l2": 0.01, "num_epochs": 15},
        ("synthetic", "*"): {"l2": 0.01},
    },
)
WBPR = MethodCard(
    "wbpr",
    "WBPR",
    config_fields=("popularity_exponent",),
    preset_base="normal",
    # Exponent 0.25: 1.0 gives Recall@20 0.17 on Modcloth GMF (README).
    presets={("modcloth", "*"): {"popularity_exponent": 0.25}},
)
TCE = MethodCard(
    "tce",
    "T-CE",
    config_fields=_TCE_SCHEDULE,
    preset_base="normal",
    # ε_max from the DenoisingRec logs; Modcloth has 40 steps an epoch, so the drop rate
    # ramps up over 400 steps, not 30,000.
    presets={
        ("modcloth", "*"): {"drop_rate": 0.1, "num_gradual": 400},
        ("modcloth", "neumf"): {"drop_rate": 0.2, "num_gradual": 400},
    },
)
RCE = MethodCard("rce", "R-CE", config_fields=("beta",), preset_base="normal")
DCF = MethodCard(
    "dcf",
    "DCF",
    config_fields=(*_TCE_SCHEDULE, "relabel_ratio", "co_lambda", "dcf_window"),
    preset_base="normal",
    # dprec's choice, not the paper's: T-CE's Modcloth ε_max and ramp (DCF reuses its
    # schedule); r, σ² and W are the authors' code defaults.
    presets={("modcloth", "*"): {"drop_rate": 0.1, "num_gradual": 400}},
)
CROSSDENOISE = MethodCard(
    "crossdenoise",
    "CrossDenoise",
    config_fields=("factor_lower", "factor_upper"),
    preset_base="normal",
)
DPI = MethodCard(
    "dpi",
    "DPI",
    config_fields=(*_DENOISING_FIELDS, "aux", "noise"),
    # PROTOCOL.md: (C1, C2, α, λ0, epochs) per (dataset, model); synthetic: one for all.
    presets={
        **paper_presets(
            {
                ("modcloth", "gmf"): (100.0, 10.0, 0.0, 0.1, 40),
                ("modcloth", "neumf"): (1000.0, 10.0, 0.5, 10.0, 40),
                ("modcloth", "cdae"): (1000.0, 100.0, 0.0, 1.0, 40),
                ("modcloth", "lightgcn"): (1000.0, 10.0, 0.0, 0.1, 60),
                ("electronics", "gmf"): (1000.0, 10.0, 1.0, 0.01, 15),
                ("electronics", "neumf"): (100.0, 10.0, 0.5, 1000.0, 15),
                ("electronics", "cdae"): (100.0, 10.0, 0.0, 0.1, 15),
                ("electronics", "lightgcn"): (1000.0, 10.0, 1.0, 0.01, 10),
                ("adressa", "gmf"): (100.0, 10.0, 1.0, 0.0, 15),
                ("adressa", "neumf"): (1000.0, 10.0, 0.0, 1.0, 30),
                ("adressa", "cdae"): (1000.0, 10.0, 0.0, 0.0, 50),
                ("adressa", "lightgcn"): (10.0, 1000.0, 0.0, 10.0, 15),
            }
        ),
        # C1 = C2 suits the synthetic data's dense, heavily corrupted interactions (README).
        ("synthetic", "*"): {"c1": 10.0, "c2": 10.0, "alpha": 0.0, "l2": 0.01},
    },
)
DVAE = MethodCard(
    "dvae",
    "DVAE",
    config_fields=(
        *_DENOISING_FIELDS,
        "noise",
        "prior_init",
        "prior_seed_offset",
        "prior_epochs",
        "prior_l2",
        "prior_cache_dir",
    ),
    # PROTOCOL.md: (C1, C2, α, λ0, epochs) per (dataset, model); synthetic: one for all.
    presets={
        **paper_presets(
            {
                ("modcloth", "gmf"): (100.0, 10.0, 1.0, 0.1, 40),
                ("modcloth", "neumf"): (1000.0, 10.0, 1.0, 10.0, 40),
                ("modcloth", "cdae"): (1000.0, 100.0, 1.0, 1.0, 40),
                ("modcloth", "lightgcn"): (10.0, 10.0, 0.5, 0.1, 60),
                ("electronics", "gmf"): (1000.0, 10.0, 1.0, 0.01, 10),
                ("electronics", "neumf"): (100.0, 10.0, 0.0, 1000.0, 10),
                ("electronics", "cdae"): (100.0, 10.0, 0.0, 0.1, 15),
                ("electronics", "lightgcn"): (1000.0, 10.0, 1.0, 0.01, 10),
                ("adressa", "gmf"): (1000.0, 10.0, 1.0, 0.01, 10),
                ("adressa", "neumf"): (100.0, 10.0, 1.0, 1.0, 30),
                ("adressa", "cdae"): (100.0, 10.0, 1.0, 0.0, 50),
                ("adressa", "lightgcn"): (1000.0, 10.0, 0.5, 0.01, 15),
            }
        ),
        ("synthetic", "*"): {"c1": 10.0, "c2": 10.0, "alpha": 1.0, "l2": 0.01},
    },
    complete_config=_dvae_prior_config,
)

# The registry's order: the order of `--help`, the reports and the tuner.
CARDS: dict[str, MethodCard] = {
    card.name: card for card in (NORMAL, WBPR, TCE, RCE, DCF, CROSSDENOISE, DPI, DVAE)
}
METHOD_NAMES = tuple(CARDS)


def unknown_method(name: str) -> ConfigError:
    """The error for a method name no registry knows."""
    return ConfigError(
        f"method.name={name!r} is not one of {', '.join(METHOD_NAMES)}; set --config.method.name"
    )


def get_card(name: str) -> MethodCard:
    """The card of the method called `name`; an unknown name is a `ConfigError`."""
    if name not in CARDS:
        raise unknown_method(name)
    return CARDS[name]
