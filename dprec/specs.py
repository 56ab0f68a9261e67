"""Frozen specs: what a run is, as small dataclasses (made from the config at one boundary,
`run_config.run_spec_from_config`).

Nothing below `train.train_and_evaluate` receives a `ConfigDict`: every library function takes
these small dataclasses (or plain values), so it can be called from a notebook without flags.
This module imports nothing of the library but `errors`: the registries (models, methods)
check their own names.
"""

from __future__ import annotations

import dataclasses
from typing import Any

SPLIT_KINDS = ("column", "random", "chrono")
DATA_FORMATS = ("table", "denoisingrec")
CLEAN_RULES = ("rating", "dwell", "flag", "none")
VALID_SETS = ("clean", "noisy")
SELECTIONS = ("metric", "loss", "trimmed_loss")  # EvalSpec.selection
TRAIN_TRUTHS = ("all", "clean")  # DataSpec.train_truth


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
    # all: train on every training row; clean: the oracle, which keeps only the training rows
    # whose truth column is 1 (planted data), with the same split, validation and test sets.
    train_truth: str = "all"
    synthetic: SyntheticSpec = SyntheticSpec()


PROPAGATION_DTYPES = ("float32", "bfloat16")  # ModelSpec.propagation_dtype


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A target (or auxiliary) model: registry name and sizes."""

    name: str = "gmf"  # a name of dprec.models.MODEL_NAMES
    embed_dim: int = 32  # embedding size (GMF part of NeuMF; CDAE hidden size)
    init_std: float = 0.01  # embeddings ~ N(0, init_std²)
    mlp_embed_dim: int = 128  # NeuMF: MLP tower embeddings
    mlp_layers: tuple[int, ...] = (128, 64, 32)  # NeuMF: tower widths after the 256 input
    corruption: float = 0.5  # CDAE: input dropout rate in training
    num_layers: int = 3  # LightGCN: propagation layers
    # LightGCN: precision of the rows gathered in propagation, "float32" | "bfloat16" (sums
    # and outputs stay float32; bfloat16 halves the bytes read per edge, not exact)
    propagation_dtype: str = "float32"


@dataclasses.dataclass(frozen=True)
class TrainSpec:
    """Optimisation and batching."""

    num_epochs: int = 40
    batch_size: int = 2048
    num_negatives: int = 1
    learning_rate: float = 1e-3
    l2: float = 1e-3  # λ0, the weight of the L2 term; its rule is `l2_rule`
    # batch: λ0 · ½ · the squared norm of the parameters each example of the batch reads (its
    # user and item rows, the shared weights), reduced like the data term (positive mean +
    # negative mean), so λ0 means the same on every dataset; paper: λ0 · ½ · ‖θ_f‖² / n_users
    # on every parameter every step (the authors' code: its strength grows with the rows per
    # user, kept for the paper's presets).
    l2_rule: str = "batch"
    # dense: Adam and the L2 term on every parameter every step (the paper); lazy (scale
    # mode): for MF/GMF/NeuMF roles, the L2 term and Adam on the user/item rows a batch
    # touches only (dprec.lazy_rows); other rows keep their values and moments.
    updates: str = "dense"
    # Epochs between checkpoints of a run with a workdir (and always after the last); 0 = by
    # time, so that saving costs at most about a tenth of the run.
    checkpoint_every: int = 0
    shard_tables: bool = False  # split user/item tables (and Adam moments) by rows over devices
    # Stop a run once the collapse guard is sure it collapsed (dprec.evaluation.health); by
    # default the guard only reports it (results.json "health", one line at the end).
    stop_on_collapse: bool = False


UPDATE_MODES = ("dense", "lazy")
L2_RULES = ("batch", "paper")
DENOISING_MODES = ("alternate", "dp", "dn")
PRIOR_INITS = ("seed", "copy")


# () -> {field: its declaration (with a `default`)} of every registered method: set by
# `dprec.methods` when it is imported (`use_method_fields`), so that this ground-floor module
# never imports the registry that builds on it.
_method_fields: Any = None


def use_method_fields(source: Any) -> None:
    """Name the function that lists the methods' fields (`dprec.methods.method_fields`)."""
    global _method_fields
    _method_fields = source


@dataclasses.dataclass(frozen=True, init=False)
class MethodSpec:
    """The training method and the values of the method fields, read as attributes
    (`spec.method.drop_rate`, `spec.method.aux`).

    Each method's card declares the fields it reads, with their defaults, ranges and tune
    spaces (`dprec.methods.cards`, `dprec.methods.register`); a spec holds the value of every
    registered method's field, unset ones at their default, so that one spec serves any method
    (`dataclasses.replace(spec, name="normal")`). `MethodSpec(name="dpi", c1=10.0)` and
    `dataclasses.replace(spec, c1=10.0)` set fields by keyword; an unknown one is a TypeError.
    """

    name: str = "normal"  # a name of dprec.methods.method_names()
    values: tuple[tuple[str, Any], ...] = ()  # (field, value) of every registered field

    def __init__(self, name: str = "normal", values: Any = (), **fields: Any) -> None:
        if _method_fields is None:  # the registry has not been imported yet
            raise RuntimeError("import dprec.methods before making a MethodSpec")
        declared = _method_fields()
        merged = {key: field.default for key, field in declared.items()}
        for key, value in (*dict(values).items(), *fields.items()):
            if key not in declared:
                raise TypeError(
                    f"MethodSpec has no field {key!r}; the methods' fields are "
                    f"{', '.join(declared)}"
                )
            merged[key] = value
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "values", tuple(merged.items()))

    def __getattr__(self, field: str) -> Any:
        # Called only for names that are not attributes: `name`, `values` and the methods
        # are found first. `vars`: copy and pickle probe dunders before `values` is set.
        if not field.startswith("__"):
            for key, value in vars(self).get("values", ()):
                if key == field:
                    return value
        raise AttributeError(f"MethodSpec has no field {field!r}")

    def __repr__(self) -> str:
        shown = ", ".join(f"{key}={value!r}" for key, value in self.values)
        return f"MethodSpec(name={self.name!r}, {shown})"

    def to_dict(self) -> dict[str, Any]:
        """{"name": ..., field: value, ...}, spec values (e.g. `aux`) as dicts: the config's
        `method` section."""
        return {
            "name": self.name,
            **{
                key: dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value
                for key, value in self.values
            },
        }


@dataclasses.dataclass(frozen=True)
class EvalSpec:
    """Full-ranking evaluation."""

    ks: tuple[int, ...] = (5, 20)
    chunk_size: int = 1024  # users scored at once: bounds memory at chunk_size × n_items
    select_metric: str = ""  # validation metric that picks the best epoch; '' = recall@max(ks)
    valid_set: str = "clean"  # clean | noisy validation interactions
    test_every_epoch: bool = False  # also log the clean test (paper view) each epoch (Figure 3)
    # What picks the best epoch: metric (the highest `select_metric`), loss (the lowest
    # validation BCE on the validation positives and fixed sampled negatives) or trimmed_loss
    # (the same without the `trim_rate` share of highest-loss positives: the RecSys'25
    # re-evaluation's ERM_RE). Both losses are logged every epoch whatever this is.
    selection: str = "metric"
    trim_rate: float = 0.2  # trimmed_loss: share of the validation positives dropped, in [0, 1)
    # Reference recommenders fitted once per run, tuned on validation, tested beside the model
    # (`dprec.references`, rows `{name}_paper` / `{name}_warm`); () = none. Popularity's rows
    # are part of the results contract and computed whatever this lists.
    references: tuple[str, ...] = ("popularity", "itemknn", "rp3beta", "ease", "ials")

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
