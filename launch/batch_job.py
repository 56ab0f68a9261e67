"""Write the batch script of one multi-process dprec run: a SLURM job over GPU nodes, or a
TPU VM slice.

    python launch/batch_job.py --kind slurm-gpu --nodes 2 --gpus-per-node 8 \\
        --config "configs/default.py:dataset=electronics,model=gmf,method=dpi" \\
        --workdir runs/electronics-gmf-dpi --set train.shard_tables=True --out runs/job.sbatch
    python launch/batch_job.py --kind tpu-vm --tpu-name my-v4-32 --zone us-central2-b \\
        --config configs/default.py --workdir runs/tpu --out runs/tpu.sh

Every process runs the same `python -m dprec.main --distributed --config=CONFIG
--workdir=WORKDIR --config.KEY=VALUE ...` (`launch/grid.py`'s command conventions); with
`--distributed`, `jax.distributed.initialize()` reads the coordinator, the process count and
the process id from SLURM's variables or the TPU VM's metadata. slurm-gpu: one process per
GPU (`--ntasks-per-node` = `--gpus-per-node`, which is also what JAX's SLURM detection
expects: each process takes the GPU of its local rank); the workdir is made absolute, so it
must be on a file system every node shares. tpu-vm: `gcloud compute tpus tpu-vm ssh NAME
--worker=all` runs the command on every worker from `--repo-dir` (default: this checkout's
path), where the repository and its environment must be installed. Only the script is
written; nothing is submitted. Bad input prints one line and exits with status 2.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # this checkout's dprec, not another copy
    sys.path.insert(0, str(REPO))

from dprec.cli import OneLineErrorParser, run_tool  # noqa: E402
from dprec.errors import UserInputError  # noqa: E402
from dprec.runs import rundir  # noqa: E402
from dprec.sweeps import grid  # noqa: E402

KINDS = ("slurm-gpu", "tpu-vm")
DISTRIBUTED_FLAG = "--distributed"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_TPU_NAME = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_TIME = re.compile(r"(\d+-)?\d+(:\d\d){0,2}")


class BatchJobError(UserInputError):
    """Bad command-line input; the message is the one line to print."""


def dprec_command(python: str, config: str, workdir: str, fixed: dict[str, str]) -> list[str]:
    """The command every process runs: `PYTHON -m dprec.main --distributed ...`."""
    return grid.run_command(python, config, workdir, fixed, flags=(DISTRIBUTED_FLAG,))


def slurm_script(args: argparse.Namespace, config: str, fixed: dict[str, str]) -> str:
    """An sbatch script: `--nodes` × `--gpus-per-node` processes, one per GPU, under srun."""
    workdir = str(Path(args.workdir).resolve())
    out = Path(args.out).resolve()
    python = args.python or sys.executable
    # "$python" expands at run time (PYTHON overrides it), the rest is shell-quoted.
    run = 'srun "$python" ' + shlex.join(dprec_command(python, config, workdir, fixed)[1:])
    processes = args.nodes * args.gpus_per_node
    lines = [
        "#!/usr/bin/env bash",
        f"# dprec multi-process run: {args.nodes} nodes x {args.gpus_per_node} GPUs = "
        f"{processes} processes (one per GPU) of {config} into {workdir}",
        f"# Submit with:  sbatch {out}",
        "# Add scheduler options (partition, account, memory) as #SBATCH lines or on the sbatch"
        " line.",
        f"#SBATCH --job-name={args.job_name}",
        f"#SBATCH --nodes={args.nodes}",
        f"#SBATCH --ntasks-per-node={args.gpus_per_node}",
        f"#SBATCH --gpus-per-node={args.gpus_per_node}",
        *([f"#SBATCH --time={args.time}"] if args.time else []),
        # SIGTERM to every task this long before the time limit: dprec finishes the epoch,
        # checkpoints and exits 143; resubmitting the same script resumes the run.
        f"#SBATCH --signal=TERM@{args.stop_warning}",
        f"#SBATCH --output={out.parent}/{out.stem}-%j.log",
        "set -eo pipefail",
        f"python=${{PYTHON:-{shlex.quote(python)}}}",
        f"cd {shlex.quote(str(REPO))}",
        run,
    ]
    return "\n".join(lines) + "\n"


def tpu_script(args: argparse.Namespace, config: str, fixed: dict[str, str]) -> str:
    """A bash script that runs the command on every worker of the TPU VM slice over gcloud."""
    python = args.python or "python3"
    remote = f"cd {shlex.quote(args.repo_dir)} && " + shlex.join(
        dprec_command(python, config, args.workdir, fixed)
    )
    ssh = ["gcloud", "compute", "tpus", "tpu-vm", "ssh", args.tpu_name]
    ssh += [f"--zone={args.zone}"] if args.zone else []
    ssh += [f"--project={args.project}"] if args.project else []
    ssh += ["--worker=all", f"--command={remote}"]
    lines = [
        "#!/usr/bin/env bash",
        f"# dprec on the TPU VM slice {args.tpu_name}: one process per worker, the same command"
        " on each,",
        f"# from {args.repo_dir} on the workers (the repository and its environment must be"
        " there).",
        f"# Run from a machine with gcloud:  bash {Path(args.out).resolve()}",
        "set -eo pipefail",
        shlex.join(ssh),
    ]
    return "\n".join(lines) + "\n"


def check_args(args: argparse.Namespace) -> None:
    """The one-line errors of options that argparse cannot check itself."""
    for option in ("config", "workdir", "out"):
        if not getattr(args, option):
            raise BatchJobError(f"--{option} is required (see --help)")
    if Path(args.out).is_dir():
        raise BatchJobError(f"--out {args.out} is a directory; pass the script's file name")
    if Path(args.workdir).is_file():
        raise BatchJobError(f"--workdir {args.workdir} is a file; pass a run directory")
    if args.kind == "slurm-gpu":
        for option in ("tpu_name", "zone", "project", "repo_dir"):
            if getattr(args, option) is not None:
                flag = "--" + option.replace("_", "-")
                raise BatchJobError(f"{flag} is for --kind tpu-vm, not slurm-gpu")
        for option in ("nodes", "gpus_per_node"):
            value = getattr(args, option)
            flag = "--" + option.replace("_", "-")
            if value is None:
                raise BatchJobError(f"--kind slurm-gpu needs {flag}, e.g. {flag} 2")
            if value < 1:
                raise BatchJobError(f"{flag} must be at least 1, not {value}")
        if not _NAME.fullmatch(args.job_name):
            raise BatchJobError(f"bad --job-name {args.job_name!r}; use letters, digits, ._-")
        if args.time is not None and not _TIME.fullmatch(args.time):
            raise BatchJobError(f"bad --time {args.time!r}; use [DAYS-]HH:MM:SS, e.g. 04:00:00")
        if not 0 < args.stop_warning <= 65535:  # SLURM's limit for --signal's time
            raise BatchJobError(
                f"--stop-warning must be in 1..65535 seconds, not {args.stop_warning}"
            )
    else:
        for option in ("nodes", "gpus_per_node", "time"):
            if getattr(args, option) is not None:
                flag = "--" + option.replace("_", "-")
                raise BatchJobError(
                    f"{flag} is for --kind slurm-gpu; a TPU VM slice runs one process per worker"
                )
        if args.tpu_name is None:
            raise BatchJobError("--kind tpu-vm needs --tpu-name, the TPU VM slice's name")
        if not _TPU_NAME.fullmatch(args.tpu_name):
            raise BatchJobError(
                f"bad --tpu-name {args.tpu_name!r}; use lower-case letters, digits and -"
            )
        args.repo_dir = args.repo_dir or str(REPO)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(description=__doc__.splitlines()[0], tool="batch_job")
    parser.add_argument("--kind", required=True, choices=KINDS, help="scheduler / platform")
    parser.add_argument("--config", help="dprec config, e.g. configs/default.py:model=gmf")
    parser.add_argument("--workdir", help="the run directory")
    parser.add_argument("--set", action="append", default=[], help="KEY=VALUE override (repeat)")
    parser.add_argument("--out", help="the script to write")
    parser.add_argument("--python", help="python on the nodes (default: this one; tpu: python3)")
    parser.add_argument("--nodes", type=int, help="slurm-gpu: number of nodes")
    parser.add_argument("--gpus-per-node", type=int, help="slurm-gpu: GPUs (processes) per node")
    parser.add_argument("--job-name", default="dprec", help="slurm-gpu: job name")
    parser.add_argument("--time", help="slurm-gpu: time limit, e.g. 04:00:00")
    parser.add_argument(
        "--stop-warning",
        type=int,
        default=300,
        help="slurm-gpu: seconds before the time limit at which SLURM sends SIGTERM, so the run "
        "checkpoints after its current epoch and exits (default 300: longer than an epoch)",
    )
    parser.add_argument("--tpu-name", help="tpu-vm: the TPU VM slice's name")
    parser.add_argument("--zone", help="tpu-vm: its zone")
    parser.add_argument("--project", help="tpu-vm: its project")
    parser.add_argument("--repo-dir", help="tpu-vm: the repository on the workers")
    return parser


def write_script(args: argparse.Namespace) -> int:
    check_args(args)
    config, fixed = grid.resolve_config(args.config), grid.parse_set(args.set)
    text = (slurm_script if args.kind == "slurm-gpu" else tpu_script)(args, config, fixed)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rundir.write_atomic(out, text)
    out.chmod(out.stat().st_mode | 0o111)
    print(f"wrote {out}")
    print(f"submit with: sbatch {out}" if args.kind == "slurm-gpu" else f"run with: bash {out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_tool("batch_job", lambda: write_script(args))


if __name__ == "__main__":
    sys.exit(main())
