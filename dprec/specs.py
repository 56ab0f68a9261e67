"""Frozen specs: what a run is, as small dataclasses (made from the config at one boundary,
`run_config.run_spec_from_config`).

Nothing below `train.train_and_evaluate` receives a `ConfigDict`: every library function takes
these small dataclasses (or plain values), so it can be called from a notebook without flags.
This module imports nothing of the library but `errors`: the registries (models, methods)
check their own names.
"""

from __future__ import annotations

import dataclasses

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
    l2: float = 0.1  # λ0: loss += λ0 · ½ · ‖θ_f‖² / n_users, every step
    # dense: Adam and the L2 term on every parameter every step (the paper); lazy (scale
    # mode): for MF/GMF/NeuMF roles, the L2 term and Adam on the user/item rows a batch
    # touches only (dprec.lazy_rows); other rows keep their values and moments.
    updates: str = "dense"
    # Epochs between checkpoints of a run with a workdir (and always after the last); 0 = by
    # time, so that saving costs at most about a tenth of the run.
    checkpoint_every: int = 0
    shard_tables: bool = False  # split user/item tables (and Adam moments) by rows over devices


UPDATE_MODES = ("dense", "lazy")
DENOISING_MODES = ("alternate", "dp", "dn")
PRIOR_INITS = ("seed", "copy")


@dataclasses.dataclass(frozen=True)
class MethodSpec:
    """The training objective and, for DPI/DVAE, its extra roles and hyper-parameters."""

    name: str = "normal"  # a name of dprec.methods.METHOD_NAMES
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
    relabel_ratio: float = 0.05  # DCF: r, the share of the dropped positives relabelled
    co_lambda: float = 1e-4  # DCF: σ², the bound's variance (decays to 0 over the epochs)
    dcf_window: int = 3  # DCF: W, the last visits each positive's mean loss is taken over
    factor_lower: float = 0.0  # CrossDenoise: α, reliability of the highest-loss user/item
    factor_upper: float = 1.0  # CrossDenoise: β, reliability of the lowest-loss user/item


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
