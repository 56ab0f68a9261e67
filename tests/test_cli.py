"""End to end through the command line: the run directory and the results contract."""

import json
import os
import stat
import subprocess
import sys

import pytest
from conftest import REPO

# The tiny template's references (configs/tiny.py leaves out iALS: its grid is the slowest).
TINY_REFERENCES = ("popularity", "itemknn", "rp3beta", "ease")
VIEWS = (
    "paper",
    "warm",
    "cold",
    "noisy",
    *(f"{name}_{view}" for name in TINY_REFERENCES for view in ("paper", "warm")),
    "random_paper",
    "random_warm",
)
# configs/tiny.py runs DPI, so the run also writes the P(real positive) table.
RUN_DIRS = {"checkpoints", "tensorboard"}  # orbax checkpoints, TensorBoard events
RUN_FILES = {
    "config.json",
    "run_info.json",
    "metrics.jsonl",
    "results.json",
    "results.md",
    "real_positive.csv.gz",
}


def run_cli(workdir, *args):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "dprec.main",
            "--config=configs/tiny.py",
            *args,
            f"--workdir={workdir}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def metric_keys(ks):
    return {f"{m}@{k}" for m in ("recall", "ndcg") for k in ks} | {"users"}


def check_metrics(row, ks):
    assert set(row) == metric_keys(ks)
    assert isinstance(row["users"], int)
    assert row["users"] >= 0
    for key, value in row.items():
        if key != "users" and value is not None:
            assert 0.0 <= value <= 1.0, (key, value)


def no_temporary_files(workdir):
    return [p.name for p in workdir.iterdir() if p.name.startswith(".")]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("cli") / "run"
    run_cli(workdir)
    return workdir


def test_run_directory(tiny_run):
    assert {p.name for p in tiny_run.iterdir()} == RUN_FILES | RUN_DIRS
    assert not no_temporary_files(tiny_run)


def test_run_files_have_the_usual_mode(tiny_run):
    umask = os.umask(0o022)
    os.umask(umask)
    for name in RUN_FILES:  # atomic writes must not leave mkstemp's private 0600 mode
        assert stat.S_IMODE((tiny_run / name).stat().st_mode) == 0o666 & ~umask, name


def test_config_and_run_info(tiny_run):
    config = json.loads((tiny_run / "config.json").read_text())
    assert config["train"]["num_epochs"] == 3
    assert config["data"]["synthetic"]["n_items"] == 80
    info = json.loads((tiny_run / "run_info.json").read_text())
    assert {"seed", "data_fingerprint", "versions", "devices"} <= set(info)


def test_metrics_jsonl(tiny_run):
    lines = (tiny_run / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 3
    records = [json.loads(line) for line in lines]
    assert [r["epoch"] for r in records] == [1, 2, 3]
    for record in records:
        assert {"epoch", "loss", "valid"} <= set(record)
        assert isinstance(record["loss"], float)
        check_metrics(record["valid"], (5, 20))


def test_results_contract(tiny_run):
    results = json.loads((tiny_run / "results.json").read_text())
    assert isinstance(results["best_epoch"], int)
    assert 1 <= results["best_epoch"] <= 3
    assert results["epochs_run"] == 3
    for key in ("test", "test_last"):
        assert set(results[key]) == set(VIEWS)
        for view in VIEWS:
            check_metrics(results[key][view], (5, 20))
    check_metrics(results["valid"], (5, 20))
    timing = results["timing"]
    assert {"epoch_seconds_median", "eval_seconds", "total_seconds"} <= set(timing)
    assert all(isinstance(timing[k], float) and timing[k] >= 0 for k in timing)
    # The best epoch's validation metrics are the ones logged for that epoch.
    records = [json.loads(line) for line in (tiny_run / "metrics.jsonl").read_text().splitlines()]
    assert records[results["best_epoch"] - 1]["valid"] == results["valid"]


def test_results_table(tiny_run):
    table = (tiny_run / "results.md").read_text()
    for view in VIEWS:
        assert f"| {view} |" in table
    assert "recall@20" in table


def test_ks_override(tmp_path):
    workdir = tmp_path / "run"
    run_cli(workdir, "--config.eval.ks=3,7", "--config.train.num_epochs=1")
    results = json.loads((workdir / "results.json").read_text())
    assert results["epochs_run"] == 1
    assert results["selection_metric"] == "recall@7"
    for key in ("test", "test_last"):
        for view in VIEWS:
            check_metrics(results[key][view], (3, 7))
    check_metrics(results["valid"], (3, 7))
    record = json.loads((workdir / "metrics.jsonl").read_text())
    check_metrics(record["valid"], (3, 7))
    assert "recall@7" in (workdir / "results.md").read_text()
    config = json.loads((workdir / "config.json").read_text())
    assert list(config["eval"]["ks"]) == [3, 7]
    assert not no_temporary_files(workdir)


def read_events(directory):
    """(tag, step, value) of every scalar in the TFRecord event files of `directory`."""
    import struct

    from tensorboardX.proto import event_pb2

    scalars = []
    for path in directory.glob("events.out.tfevents.*"):
        data = path.read_bytes()
        offset = 0
        while offset < len(data):
            (length,) = struct.unpack("<Q", data[offset : offset + 8])
            event = event_pb2.Event.FromString(data[offset + 12 : offset + 12 + length])
            offset += 12 + length + 4
            for value in event.summary.value:
                scalars.append((value.tag, event.step, value.simple_value))
    return scalars


def test_tensorboard_events_hold_losses_phase_and_validation(tiny_run):
    scalars = read_events(tiny_run / "tensorboard")
    tags = {tag for tag, _, _ in scalars}
    assert {"train/loss", "train/phase", "train/kl", "train/log_likelihood"} <= tags
    assert {"valid/recall_at_20", "valid/ndcg_at_5"} <= tags
    lines = [json.loads(line) for line in (tiny_run / "metrics.jsonl").read_text().splitlines()]
    logged = {step: value for tag, step, value in scalars if tag == "train/loss"}
    assert logged == pytest.approx({line["epoch"]: line["loss"] for line in lines})
