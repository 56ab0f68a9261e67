"""Tune a method's hyper-parameters on your own (noisy) data with Optuna, then rerun the best.

    dprec-tune --config "configs/default.py:dataset=D,model=M,method=X" --trials N \
        --out DIR [--valid noisy|clean] [--metric recall@20] [--seeds 0,1,2] [--jobs 1] \
        [--max-epochs E] [--set KEY=VALUE ...] [--space JSON|FILE.json] [--pruner median|none] \
        [--select metric|loss|trimmed_loss]

Every trial is one ordinary `python -m dprec.main` subprocess (run from this checkout's root,
with this checkout on PYTHONPATH) into DIR/trials/NNNN, with the trial's hyper-parameters as
`--config.KEY=VALUE` overrides, `train.num_epochs` = the maximum epochs, `eval.valid_set` = the
validation split (noisy by default: a user has no clean labels) and `eval.select_metric` = the
tuned metric; dprec picks the best validation epoch itself (results.json `best_epoch`, `valid`),
which is the trial's value. With `--select loss|trimmed_loss` the runs pick their epoch by that
validation loss instead (`eval.selection`), the trial's value is the selected epoch's loss and
the study minimises it. While a trial runs, the tuner reads its metrics.jsonl, reports each
epoch's validation metric (or loss) to Optuna and stops the subprocess when the pruner says so.

A new study's first trial is the preset itself (every searched key at the config's value,
when each lies in its range; tune.json `preset_first`): at the tune's epochs the tuned setting
is then never one the preset beats on the validation split. The study lives in DIR/study.db
(SQLite), so a killed tune resumes when the same command is rerun: trials a kill left RUNNING
are marked FAIL and their settings re-queued into the same run directory (dprec resumes it
from its checkpoint); the study stops at N finished (complete or pruned) trials. Then the
best setting is rerun over --seeds into DIR/best (dprec-grid's layout: grid.json + one run
directory per seed; `dprec-report DIR/best` reads it), and DIR/tune.json (the best setting,
its value, the trial counts) and DIR/trials.csv (one row per trial) are written. Bad input
prints one line and exits with status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import fcntl
import importlib.util
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dprec.methods import get_card, is_method, method_names
from dprec.methods.fields import Choice, Float, Int
from dprec.references.names import REFERENCE_NAMES, versus_references
from dprec.runs import finished, rundir
from dprec.sweeps import grid

STUDY_NAME = "tune"
STUDY_FILE = "study.db"
LOCK_FILE = "tune.lock"
TRIALS_DIR = "trials"
LOG_DIR = "logs"
BEST_DIR = "best"
TUNE_FILE = "tune.json"
TRIALS_CSV = "trials.csv"
POLL_SECONDS = 0.5
_METRIC = re.compile(r"(recall|ndcg)@(\d+)")


class TuneError(Exception):
    """Bad input, or a trial dprec refused; the message is the one line to print (exit 2)."""


class TrialFailed(Exception):
    """One trial's subprocess failed (not a config error): the trial is FAIL, the tune goes on."""


# ---------------------------------------------------------------------------------------------
# Search spaces: {config key: distribution}; a method's is the common space + its card's fields'

# λ0 (train.l2): categorical over the decades of the paper's grid; the learning rate log-uniform.
L2_GRID = Choice((0.001, 0.01, 0.1, 1.0, 10.0, 100.0, 1000.0))
LEARNING_RATE = Float(1e-4, 1e-2, log=True)
COMMON = {"train.learning_rate": LEARNING_RATE, "train.l2": L2_GRID}


def parse_space(text: str) -> dict[str, Any]:
    """`--space`: JSON (or a .json file) {key: [v, ...] | {"low", "high"[, "log"|"int"|"step"]}}.

    A list is categorical; an object a float range (log-uniform with "log": true), or an integer
    range with "int": true (and optional "step").
    """
    path = Path(text)
    try:
        raw = json.loads(path.read_text() if text.endswith(".json") and path.is_file() else text)
    except (OSError, json.JSONDecodeError) as err:
        raise TuneError(f"bad --space {text!r}: {err}; give a JSON object or a .json file") from err
    if not isinstance(raw, dict) or not raw:
        raise TuneError("bad --space: give a non-empty JSON object {key: [values] or range}")
    space: dict[str, Any] = {}
    for key, value in raw.items():
        if not grid._KEY.fullmatch(key):
            raise TuneError(f"bad --space key {key!r}; use config keys like train.learning_rate")
        if isinstance(value, list) and value and all(_scalar(v) for v in value):
            space[key] = Choice(tuple(value))
        elif isinstance(value, dict) and {"low", "high"} <= set(value) <= {
            "low",
            "high",
            "log",
            "int",
            "step",
        }:
            low, high = value["low"], value["high"]
            if not all(isinstance(v, (int, float)) for v in (low, high)) or low > high:
                raise TuneError(f"bad --space range for {key}: low and high numbers, low <= high")
            if value.get("int"):
                space[key] = Int(int(low), int(high), int(value.get("step", 1)))
            else:
                if value.get("log") and low <= 0:
                    raise TuneError(f"bad --space range for {key}: a log range needs low > 0")
                space[key] = Float(float(low), float(high), bool(value.get("log", False)))
        else:
            raise TuneError(
                f"bad --space entry for {key}: a non-empty list of values, or "
                '{"low": L, "high": H[, "log": true]}'
            )
    return space


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def method_space(method: str) -> dict[str, Any]:
    """`COMMON` + the spaces of the fields of `method`'s card (in the card's order; a field
    without a space stays fixed); an unknown method is an error."""
    if not is_method(method):
        raise TuneError(f"unknown method {method!r}; dprec-tune knows {', '.join(method_names())}")
    fields = get_card(method).fields
    return {
        **COMMON,
        **{f"method.{name}": f.space for name, f in fields.items() if f.space is not None},
    }


def describe_space(space: Mapping[str, Any]) -> dict[str, Any]:
    return {key: dist.describe() for key, dist in space.items()}


def override_value(value: Any) -> str:
    """A parameter value as a `--config.KEY=VALUE` string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


# ---------------------------------------------------------------------------------------------
# The config: file, defaults, metric


def config_method(config_arg: str) -> str | None:
    """`method=X` of the config argument's `:k=v,...` part, or None."""
    _, _, rest = config_arg.partition(":")
    for part in filter(None, rest.split(",")):
        key, _, value = part.partition("=")
        if key.strip() == "method":
            return value.strip()
    return None


def load_config(config_arg: str) -> Any:
    """The ConfigDict the config file builds (its `get_config(ARG)`), as dprec.main loads it."""
    file, _, rest = config_arg.partition(":")
    path = grid.find_config_file(file)
    if path is None:
        raise TuneError(f"config file {file!r} not found; e.g. --config configs/default.py")
    spec = importlib.util.spec_from_file_location("_tune_config", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        return module.get_config(rest or None)
    except Exception as err:  # dprec's ConfigError, or a broken config file: one line
        raise TuneError(f"cannot load --config {config_arg}: {str(err).splitlines()[0]}") from err


def setting(config: Any, key: str, fixed: Mapping[str, str]) -> Any:
    """The value of `key`: the --set override (parsed like its default) or the config's."""
    node = config
    for part in key.split("."):
        node = node[part]
    if key not in fixed:
        return node
    text = fixed[key]
    try:
        if isinstance(node, tuple):
            return tuple(int(v) for v in text.split(","))
        if isinstance(node, bool):
            return text.lower() in ("1", "true", "yes")
        return type(node)(text)
    except ValueError as err:
        raise TuneError(f"bad --set {key}={text}: {err}") from err


def preset_params(config: Any, space: Mapping[str, Any], fixed: Mapping[str, str]) -> dict:
    """The preset's value of every searched key: a new study's first trial, so that at the
    tune's epochs the tuned setting is never one the preset beats on validation. {} (the
    sampler starts) where a key's preset lies outside its range or the config has no such
    key (a --space typo: dprec.main names it when the first trial starts)."""
    params = {}
    for key, distribution in space.items():
        try:
            value = setting(config, key, fixed)
        except (KeyError, TypeError, AttributeError):
            return {}
        if not distribution.contains(value):
            return {}
        params[key] = value
    return params


def check_metric(metric: str, ks: Sequence[int]) -> str:
    """`metric` must be recall@K or ndcg@K for a K the runs compute (eval.ks)."""
    match = _METRIC.fullmatch(metric)
    if not match or int(match.group(2)) not in ks:
        known = ", ".join(f"{m}@{k}" for m in ("recall", "ndcg") for k in ks)
        raise TuneError(f"unknown metric {metric!r}; the runs compute {known} (eval.ks)")
    return metric


# ---------------------------------------------------------------------------------------------
# Trials


@dataclasses.dataclass
class Tune:
    """Everything a trial needs: config argument, fixed overrides, space, metric, paths."""

    config: str
    out: Path
    fixed: dict[str, str]
    space: dict[str, Any]
    metric: str
    jobs: int = 1
    seed: int = 0
    selection: str = "metric"  # eval.selection: metric (maximised), loss or trimmed_loss (min.)
    first_params: dict[str, Any] = dataclasses.field(default_factory=dict)  # `preset_params`

    @property
    def env(self) -> dict[str, str]:
        return grid.child_env(self.jobs)

    @property
    def objective(self) -> str:
        """What a trial's value is, for messages: the metric, or `loss` / `trimmed_loss`."""
        return self.metric if self.selection == "metric" else self.selection

    @property
    def direction(self) -> str:
        return "maximize" if self.selection == "metric" else "minimize"

    def value_of(self, valid: Mapping[str, Any], record: Mapping[str, Any]) -> Any:
        """The objective in an epoch record (metrics.jsonl) or results.json: `valid[metric]`,
        or the record's `valid_loss` / `valid_trimmed_loss`; None where it is missing."""
        if self.selection == "metric":
            return valid.get(self.metric)
        return record.get(f"valid_{self.selection}")

    @property
    def trial_fixed(self) -> dict[str, str]:
        """`fixed` for a trial: the reference recommenders off unless --set names them. Trials
        are compared on validation only, and each trial process would refit every reference;
        the best setting's reruns (`best_plan`) keep them."""
        return {"eval.references": "()", **self.fixed}

    def plan(self, name: str, params: Mapping[str, Any]) -> grid.Plan:
        points = {name: {k: override_value(v) for k, v in params.items()}}
        return grid.Plan(self.config, self.out / TRIALS_DIR, self.trial_fixed, points)


# Runs the trial's command after asking Linux to SIGKILL it when the tuner dies (prctl
# PR_SET_PDEATHSIG survives exec), so a killed tune leaves no orphan run; a shim rather than
# preexec_fn, which is unsafe with the threads of --jobs > 1.
_DIE_WITH_PARENT = (
    "import ctypes, os, signal, sys\n"
    "try:\n"
    "    ctypes.CDLL(None).prctl(1, signal.SIGKILL)\n"
    "except Exception:\n"
    "    pass\n"
    "if os.getppid() == int(sys.argv[1]):\n"
    "    os.execv(sys.argv[2], sys.argv[2:])\n"
)


def die_with_parent(cmd: list[str]) -> list[str]:
    """`cmd` through the shim on Linux (elsewhere unchanged)."""
    if not sys.platform.startswith("linux"):
        return cmd
    return [sys.executable, "-c", _DIE_WITH_PARENT, str(os.getpid()), *cmd]


def read_epochs(path: Path) -> list[dict[str, Any]]:
    """The complete lines of a metrics.jsonl (dprec rewrites it atomically each epoch)."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    epochs = []
    for line in lines:
        with contextlib.suppress(json.JSONDecodeError):
            epochs.append(json.loads(line))
    return epochs


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _same(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return set(a) == set(b) and all(
        a[k] == b[k] or (isinstance(a[k], float) and math.isclose(a[k], b[k])) for k in a
    )


def run_trial(tune: Tune, trial) -> float:
    """The Optuna objective: run dprec with the trial's settings, report epochs, maybe prune."""
    import optuna

    params = {key: dist.suggest(trial, key) for key, dist in tune.space.items()}
    for other in trial.study.get_trials(deepcopy=False):
        if other.number == trial.number or not _same(other.params, params):
            continue
        if other.state == optuna.trial.TrialState.COMPLETE:  # same setting: same run
            trial.set_user_attr("duplicate_of", other.number)
            for key in ("best_epoch", "epochs_run", "run_dir"):
                if key in other.user_attrs:
                    trial.set_user_attr(key, other.user_attrs[key])
            trial.set_user_attr("seconds", 0.0)
            return other.value
        if other.state == optuna.trial.TrialState.PRUNED:
            trial.set_user_attr("duplicate_of", other.number)
            trial.set_user_attr("seconds", 0.0)
            raise optuna.TrialPruned()
    name = Path(trial.user_attrs.get("run_dir", f"{TRIALS_DIR}/{trial.number:04d}")).name
    trial.set_user_attr("run_dir", f"{TRIALS_DIR}/{name}")
    plan = tune.plan(name, params)
    run_dir = tune.out / TRIALS_DIR / name
    log = tune.out / LOG_DIR / f"trial-{trial.number:04d}.log"
    start = time.perf_counter()
    reported: set[int] = set()
    with open(log, "w") as handle:
        proc = subprocess.Popen(
            die_with_parent(grid.command(plan, name)),
            env=tune.env,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
        try:
            pruned_at = None
            while True:
                done = proc.poll() is not None
                for line in read_epochs(run_dir / rundir.METRICS_FILE):
                    epoch, value = line.get("epoch"), tune.value_of(line.get("valid", {}), line)
                    if not isinstance(epoch, int) or epoch in reported or value is None:
                        continue
                    reported.add(epoch)
                    trial.report(float(value), step=epoch)
                    if pruned_at is None and trial.should_prune():
                        pruned_at = epoch
                # Pruned at the first epoch the pruner says so, even when the run finished
                # between two polls: the study must not depend on the machine's speed.
                if pruned_at is not None:
                    if not done:
                        _stop(proc)
                    trial.set_user_attr("epochs_run", max(reported))
                    trial.set_user_attr("pruned_at", pruned_at)
                    trial.set_user_attr("seconds", time.perf_counter() - start)
                    raise optuna.TrialPruned(f"pruned at epoch {pruned_at}")
                if done:
                    break
                time.sleep(POLL_SECONDS)
        except BaseException as err:
            if proc.poll() is None:
                _stop(proc)
            if isinstance(err, KeyboardInterrupt):  # Optuna marks it FAIL: queue it again
                attrs = {"retry_of": trial.number, "run_dir": trial.user_attrs["run_dir"]}
                trial.study.enqueue_trial(params, user_attrs=attrs)
            raise
    trial.set_user_attr("seconds", time.perf_counter() - start)
    rc = proc.returncode
    results_file = run_dir / rundir.RESULTS_FILE
    if rc == 2:
        raise TuneError(f"trial {trial.number}: dprec refused the config: {grid._last_line(log)}")
    if rc != 0 or not results_file.is_file():
        raise TrialFailed(f"rc={rc} (log {log}: {grid._last_line(log)})")
    results = json.loads(results_file.read_text())
    trial.set_user_attr("best_epoch", results.get("best_epoch"))
    trial.set_user_attr("epochs_run", results.get("epochs_run"))
    value = tune.value_of(results.get("valid", {}), results)
    if value is None:
        raise TrialFailed(f"no finite validation {tune.objective} in {results_file}")
    return float(value)


# ---------------------------------------------------------------------------------------------
# The study


def _lock(out: Path):
    """An exclusive lock on OUT/tune.lock: one tuner per directory (so RUNNING trials are stale)."""
    handle = open(out / LOCK_FILE, "w")  # noqa: SIM115  (held for the whole tune)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        handle.close()
        raise TuneError(f"another tune is running in {out} (it holds {LOCK_FILE})") from err
    return handle


def open_study(tune: Tune, settings: dict[str, Any], prune_startup: int, prune_warmup: int, pruner):
    """Create or load DIR/study.db; a study of other settings is an error."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if pruner == "median":
        pruner_obj = optuna.pruners.MedianPruner(
            n_startup_trials=prune_startup, n_warmup_steps=prune_warmup
        )
    else:
        pruner_obj = optuna.pruners.NopPruner()
    study = optuna.create_study(
        study_name=STUDY_NAME,
        storage=f"sqlite:///{(tune.out / STUDY_FILE).resolve()}",
        sampler=optuna.samplers.TPESampler(seed=tune.seed),
        pruner=pruner_obj,
        direction=tune.direction,  # a reloaded study keeps its own; `settings` must match
        load_if_exists=True,
    )
    # A reloaded study must not restart the sampler's random stream: a sampler seeded as the
    # first time would propose the first trials' settings again (wasted as duplicates). The
    # seed moves on with the trials already in the study, so a resumed tune stays reproducible.
    if study.trials:
        study.sampler = optuna.samplers.TPESampler(seed=tune.seed + len(study.trials))
    stored = study.user_attrs.get("settings")
    if stored is None:
        study.set_user_attr("settings", settings)
    elif stored != json.loads(json.dumps(settings)):
        changed = sorted(  # both sides' keys: `selection` is only stored when not "metric"
            k
            for k in {*settings, *stored}
            if stored.get(k) != json.loads(json.dumps(settings.get(k)))
        )
        raise TuneError(
            f"{tune.out} holds a study of other settings ({', '.join(changed)} differ); "
            "use another --out"
        )
    return study


def requeue_stale(study) -> int:
    """Trials a killed tune left RUNNING: mark FAIL, queue their settings again (same run dir)."""
    import optuna

    stale = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    for trial in stale:
        study._storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)
        if trial.params:
            attrs = {"retry_of": trial.number}
            for key in ("run_dir", "preset"):
                if key in trial.user_attrs:
                    attrs[key] = trial.user_attrs[key]
            study.enqueue_trial(trial.params, user_attrs=attrs)
        grid.say(f"trial {trial.number} was left RUNNING by a killed tune: FAIL, re-queued")
    return len(stale)


def counts(study) -> dict[str, int]:
    """Trials by state; `duplicates`: complete or pruned repeats of a setting already run."""
    import optuna

    trials = study.get_trials(deepcopy=False)
    n = {
        name: sum(t.state == state for t in trials)
        for name, state in (
            ("complete", optuna.trial.TrialState.COMPLETE),
            ("pruned", optuna.trial.TrialState.PRUNED),
            ("failed", optuna.trial.TrialState.FAIL),
        )
    }
    return {**n, "duplicates": sum("duplicate_of" in t.user_attrs for t in trials)}


def _short(params: Mapping[str, Any]) -> str:
    labels = grid._labels(list(params))
    return " ".join(
        f"{labels[k]}={v:.4g}" if isinstance(v, float) else f"{labels[k]}={v}"
        for k, v in params.items()
    )


def progress(study, trial) -> None:
    """One line per finished trial: number, state, value, params, best so far."""
    value = "–" if trial.value is None else f"{trial.value:.4f}"
    try:
        best = f"{study.best_value:.4f} (trial {study.best_trial.number})"
    except ValueError:
        best = "–"
    extra = ""
    if "duplicate_of" in trial.user_attrs:
        extra = f" (same setting as trial {trial.user_attrs['duplicate_of']})"
    elif trial.state.name == "PRUNED" and "pruned_at" in trial.user_attrs:
        extra = f" (at epoch {trial.user_attrs['pruned_at']})"
    elif trial.state.name == "FAIL" and "error" in trial.user_attrs:
        extra = f" ({trial.user_attrs['error']})"
    seconds = trial.user_attrs.get("seconds", 0.0)
    grid.say(
        f"trial {trial.number} {trial.state.name} value={value} {_short(trial.params)}{extra}"
        f" best={best} {seconds:.0f}s"
    )


def write_trials_csv(study, space: Mapping[str, Any], path: Path) -> None:
    columns = ["number", "state", "value", *space, "best_epoch", "epochs_run", "pruned_at"]
    columns += ["seconds"]
    columns += ["run_dir", "duplicate_of", "retry_of"]
    rows = []
    for trial in study.get_trials(deepcopy=False):
        row = {"number": trial.number, "state": trial.state.name, "value": trial.value}
        row.update(trial.params)
        row.update({k: v for k, v in trial.user_attrs.items() if k in columns})
        rows.append(row)
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------
# The best setting over seeds


def best_plan(tune: Tune, params: Mapping[str, Any], seeds: Sequence[str]) -> grid.Plan:
    """The best setting once per seed, into DIR/best (grid.py's layout)."""
    fixed = {**tune.fixed, **{k: override_value(v) for k, v in params.items()}}
    points = grid.name_points({grid.SEED_KEY: seed} for seed in seeds)
    return grid.Plan(tune.config, tune.out / BEST_DIR, fixed, points)


def prepare_best(tune: Tune, plan: grid.Plan, best_trial, trial_seed: int) -> None:
    """Clear a DIR/best of another setting; reuse the best trial's run for its own seed."""
    index = grid.read_index(plan.out)
    if index is not None and (index.get("config"), index.get("set")) != (plan.config, plan.fixed):
        shutil.rmtree(plan.out)  # the reruns of an earlier best setting: derived, replaced
        grid.say(f"{plan.out} held another setting's reruns: replaced")
    source = tune.out / best_trial.user_attrs["run_dir"]
    for name, point in plan.points.items():
        target = plan.out / name
        same_config = tune.trial_fixed == tune.fixed  # else the trial lacks the reference rows
        reuse = same_config and int(point[grid.SEED_KEY]) == trial_seed and grid.is_complete(source)
        if reuse and not grid.is_complete(target):  # the same config: that run is this seed's
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("checkpoints"))
            grid.say(f"{name}: the best trial's run ({source.name}) reused")


def seed_summary(plan: grid.Plan, metric: str) -> dict[str, Any]:
    """Per seed: validation and clean-test (paper view) `metric`; their mean and std."""
    per_seed, valid, test = {}, [], []
    runs = finished.iter_runs(plan.out, recursive=False) if plan.out.is_dir() else ()
    done = {run.path.name: run for run in runs}
    for name in (name for name in plan.points if name in done):  # unfinished seeds left out
        results = done[name].results
        v = results.get("valid", {}).get(metric)
        t = results.get("test", {}).get("paper", {}).get(metric)
        per_seed[name] = {"valid": v, "test": t, "best_epoch": results.get("best_epoch")}
        valid += [v] if v is not None else []
        test += [t] if t is not None else []

    def stats(values):
        if not values:
            return None
        mean = sum(values) / len(values)
        return {"mean": mean, "std": math.sqrt(sum((x - mean) ** 2 for x in values) / len(values))}

    # The reference rows the reruns fitted (the same data and split in every seed's run).
    tests = [done[name].results.get("test", {}) for name in plan.points if name in done]
    references = {}
    for name in REFERENCE_NAMES:
        values = [row[metric] for t in tests if metric in (row := t.get(f"{name}_paper", {}))]
        if values:
            references[name] = sum(values) / len(values)
    return {
        "runs": per_seed,
        "valid": stats(valid),
        "test_paper": stats(test),
        "references_test_paper": references,
    }


# ---------------------------------------------------------------------------------------------
# Command line


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (the usage is in --help)."""

    def error(self, message: str):
        print(f"tune: error: {message}; see --help", file=sys.stderr)
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dprec-tune", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="configs/default.py:dataset=D,...")
    parser.add_argument("--trials", required=True, type=int, help="finished trials to reach")
    parser.add_argument("--out", required=True, type=Path, help="the tune's directory")
    parser.add_argument("--valid", choices=("noisy", "clean"), default="noisy")
    parser.add_argument("--metric", help="validation metric (default: the config's selection)")
    parser.add_argument(
        "--select",
        choices=("metric", "loss", "trimmed_loss"),
        default="metric",
        help="what picks each run's epoch and the best trial: the metric (maximised, default) "
        "or the validation loss / trimmed loss (minimised)",
    )
    parser.add_argument("--seeds", default="0,1,2", help="rerun the best over these seeds")
    parser.add_argument("--jobs", type=int, default=1, help="trials (and reruns) in parallel")
    parser.add_argument("--max-epochs", type=int, help="train.num_epochs (default: the preset)")
    parser.add_argument("--set", action="append", default=[], help="KEY=VALUE for every run")
    parser.add_argument("--space", help="replace the search space: JSON or a .json file")
    parser.add_argument("--pruner", choices=("median", "none"), default="median")
    parser.add_argument("--prune-startup", type=int, default=5, help="trials before pruning")
    parser.add_argument(
        "--prune-warmup", type=int, help="epochs before pruning (default: a fifth of the max)"
    )
    parser.add_argument("--sampler-seed", type=int, default=0, help="TPE sampler seed")
    return parser


def setup(args: argparse.Namespace) -> tuple[Tune, dict[str, Any], list[str], int]:
    """Validate the command line (nothing written): the Tune, the study settings, seeds."""
    if args.trials < 1:
        raise TuneError(f"--trials must be at least 1, not {args.trials}")
    if args.jobs < 1:
        raise TuneError(f"--jobs must be at least 1, not {args.jobs}")
    if args.max_epochs is not None and args.max_epochs < 1:
        raise TuneError(f"--max-epochs must be at least 1, not {args.max_epochs}")
    if args.prune_startup < 0 or (args.prune_warmup is not None and args.prune_warmup < 0):
        raise TuneError("--prune-startup and --prune-warmup must be >= 0")
    seeds = grid.parse_seeds(args.seeds)
    method = config_method(args.config)
    space = parse_space(args.space) if args.space else None
    if method is not None and space is None:
        method_space(method)  # an unknown method fails before the config is loaded
    config_arg = grid.resolve_config(args.config)
    fixed = grid.parse_set(args.set)
    config = load_config(config_arg)
    method = config.method.name
    if space is None:
        space = method_space(method)
    for key in list(space):
        if key in fixed:  # fixed by --set: not searched
            del space[key]
    if not space:
        raise TuneError("the search space is empty (every key is fixed by --set)")
    ks = setting(config, "eval.ks", fixed)
    metric = check_metric(args.metric or f"recall@{max(ks)}", ks)
    max_epochs = args.max_epochs or setting(config, "train.num_epochs", fixed)
    fixed.update(
        {
            "train.num_epochs": str(max_epochs),
            "eval.valid_set": args.valid,
            "eval.select_metric": metric,
        }
    )
    if args.select != "metric":  # the default adds nothing: earlier studies resume as they were
        fixed["eval.selection"] = args.select
    grid.check_out(args.out)
    tune = Tune(
        config_arg,
        args.out,
        fixed,
        space,
        metric,
        args.jobs,
        args.sampler_seed,
        args.select,
        preset_params(config, space, fixed),
    )
    settings = {
        "config": config_arg,
        "method": method,
        "set": fixed,
        "space": describe_space(space),
        "metric": metric,
        "valid_set": args.valid,
        "max_epochs": max_epochs,
        **({"selection": args.select} if args.select != "metric" else {}),
    }
    trial_seed = int(setting(config, "seed", fixed))
    return tune, settings, seeds, trial_seed


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    started = time.perf_counter()
    try:
        tune, settings, seeds, trial_seed = setup(args)
        if importlib.util.find_spec("optuna") is None:
            raise TuneError("optuna is not installed; pip install 'optuna>=4' (or '.[tune]')")
        tune.out.mkdir(parents=True, exist_ok=True)
        (tune.out / LOG_DIR).mkdir(exist_ok=True)
        (tune.out / TRIALS_DIR).mkdir(exist_ok=True)
        lock = _lock(tune.out)
        try:
            warmup = settings["max_epochs"] // 5 if args.prune_warmup is None else args.prune_warmup
            study = open_study(tune, settings, args.prune_startup, warmup, args.pruner)
            if not study.trials and tune.first_params:  # a new study: the preset first
                study.enqueue_trial(tune.first_params, user_attrs={"preset": True})
            requeue_stale(study)
            done = counts(study)
            remaining = args.trials - done["complete"] - done["pruned"]
            grid.say(
                f"tune: {settings['method']} on valid {settings['valid_set']} "
                f"{tune.objective}, {len(tune.space)} parameters, {args.trials} trials "
                f"({done['complete'] + done['pruned']} finished, {max(remaining, 0)} to run)"
            )
            if remaining > 0:
                study.optimize(
                    lambda trial: _objective(tune, trial),
                    n_trials=remaining,
                    n_jobs=args.jobs,
                    catch=(TrialFailed,),
                    callbacks=[progress],
                    gc_after_trial=False,
                )
            write_trials_csv(study, tune.space, tune.out / TRIALS_CSV)
            return finish(tune, study, settings, seeds, trial_seed, args, started)
        finally:
            lock.close()
    except (TuneError, grid.GridError) as err:
        print(f"tune: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tune: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


def _objective(tune: Tune, trial) -> float:
    try:
        return run_trial(tune, trial)
    except TrialFailed as err:
        trial.set_user_attr("error", str(err)[:300])
        raise


def finish(tune, study, settings, seeds, trial_seed, args, started) -> int:
    """Rerun the best over the seeds; write tune.json; print the summary."""
    n = counts(study)
    summary: dict[str, Any] = {
        **settings,
        # Whether the study's first trial was the preset (`preset_params`).
        "preset_first": bool(study.trials and study.trials[0].user_attrs.get("preset")),
        "trials_requested": args.trials,
        "trials": {**n, "total": len(study.trials)},
        "best": None,
    }
    try:
        best = study.best_trial
    except ValueError:
        rundir.write_json(tune.out / TUNE_FILE, summary)
        print("tune: error: no trial completed; see DIR/logs and trials.csv", file=sys.stderr)
        return 1
    summary["best"] = {
        "trial": best.number,
        "params": best.params,
        "value": best.value,
        "best_epoch": best.user_attrs.get("best_epoch"),
        "run_dir": best.user_attrs.get("run_dir"),
    }
    rundir.write_json(tune.out / TUNE_FILE, summary)
    grid.say(
        f"tune: {n['complete']} complete, {n['pruned']} pruned, {n['failed']} failed "
        f"({n['duplicates']} repeated a setting, not rerun); best "
        f"trial {best.number} valid {tune.objective} {best.value:.4f}: {_short(best.params)}"
    )
    plan = best_plan(tune, best.params, seeds)
    prepare_best(tune, plan, best, trial_seed)
    rc = grid.execute(plan, args.jobs)
    summary["seeds"] = [int(s) for s in seeds]
    summary["best_over_seeds"] = {"dir": BEST_DIR, **seed_summary(plan, tune.metric)}
    summary["wall_seconds"] = time.perf_counter() - started
    rundir.write_json(tune.out / TUNE_FILE, summary)
    over = summary["best_over_seeds"]
    if over["test_paper"] is not None:
        grid.say(
            f"best over seeds {','.join(seeds)}: valid {tune.metric} "
            f"{over['valid']['mean']:.4f} ± {over['valid']['std']:.4f}, clean test (paper) "
            f"{over['test_paper']['mean']:.4f} ± {over['test_paper']['std']:.4f}; "
            f"dprec-report {tune.out / BEST_DIR}"
        )
        if over["references_test_paper"]:
            rows = {"paper": {tune.metric: over["test_paper"]["mean"]}}
            rows.update(
                {f"{k}_paper": {tune.metric: v} for k, v in over["references_test_paper"].items()}
            )
            grid.say(f"best over seeds: {versus_references(rows, tune.metric)}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
