"""The device suite in CI's tiny mode on the CPU (4 simulated devices): every cell trains, the
same seed in a CPU subprocess gives the same metrics, row-sharded tables over the 4 devices
give one device's, and the page holds the device and the tables."""

import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import device_suite  # noqa: E402


def test_the_tiny_suite_checks_every_cell_and_writes_its_page(tmp_path, capsys):
    page = tmp_path / "device-suite.md"
    argv = ["--tiny", "--models", "gmf,lightgcn", "--epochs", "2", "--page", str(page)]
    assert device_suite.main(argv) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "devices: 4 × cpu (cpu)" in lines
    for model in ("gmf", "lightgcn"):
        for method in ("normal", "dpi"):
            (row,) = [x for x in lines if x.split()[:2] == [model, method]]
            first, epoch, evaluation, recall = map(float, row.split()[2:])
            assert first > 0 and epoch > 0 and evaluation > 0 and 0 <= recall <= 1
    (cpu,) = [x for x in lines if x.startswith("same seed on the CPU")]
    (sharded,) = [x for x in lines if x.startswith("sharded over 4 = one device")]
    assert cpu.split()[-1] == "ok" and sharded.split()[-1] == "ok"
    assert "skipped (--tiny)" in out
    text = page.read_text()
    assert text.startswith("# Device suite") and "devices: 4 × cpu (cpu)" in text


def test_a_difference_beyond_the_tolerance_fails_the_check():
    got = {"recall@20": 0.50, "ndcg@20": 0.30}
    check = device_suite.compare("x", got, {"recall@20": 0.50, "ndcg@20": 0.31}, 1e-3)
    assert check["ok"] is False and check["max |Δ|"] == pytest.approx(0.01)
    assert device_suite.compare("x", got, got, 0.0)["ok"] is True


def test_the_cpu_rerun_is_the_same_run_as_flags():
    overrides = device_suite.settings(True, 2)
    assert device_suite.flags("dataset=synthetic,model=gmf,method=dpi", overrides) == [
        "--config=configs/default.py:dataset=synthetic,model=gmf,method=dpi",
        "--config.train.num_epochs=2",
        "--config.eval.references=()",
        "--config.data.synthetic.n_users=300",
        "--config.data.synthetic.n_items=80",
        "--config.train.batch_size=256",
    ]
