"""TensorBoard event files of a run (tensorboardX: no TensorFlow needed), one point per epoch."""

from __future__ import annotations

from numbers import Number
from pathlib import Path
from typing import Any

EVENTS_DIR = "tensorboard"


class EpochEvents:
    """Writes each epoch's loss terms (train/...), the mean phase and the validation (and
    per-epoch test) metrics to RUN_DIR/tensorboard; a resumed run drops the events after its
    checkpoint (`purge_step`)."""

    def __init__(self, run_dir: str | Path, resume_epoch: int | None = None):
        from tensorboardX import SummaryWriter  # heavy import: only for runs with a workdir

        purge = None if resume_epoch is None else resume_epoch + 1
        self._writer = SummaryWriter(str(Path(run_dir) / EVENTS_DIR), purge_step=purge)

    def write(self, record: dict[str, Any]) -> None:
        epoch = record["epoch"]
        for key, value in record.items():
            if key == "epoch":
                continue
            if isinstance(value, dict):  # valid / test_paper metrics
                for metric, number in value.items():
                    if metric != "users" and number is not None:
                        tag = metric.replace("@", "_at_")  # "@" is not a valid tag character
                        self._writer.add_scalar(f"{key}/{tag}", number, epoch)
            elif isinstance(value, Number):
                self._writer.add_scalar(f"train/{key}", value, epoch)
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()
