"""Generated documentation pages: every table a script writes for the docs starts with the
machine, the date, the commit and the exact command that produced it, and is replaced as a
whole by the next run (nobody edits its numbers by hand)."""

from __future__ import annotations

import datetime
import math
import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from dprec.errors import UserInputError
from dprec.runs.rundir import write_atomic


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def commit(repo: Path | None = None) -> str:
    """The checkout's commit (short hash, "+dirty" with uncommitted changes), or "unknown"."""
    cwd = repo or Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=cwd, capture_output=True, text=True
        )
        if head.returncode != 0:
            return "unknown"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
        ).stdout.strip()
        return head.stdout.strip() + ("+dirty" if dirty else "")
    except OSError:
        return "unknown"


def devices() -> str:
    """JAX's devices, if JAX is already imported (a page of a JAX-free script says none)."""
    jax = sys.modules.get("jax")
    if jax is None:
        return "not used"
    kinds = [d.device_kind for d in jax.devices()]
    return f"{len(kinds)} × {kinds[0]}" if kinds else "none"


def this_command(argv: list[str] | None = None) -> list[str]:
    """This process's command as a reader reruns it: `python -m dprec.x.y ARGS` for a module of
    the package run with -m, else the script's name (a console script: `dprec-report ARGS`)."""
    argv = sys.argv if argv is None else argv
    script = Path(argv[0]).resolve()
    package = Path(__file__).resolve().parents[1]
    if script.suffix == ".py" and script.is_relative_to(package):
        module = ".".join(script.relative_to(package.parent).with_suffix("").parts)
        return ["python", "-m", module.removesuffix(".__main__"), *argv[1:]]
    return [Path(argv[0]).name, *argv[1:]]


def header(title: str, command: list[str] | str | None = None) -> str:
    """The page's title and its provenance block (Markdown)."""
    command = command if command is not None else this_command()
    shown = command if isinstance(command, str) else shlex.join(command)
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"# {title}",
        "",
        "<!-- Generated: do not edit by hand; rerun the command below to replace this page. -->",
        "",
        f"- machine: {cpu_model()}, {os.cpu_count()} cores; devices: {devices()}",
        f"- date: {now}; commit: {commit()}",
        f"- command: `{shown}`",
        "",
    ]
    return "\n".join(lines)


def write_page(path: str | Path, title: str, body: str, command=None) -> Path:
    """Write `header(title, command)` + `body` to `path` atomically; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, header(title, command) + "\n" + body.rstrip() + "\n")
    return path


def provenance(command: list[str] | str | None = None) -> str:
    """One line: the date, the commit and the command (for a block inside a hand-written page)."""
    command = command if command is not None else this_command()
    shown = command if isinstance(command, str) else shlex.join(command)
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
    return f"Written by `{shown}` on {now} (commit {commit()}, {cpu_model()})."


def replace_block(path: str | Path, name: str, body: str) -> Path:
    """Replace what lies between `<!-- NAME:start -->` and `<!-- NAME:end -->` in `path` with
    `body` (atomically); a `UserInputError` when the markers are missing, nothing written."""
    path = Path(path)
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = path.read_text()
    if text.count(start) != 1 or text.count(end) != 1 or text.index(start) > text.index(end):
        raise UserInputError(f"{path} has no single {start} … {end} block; add the two markers")
    head, rest = text.split(start)
    _, tail = rest.split(end)
    write_atomic(path, f"{head}{start}\n{body.strip()}\n{end}{tail}")
    return path


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and population std (0 for one value) of a table cell's values over seeds."""
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def cell_text(values: Sequence[float]) -> str:
    """A table cell: "0.1234 ± 0.0056" over seeds, "0.1234" for one value, "–" for none."""
    if not values:
        return "–"
    mean, std = mean_std(values)
    return f"{mean:.4f}" if len(values) == 1 else f"{mean:.4f} ± {std:.4f}"
