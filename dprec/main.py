"""Command line: `python -m dprec.main --config=configs/default.py[:ARGS] --workdir=DIR`.

Flags only; the work happens in `train.train_and_evaluate`. `--distributed` (JAX detects
the processes) or `--coordinator_address`, `--num_processes`, `--process_id` make a
multi-process run: `sharding.initialize_distributed` joins it before any JAX computation.
A bad input prints one line naming the problem and the fix, and exits with status 2. The
flags, the config, the workdir and the fields are checked before JAX is imported, so such an
error costs well under a second.
"""

from __future__ import annotations

import logging as pylogging
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from dprec.cli import fail
from dprec.config import usage
from dprec.errors import UserInputError

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Config file, e.g. configs/default.py:dataset=modcloth,model=gmf,method=dpi"
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory for config, metrics and results.")
_DRY_RUN = flags.DEFINE_bool(
    "dry_run",
    False,
    "Check the config, the data (and the workdir if given), print the summary, exit.",
)
_CONFIG_HELP = flags.DEFINE_bool(
    "config_help", False, "List every config field with its default and comment, then exit."
)
_DISTRIBUTED = flags.DEFINE_bool(
    "distributed",
    False,
    "Multi-process run; JAX detects the coordinator, process count and id (SLURM, TPU VM).",
)
_COORDINATOR = flags.DEFINE_string(
    "coordinator_address", None, "Multi-process run: host:port of process 0, e.g. node0:1234."
)
_NUM_PROCESSES = flags.DEFINE_integer(
    "num_processes", None, "Multi-process run: the number of processes (default 1)."
)
_PROCESS_ID = flags.DEFINE_integer(
    "process_id", None, "Multi-process run: this process's id, 0 .. num_processes - 1."
)


def _fail(message: str) -> None:
    fail("dprec", message)


def _root_cause(err: BaseException) -> BaseException:
    while err.__cause__ is not None:
        err = err.__cause__
    return err


def _parse_flags(argv: list[str]) -> list[str]:
    if any(a in ("--config_help", "-config_help") for a in argv):
        print(usage.config_help(), end="")
        sys.exit(0)
    try:
        rest = flags.FLAGS(argv)
        if _CONFIG.value is not None:
            _CONFIG.value.keys()  # a config file loads lazily: load it here, inside the try
        return rest
    except flags.Error as err:
        _fail(str(err).splitlines()[0])
    except UserInputError as err:
        _fail(str(err))
    except Exception as err:  # a config file that fails to load: report it on one line
        cause = _root_cause(err)
        if isinstance(cause, UserInputError):
            _fail(str(cause))
        if isinstance(cause, (AttributeError, KeyError)):
            _fail(usage.unknown_field_message(argv) or f"bad config override: {cause}")
        _fail(usage.config_file_message(argv, cause))
    return []


def _distributed_flags() -> dict | None:
    """The checked multi-process flags as `sharding.initialize_distributed` arguments, or None
    for a single process."""
    coordinator, count, pid = _COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value
    if _DISTRIBUTED.value:
        if coordinator is not None or count is not None or pid is not None:
            raise UserInputError(
                "--distributed lets JAX detect the processes; drop --coordinator_address, "
                "--num_processes and --process_id, or drop --distributed"
            )
        return {"auto": True}
    if count is not None and count < 1:
        raise UserInputError(f"--num_processes must be at least 1, not {count}")
    count = 1 if count is None else count
    if count == 1:
        if coordinator is not None or pid not in (None, 0):
            raise UserInputError(
                "--coordinator_address and --process_id need --num_processes of 2 or more"
            )
        return None
    if not coordinator:
        raise UserInputError(
            f"--num_processes={count} needs --coordinator_address=HOST:PORT of process 0"
        )
    host, _, port = coordinator.rpartition(":")
    if not host or not port.isdigit():
        raise UserInputError(
            f"bad --coordinator_address {coordinator!r}; use HOST:PORT, e.g. node0:1234"
        )
    if pid is None or not 0 <= pid < count:
        shown = "missing" if pid is None else str(pid)
        raise UserInputError(
            f"--process_id must be in 0..{count - 1} for --num_processes={count}, not {shown}"
        )
    return {"coordinator": coordinator, "num_processes": count, "process_id": pid}


def _check_before_jax(config) -> None:
    """The checks that need no JAX: every config field, and the workdir."""
    from dprec.config.run_config import run_spec_from_config
    from dprec.runs import rundir

    run_spec_from_config(config)
    if _WORKDIR.value:  # a dry run may leave it out
        rundir.check_workdir(_WORKDIR.value)


def _dry_run(config) -> None:
    from dprec.config.run_config import run_spec_from_config
    from dprec.data.dataset import check_ks_against_data
    from dprec.data.registry import load_dataset

    spec = run_spec_from_config(config)
    data = load_dataset(spec.data)
    check_ks_against_data(spec.eval.ks, data)
    print(f"dprec: config and data are valid; data {spec.data.name}: {data.summary()}")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        _fail(f"unexpected arguments {argv[1:]}; pass options as --flag=value")
    if _CONFIG.value is None:
        _fail("--config is required, e.g. --config=configs/default.py (see --help)")
    if not _WORKDIR.value and not _DRY_RUN.value:
        _fail("--workdir is required, e.g. --workdir=runs/quickstart")
    if not flags.FLAGS["verbosity"].present:  # third-party INFO logs only on request
        logging.set_verbosity(logging.WARNING)
    pylogging.getLogger("dprec").setLevel(pylogging.INFO)
    try:
        distributed = _distributed_flags()
        _check_before_jax(_CONFIG.value)
        if _DRY_RUN.value:
            _dry_run(_CONFIG.value)
            return
        if distributed is not None:
            from dprec import sharding

            sharding.initialize_distributed(**distributed)  # before any JAX computation
            if not sharding.is_main_process():  # one progress log per run: process 0's
                pylogging.getLogger("dprec").setLevel(pylogging.WARNING)
        from dprec import train  # after the cheap checks: importing JAX is slow
        from dprec.runs.stop import RunStopped

        try:
            train.train_and_evaluate(_CONFIG.value, _WORKDIR.value)
        except RunStopped as stopped:
            print(f"dprec: {stopped}", file=sys.stderr)
            sys.exit(stopped.exit_status)
    except UserInputError as err:
        _fail(str(err))
    except OSError as err:  # a write outside the run's own writers (e.g. a library's cache)
        _fail(f"{err.filename or 'a file'}: {err.strerror or err} (errno {err.errno})")


def run() -> None:
    """Console entry point."""
    if any(a in ("-h", "--help", "-help", "--helpshort") for a in sys.argv[1:]):
        print(usage.help_text(), end="")
        sys.exit(0)
    app.run(main, flags_parser=_parse_flags)


if __name__ == "__main__":
    run()
