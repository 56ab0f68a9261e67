"""Checkpoints of a run (orbax): the latest train state, the best-epoch parameters and the loop's
bookkeeping, saved under RUN_DIR/checkpoints; orbax commits each save atomically, so a run
killed at any moment (kill -9 included) resumes from the last commit. The two latest commits
are kept, so an unreadable latest one still leaves one to resume from.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import json
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp
import tensorstore as ts

from dprec.errors import UserInputError
from dprec.runs.rundir import CHECKPOINT_DIR

KEEP = 2  # committed checkpoints kept: the latest and one to fall back on


class CheckpointError(UserInputError):
    """A committed checkpoint cannot be read back."""


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
    the latest state's).
    """

    best_epoch: int
    best_valid: dict[str, Any] | None
    best_value: float | None
    epoch_seconds: list[float]
    eval_seconds: list[float]
    data_fingerprint: str


class RunCheckpoints:
    """Save and restore {state, best params, bookkeeping} per epoch; keeps the latest only."""

    def __init__(self, run_dir: str | Path):
        options = ocp.CheckpointManagerOptions(max_to_keep=KEEP, enable_async_checkpointing=False)
        self.directory = Path(run_dir).resolve() / CHECKPOINT_DIR
        self._manager = ocp.CheckpointManager(self.directory, options=options)

    def latest_epoch(self) -> int | None:
        """The epoch of the last committed checkpoint, or None."""
        return self._manager.latest_step()

    def save(self, epoch: int, state: Any, best_params: Any, meta: CheckpointMeta) -> None:
        """Commit the state after `epoch`, the best-epoch parameters and `meta`."""
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
        _release_freed_memory()

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
            raise self._unreadable(epoch, err) from err

    def _unreadable(self, epoch: int, err: Exception) -> CheckpointError:
        older = [step for step in self._manager.all_steps() if step < epoch]
        fix = (
            f"delete {self.directory / str(epoch)} to resume from epoch {max(older)}, or "
            if older
            else ""
        )
        cause = str(err).strip().splitlines()[0].split(". See full")[0][:160] if str(err) else ""
        return CheckpointError(
            f"checkpoint {self.directory / str(epoch)} is unreadable ({type(err).__name__}"
            f"{': ' + cause if cause else ''}); {fix}pass another --workdir to train anew "
            "(the finished files there are kept)"
        )

    def close(self) -> None:
        """Release the manager's resources; the object is unusable afterwards."""
        self._manager.close()
