"""Checkpoints of a run (orbax): the latest train state, the best-epoch parameters and the loop's
bookkeeping, saved under RUN_DIR/checkpoints; orbax commits each save atomically, so a run
killed at any moment (kill -9 included) resumes from the last commit. The two latest commits
are kept, so an unreadable latest one still leaves one to resume from.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import errno
import json
import logging
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp
import tensorstore as ts

from dprec.errors import UserInputError
from dprec.runs.rundir import CHECKPOINT_DIR, DiskError, disk_error

KEEP = 2  # committed checkpoints kept: the latest and one to fall back on


class CheckpointError(UserInputError):
    """A committed checkpoint cannot be read back, or does not fit the run's state."""


# What orbax and tensorstore say when a write fails for lack of room or rights (they wrap the
# OSError in their own exceptions, often as text only).
_DISK_FAILURES = {
    "No space left on device": errno.ENOSPC,
    "RESOURCE_EXHAUSTED": errno.ENOSPC,
    "Disk quota exceeded": errno.EDQUOT,
    "Read-only file system": errno.EROFS,
    "Permission denied": errno.EACCES,
}


@contextlib.contextmanager
def _quiet_background_failures() -> Iterator[None]:
    """Orbax writes arrays on background threads; when one write fails (a full disk), the
    others fail after it and print tracebacks through Python's hooks and orbax's error logs.
    Within a save those are held back; if the save fails they stay silent for the rest of the
    process (its one-line error says what happened), else they are reported as usual."""
    hooks = (sys.excepthook, sys.unraisablehook, threading.excepthook)
    # Orbax logs through absl; its writes run as asyncio tasks, and a second failed write's
    # task is reported by asyncio's logger ("Task exception was never retrieved") when the
    # loop or the task is collected, which may be after the save has failed.
    loggers = [logging.getLogger(name) for name in ("absl", "asyncio")]
    levels = [logger.level for logger in loggers]
    held: list[tuple] = []
    sys.excepthook = lambda *args: held.append(("except", args))
    sys.unraisablehook = lambda arg: held.append(("unraisable", (arg,)))
    threading.excepthook = lambda arg: held.append(("thread", (arg,)))
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    yield
    sys.excepthook, sys.unraisablehook, threading.excepthook = hooks
    for logger, level in zip(loggers, levels, strict=True):
        logger.setLevel(level)
    for kind, args in held:
        {"except": hooks[0], "unraisable": hooks[1], "thread": hooks[2]}[kind](*args)


def _one_line(err: BaseException) -> str:
    """`err`'s whole message on one line (orbax's run over several)."""
    return " ".join(str(err).split())


def _as_disk_error(path: Path, err: BaseException) -> DiskError | None:
    """A `DiskError` if `err` (or its cause chain) is a failed write for lack of room or rights."""
    seen = err
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in _DISK_FAILURES.values():
            return disk_error(path, seen)
        for text, code in _DISK_FAILURES.items():
            if text in str(seen):
                return disk_error(path, OSError(code, text))
        seen = seen.__cause__ or seen.__context__
    return None


def _release_freed_memory() -> None:
    """Return freed heap memory to the OS (glibc): a save's large transient host buffers
    otherwise stay with the process and its peak memory grows with every save."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to do
        ctypes.CDLL("libc.so.6").malloc_trim(0)


ARRAY_ITEMS = ("state", "best")  # the saved items holding arrays; "meta" is JSON


def _read_every_array(item_dir: Path) -> None:
    """Read each array of one saved item (an OCDBT database of zarr arrays) in full, one at
    a time and synchronously.

    Orbax's restore reads all arrays concurrently; when one read fails it abandons the others,
    whose late failures Python then prints as dozens of tracebacks. Reading them one by one
    here first keeps a bad file to one error.

    Raises:
      ValueError: a chunk, the manifest or an array's metadata cannot be read.
    """
    database = {"driver": "ocdbt", "base": f"file://{item_dir}/"}
    keys = ts.KvStore.open(database).result().list().result()
    arrays = sorted({key.decode().rsplit("/", 1)[0] for key in keys if key.endswith(b".zarray")})
    for array in arrays:
        store = ts.open({"driver": "zarr", "kvstore": {**database, "path": f"{array}/"}}).result()
        store.read().result()


def _read_every_json(step_dir: Path) -> None:
    """Parse each JSON file orbax reads on restore (the bookkeeping and the tree metadata).

    Raises:
      ValueError: one is not valid JSON (truncated, overwritten).
    """
    for path in [
        step_dir / "meta" / "metadata",
        *(step_dir / item / "_METADATA" for item in ARRAY_ITEMS),
    ]:
        json.loads(path.read_text())


def _abstract(tree: Any) -> Any:
    """Shapes, dtypes and shardings of `tree`: the restore target."""
    return jax.tree.map(ocp.utils.to_shape_dtype_struct, tree)


@dataclasses.dataclass(frozen=True)
class CheckpointMeta:
    """The loop's bookkeeping saved with each checkpoint (as JSON).

    best_value is None while no epoch has been validated (then the saved best parameters are
    the latest state's). history: each epoch's loss, target size and validation metric, for the
    collapse guard (`evaluation.health`) of a resumed run.
    """

    best_epoch: int
    best_valid: dict[str, Any] | None
    best_value: float | None
    epoch_seconds: list[float]
    eval_seconds: list[float]
    data_fingerprint: str
    history: list[dict[str, Any]] = dataclasses.field(default_factory=list)


class RunCheckpoints:
    """Save and restore {state, best params, bookkeeping} per epoch; keeps the latest only."""

    def __init__(self, run_dir: str | Path):
        options = ocp.CheckpointManagerOptions(max_to_keep=KEEP, enable_async_checkpointing=False)
        self.directory = Path(run_dir).resolve() / CHECKPOINT_DIR
        self._manager = ocp.CheckpointManager(self.directory, options=options)
        self._verified: int | None = None  # the step `verify_latest` read back in full

    def latest_epoch(self) -> int | None:
        """The epoch of the last committed checkpoint, or None."""
        return self._manager.latest_step()

    def save(self, epoch: int, state: Any, best_params: Any, meta: CheckpointMeta) -> None:
        """Commit the state after `epoch`, the best-epoch parameters and `meta`.

        Raises:
          DiskError: the write failed for lack of room or rights; what this save left in the
            checkpoint folder is removed, the committed checkpoints are untouched.
        """
        before = set(self.directory.iterdir()) if self.directory.is_dir() else set()
        self._check_room(epoch, state, best_params)
        try:
            with _quiet_background_failures():
                self._manager.save(
                    epoch,
                    args=ocp.args.Composite(
                        state=ocp.args.StandardSave(state),
                        best=ocp.args.StandardSave(best_params),
                        meta=ocp.args.JsonSave(dataclasses.asdict(meta)),
                    ),
                    force=True,
                )
                self._manager.wait_until_finished()
        except Exception as err:
            self._remove_new_entries(before)
            disk = _as_disk_error(self.directory / str(epoch), err)
            if disk is not None:
                raise disk from err
            raise
        finally:
            _release_freed_memory()

    def _check_room(self, epoch: int, *trees: Any) -> None:
        """Refuse a save that cannot fit: the arrays' bytes against the free space (a
        shortfall found while writing is also caught, but then orbax has begun)."""
        needed = sum(leaf.nbytes for tree in trees for leaf in jax.tree.leaves(tree))
        folder = self.directory if self.directory.is_dir() else self.directory.parent
        free = shutil.disk_usage(folder).free
        if needed > free:
            raise disk_error(
                self.directory / str(epoch),
                OSError(
                    errno.ENOSPC, f"No space left on device: {needed} bytes needed, {free} free"
                ),
            )

    def _remove_new_entries(self, before: set[Path]) -> None:
        """Delete what a failed save created (orbax's temporary step folder, a partial step).

        Orbax's writer threads may still be finishing (and failing) when the save raises, so
        the removal is retried until nothing new is left (for at most about two seconds)."""
        for _ in range(20):
            new = set(self.directory.iterdir()) - before if self.directory.is_dir() else set()
            if not new:
                return
            for entry in new:
                if entry.is_dir():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
            time.sleep(0.1)

    def verify_latest(self) -> None:
        """Read the latest checkpoint back in full (without a target) before anything else in
        the run directory is touched.

        Raises:
          CheckpointError: it cannot be read; the message names the step and the fix.
        """
        epoch = self.latest_epoch()
        if epoch is None:
            return
        step_dir = self.directory / str(epoch)
        try:
            _read_every_json(step_dir)
            for item in ARRAY_ITEMS:
                _read_every_array(step_dir / item)
        except (OSError, ValueError, UnicodeDecodeError) as err:
            raise self._unreadable(epoch, err) from err
        self._verified = epoch

    def restore(self, state_like: Any) -> tuple[int, Any, Any, CheckpointMeta]:
        """(epoch, state, best params, meta) of the last checkpoint, shaped like `state_like`.

        Raises:
          CheckpointError: it cannot be read, or holds another state structure.
        """
        epoch = self._manager.latest_step()
        restored = self._restore(
            epoch,
            state=ocp.args.StandardRestore(_abstract(state_like)),
            best=ocp.args.StandardRestore(_abstract(state_like.params)),
            meta=ocp.args.JsonRestore(),
        )
        return epoch, restored["state"], restored["best"], CheckpointMeta(**restored["meta"])

    def _restore(self, epoch: int, **items: Any) -> Any:
        try:
            return self._manager.restore(epoch, args=ocp.args.Composite(**items))
        except Exception as err:  # orbax and tensorstore raise many types for a bad file
            if self._verified == epoch:  # readable, so it is another state
                raise CheckpointError(
                    f"checkpoint {self.directory / str(epoch)} does not fit this run's state "
                    f"({type(err).__name__}: {_one_line(err)}); pass another --workdir"
                ) from err
            raise self._unreadable(epoch, err) from err

    def _unreadable(self, epoch: int, err: Exception) -> CheckpointError:
        older = [step for step in self._manager.all_steps() if step < epoch]
        fix = (
            f"delete {self.directory / str(epoch)} to resume from epoch {max(older)}, or "
            if older
            else ""
        )
        cause = _one_line(err)
        return CheckpointError(
            f"checkpoint {self.directory / str(epoch)} is unreadable ({type(err).__name__}"
            f"{': ' + cause if cause else ''}); {fix}pass another --workdir to train anew "
            "(the finished files there are kept)"
        )

    def close(self) -> None:
        """Release the manager's resources; the object is unusable afterwards."""
        self._manager.close()
