"""The one reader of finished run directories: `FinishedRun`, `iter_runs` and `read_run`.

A run directory is finished when it holds both config.json (written first) and results.json
(written last, atomically; see `dprec.runs.rundir`). Every tool that reads finished runs
(`dprec-report`, `dprec-grid --select`, `dprec-tune`, `dprec-noise-bench`, the heat map of
`dprec-plots`) goes through this module, so they agree on what a finished run is, how a method
is named and which runs share their settings.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from dprec.errors import UserInputError
from dprec.methods import get_card, method_names
from dprec.runs import rundir

# --epoch → the results.json key: the test at the best validation epoch, or at the last epoch.
RESULT_KEYS = {"best": "test", "last": "test_last"}
# A denoising method trained with one phase only (the paper's Table 3 ablations).
MODE_SUFFIX = {"dp": "-DP", "dn": "-DN"}
SEED_KEY = "seed"


class NotAFinishedRun(UserInputError):
    """A path that is not a finished run directory; the message is the one line to print."""


def method_label(method: Mapping[str, Any]) -> str:
    """The method's label from its card, with its mode: 'dpi' → 'DPI'; mode 'dp' → 'DPI-DP'.

    A name no card knows (a method registered in another process) is its own label; a method
    module is never imported here (that would start JAX for a table).
    """
    name = str(method.get("name", "?"))
    label = get_card(name).label if name in method_names() else name
    return label + MODE_SUFFIX.get(str(method.get("mode", "")), "")


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'method.c1': 10.0, 'eval.ks': [5, 20], ...}: a nested config's sections joined by dots."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


@dataclasses.dataclass(frozen=True)
class FinishedRun:
    """One finished run directory: its `path`, config.json and results.json (as read)."""

    path: Path
    config: Mapping[str, Any]
    results: Mapping[str, Any]

    def _section(self, name: str) -> Mapping[str, Any]:
        section = self.config.get(name)
        return section if isinstance(section, Mapping) else {}

    @property
    def dataset(self) -> str:
        """config data.name ('?' if absent)."""
        return str(self._section("data").get("name", "?"))

    @property
    def model(self) -> str:
        """config model.name ('?' if absent)."""
        return str(self._section("model").get("name", "?"))

    @property
    def method(self) -> str:
        """config method.name ('?' if absent)."""
        return str(self._section("method").get("name", "?"))

    @property
    def method_label(self) -> str:
        """The method's label in tables: 'DPI', 'DVAE-DN', 'T-CE' (see `method_label`)."""
        return method_label(self._section("method"))

    @property
    def collapsed(self) -> bool:
        """Whether the collapse guard flagged the run (results.json "health")."""
        health = self.results.get("health")
        return isinstance(health, Mapping) and health.get("status") == "collapsed"

    @property
    def seed(self) -> Any:
        """The run's seed: results.json's, else config.json's (None if neither has one)."""
        return self.results.get(SEED_KEY, self.config.get(SEED_KEY))

    @property
    def setting_key(self) -> str:
        """The config without its seed as canonical JSON: runs with equal keys differ only in
        their seed, so their metrics may be averaged."""
        settings = {key: value for key, value in self.config.items() if key != SEED_KEY}
        return json.dumps(settings, sort_keys=True, separators=(",", ":"))

    @property
    def flat_config(self) -> dict[str, Any]:
        """The config with dotted keys: {'method.c1': 10.0, 'seed': 0, ...} (`flatten`)."""
        return flatten(self.config)

    def test(self, view: str, epoch: str = "best") -> Mapping[str, Any] | None:
        """results["test"][view] (epoch 'best') or results["test_last"][view] ('last'); None
        when the run has no such view."""
        if epoch not in RESULT_KEYS:
            raise ValueError(f"epoch must be one of {', '.join(RESULT_KEYS)}, not {epoch!r}")
        views = self.results.get(RESULT_KEYS[epoch])
        row = views.get(view) if isinstance(views, Mapping) else None
        return row if isinstance(row, Mapping) else None

    def metric(self, view: str, name: str, epoch: str = "best") -> float | None:
        """The test `view`'s metric `name` ('recall@20') at `epoch`; None when the run has no
        such view or metric, NaN where the run wrote a non-finite value (null on disk)."""
        row = self.test(view, epoch)
        if row is None or name not in row:
            return None
        value = row[name]
        return math.nan if value is None else float(value)


def _read_object(path: Path) -> dict[str, Any]:
    """The JSON object in `path`; NotAFinishedRun (one line) if unreadable or not an object."""
    try:
        value = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise NotAFinishedRun(f"cannot read {path}: {err}") from err
    if not isinstance(value, dict):
        raise NotAFinishedRun(f"cannot read {path}: not a JSON object")
    return value


def read_run(path: str | Path) -> FinishedRun:
    """The finished run in directory `path`; `NotAFinishedRun` (one line) if it is none or a
    file of it cannot be read."""
    path = Path(path)
    if not path.is_dir():
        raise NotAFinishedRun(f"{path} is not a directory; pass a run directory (--workdir)")
    if not (path / rundir.CONFIG_FILE).is_file():
        raise NotAFinishedRun(f"{path} has no {rundir.CONFIG_FILE}: not a run directory")
    if not (path / rundir.RESULTS_FILE).is_file():
        raise NotAFinishedRun(f"{path} has no {rundir.RESULTS_FILE}: the run has not finished")
    config = _read_object(path / rundir.CONFIG_FILE)
    return FinishedRun(path, config, _read_object(path / rundir.RESULTS_FILE))


def _run_dirs(root: Path, recursive: bool) -> list[Path]:
    """The directories that hold a results.json: `root` and every folder below it, or only
    its direct subdirectories; in path order (a folder before the folders inside it)."""
    pattern = f"**/{rundir.RESULTS_FILE}" if recursive else f"*/{rundir.RESULTS_FILE}"
    return sorted(results.parent for results in root.glob(pattern))


def iter_runs(root: str | Path, *, recursive: bool = True) -> Iterator[FinishedRun]:
    """Every finished run directory under `root` (`root` itself included; with
    `recursive=False`, only its direct subdirectories), in path order.

    A directory with a results.json but no config.json is left out; one whose files cannot be
    read is left out with a one-line warning on stderr. `root` must be a directory
    (`NotAFinishedRun` otherwise, raised at once, not at the first `next`).
    """
    root = Path(root)
    if not root.is_dir():
        raise NotAFinishedRun(f"{root} is not a directory; pass a directory of run directories")
    return _finished_runs(_run_dirs(root, recursive))


def _finished_runs(run_dirs: list[Path]) -> Iterator[FinishedRun]:
    """`read_run` of each directory with a config.json; a failed read is a warning line."""
    for run_dir in run_dirs:
        if not (run_dir / rundir.CONFIG_FILE).is_file():
            continue
        try:
            yield read_run(run_dir)
        except NotAFinishedRun as err:
            print(f"warning: skipped a run: {err}", file=sys.stderr)
