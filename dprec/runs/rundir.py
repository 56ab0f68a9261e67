"""The run directory: config, run info, per-epoch metrics (JSON lines) and final results.

Every file is written atomically (temporary file in the same directory, then rename), so an
interrupted run never leaves a half-written file.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from dprec.errors import UserInputError
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


class DiskError(UserInputError):
    """A file of the run could not be written (no space, read-only, quota): one line naming the
    path and the errno."""


def disk_error(path: str | Path, err: OSError) -> DiskError:
    """The one-line error for an OSError `err` raised while writing `path`."""
    code = errno.errorcode.get(err.errno, "") if err.errno else ""
    reason = err.strerror or str(err) or type(err).__name__
    return DiskError(
        f"cannot write {path}: {reason}{f' ({code})' if code else ''}; free space or pass a "
        "writable --workdir (finished results and committed checkpoints are kept)"
    )


def process_umask() -> int:
    mask = os.umask(0o022)  # os.umask can only be read by setting it: set it back at once
    os.umask(mask)
    return mask


def write_atomic_bytes(path: str | Path, data: bytes, *, gzip_compress: bool = False) -> None:
    """Write `data` to `path` through a temporary file and a rename (optionally gzip'd)."""
    path = Path(path)
    if gzip_compress:
        data = gzip.compress(data, mtime=0)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o666 & ~process_umask())  # mkstemp makes 0600
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(err, OSError):
            raise disk_error(path, err) from err
        raise


def write_atomic(path: str | Path, text: str) -> None:
    """Write `text` to `path` through a temporary file and a rename."""
    write_atomic_bytes(path, text.encode())


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
