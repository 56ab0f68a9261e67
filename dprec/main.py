"""Command line: `python -m dprec.main --config=configs/default.py[:ARGS] --workdir=DIR`.

Flags only; the work happens in `train.train_and_evaluate`. A bad input prints one line
naming the problem and the fix, and exits with status 2. The config, the workdir and the
fields are checked before JAX is imported, so such an error costs well under a second.
"""

from __future__ import annotations

import logging as pylogging
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from dprec import usage
from dprec.cli import fail
from dprec.errors import UserInputError

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Config file, e.g. configs/default.py:dataset=modcloth,model=gmf,method=dpi"
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory for config, metrics and results.")
_DRY_RUN = flags.DEFINE_bool(
    "dry_run", False, "Check the config, the workdir and the data, print the summary, exit."
)
_CONFIG_HELP = flags.DEFINE_bool(
    "config_help", False, "List every config field with its default and comment, then exit."
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


def _check_before_jax(config) -> None:
    """The checks that need no JAX: every config field, and the workdir."""
    from dprec import rundir
    from dprec.run_config import run_spec_from_config

    run_spec_from_config(config, check_names=False)
    rundir.check_workdir(_WORKDIR.value)


def _dry_run(config) -> None:
    from dprec.data.dataset import check_ks_against_data
    from dprec.data.registry import load_dataset
    from dprec.run_config import run_spec_from_config

    spec = run_spec_from_config(config)
    data = load_dataset(spec.data)
    check_ks_against_data(spec.eval.ks, data)
    print(f"dprec: config and data are valid; data {spec.data.name}: {data.summary()}")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        _fail(f"unexpected arguments {argv[1:]}; pass options as --flag=value")
    if _CONFIG.value is None:
        _fail("--config is required, e.g. --config=configs/default.py (see --help)")
    if not _WORKDIR.value:
        _fail("--workdir is required, e.g. --workdir=runs/quickstart")
    if not flags.FLAGS["verbosity"].present:  # third-party INFO logs only on request
        logging.set_verbosity(logging.WARNING)
    pylogging.getLogger("dprec").setLevel(pylogging.INFO)
    try:
        _check_before_jax(_CONFIG.value)
        if _DRY_RUN.value:
            _dry_run(_CONFIG.value)
            return
        from dprec import train  # after the cheap checks: importing JAX is slow

        train.train_and_evaluate(_CONFIG.value, _WORKDIR.value)
    except UserInputError as err:
        _fail(str(err))


def run() -> None:
    """Console entry point."""
    if any(a in ("-h", "--help", "-help", "--helpshort") for a in sys.argv[1:]):
        print(usage.help_text(), end="")
        sys.exit(0)
    app.run(main, flags_parser=_parse_flags)


if __name__ == "__main__":
    run()
