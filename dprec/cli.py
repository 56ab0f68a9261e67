"""What the command-line tools share: one-line errors and exit status 2 for user errors.

Every tool (`dprec.main`, `recommend`, `denoise_report`, `plots`, `report`, `data.profile`,
`launch/grid.py`) prints `TOOL: error: MESSAGE` on stderr and exits with status 2 for a
`UserInputError` or a bad command line.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from typing import NoReturn

from dprec.errors import UserInputError


def fail(tool: str, message: str) -> NoReturn:
    """Print `TOOL: error: MESSAGE` on stderr and exit with status 2."""
    print(f"{tool}: error: {message}", file=sys.stderr)
    sys.exit(2)


def run_tool(tool: str, body: Callable[[], int]) -> int:
    """`body()`'s exit status; a `UserInputError` is printed on one line and gives 2."""
    try:
        return body()
    except UserInputError as err:
        print(f"{tool}: error: {err}", file=sys.stderr)
        return 2


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line (the usage is in --help), exit status 2."""

    def __init__(self, *args, tool: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.tool = tool

    def add_subparsers(self, **kwargs):
        kwargs.setdefault("parser_class", functools.partial(OneLineErrorParser, tool=self.tool))
        return super().add_subparsers(**kwargs)

    def error(self, message: str) -> NoReturn:
        fail(self.tool, f"{message}; see --help")
