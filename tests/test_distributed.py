"""Multi-process set-up without a second process: the flags, the initialize call, the mesh
and the one writer (process 0). A real multi-host run is not tested here."""

import jax
import pytest
from conftest import run_main

from dprec import sharding, train


@pytest.mark.parametrize(
    "flags, message",
    [
        (
            ["--num_processes=2", "--process_id=5", "--coordinator_address=node0:1234"],
            "dprec: error: --process_id must be in 0..1 for --num_processes=2, not 5",
        ),
        (
            ["--num_processes=2", "--coordinator_address=node0:1234"],
            "dprec: error: --process_id must be in 0..1 for --num_processes=2, not missing",
        ),
        (
            ["--num_processes=0"],
            "dprec: error: --num_processes must be at least 1, not 0",
        ),
        (
            ["--num_processes=2", "--process_id=1"],
            "dprec: error: --num_processes=2 needs --coordinator_address=HOST:PORT of process 0",
        ),
        (
            ["--num_processes=2", "--process_id=1", "--coordinator_address=node0"],
            "dprec: error: bad --coordinator_address 'node0'; use HOST:PORT, e.g. node0:1234",
        ),
        (
            ["--coordinator_address=node0:1234"],
            "dprec: error: --coordinator_address and --process_id need --num_processes "
            "of 2 or more",
        ),
        (
            ["--distributed", "--num_processes=2"],
            "dprec: error: --distributed lets JAX detect the processes; drop "
            "--coordinator_address, --num_processes and --process_id, or drop --distributed",
        ),
    ],
)
def test_bad_distributed_flags(tmp_path, flags, message):
    proc = run_main("--config=configs/tiny.py", f"--workdir={tmp_path / 'run'}", *flags)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [message]
    assert not (tmp_path / "run").exists()


def test_one_process_flags_are_a_plain_run(tmp_path):
    proc = run_main(
        "--config=configs/tiny.py",
        f"--workdir={tmp_path / 'run'}",
        "--num_processes=1",
        "--process_id=0",
        "--dry_run",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("dprec: config and data are valid")


@pytest.fixture
def initialize_calls(monkeypatch):
    calls = []
    monkeypatch.setattr(jax.distributed, "initialize", lambda **kw: calls.append(kw))
    return calls


def test_initialize_distributed_calls(initialize_calls):
    assert sharding.initialize_distributed() is False
    assert sharding.initialize_distributed(num_processes=1, process_id=0) is False
    assert initialize_calls == []
    assert sharding.initialize_distributed(auto=True) is True
    assert sharding.initialize_distributed("node0:1234", 4, 3) is True
    assert initialize_calls == [
        {},
        {"coordinator_address": "node0:1234", "num_processes": 4, "process_id": 3},
    ]


def test_mesh_spans_global_devices_with_several_processes(monkeypatch):
    local = jax.local_devices()
    assert [d.id for d in sharding.create_mesh().devices] == [d.id for d in local]
    monkeypatch.setattr(jax, "process_count", lambda: 2)
    monkeypatch.setattr(jax, "devices", lambda: local[::-1])  # stands in for all processes
    assert [d.id for d in sharding.create_mesh().devices] == [3, 2, 1, 0]
    assert [d.id for d in sharding.create_mesh(2).devices] == [3, 2]


def test_only_process_zero_writes(tmp_path, tiny_config, monkeypatch):
    assert sharding.is_main_process()
    tiny_config.train.num_epochs = 1
    monkeypatch.setattr(sharding, "is_main_process", lambda: False)
    results = train.train_and_evaluate(tiny_config, str(tmp_path))
    assert results["best_epoch"] == 1
    written = {p.name for p in tmp_path.iterdir()}
    assert not written & {"config.json", "run_info.json", "metrics.jsonl", "results.json"}
