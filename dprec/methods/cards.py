"""What the config layer knows of each built-in method, without importing JAX: its name and
label, the fields it reads (`fields.Field`: default, doc, range, tune space), its presets
(PROTOCOL.md's table) and how it completes a config.

The command line builds and checks a config from these cards before JAX starts, so a bad
input is reported in well under a second. A `Method` object (`dprec.methods.<name>`: its
losses, roles and steps) reads its card (`Method.card`); a method defined elsewhere carries
its own card (`dprec.methods.register`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from dprec.errors import ConfigError
from dprec.methods.fields import Choice, Field, Float, OneOf, PositiveInt, Range
from dprec.specs import DENOISING_MODES, PRIOR_INITS, ModelSpec

# (dataset or "*", model or "*") → config values of that preset (method fields and train
# fields); ("*", "*") applies to every dataset and model, under the more specific entries
Presets = Mapping[tuple[str, str], Mapping[str, Any]]
# (config, preset) → None: sets fields that follow from another method's preset (`preset(name)`)
CompleteConfig = Callable[[Any, Callable[[str], Mapping[str, Any]]], None]
# (the method's values, read as `values.FIELD`) → None, or a ConfigError: a check that spans
# several of its fields
JointCheck = Callable[[Any], None]


@dataclasses.dataclass(frozen=True)
class MethodCard:
    """name: the registry and config name; label: its name in tables and figures.
    fields: field name → `Field`, the `--config.method.*` fields it reads, in the order of
    `--config_help` and of its tuner space; checks: joint checks of those fields.
    presets: its entries of PROTOCOL.md's table (those of its fields go to `config.method`,
    the rest to `config.train`); preset_base: a method whose preset it starts from (the
    baselines keep the model's normal-training λ0 and epochs). complete_config: sets the
    config fields that follow from another method's preset, or None."""

    name: str
    label: str
    fields: Mapping[str, Field] = dataclasses.field(default_factory=dict)
    checks: tuple[JointCheck, ...] = ()
    presets: Presets = dataclasses.field(default_factory=dict)
    preset_base: str | None = None
    complete_config: CompleteConfig | None = None

    @property
    def config_fields(self) -> tuple[str, ...]:
        """The names of its fields."""
        return tuple(self.fields)

    def check(self, values: Any) -> None:
        """A one-line `ConfigError` for the first of its fields out of range
        (`values.FIELD`, e.g. a `MethodSpec`), then for its joint checks."""
        for name, field in self.fields.items():
            if field.check is not None:
                field.check(getattr(values, name), f"method.{name}")
        for check in self.checks:
            check(values)


# ---------------------------------------------------------------------------------------------
# Fields shared by several methods: declared once, listed by each card that reads them.

# DPI and DVAE (C1, C2 and α: the paper's grid in the tuner).
_PAPER_C = Choice((1.0, 10.0, 100.0, 1000.0))
DENOISING_FIELDS = {
    "c1": Field(1000.0, "C1, weight of f on sampled negatives in DP (eq. 15)", space=_PAPER_C),
    "c2": Field(10.0, "C2, weight of 1 − f on interacted pairs in DN (eq. 16)", space=_PAPER_C),
    "alpha": Field(
        0.5,
        "α, mixes KL(ref ‖ f) (weight α) and KL(f ‖ ref) (weight 1 − α)",
        check=Range(0.0, 1.0, symbol="α"),
        space=Choice((0.0, 0.5, 1.0)),
    ),
    "mode": Field(
        "alternate",
        "alternate DP/DN every step (DP on even steps) | dp | dn only",
        check=OneOf(DENOISING_MODES),
    ),
    "exposure_power": Field(
        0.0,
        "κ, exposure-aware noise: h's logit + κ·log((c_i + 1) / (max c + 1)), c the training "
        "clicks of item i (noisy clicks go to popular items); 0 = the paper's h",
        check=Range(low=0.0, symbol="κ"),
        space=Choice((0.0, 0.5, 1.0, 2.0)),
    ),
}
AUX_MODEL = {"aux": Field(ModelSpec(name="mf"), "g of DPI")}
NOISE_MODEL = {
    "noise": Field(ModelSpec(name="mf"), "h (DP) and h' (DN), one architecture for both")
}


def _check_denoising_weights(values: Any) -> None:
    if values.c1 < 0 or values.c2 < 0:
        raise ConfigError("method.c1 and method.c2 (C1, C2) must be >= 0")


# T-CE's schedule, which DCF reuses. num_gradual's space, in steps: from Modcloth's 400 (40
# steps an epoch) to the paper's 30,000.
TCE_SCHEDULE = {
    "drop_rate": Field(
        0.2,
        "T-CE: ε_max, the final share of the batch dropped",
        check=Range(0.0, 0.5, high_open=True, symbol="ε_max"),
        space=Float(0.05, 0.4),
    ),
    "num_gradual": Field(
        30_000,
        "T-CE: steps until the drop rate reaches ε_max",
        check=PositiveInt(),
        space=Choice((100, 400, 1000, 3000, 10_000, 30_000)),
    ),
}

# ---------------------------------------------------------------------------------------------
# The cards

# (c1, c2, alpha, l2, num_epochs) rows of PROTOCOL.md's table → preset entries.
_PAPER_FIELDS = ("c1", "c2", "alpha", "l2", "num_epochs")


def paper_presets(rows: dict[tuple[str, str], tuple]) -> dict[tuple[str, str], dict]:
    return {key: dict(zip(_PAPER_FIELDS, values, strict=True)) for key, values in rows.items()}


def _dvae_prior_config(config: Any, preset: Callable[[str], Mapping[str, Any]]) -> None:
    # f' is pretrained with the normal preset's λ0 and epochs of the same model.
    normal = preset("normal")
    config.method.prior_epochs = normal.get("num_epochs", config.train.num_epochs)
    config.method.prior_l2 = normal.get("l2", config.train.l2)


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
    },
)
WBPR = MethodCard(
    "wbpr",
    "WBPR",
    fields={
        "popularity_exponent": Field(
            1.0,
            "WBPR: negatives ∝ training popularity ** exponent",
            space=Float(0.0, 1.0),
        )
    },
    preset_base="normal",
    # Exponent 0.25: 1.0 gives Recall@20 0.17 on Modcloth GMF (README).
    presets={("modcloth", "*"): {"popularity_exponent": 0.25}},
)
TCE = MethodCard(
    "tce",
    "T-CE",
    fields=TCE_SCHEDULE,
    preset_base="normal",
    # ε_max from the DenoisingRec logs; Modcloth has 40 steps an epoch, so the drop rate
    # ramps up over 400 steps, not 30,000.
    presets={
        ("modcloth", "*"): {"drop_rate": 0.1, "num_gradual": 400},
        ("modcloth", "neumf"): {"drop_rate": 0.2, "num_gradual": 400},
    },
)
RCE = MethodCard(
    "rce",
    "R-CE",
    fields={"beta": Field(0.1, "R-CE: weight exponent β", space=Float(0.05, 1.0))},
    preset_base="normal",
)
DCF = MethodCard(
    "dcf",
    "DCF",
    # T-CE's schedule plus its own r, σ² and window (the authors' defaults inside the spaces).
    fields={
        **TCE_SCHEDULE,
        "relabel_ratio": Field(
            0.05,
            "DCF: r, the share of the dropped positives relabelled",
            check=Range(0.0, 1.0, symbol="DCF's r"),
            space=Float(0.0, 0.3),
        ),
        "co_lambda": Field(
            1e-4,
            "DCF: σ², the bound's variance (decays to 0 over the epochs)",
            check=Range(low=0.0, symbol="DCF's σ²"),
            space=Choice((0.0, 1e-4, 1e-2)),
        ),
        "dcf_window": Field(
            3,
            "DCF: W, the last visits each positive's mean loss is taken over",
            check=PositiveInt(),
            space=Choice((1, 3, 5)),
        ),
    },
    preset_base="normal",
    # dprec's choice, not the paper's: T-CE's Modcloth ε_max and ramp (DCF reuses its
    # schedule); r, σ² and W are the authors' code defaults.
    presets={("modcloth", "*"): {"drop_rate": 0.1, "num_gradual": 400}},
)


def _check_reliability_factors(values: Any) -> None:
    low, high = values.factor_lower, values.factor_upper
    if not 0.0 <= low <= high or high <= 0.0:
        raise ConfigError(
            "method.factor_lower and method.factor_upper (CrossDenoise's α ≤ β, β > 0) must "
            f"satisfy 0 <= α <= β, got α={low}, β={high}"
        )


CROSSDENOISE = MethodCard(
    "crossdenoise",
    "CrossDenoise",
    # α in [0, 1] and β in [1, 2] can never cross in the tuner (α ≤ β is required); the
    # authors' settings with β < 1 (e.g. (0.14, 0.4)) need --space.
    fields={
        "factor_lower": Field(
            0.0,
            "CrossDenoise: α, reliability of the highest-loss user/item",
            space=Float(0.0, 1.0),
        ),
        "factor_upper": Field(
            1.0,
            "CrossDenoise: β, reliability of the lowest-loss user/item",
            space=Float(1.0, 2.0),
        ),
    },
    checks=(_check_reliability_factors,),
    preset_base="normal",
)
DPI = MethodCard(
    "dpi",
    "DPI",
    fields={**DENOISING_FIELDS, **AUX_MODEL, **NOISE_MODEL},
    checks=(_check_denoising_weights,),
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
        ("synthetic", "*"): {"c1": 10.0, "c2": 10.0, "alpha": 0.0},
    },
)
DVAE = MethodCard(
    "dvae",
    "DVAE",
    fields={
        **DENOISING_FIELDS,
        **NOISE_MODEL,
        "prior_init": Field(
            "seed",
            "DVAE f': 'seed' = own seed s1 (paper); 'copy' = f's init",
            check=OneOf(PRIOR_INITS),
        ),
        "prior_seed_offset": Field(10_007, "s1 = seed + offset"),
        "prior_epochs": Field(0, "epochs of f' pretraining; 0 = train.num_epochs"),
        "prior_l2": Field(-1.0, "λ0 of f' pretraining; < 0 = train.l2"),
        "prior_cache_dir": Field("", "'' = $DPREC_CACHE_DIR or ~/.cache/dprec/priors"),
    },
    checks=(_check_denoising_weights,),
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
        ("synthetic", "*"): {"c1": 10.0, "c2": 10.0, "alpha": 1.0},
    },
    complete_config=_dvae_prior_config,
)

# ---------------------------------------------------------------------------------------------
# Ranking, debiasing and per-user denoising methods (docs/methods/objectives.md). Each keeps the
# model's normal-training λ0 and epochs, like the other baselines.

# One field for SL's temperature, BSL's over the negatives (τ2, SL's τ) and PLD's resampling
# temperature: the config has one `method.temperature`, read by whichever of them runs.
TEMPERATURE = Field(
    0.1,
    "τ: SL's and BSL's softmax temperature over the negatives; PLD's resampling temperature",
    check=Range(low=0.0, low_open=True, symbol="τ"),
    space=Float(0.02, 1.0, log=True),
)
# A softmax over one negative is a logistic loss: SL and BSL draw 64 negatives per positive on
# every dataset and model (dprec's choice; the literature uses tens to thousands).
SOFTMAX_NEGATIVES = {("*", "*"): {"num_negatives": 64}}


def _positive(symbol: str) -> Range:
    return Range(low=0.0, low_open=True, symbol=symbol)


BPR = MethodCard("bpr", "BPR", preset_base="normal")
SOFTMAX = MethodCard(
    "softmax",
    "SL",
    fields={"temperature": TEMPERATURE},
    preset_base="normal",
    presets={
        **SOFTMAX_NEGATIVES,
        # The defaults matrix: at normal training's λ0 = 1e-3, SL on ML-100k GMF peaks at epoch
        # 25 and ends its 40 epochs at 0.82 × the selected test R@20; λ0 = 1e-2 keeps its peak
        # (best epoch 35) and ends at 0.96 × it (docs/methods/softmax.md).
        ("ml-100k", "*"): {"num_negatives": 64, "l2": 0.01},
    },
)
BSL = MethodCard(
    "bsl",
    "BSL",
    fields={
        "temperature": TEMPERATURE,
        "positive_temperature": Field(
            0.1,
            "BSL: τ1, the temperature over a user's positives in the batch (→ ∞: SL)",
            check=_positive("BSL's τ1"),
            space=Float(0.02, 2.0, log=True),
        ),
    },
    preset_base="normal",
    presets=SOFTMAX_NEGATIVES,
)
PDA = MethodCard(
    "pda",
    "PD",
    fields={
        "popularity_power": Field(
            0.1,
            "PDA: γ, training scores ELU'(f)·m^γ with m the item's min-max training popularity",
            check=Range(low=0.0, symbol="γ"),
            space=Float(0.0, 0.3),
        )
    },
    preset_base="normal",
)
RELMF = MethodCard(
    "relmf",
    "Rel-MF",
    fields={
        "propensity_power": Field(
            0.5,
            "Rel-MF: η, the item propensity θ_i = (n_i / max_j n_j)^η",
            check=Range(low=0.0, symbol="η"),
            space=Float(0.1, 1.0),
        ),
        "propensity_floor": Field(
            0.1,
            "Rel-MF: c, the lower clip of θ (bounds the inverse weight at 1/c)",
            check=Range(0.0, 1.0, low_open=True, symbol="c"),
            space=Float(0.01, 0.5, log=True),
        ),
    },
    preset_base="normal",
)
UDT = MethodCard(
    "udt",
    "UDT",
    # The authors' GMF/NeuMF settings (temp1, temp2, userfact1, userfact2).
    fields={
        "temperature_low_loss": Field(
            0.2,
            "UDT: τ_u of the user with the lowest mean loss (linear in rank to the highest's)",
            check=_positive("UDT's τ"),
            space=Float(0.05, 1.0, log=True),
        ),
        "temperature_high_loss": Field(
            0.5,
            "UDT: τ_u of the user with the highest mean loss",
            check=_positive("UDT's τ"),
            space=Float(0.05, 1.0, log=True),
        ),
        "factor_low_loss": Field(
            0.5,
            "UDT: a_u, the mean weight of the lowest-loss user's rows",
            check=Range(low=0.0, symbol="UDT's a"),
            space=Float(0.0, 1.0),
        ),
        "factor_high_loss": Field(
            0.0,
            "UDT: a_u of the highest-loss user's rows",
            check=Range(low=0.0, symbol="UDT's a"),
            space=Float(0.0, 1.0),
        ),
    },
    preset_base="normal",
)
PLD = MethodCard(
    "pld",
    "PLD",
    fields={
        "pool_size": Field(
            5,
            "PLD: k, the user's candidate positives each row resamples its positive from",
            check=PositiveInt(),
            space=Choice((2, 3, 5, 10)),
        ),
        "temperature": TEMPERATURE,
    },
    preset_base="normal",
)

# The built-in methods, in the registry's order: the order of `--help`, the reports and the
# tuner (methods registered at run time follow them).
CARDS: dict[str, MethodCard] = {
    card.name: card
    for card in (
        *(NORMAL, WBPR, TCE, RCE, DCF, CROSSDENOISE, DPI, DVAE),
        *(BPR, SOFTMAX, BSL, PDA, RELMF, UDT, PLD),
    )
}
METHOD_NAMES = tuple(CARDS)
