"""launch/batch_job.py without a scheduler: the scripts it writes, their command lines, errors."""

import importlib.util
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

# launch/ is a scripts folder, not a package: load the file as module "launch_batch_job".
_SPEC = importlib.util.spec_from_file_location("launch_batch_job", REPO / "launch" / "batch_job.py")
batch_job = sys.modules.setdefault("launch_batch_job", importlib.util.module_from_spec(_SPEC))
_SPEC.loader.exec_module(batch_job)

CONFIG = "configs/default.py:dataset=electronics,model=gmf,method=dpi"


def write(tmp_path, *args):
    out = tmp_path / "jobs" / "job.sh"
    assert batch_job.main([*args, "--config", CONFIG, "--out", str(out)]) == 0
    return out, out.read_text().splitlines()


def test_slurm_gpu_script(tmp_path, capsys):
    out, lines = write(
        tmp_path,
        *("--kind", "slurm-gpu", "--nodes", "2", "--gpus-per-node", "8"),
        *("--workdir", str(tmp_path / "run"), "--time", "04:00:00"),
        *("--set", "train.shard_tables=True", "--set", "preset.mode=scale"),
        *("--python", "/opt/venv/bin/python"),
    )
    assert capsys.readouterr().out.splitlines() == [f"wrote {out}", f"submit with: sbatch {out}"]
    assert out.stat().st_mode & 0o111
    assert lines[0] == "#!/usr/bin/env bash"
    assert [line for line in lines if line.startswith("#SBATCH")] == [
        "#SBATCH --job-name=dprec",
        "#SBATCH --nodes=2",
        "#SBATCH --ntasks-per-node=8",
        "#SBATCH --gpus-per-node=8",
        "#SBATCH --time=04:00:00",
        "#SBATCH --signal=TERM@300",
        f"#SBATCH --output={tmp_path / 'jobs'}/job-%j.log",
    ]
    assert "python=${PYTHON:-/opt/venv/bin/python}" in lines
    assert f"cd {REPO}" in lines
    assert shlex.split(lines[-1]) == [
        "srun",
        "$python",
        "-m",
        "dprec.main",
        "--distributed",
        "--config=configs/default.py:dataset=electronics,model=gmf,method=dpi,mode=scale",
        f"--workdir={tmp_path / 'run'}",
        "--config.train.shard_tables=True",
    ]


def test_slurm_script_runs_with_a_stand_in_srun(tmp_path):
    """The script as bash runs it: `srun` (a stand-in printing its arguments) gets the command."""
    out, _ = write(
        tmp_path,
        *("--kind", "slurm-gpu", "--nodes", "1", "--gpus-per-node", "4"),
        *("--workdir", "runs/big", "--python", "python3"),
    )
    stub = tmp_path / "bin"
    stub.mkdir()
    (stub / "srun").write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$@"\n')
    (stub / "srun").chmod(0o755)
    env = {"PATH": f"{stub}:/usr/bin:/bin", "PYTHON": "/x/python"}
    proc = subprocess.run(["bash", str(out)], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "/x/python",
        "-m",
        "dprec.main",
        "--distributed",
        f"--config={CONFIG}",
        f"--workdir={Path.cwd() / 'runs' / 'big'}",  # made absolute: a shared file system
    ]


def test_tpu_vm_script(tmp_path, capsys):
    out, lines = write(
        tmp_path,
        *("--kind", "tpu-vm", "--tpu-name", "my-v4-32", "--zone", "us-central2-b"),
        *("--project", "proj", "--repo-dir", "/home/me/dprec"),
        *("--workdir", "runs/tpu run", "--set", "train.num_epochs=40"),
    )
    assert capsys.readouterr().out.splitlines() == [f"wrote {out}", f"run with: bash {out}"]
    ssh = shlex.split(lines[-1])
    assert ssh[:9] == [
        "gcloud",
        "compute",
        "tpus",
        "tpu-vm",
        "ssh",
        "my-v4-32",
        "--zone=us-central2-b",
        "--project=proj",
        "--worker=all",
    ]
    assert len(ssh) == 10 and ssh[9].startswith("--command=")
    remote = ssh[9].removeprefix("--command=")
    cd, run = remote.split(" && ")
    assert cd == "cd /home/me/dprec"
    assert shlex.split(run) == [
        "python3",
        "-m",
        "dprec.main",
        "--distributed",
        f"--config={CONFIG}",
        "--workdir=runs/tpu run",
        "--config.train.num_epochs=40",
    ]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--kind", "slurm-gpu", "--gpus-per-node", "8"], "--kind slurm-gpu needs --nodes"),
        (["--kind", "slurm-gpu", "--nodes", "0", "--gpus-per-node", "8"], "--nodes must be"),
        (
            ["--kind", "slurm-gpu", "--nodes", "1", "--gpus-per-node", "1", "--tpu-name", "t"],
            "--tpu-name is for --kind tpu-vm, not slurm-gpu",
        ),
        (
            ["--kind", "slurm-gpu", "--nodes", "1", "--gpus-per-node", "1", "--time", "4h"],
            "bad --time '4h'",
        ),
        (["--kind", "tpu-vm"], "--kind tpu-vm needs --tpu-name"),
        (["--kind", "tpu-vm", "--tpu-name", "My_TPU"], "bad --tpu-name 'My_TPU'"),
        (
            ["--kind", "tpu-vm", "--tpu-name", "t", "--nodes", "2"],
            "--nodes is for --kind slurm-gpu",
        ),
        (
            ["--kind", "tpu-vm", "--tpu-name", "t", "--set", "train.num_epochs"],
            "bad --set 'train.num_epochs'",
        ),
        (
            ["--kind", "tpu-vm", "--tpu-name", "t", "--config", "configs/nope.py"],
            "config file 'configs/nope.py' not found",
        ),
    ],
)
def test_bad_input(tmp_path, capsys, args, message):
    argv = ["--config", CONFIG, "--workdir", str(tmp_path / "run"), "--out", str(tmp_path / "j")]
    assert batch_job.main(argv + args) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"batch_job: error: {message}")
    assert not (tmp_path / "j").exists()


def test_bad_command_line_exit_status(tmp_path):
    proc = subprocess.run(
        [sys.executable, "launch/batch_job.py", "--kind", "slurm", "--out", str(tmp_path / "j")],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "batch_job: error: argument --kind: invalid choice: 'slurm' "
        "(choose from 'slurm-gpu', 'tpu-vm'); see --help"
    ]
