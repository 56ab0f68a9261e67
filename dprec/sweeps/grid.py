"""Expand a hyper-parameter grid into dprec runs, run them (or write a job array), select the best.

    dprec-grid --config "configs/default.py:dataset=modcloth,model=gmf,method=dpi" \
        --out runs/grid-gmf-dpi --grid method.c1=1,10,100,1000 --grid method.c2=1,10,100,1000 \
        --grid method.alpha=0,0.5,1 --grid seed=0 [--set train.num_epochs=40] [--jobs 2] [--dry-run]
    dprec-grid ... --array-script runs/grid.sh   # a SLURM-style job array instead
    dprec-grid --select runs/grid-gmf-dpi --metric recall@20 [--by metric|loss|trimmed_loss] \
        [--seeds 0,1,2 --out runs/best-gmf-dpi]            # best by validation, rerun over seeds
    dprec-grid --config "configs/default.py:dataset=modcloth,model=gmf" \
        --out runs/modcloth-gmf --grid preset.method=normal,wbpr,tce,rce,dpi,dvae \
        --grid seed=0,1,2                                  # compare methods, each with its presets

Every grid point is one ordinary `python -m dprec.main --config=CONFIG --workdir=OUT/NAME
--config.KEY=VALUE ...` subprocess run from the current directory; NAME is readable from the
point's overrides (`c1=100,c2=10,alpha=0.5,seed=0`). `preset.KEY` grid keys (dataset, model,
method, mode) go into the config argument instead, so each point gets that triple's presets.
Runs whose results.json exists are skipped, so an interrupted grid resumes. OUT/grid.json
indexes the grid: the config, the fixed `--set` overrides and {NAME: overrides}; `--select`
reads it back. Child output goes to OUT/logs/NAME.log. Bad input prints one line and exits
with status 2; a failed run makes the exit status 1 after every other run has finished.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import hashlib
import itertools
import json
import math
import os
import re
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import dprec
from dprec.cli import OneLineErrorParser, run_tool
from dprec.errors import UserInputError
from dprec.runs import finished, rundir

# The folder that holds the `dprec` package (a checkout's root, or site-packages): runs get it
# on PYTHONPATH, so they import this dprec, not another copy.
PACKAGE_PARENT = Path(dprec.__file__).resolve().parents[1]
# The config entry files shipped with the package (`configs/NAME.py` falls back to these).
TEMPLATES = Path(__file__).resolve().parents[1] / "config" / "templates"
INDEX_FILE = "grid.json"
LOG_DIR = "logs"
SEED_KEY = "seed"
PRESET_PREFIX = "preset."  # grid keys that go into the config argument (dataset, model, ...)
_KEY = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
_UNSAFE = re.compile(r"[^A-Za-z0-9._,=+-]")
_MAX_NAME = 200  # below the usual 255-byte file-name limit, leaving room for a hash suffix
_PRINT_LOCK = threading.Lock()


class GridError(UserInputError):
    """Bad command-line input or run directory; the message is the one line to print."""


# ---------------------------------------------------------------------------------------------
# Grid expansion and names (pure)


def parse_assignment(text: str) -> tuple[str, list[str]]:
    """'method.c1=1,10,100' → ('method.c1', ['1', '10', '100']).

    Values are separated by commas, or by semicolons when the text has one (for values that
    contain commas themselves, e.g. 'eval.ks=5,20;10,50').
    """
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not _KEY.fullmatch(key):
        raise GridError(f"bad assignment {text!r}; use KEY=VALUE[,VALUE...], e.g. method.c1=1,10")
    values = [v.strip() for v in raw.split(";" if ";" in raw else ",")]
    if not raw.strip() or any(not v for v in values):
        raise GridError(f"empty value in {text!r}; give at least one value and no empty ones")
    return key, values


def parse_grid(assignments: Iterable[str]) -> dict[str, list[str]]:
    """The `--grid` arguments as {key: values}, in command-line order; a key at most once."""
    grid: dict[str, list[str]] = {}
    for text in assignments:
        key, values = parse_assignment(text)
        if key in grid:
            raise GridError(f"--grid {key} given twice; list all its values in one --grid")
        grid[key] = values
    return grid


def parse_set(assignments: Iterable[str]) -> dict[str, str]:
    """The `--set KEY=VALUE` arguments as {key: value} (one value each; a later one wins)."""
    fixed: dict[str, str] = {}
    for text in assignments:
        key, sep, value = text.partition("=")
        key = key.strip()
        if not sep or not _KEY.fullmatch(key) or not value.strip():
            raise GridError(f"bad --set {text!r}; use KEY=VALUE, e.g. train.num_epochs=40")
        fixed[key] = value.strip()
    return fixed


def expand_grid(grid: dict[str, list[str]]) -> list[dict[str, str]]:
    """Every combination of the grid's values, the last key varying fastest ([{}] for {})."""
    keys = list(grid)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*grid.values())]


def _labels(keys: Sequence[str]) -> dict[str, str]:
    """Short key labels for names: the last component, unless two keys share it."""
    last = [key.rsplit(".", 1)[-1] for key in keys]
    return {
        key: short if last.count(short) == 1 else key for key, short in zip(keys, last, strict=True)
    }


def sanitise(name: str) -> str:
    """A file-system-safe directory name (unsafe characters → '_', long names hashed)."""
    safe = _UNSAFE.sub("_", name)
    if safe in ("", ".", ".."):
        safe = f"_{safe}"
    if len(safe) > _MAX_NAME:
        digest = hashlib.sha1(name.encode()).hexdigest()[:10]
        safe = f"{safe[: _MAX_NAME - 11]}-{digest}"
    return safe


def run_name(overrides: dict[str, str]) -> str:
    """'c1=100,c2=10,alpha=0.5,seed=0' for {'method.c1': '100', ..., 'seed': '0'}."""
    if not overrides:
        return "default"
    labels = _labels(list(overrides))
    return sanitise(",".join(f"{labels[key]}={value}" for key, value in overrides.items()))


def name_points(points: Iterable[dict[str, str]]) -> dict[str, dict[str, str]]:
    """{run name: overrides}; two points whose names collide are an error."""
    named: dict[str, dict[str, str]] = {}
    for overrides in points:
        name = run_name(overrides)
        if name in named:
            raise GridError(f"grid points {named[name]} and {overrides} share the name {name}")
        named[name] = overrides
    return named


# ---------------------------------------------------------------------------------------------
# Plans: what to run, where, and the commands


@dataclasses.dataclass(frozen=True)
class Plan:
    """A set of runs of one config: fixed overrides for all, and {name: overrides} per run."""

    config: str
    out: Path
    fixed: dict[str, str]
    points: dict[str, dict[str, str]]


def find_config_file(file: str, cwd: Path | None = None) -> Path | None:
    """The config file `file` names: from `cwd` (default the current directory), else the
    package's template of that name for `configs/NAME.py` (an install without a checkout)."""
    path = Path(file).expanduser()
    if path.is_absolute():
        return path if path.is_file() else None
    here = (cwd or Path.cwd()) / path
    if here.is_file():
        return here
    template = TEMPLATES / path.name
    if path.parent in (Path("configs"), Path(".")) and template.is_file():
        return template
    return None


def resolve_config(arg: str, cwd: Path | None = None) -> str:
    """The --config argument with its file made valid from `cwd` (the runs' working directory).

    A file under `cwd` is kept relative to it (readable, portable commands); a packaged
    template is given by its absolute path.
    """
    file, sep, rest = arg.partition(":")
    cwd = cwd or Path.cwd()
    path = find_config_file(file, cwd)
    if path is None:
        raise GridError(f"config file {file!r} not found; e.g. --config configs/default.py")
    path = path.resolve()
    shown = path.relative_to(cwd.resolve()) if path.is_relative_to(cwd.resolve()) else path
    return f"{shown}{sep}{rest}"


def is_complete(run_dir: Path) -> bool:
    """A run is complete iff its results.json exists (dprec writes it last, atomically)."""
    return (run_dir / rundir.RESULTS_FILE).is_file()


def pending_runs(out: Path, names: Iterable[str]) -> list[str]:
    """The names (in order) whose run directory under `out` has no results.json yet."""
    return [name for name in names if not is_complete(Path(out) / name)]


def config_with_presets(config: str, presets: dict[str, str]) -> str:
    """The config argument with `preset.KEY=VALUE` overrides merged into its `:k=v,...` part.

    'configs/default.py:dataset=modcloth,method=dpi' + {'preset.method': 'tce'} →
    'configs/default.py:dataset=modcloth,method=tce': a grid over `preset.method` compares
    methods, each with its own presets (C1, C2, α, λ0, epochs, ...).
    """
    if not presets:
        return config
    file, _, rest = config.partition(":")
    choice = dict(part.split("=", 1) for part in filter(None, rest.split(",")))
    choice.update({key.removeprefix(PRESET_PREFIX): value for key, value in presets.items()})
    return f"{file}:" + ",".join(f"{key}={value}" for key, value in choice.items())


def command(plan: Plan, name: str, python: str = sys.executable) -> list[str]:
    """The dprec.main command line of one run (to run from the grid's working directory)."""
    overrides = {**plan.fixed, **plan.points[name]}
    return run_command(python, plan.config, str(Path(plan.out).resolve() / name), overrides)


def run_command(
    python: str, config: str, workdir: str, overrides: dict[str, str], flags: Sequence[str] = ()
) -> list[str]:
    """`PYTHON -m dprec.main [FLAGS] --config=CONFIG --workdir=WORKDIR --config.KEY=VALUE ...`;
    `preset.KEY` overrides go into the config argument."""
    presets = {k: v for k, v in overrides.items() if k.startswith(PRESET_PREFIX)}
    return [
        python,
        "-m",
        "dprec.main",
        *flags,
        f"--config={config_with_presets(config, presets)}",
        f"--workdir={workdir}",
        *(f"--config.{key}={value}" for key, value in overrides.items() if key not in presets),
    ]


def read_index(out: Path) -> dict[str, Any] | None:
    """OUT/grid.json, or None where there is none."""
    path = Path(out) / INDEX_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise GridError(f"cannot read {path}: {err}; fix or remove it") from err


def merged_index(plan: Plan, existing: dict[str, Any] | None) -> dict[str, Any]:
    """The index of `plan`, keeping the runs an earlier grid of the same config listed."""
    runs: dict[str, Any] = {}
    if existing is not None:
        if existing.get("config") != plan.config or existing.get("set") != plan.fixed:
            raise GridError(
                f"{plan.out} holds a grid of another config or --set "
                f"({existing.get('config')}, {existing.get('set')}); use another --out"
            )
        runs.update(existing.get("runs", {}))
    runs.update(plan.points)
    return {"config": plan.config, "set": plan.fixed, "runs": runs}


def write_index(plan: Plan) -> None:
    """Create OUT and write (atomically) its grid.json; run directories are left to dprec."""
    plan.out.mkdir(parents=True, exist_ok=True)
    index = merged_index(plan, read_index(plan.out))
    rundir.write_json(plan.out / INDEX_FILE, index)


# ---------------------------------------------------------------------------------------------
# Running


def say(line: str) -> None:
    """One status line; the lock keeps the lines of parallel runs whole."""
    with _PRINT_LOCK:
        print(line, flush=True)


def child_env(jobs: int) -> dict[str, str]:
    """The runs' environment: with parallel runs, JAX must not preallocate GPU memory.

    By default every JAX process grabs 75 % of the GPU memory, so a second run on the same
    GPU would fail at start-up.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE_PARENT), env.get("PYTHONPATH")]))
    if jobs > 1:
        env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    return env


def _last_line(path: Path) -> str:
    lines = path.read_text(errors="replace").strip().splitlines() if path.exists() else []
    return lines[-1][:200] if lines else ""


def run_one(plan: Plan, name: str, env: dict[str, str]) -> int:
    """Run one point as a subprocess (output to OUT/logs/NAME.log); return its exit status."""
    log = plan.out / LOG_DIR / f"{name}.log"
    say(f"started {name}")
    start = time.perf_counter()
    with open(log, "w") as handle:
        rc = subprocess.call(
            command(plan, name),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    seconds = time.perf_counter() - start
    if rc == 0:
        say(f"done {name} rc=0 {seconds:.1f}s")
    else:
        say(f"FAILED {name} rc={rc} {seconds:.1f}s (log {log}: {_last_line(log)})")
    return rc


def execute(plan: Plan, jobs: int) -> int:
    """Run the pending points, `jobs` at a time; print a summary; 1 if any run failed, else 0."""
    write_index(plan)
    (plan.out / LOG_DIR).mkdir(exist_ok=True)
    todo = pending_runs(plan.out, plan.points)
    for name in plan.points:
        if name not in todo:
            say(f"skipped {name} (results.json exists)")
    env = child_env(jobs)
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        statuses = list(pool.map(lambda name: run_one(plan, name, env), todo))
    failed = [name for name, rc in zip(todo, statuses, strict=True) if rc != 0]
    say(
        f"grid: {len(plan.points)} runs: {len(todo) - len(failed)} done, "
        f"{len(plan.points) - len(todo)} skipped, {len(failed)} failed"
        + (f" ({', '.join(failed)})" if failed else "")
    )
    say(
        f"wrote {plan.out / INDEX_FILE}, {len(todo)} logs in {plan.out / LOG_DIR} and the run "
        f"directories {plan.out}/NAME"
    )
    return 1 if failed else 0


def dry_run(plan: Plan) -> int:
    """Print what would run (commands) and what would be skipped; write nothing."""
    todo = pending_runs(plan.out, plan.points)
    for name in plan.points:
        if name in todo:
            say(shlex.join(command(plan, name)))
        else:
            say(f"skipped {name} (results.json exists)")
    skipped = len(plan.points) - len(todo)
    say(f"grid: {len(plan.points)} runs: {len(todo)} to run, {skipped} skipped")
    return 0


# ---------------------------------------------------------------------------------------------
# Job-array script


def array_script(plan: Plan, names: Sequence[str], script: Path, python: str) -> str:
    """A bash job-array script: task i runs names[i] unless its results.json exists by then."""
    out = Path(plan.out).resolve()
    workdirs = [shlex.quote(str(out / name)) for name in names]
    # Each entry is eval'ed: "$python" expands at run time, the rest is shell-quoted.
    commands = [shlex.quote('"$python" ' + shlex.join(command(plan, n)[1:])) for n in names]
    last = len(names) - 1
    lines = [
        "#!/usr/bin/env bash",
        f"# dprec grid: {len(names)} runs of {plan.config} into {out}",
        f"# Submit as a job array:  sbatch --array=0-{last} {script}",
        f"# Run one task locally:   bash {script} TASK   (TASK in 0..{last})",
        "# Add scheduler options (GPU, time, memory) as #SBATCH lines or on the sbatch line.",
        "#SBATCH --job-name=dprec-grid",
        f"#SBATCH --output={out / LOG_DIR}/array-%A_%a.log",
        "set -eo pipefail",
        f"python=${{PYTHON:-{shlex.quote(python)}}}",
        "workdirs=(",
        *(f"  {w}" for w in workdirs),
        ")",
        "commands=(",
        *(f"  {c}" for c in commands),
        ")",
        'task="${SLURM_ARRAY_TASK_ID:-$1}"',
        'if [[ ! "$task" =~ ^[0-9]+$ ]] || (( task >= ${#commands[@]} )); then',
        f'  echo "usage: $0 TASK (0..{last}) or SLURM_ARRAY_TASK_ID" >&2',
        "  exit 2",
        "fi",
        'workdir="${workdirs[$task]}"',
        'if [[ -f "$workdir/results.json" ]]; then',
        '  echo "skipped $workdir (results.json exists)"',
        "  exit 0",
        "fi",
        f"cd {shlex.quote(str(Path.cwd()))}",
        'eval "${commands[$task]}"',
    ]
    return "\n".join(lines) + "\n"


def write_array_script(plan: Plan, script: Path) -> int:
    """Write the job-array script of the pending runs (executable) and OUT/grid.json."""
    todo = pending_runs(plan.out, plan.points)
    skipped = len(plan.points) - len(todo)
    if not todo:
        say(f"grid: all {skipped} runs are complete; no script written")
        return 0
    write_index(plan)
    (plan.out / LOG_DIR).mkdir(exist_ok=True)  # SLURM does not create --output directories
    script.parent.mkdir(parents=True, exist_ok=True)
    rundir.write_atomic(script, array_script(plan, todo, script, sys.executable))
    script.chmod(script.stat().st_mode | 0o111)
    say(f"wrote {script}: {len(todo)} tasks ({skipped} complete runs left out)")
    say(f"wrote {plan.out / INDEX_FILE}; the tasks write their logs in {plan.out / LOG_DIR}")
    say(f"submit with: sbatch --array=0-{len(todo) - 1} {script}")
    return 0


# ---------------------------------------------------------------------------------------------
# Selection


def load_runs(directory: Path) -> list[dict[str, Any]]:
    """The finished runs directly under `directory` (`dprec.runs.finished.iter_runs`), in name
    order: name, overrides, results.

    Overrides come from the directory's grid.json (None for a run it does not list).
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise GridError(f"{directory} is not a directory; pass the --out of a grid")
    listed = (read_index(directory) or {}).get("runs", {})
    runs = [
        {"name": run.path.name, "overrides": listed.get(run.path.name), "results": run.results}
        for run in finished.iter_runs(directory, recursive=False)
    ]
    if not runs:
        raise GridError(f"no finished run (config.json and results.json) in {directory}")
    return runs


def valid_value(run: dict[str, Any], metric: str) -> float:
    """results['valid'][metric]; a missing (NaN-written-as-null) value ranks last."""
    valid = run["results"].get("valid", {})
    if metric not in valid:
        known = ", ".join(k for k in valid if "@" in k)
        raise GridError(f"run {run['name']} has no validation {metric}; choose one of {known}")
    value = valid[metric]
    return -math.inf if value is None else float(value)


SELECT_BY = ("metric", "loss", "trimmed_loss")  # --by: what ranks the settings


def valid_loss_value(run: dict[str, Any], by: str) -> float:
    """results['valid_loss'] (`by` loss) or results['valid_trimmed_loss'] (trimmed_loss): the
    validation loss at the run's best epoch; a missing (null) value ranks last."""
    key = f"valid_{by}"
    if key not in run["results"]:
        raise GridError(
            f"run {run['name']} has no {key} (made before dprec logged validation losses); "
            "rerun it or select with --by metric"
        )
    value = run["results"][key]
    return math.inf if value is None else float(value)


def rank_runs(
    runs: Sequence[dict[str, Any]], metric: str, by: str = "metric"
) -> list[dict[str, Any]]:
    """Runs best first, ties in name order: by the highest validation `metric` (`by`
    "metric"), or the lowest validation loss (`by` "loss" or "trimmed_loss")."""
    if by == "metric":
        return sorted(runs, key=lambda run: (-valid_value(run, metric), run["name"]))
    return sorted(runs, key=lambda run: (valid_loss_value(run, by), run["name"]))


def select_best(runs: Sequence[dict[str, Any]], metric: str, by: str = "metric") -> dict[str, Any]:
    """The run with the highest results['valid'][metric] (`by` "metric"), or the lowest
    validation loss (`by` "loss" / "trimmed_loss"); ties: first in name order."""
    if not runs:
        raise GridError("no runs to select from")
    return rank_runs(runs, metric, by)[0]


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else "–"


def selection_table(runs: Sequence[dict[str, Any]], metric: str, by: str = "metric") -> str:
    """Markdown: every setting with its validation (loss, with `by` a loss) and test `metric`,
    best first."""
    header = ["setting", f"valid {metric}", f"test paper {metric}", f"test warm {metric}"]
    if by != "metric":
        header.insert(1, f"valid {by}")
    rows = []
    for i, run in enumerate(rank_runs(runs, metric, by)):
        results = run["results"]
        test = results.get("test", {})
        loss = [] if by == "metric" else [_fmt(results.get(f"valid_{by}"))]
        rows.append(
            [
                f"**{run['name']}**" if i == 0 else run["name"],
                *loss,
                _fmt(results["valid"].get(metric)),
                _fmt(test.get("paper", {}).get(metric)),
                _fmt(test.get("warm", {}).get(metric)),
                str(results.get("best_epoch", "–")),
            ]
        )
    return "\n".join(rundir.markdown_table([*header, "best epoch"], rows))


def parse_seeds(text: str) -> list[str]:
    """'0,1,2' → ['0', '1', '2'] (integers only)."""
    seeds = [s.strip() for s in text.split(",")]
    if not all(re.fullmatch(r"-?\d+", s) for s in seeds):
        raise GridError(f"bad --seeds {text!r}; use comma-separated integers, e.g. 0,1,2")
    return seeds


def check_out(out: Path) -> Path:
    """`out` as a Path; it must be a directory or not exist yet."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise GridError(f"--out {out} is a file; pass a directory")
    return out


def seed_plan(
    directory: Path,
    best: dict[str, Any],
    seeds: Sequence[str],
    out: Path,
    extra: dict[str, str],
) -> Plan:
    """The best run's overrides (its seed dropped) once per seed, into `out` (+ `extra` --set)."""
    index = read_index(directory)
    if index is None or best["overrides"] is None:
        raise GridError(f"{directory}/{INDEX_FILE} does not list {best['name']}; cannot rerun it")
    base = {k: v for k, v in best["overrides"].items() if k != SEED_KEY}
    points = name_points({**base, SEED_KEY: seed} for seed in seeds)
    return Plan(index["config"], check_out(out), {**index.get("set", {}), **extra}, points)


# ---------------------------------------------------------------------------------------------
# Command line


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(prog="dprec-grid", description=__doc__.splitlines()[0], tool="grid")
    parser.add_argument("--config", help="dprec config, e.g. configs/default.py:model=gmf")
    parser.add_argument("--out", help="directory of the run directories")
    parser.add_argument("--grid", action="append", default=[], help="KEY=V1,V2,... (repeat)")
    parser.add_argument("--set", action="append", default=[], help="KEY=VALUE for every run")
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel (default 1)")
    parser.add_argument("--dry-run", action="store_true", help="print the commands only")
    parser.add_argument("--array-script", type=Path, help="write a job-array script instead")
    parser.add_argument("--select", type=Path, help="grid directory to select the best run of")
    parser.add_argument("--metric", default="recall@20", help="validation metric for --select")
    parser.add_argument(
        "--by",
        choices=SELECT_BY,
        default="metric",
        help="--select by the highest --metric (default) or the lowest validation loss / "
        "trimmed loss (each run's at its best epoch: run the grid with "
        "--set eval.selection=loss|trimmed_loss)",
    )
    parser.add_argument("--seeds", help="with --select: rerun the best setting for these seeds")
    return parser


def grid_plan(args: argparse.Namespace) -> Plan:
    """The plan of a `--config ... --out ... --grid ...` invocation."""
    if args.config is None or args.out is None:
        raise GridError("--config and --out are required (or --select DIR)")
    points = name_points(expand_grid(parse_grid(args.grid)))
    return Plan(resolve_config(args.config), check_out(args.out), parse_set(args.set), points)


def select(args: argparse.Namespace) -> Plan | None:
    """Print the ranking of the runs in --select; the seed plan when --seeds is given."""
    if args.config is not None or args.grid:
        raise GridError("--select reads its config from DIR/grid.json; drop --config and --grid")
    if args.seeds is not None and args.out is None:
        raise GridError("--seeds needs --out, the directory of the reruns")
    runs = load_runs(args.select)
    best = select_best(runs, args.metric, args.by)
    say(selection_table(runs, args.metric, args.by))
    by = args.metric if args.by == "metric" else args.by
    say(f"best by valid {by}: {best['name']} {best['overrides'] or ''}")
    if args.seeds is None:
        return None
    return seed_plan(args.select, best, parse_seeds(args.seeds), args.out, parse_set(args.set))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_tool("grid", lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    if args.jobs < 1:
        raise GridError(f"--jobs must be at least 1, not {args.jobs}")
    plan = select(args) if args.select is not None else grid_plan(args)
    if plan is None:
        return 0
    if args.dry_run:
        return dry_run(plan)
    if args.array_script is not None:
        return write_array_script(plan, args.array_script)
    return execute(plan, args.jobs)


if __name__ == "__main__":
    sys.exit(main())
