"""Command line: `python -m dprec.main --config=configs/default.py[:ARGS] --workdir=DIR`.

Flags only; the work happens in `train.train_and_evaluate`. A bad input prints one line
naming the problem and the fix, and exits with status 2.
"""

from __future__ import annotations

from absl import app, flags, logging
from ml_collections import config_flags

from dprec.cli import fail
from dprec.errors import UserInputError

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Config file, e.g. configs/default.py:dataset=modcloth,model=gmf,method=dpi"
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory for config, metrics and results.")


def _fail(message: str) -> None:
    fail("dprec", message)


def _parse_flags(argv: list[str]) -> list[str]:
    try:
        return flags.FLAGS(argv)
    except flags.Error as err:
        _fail(str(err).splitlines()[0])
    except UserInputError as err:
        _fail(str(err))
    except Exception as err:  # a config file that fails to load: report it on one line
        cause = err
        while cause.__cause__ is not None:
            cause = cause.__cause__
        if isinstance(cause, UserInputError):
            _fail(str(cause))
        _fail(f"cannot load --config: {type(cause).__name__}: {str(cause).splitlines()[0]}")
    return []


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        _fail(f"unexpected arguments {argv[1:]}; pass options as --flag=value")
    if _CONFIG.value is None:
        _fail("--config is required, e.g. --config=configs/default.py")
    if not _WORKDIR.value:
        _fail("--workdir is required, e.g. --workdir=runs/quickstart")
    from dprec import train  # after flag parsing: importing JAX is slow

    logging.set_verbosity(logging.INFO)
    try:
        train.train_and_evaluate(_CONFIG.value, _WORKDIR.value)
    except UserInputError as err:
        _fail(str(err))


def run() -> None:
    """Console entry point."""
    app.run(main, flags_parser=_parse_flags)


if __name__ == "__main__":
    run()
