"""TensorBoard event files of a run (tensorboardX: no TensorFlow needed), one point per epoch."""

from __future__ import annotations

from collections.abc import Iterable
from numbers import Number
from pathlib import Path
from typing import Any

EVENTS_DIR = "tensorboard"


class EpochEvents:
    """Writes each epoch's loss terms (train/...), the mean phase and the validation metrics
    and losses (valid/..., e.g. valid/loss, valid/trimmed_loss) (and per-epoch test metrics)
    to RUN_DIR/tensorboard.

    The folder is rebuilt at the start from `history`, the epoch records the run keeps
    (metrics.jsonl up to the checkpoint it resumes from; none for a new run): the events of
    epochs a resumed run redoes are gone, so each epoch appears once.
    """

    def __init__(self, run_dir: str | Path, history: Iterable[dict[str, Any]] = ()):
        from tensorboardX import SummaryWriter  # heavy import: only for runs with a workdir

        folder = Path(run_dir) / EVENTS_DIR
        if folder.is_dir():
            for old in folder.glob("events.out.tfevents.*"):
                old.unlink()
        self._writer = SummaryWriter(str(folder))
        for record in history:
            self.write(record, flush=False)
        self._writer.flush()

    def write(self, record: dict[str, Any], *, flush: bool = True) -> None:
        epoch = record["epoch"]
        for key, value in record.items():
            if key == "epoch":
                continue
            if isinstance(value, dict):  # valid / test_paper metrics
                for metric, number in value.items():
                    if metric != "users" and number is not None:
                        tag = metric.replace("@", "_at_")  # "@" is not a valid tag character
                        self._writer.add_scalar(f"{key}/{tag}", number, epoch)
            elif isinstance(value, Number) and key.startswith("valid_"):  # valid_loss, ...
                self._writer.add_scalar(f"valid/{key.removeprefix('valid_')}", value, epoch)
            elif isinstance(value, Number):
                self._writer.add_scalar(f"train/{key}", value, epoch)
        if flush:
            self._writer.flush()

    def close(self) -> None:
        self._writer.close()
