"""The `--page FILE` option of the benchmark scripts (a helper, not a script).

What a script prints (its table, the load average, the notes under it) is also written to
FILE as a generated page: `dprec.runs.pages.write_page`'s header (machine, date, commit, the
command) above the printed text, kept verbatim in a `text` block so that its columns stay
aligned. A run that fails writes no page, so a page always holds a whole run's output.
dprec is imported only to write a page (profile_authors_gmf.py runs in the authors' own
environment).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
from collections.abc import Iterator
from pathlib import Path


def add_page_option(parser: argparse.ArgumentParser) -> None:
    """Add `--page FILE` to a script's parser."""
    parser.add_argument(
        "--page",
        type=Path,
        metavar="FILE",
        help="also write the printed output to FILE as a generated page (machine, date, "
        "commit and command at its head), e.g. docs/benchmarks/NAME.md",
    )


def script_command(argv: list[str] | None = None) -> list[str]:
    """The command as a reader reruns it from the checkout: `python benchmarks/NAME.py ARGS`."""
    argv = sys.argv if argv is None else argv
    return ["python", f"benchmarks/{Path(argv[0]).name}", *argv[1:]]


def page_body(printed: str) -> str:
    """The printed text as a Markdown `text` block."""
    return "```text\n" + printed.strip("\n") + "\n```\n"


class _Tee(io.TextIOBase):
    """A text stream that writes to each of `streams`."""

    def __init__(self, *streams) -> None:
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
        return len(text)

    def flush(self) -> None:
        for stream in self.streams:
            stream.flush()


@contextlib.contextmanager
def printed_page(page: Path | None, title: str, command: list[str] | None = None) -> Iterator[None]:
    """Inside the block, what is printed to stdout is also kept; at the block's normal end it is
    written to `page` under `title` and `command` (default `script_command()`), and nothing is
    written without a page or when the block raises."""
    if page is None:
        yield
        return
    command = command or script_command()
    kept = io.StringIO()
    with contextlib.redirect_stdout(_Tee(sys.stdout, kept)):
        yield
    from dprec.runs.pages import write_page

    write_page(page, title, page_body(kept.getvalue()), command=command)
