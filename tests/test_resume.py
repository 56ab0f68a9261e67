"""Checkpoints and resume: an interrupted run ends with the uninterrupted run's metrics."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import REPO, kill_after_checkpoint

from dprec import train

METRIC_KEYS = ("best_epoch", "epochs_run", "test", "test_last", "valid", "interpretation")


def comparable(run_dir):
    results = json.loads((run_dir / "results.json").read_text())
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    for line in lines:  # wall-clock fields differ between runs
        line.pop("epoch_seconds"), line.pop("eval_seconds")
    return {key: results[key] for key in METRIC_KEYS}, lines


@pytest.mark.slow
def test_interrupted_run_resumes_to_the_same_metrics(tiny_config, tmp_path, monkeypatch):
    tiny_config.train.num_epochs = 5
    tiny_config.train.checkpoint_every = 1
    train.train_and_evaluate(tiny_config, str(tmp_path / "straight"))

    kill_after_checkpoint(monkeypatch, tiny_config, tmp_path / "resumed", epoch=2)
    assert not (tmp_path / "resumed" / "results.json").exists()
    train.train_and_evaluate(tiny_config, str(tmp_path / "resumed"))
    assert comparable(tmp_path / "resumed") == comparable(tmp_path / "straight")


@pytest.mark.slow
def test_kill_9_mid_run_then_same_command(tmp_path):
    """A DVAE run (its frozen prior is part of the checkpoint) killed with SIGKILL."""
    args = [
        sys.executable,
        "-m",
        "dprec.main",
        "--config=configs/tiny.py",
        "--config.method.name=dvae",
        "--config.train.num_epochs=12",
        "--config.train.checkpoint_every=1",
        "--config.data.synthetic.n_users=1000",
        "--config.data.synthetic.n_items=200",
        "--config.eval.references=()",
        f"--config.method.prior_cache_dir={tmp_path / 'priors'}",
    ]
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    straight = tmp_path / "straight"
    subprocess.run(
        [*args, f"--workdir={straight}"], cwd=REPO, env=env, check=True, capture_output=True
    )
    killed = tmp_path / "killed"
    process = subprocess.Popen(
        [*args, f"--workdir={killed}"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        steps = [p.name for p in (killed / "checkpoints").glob("*") if p.name.isdigit()]
        if steps and max(map(int, steps)) >= 3:
            break
        time.sleep(0.02)
    assert process.poll() is None, "the run ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (killed / "results.json").exists()
    subprocess.run(
        [*args, f"--workdir={killed}"], cwd=REPO, env=env, check=True, capture_output=True
    )
    assert comparable(killed) == comparable(straight)


def test_resuming_with_another_config_is_refused(tiny_config, tmp_path):
    train.train_and_evaluate(tiny_config, str(tmp_path / "run"))
    tiny_config.seed = 5
    with pytest.raises(train.UserInputError, match="another config"):
        train.train_and_evaluate(tiny_config, str(tmp_path / "run"))
