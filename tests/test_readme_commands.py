"""Every shell command of README.md and docs/**/*.md is run by a test or explicitly marked.

Each command line of a ```bash block (continuation lines joined, comment lines skipped, `&&`
chains split into their commands) must be one of:

- a training command (`python -m dprec.main`, `dprec-train`, `python -m dprec train`): run with
  `--dry_run` (config, workdir and data; nothing written). Paths that only exist on a reader's
  machine (`/data/...`, `clicks.csv.gz`) are replaced by small files of the same layout. The
  quickstart and the own-log example also train for a few epochs;
- a tool command (a `dprec-*` console script, `python -m dprec TOOL`, `python -m dprec.MODULE`,
  `python launch|benchmarks|examples/FILE.py`, `python -m pytest`, `ruff`, `mkdocs`): run with
  its positional arguments and `--help`, which must exit 0 and list every `--option` the
  command uses;
- `pip install` of this checkout: every extra it names is in pyproject.toml;
- a line ending in `# tested: tests/FILE.py`: that test file exists and names the command;
- a line ending in `# needs: WHAT`: it cannot run here (a cluster, data that is not shipped).

`test_every_bash_line_is_checked_or_marked` fails on any other line.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, SHARED_DATA, run_main

DOC_FILES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
QUICKSTART = "python -m dprec.main --config=configs/default.py --workdir=runs/quickstart"
TEST_COMMAND = 'pip install -e ".[test]" && python -m pytest'
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
CONSOLE_SCRIPTS = PYPROJECT["project"]["scripts"]  # dprec-TOOL -> "module:function"
EXTRAS = set(PYPROJECT["project"]["optional-dependencies"])
# `python PATH.py` commands may run the repository's scripts in these folders.
SCRIPT_FOLDERS = ("launch", "benchmarks", "examples")
EXTERNAL_TOOLS = ("pytest", "ruff", "mkdocs")
HELP_FLAGS = {"--help", "--config_help"}  # a training command with these only prints text

_FENCE = re.compile(r"^(?P<indent>[ \t]*)```bash[ \t]*\n(?P<body>.*?)^(?P=indent)```", re.M | re.S)
_MARK = re.compile(r"\s#\s*(?P<kind>needs|tested):\s*(?P<what>.*)$")
_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


@dataclasses.dataclass(frozen=True)
class Line:
    """One command line of a ```bash block: `text` without its marker comment."""

    where: str  # file:line
    text: str
    mark: str | None  # "needs" | "tested" | None
    mark_what: str


@dataclasses.dataclass(frozen=True)
class Command:
    """One command of a line (a part of an `&&` chain), classified.

    kind: "train" | "help" | "pip" | "external" | None (none of these); target: what runs
    (the console script's "module:function", a module, a script path, an external program);
    args: the arguments after the program.
    """

    text: str
    kind: str | None
    target: str = ""
    args: tuple[str, ...] = ()


def bash_lines(path: Path) -> list[Line]:
    """The command lines of the ```bash blocks of `path` (continuations joined)."""
    text = path.read_text()
    lines = []
    for block in _FENCE.finditer(text):
        first = text.count("\n", 0, block.start("body")) + 1
        indent = len(block["indent"])
        raw = [line[indent:] for line in block["body"].splitlines()]
        number, pending = first, ""
        for offset, line in enumerate(raw):
            pending += line
            if pending.endswith("\\"):
                pending = pending[:-1] + " "
                continue
            start, pending = pending.strip(), ""
            where = f"{path.relative_to(REPO) if path.is_relative_to(REPO) else path}:{number}"
            number = first + offset + 1
            if not start or start.startswith("#"):
                continue
            mark = _MARK.search(start)
            if mark:
                start = start[: mark.start()].strip()
            elif " #" in start:  # a plain trailing comment
                start = start[: start.index(" #")].strip()
            kind, what = (mark["kind"], mark["what"].strip()) if mark else (None, "")
            lines.append(Line(where, re.sub(r"\s+", " ", start), kind, what))
    return lines


def classify(text: str) -> Command:
    """What kind of command `text` is (see the module docstring)."""
    tokens = shlex.split(text)
    while tokens and _ENV.match(tokens[0]):
        tokens = tokens[1:]  # VAR=value prefixes
    if not tokens:
        return Command(text, None)
    head, rest = tokens[0], tokens[1:]
    if head == "python" and rest[:1] == ["-m"] and len(rest) > 1:
        module, args = rest[1], tuple(rest[2:])
        if module == "dprec.main" and not HELP_FLAGS & set(args):
            return Command(text, "train", "dprec.main", args)
        if module == "dprec" and args[:1] == ("train",):
            return Command(text, "train", "dprec.main", args[1:])
        if module == "dprec" or module.startswith("dprec."):
            return Command(text, "help", f"module:{module}", args)
        if module in EXTERNAL_TOOLS:
            return Command(text, "external", module, args)
        return Command(text, None)
    if head == "python" and rest and rest[0].endswith(".py"):
        path = Path(rest[0])
        if path.parts[0] in SCRIPT_FOLDERS and (REPO / path).is_file():
            return Command(text, "help", f"path:{path}", tuple(rest[1:]))
        return Command(text, None)
    if head == "dprec-train":
        return Command(text, "train", "dprec.main", tuple(rest))
    if head in CONSOLE_SCRIPTS:
        return Command(text, "help", f"entry:{head}", tuple(rest))
    if head in EXTERNAL_TOOLS:
        return Command(text, "external", head, tuple(rest))
    if head == "pip" and rest[:1] == ["install"]:
        return Command(text, "pip", "pip", tuple(rest[1:]))
    return Command(text, None)


def commands_of(line: Line) -> list[Command]:
    return [classify(part.strip()) for part in line.text.split("&&")]


LINES = [line for path in DOC_FILES for line in bash_lines(path)]


def _unique(kind: str) -> list[tuple[str, Command]]:
    """(first place, command) of every distinct unmarked command of `kind`, in document order."""
    seen: dict[str, tuple[str, Command]] = {}
    for line in LINES:
        if line.mark is None:
            for command in commands_of(line):
                if command.kind == kind:
                    seen.setdefault(command.text, (line.where, command))
    return list(seen.values())


TRAIN = _unique("train")
HELP = _unique("help")
PIP = _unique("pip")
EXTERNAL = _unique("external")
TESTED = [line for line in LINES if line.mark == "tested"]


def _ids(cases):
    return [where for where, _ in cases]


# --- the meta tests -----------------------------------------------------------------------------


def test_every_bash_line_is_checked_or_marked():
    unchecked = [
        f"{line.where}: {line.text}"
        for line in LINES
        if line.mark is None and any(c.kind is None for c in commands_of(line))
    ]
    assert not unchecked, (
        "these ```bash lines are neither a training, tool or pip command nor marked "
        "`# needs: WHAT` / `# tested: tests/FILE.py`:\n" + "\n".join(unchecked)
    )


def test_the_parser_finds_the_commands_this_file_checks():
    """A guard on the block parser: the docs' commands are found, the quickstart first."""
    readme = [line for line in LINES if line.where.startswith("README.md")]
    readme_train = [c.text for line in readme for c in commands_of(line) if c.kind == "train"]
    assert readme_train[0] == QUICKSTART
    assert len(TRAIN) >= 10 and len(HELP) >= 20
    assert any("dataset=table" in command.text for _, command in TRAIN)
    assert any(line.mark == "needs" for line in LINES) and TESTED


def test_the_parser_joins_lines_splits_chains_and_reads_marks(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "text\n\n  ```bash\n  # a comment\n  dprec-report runs \\\n      --out r  # plain\n"
        "  pip install -e . && python -m dprec.main --config=c --help\n"
        "  sbatch job.sh  # needs: a cluster\n  sbatch job.sh\n  ```\n\n```text\nls\n```\n"
    )
    lines = bash_lines(page)
    assert [(line.where.rsplit(":")[-1], line.text, line.mark) for line in lines] == [
        ("5", "dprec-report runs --out r", None),
        ("7", "pip install -e . && python -m dprec.main --config=c --help", None),
        ("8", "sbatch job.sh", "needs"),
        ("9", "sbatch job.sh", None),
    ]
    kinds = [[command.kind for command in commands_of(line)] for line in lines]
    assert kinds == [["help"], ["pip", "help"], [None], [None]]
    assert classify("DECA_DIR=x python -m dprec.main --config=c --workdir=w").kind == "train"
    assert classify("python launch/grid.py --help").target == "path:launch/grid.py"
    assert classify("python not/a/script.py").kind is None


def test_the_readme_has_one_test_command_and_ci_runs_it():
    readme = [line.text for line in LINES if line.where.startswith("README.md")]
    assert [text for text in readme if "python -m pytest" in text] == [TEST_COMMAND]
    assert "python -m pytest" in (REPO / ".ci" / "run").read_text()


# --- training commands: --dry_run ---------------------------------------------------------------


def write_denoisingrec(prefix, n_users=40, n_items=30, value=5):
    rng = np.random.default_rng(0)
    for suffix, rows in ((".train.rating", 300), (".valid.rating", 60), (".test.negative", 60)):
        users = rng.integers(0, n_users, rows)
        items = rng.integers(0, n_items, rows)
        values = rng.choice([1, value], rows) if value > 1 else rng.integers(0, 2, rows)
        lines = [f"{u}\t{i}\t{v}" for u, i, v in zip(users, items, values, strict=True)]
        prefix.parent.mkdir(parents=True, exist_ok=True)
        (prefix.parent / (prefix.name + suffix)).write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def stand_ins(tmp_path_factory):
    """Docs path → a small file (or DenoisingRec prefix) of the same layout."""
    from dprec.data.planted import plant

    root = tmp_path_factory.mktemp("docs-data")
    write_denoisingrec(root / "adressa" / "adressa", value=1)
    write_denoisingrec(root / "electronics" / "electronics_5")
    write_denoisingrec(root / "yelp" / "yelp")
    rng = np.random.default_rng(1)
    clicks = pd.DataFrame(
        {
            "uid": [f"u{u}" for u in rng.integers(0, 150, 3000)],
            "sku": [f"s{i}" for i in rng.integers(0, 60, 3000)],
            "stars": rng.integers(1, 6, 3000),
        }
    )
    clicks.to_csv(root / "clicks.csv.gz", index=False)
    # what `python -m dprec.tools.plant_data --world latent ...` writes, at a small size
    latent = plant("popularity", 0.4, world="latent", n_users=300, n_items=80, top_m=20).frame
    latent = latent.rename(columns={"user": "user_id", "item": "item_id"})
    latent.to_csv(root / "latent-popularity-0.4.csv.gz", index=False)
    return {
        "/data/DenoisingRec/adressa": str(root / "adressa"),
        "/data/DeCA/electronics/electronics_5": str(root / "electronics" / "electronics_5"),
        "/data/DenoisingRec/yelp": str(root / "yelp"),
        "clicks.csv.gz": str(root / "clicks.csv.gz"),
        "latent-popularity-0.4.csv.gz": str(root / "latent-popularity-0.4.csv.gz"),
    }


def as_args(command: Command, stand_ins: dict[str, str], workdir) -> list[str]:
    """The command's flags with stand-in paths and `workdir` as its --workdir."""
    out, args = [], list(command.args)
    while args:
        arg = args.pop(0)
        key, sep, value = arg.partition("=")
        if not sep and key == "--workdir" and args:  # --workdir DIR
            key, sep, value = key, "=", args.pop(0)
            arg = f"{key}={value}"
        if sep and value in stand_ins:
            arg = f"{key}={stand_ins[value]}"
        if key == "--workdir":
            arg = f"--workdir={workdir}"
        out.append(arg)
    return out


def _needs_shared_data(command: Command) -> bool:
    return any(f"dataset={name}" in command.text for name in ("modcloth", "ml-100k"))


@pytest.fixture(scope="module")
def dry_runs(stand_ins, tmp_path_factory):
    """command text → (process, its workdir) of every training command's --dry_run, run a few
    at a time (each is a fresh process that reads its data)."""
    root = tmp_path_factory.mktemp("dry-runs")

    def dry_run(index_command):
        index, (_, command) = index_command
        workdir = root / f"run{index}"
        return command.text, (run_main(*as_args(command, stand_ins, workdir), "--dry_run"), workdir)

    cases = [
        (i, case)
        for i, case in enumerate(TRAIN)
        if SHARED_DATA.is_dir() or not _needs_shared_data(case[1])
    ]
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        return dict(pool.map(dry_run, cases))


@pytest.mark.parametrize("case", TRAIN, ids=_ids(TRAIN))
def test_training_command_passes_its_checks(case, dry_runs):
    where, command = case
    if _needs_shared_data(command) and not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not available")
    proc, workdir = dry_runs[command.text]
    assert proc.returncode == 0, f"{where}: {command.text}\n{proc.stderr}"
    assert "config and data are valid" in proc.stdout
    assert not workdir.exists(), "--dry_run must write nothing"


def test_own_log_example_trains(stand_ins, tmp_path):
    """The own-log example: a CSV without a truth column trains to results (issue 11.10)."""
    command = next(c for _, c in TRAIN if "dataset=table" in c.text and "clicks" in c.text)
    proc = run_main(*as_args(command, stand_ins, tmp_path / "run"), "--config.train.num_epochs=2")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "run" / "results.json").is_file()


def test_quickstart_prints_a_few_lines_and_where_the_results_are(tmp_path):
    """A run prints dprec's own lines only: the data summary, one line per epoch, the test
    line and the results path; no orbax INFO flood, no 'Unable to initialize backend'."""
    command = classify(QUICKSTART)
    epochs = 4
    workdir = tmp_path / "quickstart"
    # Popularity only: the other references' grids (20 s of this test) print nothing more.
    proc = run_main(
        *as_args(command, {}, workdir),
        f"--config.train.num_epochs={epochs}",
        "--config.eval.references=popularity",
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) <= epochs + 4, proc.stderr
    assert sum(bool(re.search(r"\] epoch \d+/", line)) for line in lines) == epochs
    assert not [line for line in lines if "orbax" in line or "backend" in line]
    assert lines[-1].endswith(f"results: {workdir}/results.json (table: {workdir}/results.md)")


def test_verbosity_flag_restores_third_party_logs(tmp_path):
    proc = run_main(
        "--config=configs/tiny.py",
        "--config.train.num_epochs=1",
        "--verbosity=0",
        f"--workdir={tmp_path / 'run'}",
    )
    assert proc.returncode == 0, proc.stderr
    assert "checkpoint" in proc.stderr.lower()  # orbax's INFO lines are back


# --- tool commands: --help -----------------------------------------------------------------------

# Runs each (kind, target, argv) of a JSON list in this one process (JAX and dprec imported
# once), catching SystemExit, and writes [[exit status, output], ...] to the file argv[1].
_HELP_RUNNER = r"""
import contextlib, importlib, io, json, os, runpy, sys

calls, results = json.loads(sys.stdin.read()), []
for kind, target, argv in calls:
    out, status, saved = io.StringIO(), 0, (sys.argv, sys.path)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            if kind == "entry":
                name, spec = target
                module, _, function = spec.partition(":")
                sys.argv = [name, *argv]
                status = getattr(importlib.import_module(module), function)() or 0
            elif kind == "module":
                sys.argv = [target, *argv]
                runpy.run_module(target, run_name="__main__", alter_sys=True)
            else:  # a script: its folder comes first on sys.path, as `python PATH` puts it
                sys.argv, sys.path = [target, *argv], [os.path.dirname(target), *sys.path]
                runpy.run_path(target, run_name="__main__")
    except SystemExit as stop:
        status = stop.code if isinstance(stop.code, int) else int(stop.code is not None)
    except BaseException as err:  # noqa: BLE001 (reported as the call's result)
        status = f"{type(err).__name__}: {err}"
    finally:
        sys.argv, sys.path = saved
    results.append([status, out.getvalue()])
with open(sys.argv[1], "w") as handle:
    json.dump(results, handle)
"""


def positionals(args: tuple[str, ...]) -> list[str]:
    """The arguments before the first option: a subcommand and its positional arguments."""
    out = []
    for arg in args:
        if arg.startswith("-"):
            break
        out.append(arg)
    return out


def options(args: tuple[str, ...]) -> set[str]:
    """The long options a command uses (`--help` itself aside)."""
    return {arg.partition("=")[0] for arg in args if arg.startswith("--")} - {"--help"}


def help_call(command: Command) -> tuple[str, object, list[str]]:
    kind, _, target = command.target.partition(":")
    argv = [*positionals(command.args), "--help"]
    if kind == "entry":
        return kind, [target, CONSOLE_SCRIPTS[target]], argv
    return kind, target, argv


@pytest.fixture(scope="module")
def helps(tmp_path_factory):
    """command text → (exit status, output) of its `--help`, all in one process."""
    calls, keys = [], {}
    for _, command in HELP:
        call = help_call(command)
        key = json.dumps(call)
        if key not in keys:
            keys[key] = len(calls)
            calls.append(call)
    out = tmp_path_factory.mktemp("helps") / "results.json"
    proc = subprocess.run(
        [sys.executable, "-c", _HELP_RUNNER, str(out)],
        input=json.dumps(calls),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    results = json.loads(out.read_text())
    return {c.text: results[keys[json.dumps(help_call(c))]] for _, c in HELP}


@pytest.mark.parametrize("case", HELP, ids=_ids(HELP))
def test_tool_command_has_help_listing_its_options(case, helps):
    where, command = case
    status, output = helps[command.text]
    assert status == 0, f"{where}: {command.text} --help\n{status}\n{output}"
    missing = sorted(opt for opt in options(command.args) if opt not in output)
    assert not missing, f"{where}: {command.text}: --help lists no {missing}\n{output}"


def _external_argv(command: Command) -> list[str]:
    subcommand = [a for a in command.args[:1] if re.fullmatch(r"[a-z]+", a)]
    if command.target == "ruff":
        program = [shutil.which("ruff") or "ruff"]
    else:
        program = [sys.executable, "-m", command.target]
    return [*program, *subcommand, "--help"]


@pytest.mark.parametrize("case", EXTERNAL, ids=_ids(EXTERNAL))
def test_external_tool_command_has_help_listing_its_options(case):
    where, command = case
    proc = subprocess.run(
        _external_argv(command), cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, f"{where}: {command.text}\n{proc.stderr}"
    missing = sorted(opt for opt in options(command.args) if opt not in proc.stdout)
    assert not missing, f"{where}: {command.text}: --help lists no {missing}"


# --- pip and marked lines ---------------------------------------------------------------------


@pytest.mark.parametrize("case", PIP, ids=_ids(PIP))
def test_pip_installs_this_checkout_with_extras_that_exist(case):
    where, command = case
    args = [arg for arg in command.args if arg != "-e"]
    assert len(args) == 1 and re.fullmatch(r"\.(\[[a-z,]+\])?", args[0]), f"{where}: {command}"
    extras = set(re.findall(r"[a-z]+", args[0]))
    assert extras <= EXTRAS, f"{where}: no extra {sorted(extras - EXTRAS)} in pyproject.toml"


@pytest.mark.parametrize("line", TESTED, ids=[line.where for line in TESTED])
def test_a_tested_mark_names_a_test_that_runs_the_command(line):
    test_file = REPO / line.mark_what.split()[0]
    assert test_file.is_file() and test_file.parent.name == "tests", line.where
    tokens = shlex.split(line.text)
    name = next((Path(t).name for t in tokens if t.endswith(".py")), tokens[0])
    assert name in test_file.read_text(), f"{line.where}: {test_file.name} never names {name}"
