"""The RecSys'25 protocol: the preset's documented values, and the reproduction's reading of
both sides' per-epoch logs at the epoch their rule selects."""

import json
import zipfile

import pytest

from dprec.config import recsys25
from dprec.config.run_config import run_spec_from_config
from dprec.config.templates.recsys25 import get_config
from dprec.errors import ConfigError
from dprec.sweeps import recsys25 as reproduction

# (model, cell) → values the protocol page documents, each from their code or YAML.
DOCUMENTED = {
    ("gmf", "erm"): {
        "train.learning_rate": 1e-3,
        "train.batch_size": 512,
        "train.num_negatives": 1,
        "model.embed_dim": 32,
        "train.l2": 0.0,
        "train.num_epochs": 50,
        "eval.selection": "loss",
        "eval.test_every_epoch": True,
        "method.name": "normal",
    },
    ("neumf", "erm_re"): {
        "eval.selection": "trimmed_loss",
        "eval.trim_rate": 0.2,
        "method.name": "normal",
        "model.name": "neumf",
    },
    ("gmf", "tce"): {"method.drop_rate": 0.2, "method.num_gradual": 30_000},
    ("gmf", "rce"): {"method.beta": 0.25},
    ("neumf", "udt"): {
        "train.batch_size": 1024,
        "method.temperature_low_loss": 0.2,
        "method.temperature_high_loss": 0.5,
        "method.factor_low_loss": 0.5,
        "method.factor_high_loss": 0.0,
    },
    ("gmf", "dcf"): {
        "method.drop_rate": 0.2,
        "method.num_gradual": 3_500,
        "method.relabel_ratio": 0.05,
        "method.co_lambda": 0.0,
        "method.dcf_window": 1,
    },
    ("gmf", "dpi"): {
        "method.c1": 1000.0,
        "method.c2": 1000.0,
        "method.alpha": 1.0,
        "train.l2": 0.1,
        "train.l2_rule": "paper",
        "train.batch_size": 2048,
        "method.mode": "alternate",
    },
    ("neumf", "dpi"): {"method.c1": 1000.0, "method.c2": 10.0, "train.l2": 0.01},
    ("neumf", "dvae"): {
        "method.name": "dvae",
        "method.c1": 100.0,
        "method.c2": 10.0,
        "train.l2": 0.0,
        "method.prior_init": "copy",
        "method.prior_epochs": 50,
        "method.prior_l2": 0.0,
    },
}


def _get(config, dotted):
    value = config
    for part in dotted.split("."):
        value = value[part]
    return value


@pytest.mark.parametrize(("model", "cell"), sorted(DOCUMENTED))
def test_the_preset_sets_every_documented_value(model, cell):
    config = get_config(f"model={model},method={cell}")
    for key, value in DOCUMENTED[(model, cell)].items():
        assert _get(config, key) == value, key
    assert config.data.format == "denoisingrec" and config.data.clean_threshold == 5.0
    assert config.data.path.endswith("ml-100k-evaldenoisingrec/ml100k")
    run_spec_from_config(config)  # the config boundary accepts it


def test_every_cell_of_both_models_is_a_valid_run():
    for model in recsys25.MODELS:
        for cell in recsys25.CELLS:
            spec = run_spec_from_config(get_config(f"model={model},method={cell}"))
            assert spec.method.name == recsys25.DPREC_METHODS[cell]


@pytest.mark.parametrize("arg", ["model=lightgcn", "method=deca", "seed=1"])
def test_an_unknown_choice_is_one_line(arg):
    with pytest.raises(ConfigError, match="recsys25|bad config argument"):
        get_config(arg)


def _csv(loss_column, rows):
    lines = [f"epoch,{loss_column},Recall@5,Recall@20,NDCG@5,NDCG@20"]
    lines += [f"{e},{loss},0,{recall},0,{ndcg}" for e, loss, recall, ndcg in rows]
    return "\n".join(lines) + "\n"


@pytest.fixture
def their_logs(tmp_path):
    """A zip laid out like their metric_records.zip: two ERM seeds and one DeCA seed."""
    path = tmp_path / "metric_records.zip"
    with zipfile.ZipFile(path, "w") as archive:
        base = "metric_records/ml100k"
        # Seed 2023: the smallest eval_loss at epoch 1 (R@20 .30), a tie at epoch 3 loses.
        archive.writestr(
            f"{base}/GMF-ml100k-ERM-2023/GMF-ml-100k-ERM-2023_x.csv",
            _csv(
                "eval_loss",
                [
                    (0, 0.7, 0.10, 0.05),
                    (1, 0.5, 0.30, 0.15),
                    (2, 0.6, 0.40, 0.2),
                    (3, 0.5, 0.50, 0.25),
                ],
            ),
        )
        archive.writestr(
            f"{base}/GMF-ml100k-ERM-2024/GMF-ml-100k-ERM-2024_x.csv",
            _csv("eval_loss", [(0, 0.4, 0.20, 0.10), (1, 0.5, 0.35, 0.17)]),
        )
        # DeCA logs the training loss only: selection falls back to it.
        archive.writestr(
            f"{base}/GMF-ml100k-DeCA-2023/GMF-ml100k-DeCA-2023_x.csv",
            _csv("epoch_loss", [(0, 0.69, 0.01, 0.0), (1, 0.5, 0.2, 0.1), (2, 0.45, 0.25, 0.12)]),
        )
        # Another model and macOS litter are not read.
        archive.writestr(
            f"{base}/NeuMF-ml100k-ERM-2023/x.csv", _csv("eval_loss", [(0, 0.1, 0.9, 0.9)])
        )
        archive.writestr("__MACOSX/metric_records/ml100k/GMF-ml100k-ERM-2025/._x.csv", "junk")
    return path


def test_their_logs_are_read_at_the_smallest_loss(their_logs):
    erm = reproduction.their_selected(their_logs, "gmf", "erm")
    # Their epoch 0 is the first epoch: epochs are counted from 1, as dprec counts them.
    assert [(s.seed, s.epoch, s.metrics["recall@20"]) for s in erm] == [
        (2023, 2, 0.30),
        (2024, 1, 0.20),
    ]
    deca = reproduction.their_selected(their_logs, "gmf", "dpi")
    assert [(s.epoch, s.metrics["ndcg@20"]) for s in deca] == [(3, 0.12)]
    assert reproduction.their_selected(their_logs, "gmf", "tce") == []


def test_an_unzipped_folder_reads_the_same(their_logs, tmp_path):
    folder = tmp_path / "unzipped"
    zipfile.ZipFile(their_logs).extractall(folder)
    assert reproduction.their_selected(folder, "gmf", "erm") == reproduction.their_selected(
        their_logs, "gmf", "erm"
    )


def _write_run(path, records):
    path.mkdir(parents=True)
    (path / "config.json").write_text("{}")
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (path / "results.json").write_text("{}")


def _record(epoch, loss, valid_loss, trimmed, recall):
    return {
        "epoch": epoch,
        "loss": loss,
        "valid_loss": valid_loss,
        "valid_trimmed_loss": trimmed,
        "test_paper": {"recall@20": recall, "ndcg@20": recall / 2},
    }


def test_our_runs_are_read_at_the_epoch_of_their_rule(tmp_path):
    records = [
        _record(1, 0.9, 0.60, 0.40, 0.10),
        _record(2, 0.8, 0.50, 0.45, 0.20),  # smallest validation loss
        _record(3, 0.7, 0.55, 0.30, 0.30),  # smallest trimmed validation loss
        _record(4, 0.6, 0.70, 0.50, 0.40),  # smallest training loss
    ]
    _write_run(tmp_path / "gmf" / "erm" / "seed0", records)
    _write_run(tmp_path / "gmf" / "dpi" / "seed0", records)
    # A resumed run wrote epoch 2 twice: the last record is the one that counts.
    _write_run(tmp_path / "gmf" / "tce" / "seed0", records + [_record(2, 0.8, 0.65, 0.4, 0.9)])
    picked = {
        cell: [
            (s.epoch, s.metrics["recall@20"])
            for s in reproduction.our_selected(tmp_path, "gmf", cell, [0, 1])
        ]
        for cell in ("erm", "erm_re", "dpi", "tce")
    }
    assert picked == {
        "erm": [(2, 0.20)],
        "erm_re": [(3, 0.30)],  # ERM_RE reads ERM's run
        "dpi": [(4, 0.40)],
        "tce": [(3, 0.30)],
    }


def _selected(*recalls):
    return [
        reproduction.Selected(seed=i, epoch=1, metrics={"recall@20": r, "ndcg@20": r / 2})
        for i, r in enumerate(recalls)
    ]


def test_a_cell_differs_beyond_the_tolerance_or_the_seed_spread():
    within = reproduction.compare(_selected(0.30, 0.32), _selected(0.305, 0.325))
    assert within["differs"] is False
    assert within["diff"]["recall@20"] == pytest.approx(0.005)
    assert reproduction.compare(_selected(0.30), _selected(0.315))["differs"] is True
    # A seed spread of 0.02 (std) widens the tolerance past a 0.015 gap.
    assert reproduction.compare(_selected(0.28, 0.32), _selected(0.315))["differs"] is False
    assert reproduction.compare([], _selected(0.3))["differs"] is None


def test_the_page_counts_the_cells_within(their_logs, tmp_path):
    _write_run(tmp_path / "gmf" / "erm" / "seed0", [_record(1, 0.9, 0.6, 0.4, 0.26)])
    rows = {
        ("gmf", cell): reproduction.compare(
            reproduction.their_selected(their_logs, "gmf", cell),
            reproduction.our_selected(tmp_path, "gmf", cell, [0]),
        )
        for cell in ("erm", "tce")
    }
    text = reproduction.markdown(rows)
    assert "| ERM | 0.2500 ± 0.0500 | 0.2600 ± 0.0000 | +0.0100 |" in text
    assert "1 of 1 compared cells within the tolerance." in text


def test_missing_logs_are_one_line(tmp_path, capsys):
    status = reproduction.main(["--out", str(tmp_path), "--their-logs", str(tmp_path / "no.zip")])
    assert status == 2
    assert capsys.readouterr().err.count("\n") == 1
