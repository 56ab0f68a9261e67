"""Two real processes on localhost (2 simulated CPU devices each, CPU collectives) against one
process with 4 devices: the same losses and metrics, one writer, and an exact resume after a
process is killed with SIGKILL."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, run_main

pytestmark = pytest.mark.slow  # minutes of training: run by CI, skipped by -m "not slow"

TIMEOUT = 300
# Small and row-sharded: 296 synthetic users (232 with interactions) and 80 items, both
# divisible by the 4 devices, so every user and item table and its Adam moments are split by
# rows (a table whose rows do not divide stays replicated); GMF-DPI with lazy row-wise Adam.
N_USERS = 296
SHARDED = ("--config.train.shard_tables=True", f"--config.data.synthetic.n_users={N_USERS}")
GMF_DPI = "--config=configs/tiny.py:method=dpi,model=gmf"
COMMON = (*SHARDED, "--config.train.updates=lazy", "--config.train.checkpoint_every=1")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]


def _env(devices: int, cache: Path) -> dict[str, str]:
    return {
        **os.environ,
        "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
        "DPREC_CACHE_DIR": str(cache),
    }


def start_processes(workdir: Path, *flags: str, count: int = 2) -> list[subprocess.Popen]:
    """`count` processes of one run (`--num_processes`), 2 devices each, output in files."""
    address = f"localhost:{free_port()}"
    procs = []
    for index in range(count):
        log = open(workdir.parent / f"{workdir.name}.process{index}.log", "w")  # noqa: SIM115
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "dprec.main",
                    *flags,
                    f"--workdir={workdir}",
                    f"--num_processes={count}",
                    f"--process_id={index}",
                    f"--coordinator_address={address}",
                ],
                cwd=REPO,
                env=_env(2, workdir.parent / f"{workdir.name}-cache"),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    return procs


def wait_all(procs: list[subprocess.Popen], workdir: Path) -> None:
    codes = [proc.wait(timeout=TIMEOUT) for proc in procs]
    logs = [
        (workdir.parent / f"{workdir.name}.process{i}.log").read_text()[-3000:]
        for i in range(len(procs))
    ]
    assert codes == [0] * len(procs), "\n\n".join(logs)


def one_process(workdir: Path, *flags: str) -> None:
    env = _env(4, workdir.parent / f"{workdir.name}-cache")
    proc = run_main(*flags, f"--workdir={workdir}", timeout=TIMEOUT, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]


def records(workdir: Path) -> list[dict]:
    return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


def assert_same_run(run: Path, reference: Path) -> None:
    """Losses within rtol 1e-5 at every epoch, metrics within 1e-6 (reductions over devices
    may add in another order), the same best epoch, and the noisy-interaction report within
    1e-6 (its AUC within 1e-4: two near-equal scores may swap)."""
    got, want = records(run), records(reference)
    assert [r["epoch"] for r in got] == [r["epoch"] for r in want]
    for a, b in zip(got, want, strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
        assert a["valid"] == pytest.approx(b["valid"], abs=1e-6)
    a, b = (json.loads((path / "results.json").read_text()) for path in (run, reference))
    assert a["best_epoch"] == b["best_epoch"]
    for view in ("paper", "warm", "noisy"):
        assert a["test"][view] == pytest.approx(b["test"][view], abs=1e-6)
    for key in ("mean", "truly_clean_mean", "truly_noisy_mean"):
        assert a["interpretation"][key] == pytest.approx(b["interpretation"][key], abs=1e-6)
    auc = a["interpretation"]["noise_detection_auc"]
    assert auc == pytest.approx(b["interpretation"]["noise_detection_auc"], abs=1e-4)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """GMF-DPI, 3 epochs, in one process with 4 devices."""
    from dprec.config.run_config import run_spec_from_config
    from dprec.config.templates.tiny import get_config
    from dprec.data.registry import load_dataset

    # The precondition of every comparison here: the tables are row-sharded, not replicated.
    config = get_config("method=dpi,model=gmf")
    config.data.synthetic.n_users = N_USERS
    data = load_dataset(run_spec_from_config(config).data)
    assert data.n_users % 4 == 0 and data.n_items % 4 == 0, (data.n_users, data.n_items)
    workdir = tmp_path_factory.mktemp("one") / "run"
    one_process(workdir, GMF_DPI, *COMMON)
    return workdir


def test_killed_processes_relaunched_resume_to_the_one_process_run(tmp_path, reference):
    """Two processes killed after checkpoint 2 and relaunched end with the losses and metrics
    of one process with four devices; one writer, one progress log."""
    workdir = tmp_path / "run"
    procs = start_processes(workdir, GMF_DPI, *COMMON)
    deadline = time.monotonic() + TIMEOUT
    while not (workdir / "checkpoints" / "2").is_dir():  # orbax renames a step when committed
        assert time.monotonic() < deadline and procs[1].poll() is None, "no checkpoint 2"
        time.sleep(0.05)
    procs[1].send_signal(signal.SIGKILL)  # the non-writing process dies
    procs[0].send_signal(signal.SIGKILL)  # and the job scheduler ends the other one
    for proc in procs:
        proc.wait(timeout=TIMEOUT)
    assert not (workdir / "results.json").exists()
    wait_all(start_processes(workdir, GMF_DPI, *COMMON), workdir)
    assert_same_run(workdir, reference)
    info = json.loads((workdir / "run_info.json").read_text())
    assert info["processes"] == 2 and len(info["devices"]) == 2  # process 0's own devices
    # Process 1 writes nothing and logs only warnings: one progress log per run.
    assert "resuming after epoch" in (tmp_path / "run.process0.log").read_text()
    assert "resuming after epoch" not in (tmp_path / "run.process1.log").read_text()


def test_two_processes_match_for_dvae_on_the_graph_model(tmp_path):
    """DVAE pretrains its prior in both processes (a cache of its own per run here) and
    LightGCN's edges are split over the four devices of two processes: one launch covers both
    (each launch spends most of its time setting up the CPU collectives, not training).
    GMF's replicated output layer, all-reduced across processes like NeuMF's layers, is
    covered by the GMF-DPI run above."""
    flags = (
        "--config=configs/tiny.py:method=dvae,model=lightgcn",
        "--config.method.prior_epochs=2",
        *SHARDED,
        "--config.train.num_epochs=2",
    )
    one_process(tmp_path / "one", *flags)
    wait_all(start_processes(tmp_path / "two", *flags), tmp_path / "two")
    assert_same_run(tmp_path / "two", tmp_path / "one")
