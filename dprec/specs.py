"""Frozen specs made from the config at one boundary (`run_spec_from_config`).

Nothing below `train.train_and_evaluate` receives a `ConfigDict`: every library function takes
these small dataclasses (or plain values), so it can be called from a notebook without flags.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from dprec.errors import ConfigError

SPLIT_KINDS = ("column", "random", "chrono")
DATA_FORMATS = ("table", "denoisingrec")
CLEAN_RULES = ("rating", "dwell", "flag", "none")
VALID_SETS = ("clean", "noisy")


@dataclasses.dataclass(frozen=True)
class ColumnSpec:
    """Column names of an interaction table; '' marks a column the table does not have."""

    user: str = "user_id"
    item: str = "item_id"
    rating: str = ""
    dwell: str = ""
    timestamp: str = ""
    split: str = ""
    clean: str = ""
    truth: str = ""  # per-interaction ground truth (1 = truly clean), synthetic data only


@dataclasses.dataclass(frozen=True)
class SyntheticSpec:
    """Sizes and noise rates of the synthetic corrupted-feedback generator."""

    n_users: int = 3000
    n_items: int = 400
    dim: int = 8  # latent dimension of the true preferences
    liked_fraction: float = 0.04  # share of items each user truly likes
    exposure: float = 0.55  # P(a liked item is observed); the rest are noisy negatives
    noisy_positive_rate: float = 2.0  # noisy clicks per observed true positive, on average
    popularity_exponent: float = 0.0  # Zipf exponent of noisy clicks' popularity; 0 = uniform
    seed: int = 0
    # > 0 selects the scalable generator (`synthetic.generate_at_scale`): this many interactions
    # in all (before the split), power-law user degrees with that mean, Zipf item popularity
    # (`popularity_exponent`) and true preferences within one of `n_clusters` item clusters.
    n_interactions: int = 0
    n_clusters: int = 50


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """Where the interactions come from and how they become train/valid/test sets."""

    name: str = "synthetic"  # see dprec.data.registry.DATASET_NAMES
    path: str = ""  # '' = the preset's default location
    format: str = "table"  # table (one CSV/TSV/Parquet file) | denoisingrec (NAME.train.rating…)
    # > 0: ids are already indices 0..n-1 of the full dataset and are kept (the held-out files
    # of Adressa and Electronics); 0: the ids present in the data, remapped in sorted order.
    n_users: int = 0
    n_items: int = 0
    columns: ColumnSpec = ColumnSpec()
    split: str = "random"  # column | random | chrono
    split_ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
    split_seed: int = 0
    # The split column's names of train, valid and test, and optionally a fourth: rows that
    # belong to the clean test set only (DenoisingRec's test.negative beside test.noisy).
    split_names: tuple[str, ...] = ("train", "valid", "test")
    clean_rule: str = "rating"  # rating | dwell | flag | none
    clean_threshold: float = 5.0  # rating >= threshold, or dwell > threshold
    # Rows with a blank or NaN user/item id are dropped (and counted in the data summary); a
    # larger share than this is an error, since it usually means a wrong column or separator.
    max_dropped_fraction: float = 0.01
    synthetic: SyntheticSpec = SyntheticSpec()


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A target (or auxiliary) model: registry name and sizes."""

    name: str = "gmf"  # mf | gmf | neumf | cdae | lightgcn
    embed_dim: int = 32  # embedding size (GMF part of NeuMF; CDAE hidden size)
    init_std: float = 0.01  # embeddings ~ N(0, init_std²)
    mlp_embed_dim: int = 128  # NeuMF: MLP tower embeddings
    mlp_layers: tuple[int, ...] = (128, 64, 32)  # NeuMF: tower widths after the 256 input
    corruption: float = 0.5  # CDAE: input dropout rate in training
    num_layers: int = 3  # LightGCN: propagation layers


@dataclasses.dataclass(frozen=True)
class TrainSpec:
    """Optimisation and batching."""

    num_epochs: int = 40
    batch_size: int = 2048
    num_negatives: int = 1
    learning_rate: float = 1e-3
    l2: float = 0.1  # λ0: loss += λ0 · ½ · ‖θ_f‖² / n_users, every step
    # dense: Adam and the L2 term on every parameter every step (the paper); lazy (scale
    # mode): for MF/GMF/NeuMF roles, the L2 term and Adam on the user/item rows a batch
    # touches only (dprec.lazy_rows); other rows keep their values and moments.
    updates: str = "dense"
    # Epochs between checkpoints of a run with a workdir (and always after the last); 0 = by
    # time, so that saving costs at most about a tenth of the run.
    checkpoint_every: int = 0


UPDATE_MODES = ("dense", "lazy")
METHOD_NAMES = ("normal", "wbpr", "tce", "rce", "dpi", "dvae")
DENOISING_MODES = ("alternate", "dp", "dn")
PRIOR_INITS = ("seed", "copy")


@dataclasses.dataclass(frozen=True)
class MethodSpec:
    """The training objective and, for DPI/DVAE, its extra roles and hyper-parameters."""

    name: str = "normal"  # normal | wbpr | tce | rce | dpi | dvae
    c1: float = 1000.0  # C1, weight of f on sampled negatives in DP (eq. 15)
    c2: float = 10.0  # C2, weight of 1 − f on interacted pairs in DN (eq. 16)
    alpha: float = 0.5  # α, mixes KL(ref ‖ f) (weight α) and KL(f ‖ ref) (weight 1 − α)
    mode: str = "alternate"  # alternate DP/DN every step (DP on even steps) | dp | dn only
    aux: ModelSpec = ModelSpec(name="mf")  # g of DPI
    noise: ModelSpec = ModelSpec(name="mf")  # h (DP) and h' (DN), one architecture for both
    prior_init: str = "seed"  # DVAE f': 'seed' = own seed s1 (paper); 'copy' = f's init
    prior_seed_offset: int = 10_007  # s1 = seed + offset
    prior_epochs: int = 0  # epochs of f' pretraining; 0 = train.num_epochs
    prior_l2: float = -1.0  # λ0 of f' pretraining; < 0 = train.l2
    prior_cache_dir: str = ""  # '' = $DPREC_CACHE_DIR or ~/.cache/dprec/priors
    popularity_exponent: float = 1.0  # WBPR: negatives ∝ training popularity ** exponent
    drop_rate: float = 0.2  # T-CE: ε_max, the final share of the batch dropped
    num_gradual: int = 30_000  # T-CE: steps until the drop rate reaches ε_max
    beta: float = 0.1  # R-CE: weight exponent β

    @property
    def is_denoising(self) -> bool:
        return self.name in ("dpi", "dvae")


@dataclasses.dataclass(frozen=True)
class EvalSpec:
    """Full-ranking evaluation."""

    ks: tuple[int, ...] = (5, 20)
    chunk_size: int = 1024  # users scored at once: bounds memory at chunk_size × n_items
    select_metric: str = ""  # validation metric that picks the best epoch; '' = recall@max(ks)
    valid_set: str = "clean"  # clean | noisy validation interactions
    test_every_epoch: bool = False  # also log the clean test (paper view) each epoch (Figure 3)

    @property
    def selection_metric(self) -> str:
        return self.select_metric or f"recall@{max(self.ks)}"


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """Everything one run needs."""

    seed: int
    data: DataSpec
    model: ModelSpec
    method: MethodSpec
    train: TrainSpec
    eval: EvalSpec


def _section(config: Any, name: str) -> Mapping[str, Any]:
    section = config.get(name) if hasattr(config, "get") else None
    if section is None:
        return {}
    return section.to_dict() if hasattr(section, "to_dict") else dict(section)


def _build(cls: type, values: Mapping[str, Any], where: str) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown config field {where}.{unknown[0]}; valid fields: {', '.join(sorted(fields))}"
        )
    kwargs = {}
    for key, value in values.items():
        default = getattr(cls(), key)
        if isinstance(default, tuple) and isinstance(value, (list, tuple)):
            value = tuple(value)
        if isinstance(default, float) or (
            isinstance(default, tuple) and default and isinstance(default[0], float)
        ):
            _check_finite(value, f"{where}.{key}")
        kwargs[key] = value
    return cls(**kwargs)


def _check_finite(value: Any, name: str) -> None:
    """A float field (or tuple of floats) must hold finite numbers: NaN passes every `x <= 0`
    check and then trains to a NaN loss."""
    for number in value if isinstance(value, tuple) else (value,):
        if (
            isinstance(number, bool)
            or not isinstance(number, (int, float))
            or not math.isfinite(number)
        ):
            raise ConfigError(
                f"{name} must be a finite number, got {number!r}; set --config.{name}=VALUE"
            )


def _positive_int(value: Any, name: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}; set --config.{name}")


def _one_of(value: str, choices: tuple[str, ...], name: str) -> None:
    if value not in choices:
        raise ConfigError(
            f"{name}={value!r} is not one of {', '.join(choices)}; set --config.{name}"
        )


def run_spec_from_config(config: Any, *, model_names: tuple[str, ...] | None = None) -> RunSpec:
    """Unpack and validate a config (ConfigDict or nested mapping) into a `RunSpec`.

    `model_names`: the valid model names (default: the model registry's, which imports JAX).

    Raises:
      ConfigError: a value is missing, unknown or out of range; the message names the field.
    """
    data_values = dict(_section(config, "data"))
    columns = _build(ColumnSpec, data_values.pop("columns", {}), "data.columns")
    synthetic = _build(SyntheticSpec, data_values.pop("synthetic", {}), "data.synthetic")
    data = dataclasses.replace(
        _build(DataSpec, data_values, "data"), columns=columns, synthetic=synthetic
    )
    spec = RunSpec(
        seed=int(config.get("seed", 0)),
        data=data,
        model=_build(ModelSpec, _section(config, "model"), "model"),
        method=_method_spec(_section(config, "method")),
        train=_build(TrainSpec, _section(config, "train"), "train"),
        eval=_build(EvalSpec, _section(config, "eval"), "eval"),
    )
    validate_run_spec(spec, model_names)
    return spec


def _method_spec(values: Mapping[str, Any]) -> MethodSpec:
    values = dict(values)
    aux = _build(ModelSpec, values.pop("aux", {"name": "mf"}), "method.aux")
    noise = _build(ModelSpec, values.pop("noise", {"name": "mf"}), "method.noise")
    return dataclasses.replace(_build(MethodSpec, values, "method"), aux=aux, noise=noise)


def validate_run_spec(spec: RunSpec, model_names: tuple[str, ...] | None = None) -> None:
    """Check ranges and choices that do not depend on the data."""
    if model_names is None:
        from dprec.models import MODEL_NAMES  # local import: models import jax, specs must not

        model_names = MODEL_NAMES
    MODEL_NAMES = model_names  # noqa: N806

    _one_of(spec.data.split, SPLIT_KINDS, "data.split")
    _one_of(spec.data.format, DATA_FORMATS, "data.format")
    if len(spec.data.split_names) not in (3, 4):
        raise ConfigError(
            "data.split_names must name train, valid, test (and optionally a clean-test-only "
            f"part), got {list(spec.data.split_names)}"
        )
    for field in ("n_users", "n_items"):
        value = getattr(spec.data, field)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ConfigError(f"data.{field} must be an integer >= 0 (0 = from the data)")
    _one_of(spec.data.clean_rule, CLEAN_RULES, "data.clean_rule")
    if not 0.0 <= spec.data.max_dropped_fraction <= 1.0:
        raise ConfigError(
            f"data.max_dropped_fraction must be in [0, 1], got {spec.data.max_dropped_fraction}"
        )
    _one_of(spec.eval.valid_set, VALID_SETS, "eval.valid_set")
    _one_of(spec.train.updates, UPDATE_MODES, "train.updates")
    _one_of(spec.model.name, MODEL_NAMES, "model.name")
    _one_of(spec.method.name, METHOD_NAMES, "method.name")
    _one_of(spec.method.mode, DENOISING_MODES, "method.mode")
    _one_of(spec.method.prior_init, PRIOR_INITS, "method.prior_init")
    _one_of(spec.method.aux.name, MODEL_NAMES, "method.aux.name")
    _one_of(spec.method.noise.name, MODEL_NAMES, "method.noise.name")
    if not 0.0 <= spec.method.alpha <= 1.0:
        raise ConfigError(f"method.alpha (α) must be in [0, 1], got {spec.method.alpha}")
    if not 0.0 <= spec.method.drop_rate < 0.5:
        raise ConfigError(
            f"method.drop_rate (ε_max) must be in [0, 0.5), got {spec.method.drop_rate}"
        )
    _positive_int(spec.method.num_gradual, "method.num_gradual")
    if spec.method.c1 < 0 or spec.method.c2 < 0:
        raise ConfigError("method.c1 and method.c2 (C1, C2) must be >= 0")
    if len(spec.data.split_ratios) != 3 or any(r < 0 for r in spec.data.split_ratios):
        raise ConfigError(
            "data.split_ratios must be three non-negative numbers, e.g. (0.8, 0.1, 0.1)"
        )
    if abs(sum(spec.data.split_ratios) - 1.0) > 1e-6:
        raise ConfigError(f"data.split_ratios must sum to 1, got {spec.data.split_ratios}")
    _positive_int(spec.train.batch_size, "train.batch_size")
    _positive_int(spec.train.num_epochs, "train.num_epochs")
    _positive_int(spec.train.num_negatives, "train.num_negatives")
    every = spec.train.checkpoint_every
    if not isinstance(every, int) or isinstance(every, bool) or every < 0:
        raise ConfigError(
            f"train.checkpoint_every must be an integer >= 0 (0 = by time), got {every!r}"
        )
    _positive_int(spec.model.embed_dim, "model.embed_dim")
    _positive_int(spec.eval.chunk_size, "eval.chunk_size")
    if not spec.eval.ks:
        raise ConfigError("eval.ks is empty; give at least one cut-off, e.g. --config.eval.ks=5,20")
    for k in spec.eval.ks:
        _positive_int(k, "eval.ks")
    if spec.train.learning_rate <= 0:
        raise ConfigError(f"train.learning_rate must be > 0, got {spec.train.learning_rate}")
    if spec.train.l2 < 0:
        raise ConfigError(f"train.l2 (λ0) must be >= 0, got {spec.train.l2}")
    metric = spec.eval.selection_metric
    valid_metrics = {f"{m}@{k}" for m in ("recall", "ndcg") for k in spec.eval.ks}
    if metric not in valid_metrics:
        raise ConfigError(
            f"eval.select_metric={metric!r} is not computed; use one of {sorted(valid_metrics)}"
        )
