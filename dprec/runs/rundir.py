"""The run directory: config, run info, per-epoch metrics (JSON lines) and final results.

Every file is written atomically (temporary file in the same directory, then rename), so an
interrupted run never leaves a half-written file.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from dprec.errors import UserInputError

# The atomic writers live at the bottom of the package (the DVAE prior's cache uses them too);
# they are names of this module as well, for the run directory's writers and readers.
from dprec.files import DiskError as DiskError
from dprec.files import disk_error as disk_error
from dprec.files import process_umask as process_umask
from dprec.files import write_atomic as write_atomic
from dprec.files import write_atomic_bytes as write_atomic_bytes
from dprec.metrics import metric_names

CONFIG_FILE = "config.json"
RUN_INFO_FILE = "run_info.json"
METRICS_FILE = "metrics.jsonl"
RESULTS_FILE = "results.json"
RESULTS_TABLE_FILE = "results.md"
CHECKPOINT_DIR = "checkpoints"  # orbax's folder (dprec.runs.checkpoint)


def _finite(value: Any) -> Any:
    """JSON-safe: NaN and infinities become None, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def write_json(path: str | Path, value: Any) -> None:
    write_atomic(path, json.dumps(_finite(value), indent=2, sort_keys=False) + "\n")


def check_workdir(workdir: str | Path) -> Path:
    """Raise if `workdir` cannot be a run directory: it is a file, its parent is one, or the
    deepest existing folder on its path is not writable. Leaves nothing behind."""
    path = Path(workdir).expanduser()
    for candidate in (path, *path.parents):
        if candidate.exists() and not candidate.is_dir():
            raise UserInputError(
                f"workdir {path} cannot be created: {candidate} is a file; pass another --workdir"
            )
    existing = next(candidate for candidate in (path, *path.parents) if candidate.exists())
    try:
        os.rmdir(tempfile.mkdtemp(dir=existing, prefix=".dprec-write-check-"))
    except OSError as err:
        raise UserInputError(
            f"workdir {path} is not writable ({type(err).__name__} in {existing}); pass a "
            "writable --workdir"
        ) from err
    return path


def has_checkpoints(workdir: str | Path) -> bool:
    """Whether `workdir` holds at least one committed checkpoint step."""
    folder = Path(workdir).expanduser() / CHECKPOINT_DIR
    return folder.is_dir() and any(p.name.isdigit() for p in folder.iterdir())


def check_no_finished_run(workdir: str | Path) -> None:
    """Raise if `workdir` holds a finished run's results but no checkpoint to resume from: a
    new run there would overwrite them before its own are safe."""
    path = Path(workdir).expanduser()
    if (path / RESULTS_FILE).exists():
        raise UserInputError(
            f"{path} holds the results of a finished run but no checkpoint to resume from; pass "
            "another --workdir (or move that run away to retrain here)"
        )


def stored_data(workdir: str | Path) -> dict[str, str] | None:
    """{"fingerprint", "summary"} of the data the run in `workdir` was made on (its
    run_info.json), or None when it has none."""
    path = Path(workdir).expanduser() / RUN_INFO_FILE
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if "data_fingerprint" not in info:
        return None
    return {"fingerprint": info["data_fingerprint"], "summary": info.get("data_summary", "?")}


def check_same_data(workdir: str | Path, fingerprint: str, summary: str) -> None:
    """Raise if the run in `workdir` was made on other data than (`fingerprint`, `summary`):
    resuming or re-evaluating it would mix two datasets. Reads only; writes nothing."""
    stored = stored_data(workdir)
    if stored is not None and stored["fingerprint"] != fingerprint:
        raise UserInputError(
            f"the data under {workdir} changed since its run (then: {stored['summary']}, "
            f"fingerprint {stored['fingerprint']}; now: {summary}, fingerprint {fingerprint}); "
            "pass another --workdir to train on the new data, or restore the old data file"
        )


def check_same_config(workdir: str | Path, config: dict[str, Any]) -> None:
    """Raise unless `workdir`'s config.json holds `config` (a resumed run must not change it)."""
    stored_path = Path(workdir) / CONFIG_FILE
    stored = json.loads(stored_path.read_text()) if stored_path.exists() else None
    if stored != json.loads(json.dumps(_finite(config))):
        raise UserInputError(
            f"{workdir} holds a checkpointed run with another config; rerun with the same "
            "config to resume it, or pass another --workdir"
        )


class RunWriter:
    """Writes one run directory. Created only after the inputs were validated.

    A resumed run (`resume_epoch`) keeps the metrics lines of the epochs up to its checkpoint
    (and rebuilds its TensorBoard events from them); a new run starts both afresh. Finished
    results are never removed: `write_results` replaces them atomically.
    """

    def __init__(self, workdir: str | Path, resume_epoch: int | None = None):
        self.path = check_workdir(workdir)
        self.path.mkdir(parents=True, exist_ok=True)
        self._records: list[dict[str, Any]] = []
        metrics = self.path / METRICS_FILE
        if resume_epoch is not None and metrics.exists():
            records = (json.loads(line) for line in metrics.read_text().splitlines() if line)
            self._records = [r for r in records if r["epoch"] <= resume_epoch]
        if resume_epoch is None:
            metrics.unlink(missing_ok=True)
        from dprec.runs.tensorboard import EVENTS_DIR, EpochEvents  # tensorboardX: run dirs only

        self._events_dir = self.path / EVENTS_DIR
        try:
            self._events = EpochEvents(self.path, self._records)
        except OSError as err:
            raise disk_error(self._events_dir, err) from err

    def write_config(self, config: dict[str, Any], run_info: dict[str, Any]) -> None:
        write_json(self.path / CONFIG_FILE, config)
        write_json(self.path / RUN_INFO_FILE, run_info)

    def log_epoch(self, record: dict[str, Any]) -> None:
        """Append one epoch's record to metrics.jsonl (the whole file is rewritten atomically)."""
        self._records.append(_finite(record))
        lines = [json.dumps(r, sort_keys=False) for r in self._records]
        write_atomic(self.path / METRICS_FILE, "\n".join(lines) + "\n")
        try:
            self._events.write(record)
        except OSError as err:
            raise disk_error(self._events_dir, err) from err

    def write_results(self, results: dict[str, Any], table: str) -> None:
        write_json(self.path / RESULTS_FILE, results)
        write_atomic(self.path / RESULTS_TABLE_FILE, table)

    def close(self) -> None:
        """Flush and close the TensorBoard events (metrics.jsonl is always complete on disk)."""
        with contextlib.suppress(OSError):
            self._events.close()


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    """The lines of a Markdown table: header, separator, one line per row of cells.

    The one table writer of the project: results.md here, Table 2 in `dprec.tools.report`, the
    selection of `dprec.sweeps.grid`, the table of `dprec.sweeps.noise_bench`.
    """
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def results_table(results: dict[str, Any], ks: tuple[int, ...]) -> str:
    """Markdown tables of the test views at the best validation epoch and at the last epoch."""
    columns = [*metric_names(ks), "users"]
    lines = []
    for key, title in (
        ("test", f"best validation epoch ({results['best_epoch']})"),
        ("test_last", f"last epoch ({results['epochs_run']})"),
    ):
        rows = [[view] + [_cell(row.get(c)) for c in columns] for view, row in results[key].items()]
        lines += [f"### Test at the {title}", "", *markdown_table(["view", *columns], rows), ""]
    valid = [[_cell(results["valid"].get(c)) for c in columns]]
    lines += ["### Validation at the best epoch", "", *markdown_table(columns, valid), ""]
    return "\n".join(lines)
