"""The RecSys'25 re-evaluation's ML-100k protocol as dprec settings, without JAX.

*Are We Really Making Recommendations Robust? Revisiting Model Evaluation for Denoising
Recommendation* (RecSys 2025 reproducibility track; code, configs and per-epoch logs in GitHub
`bachml/EvalDenoisingRec`, commit a36a902) trains ERM, ERM_RE, T-CE, R-CE, UDT, DCF, DeCA and
DeCA(p) with fixed hyper-parameters on its own ML-100k split and reports each run at the epoch
with the smallest noisy-validation loss. `settings(model, cell)` is that protocol for one
(model, cell) as `{dotted config key: value}`; `dprec/config/templates/recsys25.py` applies it
on top of the `dataset=table` preset. Every value names the file of that repository it comes
from ("their" = the re-evaluation's code):

- `code/main.py` and `code/loss.py`: ERM, ERM_RE, T-CE, R-CE, UDT and DCF on GMF and NeuMF;
- `code/experiments_config/ml100k/{GMF,NeuMF}-*.yaml`: their per-method hyper-parameters;
- `code/DeCA/{main,train,configs}.py`: DeCA (dprec's DPI) and DeCA(p) (dprec's DVAE);
- `results/metric_records.zip`: the per-epoch logs (50 epochs of GMF and NeuMF, each tested);
- `results/process_metrics.py`: the selection rule (min `eval_loss`, DeCA's `epoch_loss`).

Where a value is a mapping, not a copy: their batch of 1,024 (2,048 for UDT) *examples* mixes
the positives with one sampled negative each, so it holds 512 (1,024) positives, which is
dprec's `train.batch_size` (positives per batch, each with its negatives): the same steps per
epoch, so T-CE's 30,000 and DCF's 3,500 ramp iterations are dprec steps. DeCA's loader yields
2,048 positives and draws their negatives inside the step: `train.batch_size` 2,048. Their
R-CE α is dprec's β (both: BCE · σ(±y)^exponent, detached). Their DCF at `time_step: 1` resets
its loss history every epoch and `co_lambda: 0` zeroes the bound, so it ranks by the current
loss: `method.dcf_window` 1, `method.co_lambda` 0. Only GMF and NeuMF are covered: their
LightGCN and CDAE runs use other code paths (`code/CDAE/`, LightGCN tested every 10th epoch)
that this preset does not reproduce.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dprec.errors import ConfigError

MODELS = ("gmf", "neumf")
# The cells, in the re-evaluation's table order: ERM_RE is normal training whose epoch is
# picked by the trimmed validation loss; DeCA is dprec's DPI, DeCA(p) dprec's DVAE.
CELLS = ("erm", "erm_re", "tce", "rce", "udt", "dcf", "dpi", "dvae")
LABELS = {
    "erm": "ERM",
    "erm_re": "ERM_RE",
    "tce": "T-CE",
    "rce": "R-CE",
    "udt": "UDT",
    "dcf": "DCF",
    "dpi": "DeCA (DPI)",
    "dvae": "DeCA(p) (DVAE)",
}
# The cell → the dprec method that trains it.
DPREC_METHODS = {
    "erm": "normal",
    "erm_re": "normal",
    "tce": "tce",
    "rce": "rce",
    "udt": "udt",
    "dcf": "dcf",
    "dpi": "dpi",
    "dvae": "dvae",
}
# Names of their log folders in results/metric_records.zip: metric_records/ml100k/
# {MODEL}-ml100k-{METHOD}-{SEED}/*.csv (ERM_RE's logs are "ERMrevised", DeCA(p)'s "DeCAp").
THEIR_MODELS = {"gmf": "GMF", "neumf": "NeuMF"}
THEIR_METHODS = {
    "erm": "ERM",
    "erm_re": "ERMrevised",
    "tce": "TCE",
    "rce": "RCE",
    "udt": "UDT",
    "dcf": "DCF",
    "dpi": "DeCA",
    "dvae": "DeCAp",
}
THEIR_SEEDS = (2023, 2024, 2025)  # the seed suffixes of their log folders
# The split (../shared/data README, section 5): their data/ml100k/ files, byte for byte.
DATA_FOLDER = "ml-100k-evaldenoisingrec"
DATA_PREFIX = "ml100k"

# Every cell: the data as dprec reads their split, and their evaluation and selection.
COMMON: dict[str, Any] = {
    # Their DenoisingRec layout: ml100k.{train.rating,valid.rating,test.negative}, already
    # split; the third column is the rating, and test.negative holds the rating-5 (clean) rows.
    "data.name": "table",
    "data.format": "denoisingrec",
    "data.split": "column",
    "data.clean_rule": "rating",
    "data.clean_threshold": 5.0,
    # process_metrics.py reports Recall@20 and NDCG@20 (and @5) of the logs.
    "eval.ks": (5, 20),
    # process_metrics.py: the epoch with the smallest eval_loss, computed in main.py's eval()
    # on every validation interaction (valid.rating, no rating filter) with sampled negatives.
    "eval.selection": "loss",
    "eval.valid_set": "noisy",
    # main.py test_per_epoch: GMF and NeuMF test every epoch, and the table reads those tests.
    "eval.test_every_epoch": True,
    # Not part of their protocol (dprec's reference recommenders).
    "eval.references": (),
    # YAML lr: 0.001, factor_num: 32, num_ng: 1 (every ml100k GMF/NeuMF file; DeCA/main.py's
    # defaults lr 0.001, factor_num 32, NSR 1).
    "train.learning_rate": 1e-3,
    "train.num_negatives": 1,
    "model.embed_dim": 32,
}

# The NCF baselines of code/main.py: Adam without weight_decay and no L2 term in loss.py, so
# λ0 = 0; 50 epochs (their GMF/NeuMF logs hold epochs 0..49); batch_size 1024 examples
# (YAML) = 512 positives + their 512 negatives.
_BASELINE: dict[str, Any] = {
    "train.num_epochs": 50,
    "train.batch_size": 512,
    "train.l2": 0.0,
}
_BASELINE_CELLS: dict[str, dict[str, Any]] = {
    "erm": {},
    # main.py eval_RevistingEvaluation: the validation BCE over the int(0.8·P) lowest-loss
    # validation positives and every negative (the 20 % highest-loss positives dropped).
    "erm_re": {"eval.selection": "trimmed_loss", "eval.trim_rate": 0.2},
    # YAML {GMF,NeuMF}-TCE: drop_rate 0.2, num_gradual 30000, exponent 1 (loss.py
    # drop_rate_schedule: linear to drop_rate over num_gradual iterations).
    "tce": {"method.drop_rate": 0.2, "method.num_gradual": 30_000},
    # YAML {GMF,NeuMF}-RCE: RCE_alpha 0.25, the exponent of loss.py loss_function_RCE's weight
    # σ(y)^α·t + (1 − σ(y))^α·(1 − t), detached: dprec's R-CE β.
    "rce": {"method.beta": 0.25},
    # YAML {GMF,NeuMF}-UDT: batch_size 2048 (examples: 1024 positives), temp1 0.2, temp2 0.5,
    # userfact1 0.5, userfact2 0.0 (main.py: linspace(temp1, temp2) and
    # linspace(userfact1, userfact2) over the users sorted from lowest to highest mean loss).
    "udt": {
        "train.batch_size": 1024,
        "method.temperature_low_loss": 0.2,
        "method.temperature_high_loss": 0.5,
        "method.factor_low_loss": 0.5,
        "method.factor_high_loss": 0.0,
    },
    # YAML {GMF,NeuMF}-DCF: drop_rate 0.2, num_gradual 3500, relabel_ratio 0.05, co_lambda 0,
    # time_step 1 (main.py resets before_loss every epoch: the rank is the current loss, a
    # window of one visit), exponent 1.
    "dcf": {
        "method.drop_rate": 0.2,
        "method.num_gradual": 3_500,
        "method.relabel_ratio": 0.05,
        "method.co_lambda": 0.0,
        "method.dcf_window": 1,
    },
}

# DeCA/configs.py DeCA_configs and DeCAp_configs, ("GMF" | "NeuMF", "ml100k"):
# (C_1, C_2, alpha, lambda0, epochs); iterative True (DP and DN alternate every batch).
_DECA_ROWS: dict[tuple[str, str], tuple[float, float, float, float, int]] = {
    ("gmf", "dpi"): (1000.0, 1000.0, 1.0, 0.1, 50),
    ("neumf", "dpi"): (1000.0, 10.0, 1.0, 0.01, 50),
    ("gmf", "dvae"): (1000.0, 1000.0, 1.0, 0.1, 50),
    ("neumf", "dvae"): (100.0, 10.0, 1.0, 0.0, 50),
}


def _deca_cell(model: str, cell: str) -> dict[str, Any]:
    c1, c2, alpha, l2, epochs = _DECA_ROWS[(model, cell)]
    values: dict[str, Any] = {
        "method.c1": c1,
        "method.c2": c2,
        # train.py KL_loss: KL(aux ‖ f)·alpha + KL(f ‖ aux)·(1 − alpha), dprec's convention.
        "method.alpha": alpha,
        "method.mode": "alternate",
        "train.l2": l2,
        # train.py RS_train: λ0·½·Σ‖θ‖²/user_num on the target's parameters every step.
        "train.l2_rule": "paper",
        "train.num_epochs": epochs,
        # DeCA/main.py: batch_size 2048 positives (configs.py sets none, so the default holds).
        "train.batch_size": 2048,
    }
    if cell == "dvae":
        # train.py: the prior is copy.deepcopy(model) (f's initial weights), pretrained by
        # RS_train(variational=0) with the same lambda0 and epochs before DeCA(p) trains.
        values.update(
            {
                "method.prior_init": "copy",
                "method.prior_epochs": epochs,
                "method.prior_l2": l2,
            }
        )
    return values


def check_choice(model: str, cell: str) -> None:
    """A one-line `ConfigError` unless `model` is one of `MODELS` and `cell` one of `CELLS`."""
    if model not in MODELS:
        raise ConfigError(f"recsys25: unknown model {model!r}; choose one of {', '.join(MODELS)}")
    if cell not in CELLS:
        raise ConfigError(f"recsys25: unknown method {cell!r}; choose one of {', '.join(CELLS)}")


def settings(model: str, cell: str) -> dict[str, Any]:
    """{dotted config key: value} of the (model, cell): `COMMON`, then the cell's own values
    (the data path is the template's: it depends on where the data lives)."""
    check_choice(model, cell)
    own = (
        _deca_cell(model, cell)
        if cell in ("dpi", "dvae")
        else {**_BASELINE, **_BASELINE_CELLS[cell]}
    )
    return {**COMMON, **own}


def parse_choice(arg: str | None) -> tuple[str, str]:
    """'model=gmf,method=tce' → ('gmf', 'tce'); defaults gmf and erm; 'normal' means 'erm'."""
    choice = {"model": "gmf", "method": "erm"}
    for part in filter(None, (arg or "").split(",")):
        key, sep, value = part.partition("=")
        if not sep or key.strip() not in choice:
            raise ConfigError(
                f"bad config argument {part!r}; use configs/recsys25.py:model=gmf|neumf,"
                f"method={'|'.join(CELLS)}"
            )
        choice[key.strip()] = value.strip()
    cell = "erm" if choice["method"] == "normal" else choice["method"]
    check_choice(choice["model"], cell)
    return choice["model"], cell


def data_path(root: Path) -> str:
    """`data.path` of their split under the data folder `root` (the files' common prefix)."""
    return str(Path(root) / DATA_FOLDER / DATA_PREFIX)


def set_dotted(config: Any, values: Mapping[str, Any]) -> None:
    """Set each `section.key` (or `section.sub.key`) of `values` on the ConfigDict `config`."""
    for dotted, value in values.items():
        *path, key = dotted.split(".")
        section = config
        for name in path:
            section = section[name]
        section[key] = value
