"""Safe under every stop and misuse (issue 23): changed data, unfinished runs, two runs on one
workdir, a full disk, SIGTERM, TensorBoard after a resume, and the smaller oddities."""

import errno
import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, run_main

from dprec.config.presets import build_config
from dprec.config.run_config import run_spec_from_config
from dprec.errors import ConfigError
from dprec.runs import checkpoint as checkpoint_module
from dprec.runs import rundir
from dprec.runs.lock import LOCK_FILE, WorkdirBusy, workdir_lock

TINY = "--config=configs/tiny.py"


def one_line(proc, tool="dprec", status=2):
    assert proc.returncode == status, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"{tool}: error: "), lines[0]
    return lines[0]


def files_of(workdir: Path) -> dict[str, bytes]:
    """Every file under `workdir` (paths relative to it) with its bytes, checkpoints included."""
    return {
        str(p.relative_to(workdir)): p.read_bytes()
        for p in sorted(workdir.rglob("*"))
        if p.is_file() and p.name != LOCK_FILE
    }


def write_table(path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {"user_id": rng.integers(0, 150, 2500), "item_id": rng.integers(0, 50, 2500)}
    )
    frame.to_csv(path, index=False)


def table_run(path: Path, workdir: Path, *extra: str):
    return run_main(
        "--config=configs/default.py:dataset=table,method=normal",
        f"--config.data.path={path}",
        "--config.train.num_epochs=2",
        "--config.train.checkpoint_every=1",
        f"--workdir={workdir}",
        *extra,
    )


# --- 1. data edited under a finished workdir --------------------------------------------------


def test_changed_data_under_a_finished_run_is_one_line_and_touches_nothing(tmp_path):
    data, workdir = tmp_path / "clicks.csv", tmp_path / "run"
    write_table(data, 0)
    assert table_run(data, workdir).returncode == 0
    before = files_of(workdir)
    assert {"checkpoints/1", "checkpoints/2"} <= {
        str(Path(k).parents[-3]) for k in before if k.count("/") >= 2
    }
    write_table(data, 1)  # the same command, other rows
    line = one_line(table_run(data, workdir))
    assert "the data under" in line and "changed since its run" in line
    assert "pass another --workdir" in line and "restore the old data file" in line
    assert files_of(workdir) == before  # run_info.json, both checkpoints, results: unchanged


# --- 2. tools on an unfinished run -----------------------------------------------------------


@pytest.fixture(scope="module")
def unfinished_run(tmp_path_factory):
    """A tiny run stopped by SIGTERM after its first epoch (of 3)."""
    workdir = tmp_path_factory.mktemp("unfinished") / "run"
    proc = start_main(workdir, "--config.train.num_epochs=40", "--config.train.checkpoint_every=1")
    wait_for_epochs(workdir, 1)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, proc.stderr.read()
    return workdir


def test_tools_refuse_an_unfinished_run_unless_allowed(unfinished_run, tmp_path):
    epoch = int(
        json.loads((unfinished_run / "metrics.jsonl").read_text().splitlines()[-1])["epoch"]
    )
    for module, tool in (
        ("dprec.tools.recommend", "recommend"),
        ("dprec.tools.denoise_report", "denoise_report"),
    ):
        proc = run_main(f"--workdir={unfinished_run}", module=module)
        line = one_line(proc, tool)
        assert f"unfinished run (last checkpoint: epoch {epoch} of 40)" in line
        assert "--allow-unfinished" in line
    assert not list(unfinished_run.glob("recommendations*")) and not list(
        unfinished_run.glob("denoise_report*")
    )
    out = tmp_path / "recs.csv"
    proc = run_main(
        f"--workdir={unfinished_run}",
        f"--out={out}",
        "--allow-unfinished",
        module="dprec.tools.recommend",
    )
    assert proc.returncode == 0, proc.stderr
    assert f"using epoch {epoch} of 40" in proc.stderr
    assert not out.exists() and (tmp_path / f"recs.epoch{epoch}.csv").is_file()
    proc = run_main(
        f"--workdir={unfinished_run}", "--allow-unfinished", module="dprec.tools.denoise_report"
    )
    assert proc.returncode == 0, proc.stderr
    assert f"UNFINISHED: epoch {epoch}" in proc.stdout
    assert (unfinished_run / f"denoise_report.epoch{epoch}.csv.gz").is_file()
    assert (unfinished_run / f"suspicious.epoch{epoch}.csv").is_file()
    assert not (unfinished_run / "denoise_report.csv.gz").exists()


# --- 3. two runs on one workdir --------------------------------------------------------------


def test_two_runs_started_together_one_trains_one_gets_one_line(tmp_path):
    workdir = tmp_path / "run"
    args = [sys.executable, "-m", "dprec.main", TINY, f"--workdir={workdir}"]
    procs = [
        subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outcomes = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    assert sorted(rc for rc, _ in outcomes) == [0, 2], outcomes
    refused = next(err for rc, err in outcomes if rc == 2).strip().splitlines()
    assert len(refused) == 1, refused
    winner = next(p for p, (rc, _) in zip(procs, outcomes, strict=True) if rc == 0)
    assert f"is in use by a run of pid {winner.pid} on " in refused[0]
    assert (workdir / "results.json").is_file()


def test_a_killed_holder_never_blocks_the_next_run(tmp_path):
    workdir = tmp_path / "run"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"from dprec.runs.lock import workdir_lock\n"
            f"import time\nwith workdir_lock({str(workdir)!r}):\n  print('held', flush=True)\n"
            "  time.sleep(600)",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(WorkdirBusy, match=f"pid {holder.pid} on "), workdir_lock(workdir):
        pass
    holder.kill()
    holder.wait()
    with workdir_lock(workdir) as path:  # the kernel released the dead holder's lock
        assert (path / LOCK_FILE).read_text().startswith(f"{os.getpid()}@")
    assert not (workdir / LOCK_FILE).exists()


def test_a_refused_new_workdir_is_removed_again(tmp_path):
    workdir = tmp_path / "new"
    with pytest.raises(RuntimeError), workdir_lock(workdir):
        raise RuntimeError("bad input found before any output")
    assert not workdir.exists()


# --- 4. a full disk ----------------------------------------------------------------------------


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    return done.returncode == 0


FULL_DISK_RUN = """
import sys
from dprec.runs import checkpoint
if sys.argv[1] == "no-precheck":  # let orbax find the full disk while it writes
    checkpoint.RunCheckpoints._check_room = lambda *args: None
sys.argv = ["dprec", "--config=configs/tiny.py", "--config.data.synthetic.n_users=3000",
            "--config.data.synthetic.n_items=400", "--config.train.checkpoint_every=1",
            "--workdir=" + sys.argv[2]]
from dprec.main import run
run()
"""


@pytest.mark.parametrize("mode", ["precheck", "no-precheck"])
def test_a_full_disk_is_one_line_and_leaves_no_temporary_files(tmp_path, mode):
    """A 3 MB tmpfs cannot hold the first checkpoint (about 7 MB): found before orbax writes
    (the free-space check) or while it writes; either way one line, nothing half-written."""
    mount = tmp_path / "small"
    if not _mount_tmpfs(mount, "3m"):
        pytest.skip("cannot mount a tmpfs here; the patched-writer tests below cover ENOSPC")
    try:
        workdir = mount / "run"
        proc = subprocess.run(
            [sys.executable, "-c", FULL_DISK_RUN, mode, str(workdir)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert "Traceback" not in proc.stderr and not any(line.startswith("E1") for line in lines)
        assert lines[-1].startswith(f"dprec: error: cannot write {workdir}/checkpoints/1: ")
        assert "No space left on device" in lines[-1] and "(ENOSPC)" in lines[-1]
        assert list((workdir / "checkpoints").iterdir()) == []  # no temporary step folder
        assert not [p for p in workdir.rglob("*.tmp")]
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_enospc_while_writing_a_file_is_one_line_and_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "results.json"
    rundir.write_json(target, {"finished": True})

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(rundir.os, "fsync", full)
    with pytest.raises(rundir.DiskError) as caught:
        rundir.write_json(target, {"finished": False})
    message = str(caught.value)
    assert "\n" not in message and str(target) in message and "(ENOSPC)" in message
    assert json.loads(target.read_text()) == {"finished": True}
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_a_failed_checkpoint_save_removes_its_partial_folder(tmp_path, monkeypatch):
    """ENOSPC inside orbax: the checkpoint folder is left as it was, the error is one line."""
    import jax.numpy as jnp

    saved = checkpoint_module.RunCheckpoints(tmp_path)
    meta = checkpoint_module.CheckpointMeta(1, None, None, [], [], "f")
    state = {"w": jnp.ones((4, 3))}
    saved.save(1, state, state, meta)
    before = sorted(p.name for p in saved.directory.iterdir())
    original = checkpoint_module.ocp.CheckpointManager.wait_until_finished

    def fail_after_writing(self):
        original(self)
        raise RuntimeError(
            "RESOURCE_EXHAUSTED: write failed: No space left on device [OS error 28]"
        )

    monkeypatch.setattr(
        checkpoint_module.ocp.CheckpointManager, "wait_until_finished", fail_after_writing
    )
    with pytest.raises(rundir.DiskError, match=r"No space left on device \(ENOSPC\)"):
        saved.save(2, state, state, meta)
    assert sorted(p.name for p in saved.directory.iterdir()) == before
    monkeypatch.undo()
    saved.close()


def test_checkpoint_errors_keep_the_whole_cause_on_one_line(tmp_path):
    saved = checkpoint_module.RunCheckpoints(tmp_path)
    cause = (
        'ValueError: Error reading "state" in OCDBT database at\n  file:///x/: word cut. See full'
    )
    error = saved._unreadable(3, ValueError(cause))
    assert "\n" not in str(error) and "word cut. See full" in str(error)
    saved.close()


# --- 6. SIGTERM ------------------------------------------------------------------------------


def start_main(workdir: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "dprec.main", TINY, f"--workdir={workdir}", *extra],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_epochs(workdir: Path, epochs: int, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    metrics = workdir / "metrics.jsonl"
    while time.monotonic() < deadline:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= epochs:
            return
        time.sleep(0.05)
    raise AssertionError(f"{workdir} did not reach epoch {epochs}")


def test_sigterm_checkpoints_the_epoch_and_resumes_exactly(tmp_path):
    flags = ("--config.train.num_epochs=12", "--config.train.checkpoint_every=100")
    reference = tmp_path / "reference"
    assert run_main(TINY, f"--workdir={reference}", *flags).returncode == 0
    stopped = tmp_path / "stopped"
    proc = start_main(stopped, *flags)
    wait_for_epochs(stopped, 2)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)
    err = proc.stderr.read().strip().splitlines()
    assert proc.returncode == 143, err
    epochs = [
        json.loads(line)["epoch"] for line in (stopped / "metrics.jsonl").read_text().splitlines()
    ]
    last = epochs[-1]
    assert (
        err[-1] == f"dprec: stopped by SIGTERM after epoch {last}; rerun the same command to resume"
    )
    assert sorted(p.name for p in (stopped / "checkpoints").iterdir() if p.name.isdigit()) == [
        str(last)
    ]
    resumed = run_main(TINY, f"--workdir={stopped}", *flags)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming after epoch {last}" in resumed.stderr
    assert f"epoch {last}/12" not in resumed.stderr  # no epoch redone
    lines = (stopped / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == list(range(1, 13))
    ref, got = (json.loads((d / "results.json").read_text()) for d in (reference, stopped))
    assert got["test"] == ref["test"] and got["best_epoch"] == ref["best_epoch"]
    assert tensorboard_steps(stopped) == tensorboard_steps(reference)


def tensorboard_steps(workdir: Path) -> list[int]:
    """The steps of the train/loss scalars in the run's TensorBoard event files, in order."""
    from tensorboardX.proto import event_pb2

    steps = []
    for path in sorted((workdir / "tensorboard").glob("events.out.tfevents.*")):
        data = path.read_bytes()
        at = 0
        while at < len(data):  # TFRecord framing: length, crc, payload, crc
            length = int.from_bytes(data[at : at + 8], "little")
            event = event_pb2.Event.FromString(data[at + 12 : at + 12 + length])
            at += 16 + length
            if any(v.tag == "train/loss" for v in event.summary.value):
                steps.append(event.step)
    return steps


# --- 7. TensorBoard after a kill and resume --------------------------------------------------


def test_tensorboard_holds_each_epoch_once_after_a_kill(tmp_path):
    workdir = tmp_path / "run"
    flags = ("--config.train.num_epochs=12", "--config.train.checkpoint_every=3")
    proc = start_main(workdir, *flags)
    wait_for_epochs(workdir, 5)  # checkpoint at 3, epochs 4–5 logged and then lost
    proc.kill()
    proc.wait()
    assert run_main(TINY, f"--workdir={workdir}", *flags).returncode == 0
    assert tensorboard_steps(workdir) == list(range(1, 13))


# --- 8–13. smaller oddities ------------------------------------------------------------------


def test_repeated_k_is_refused_and_ks_are_sorted():
    config = build_config(None)
    config.eval.ks = (20, 5)
    assert run_spec_from_config(config).eval.ks == (5, 20)
    config.eval.ks = (20, 20)
    with pytest.raises(ConfigError, match="eval.ks lists K=20 more than once"):
        run_spec_from_config(config)


def test_recommend_writes_with_the_umask(unfinished_run, tmp_path):
    out = tmp_path / "r.csv"
    command = (
        f"umask 022 && exec {sys.executable} -m dprec.tools.recommend "
        f"--workdir={unfinished_run} --out={out} --allow-unfinished"
    )
    proc = subprocess.run(["sh", "-c", command], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    written = next(tmp_path.glob("r.epoch*.csv"))
    assert written.stat().st_mode & 0o777 == 0o644


def test_dry_run_needs_no_workdir():
    proc = run_main(TINY, "--dry_run")
    assert proc.returncode == 0, proc.stderr
    assert "config and data are valid" in proc.stdout


def test_tensorboard_is_in_the_viz_extra():
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert any(req.startswith("tensorboard") for req in extras["viz"])
