"""Whether a run learned: the collapse guard over its epoch records (plain Python, no JAX).

A run has *collapsed* when, by its last epoch, any of these holds:
- `shrunk`: the target's parameters shrank to under `SHRUNK` of their initial size (root mean
  square; the records start with an epoch-0 record of the initial size): the L2 term has won
  over the data, and every user gets about the same near-constant ranking;
- `fell`: the validation metric ended below `FELL` of its peak and did not recover;
- `flat`: the training loss ended within `FLAT` (relative) of its first epoch's value while
  validation never rose above its first epoch's: the model did not learn at all.
Each reason names the settings to change. The guard never stops a run unless asked
(`train.stop_on_collapse`, checked by `stop_now` after every epoch).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

SHRUNK = 0.1  # target RMS below this share of its first epoch's
FELL = 0.5  # last validation below this share of the peak
FLAT = 0.005  # relative change of the loss from the first to the last epoch
PATIENCE = 5  # epochs a stop-on-collapse run waits for validation to recover


@dataclasses.dataclass(frozen=True)
class Health:
    """The guard's verdict: `status` "ok" or "collapsed"; for a collapse, the first epoch at
    which it held, the reasons and one line of advice."""

    status: str = "ok"
    epoch: int | None = None
    reasons: tuple[str, ...] = ()
    advice: str = ""

    @property
    def collapsed(self) -> bool:
        return self.status == "collapsed"

    def line(self) -> str:
        """The one line a run prints (empty when healthy)."""
        if not self.collapsed:
            return ""
        return f"health: collapsed at epoch {self.epoch}: {'; '.join(self.reasons)}; {self.advice}"

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Health:
        """The verdict `to_dict` wrote (results.json "health")."""
        return cls(**{**values, "reasons": tuple(values.get("reasons", ()))})

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "epoch": self.epoch,
            "reasons": list(self.reasons),
            "advice": self.advice,
        }


def _value(record: dict[str, Any], metric: str) -> float | None:
    value = record.get("valid", {}).get(metric)
    return None if value is None or not math.isfinite(value) else float(value)


def _first_index(values: Sequence[bool]) -> int | None:
    return next((i for i, v in enumerate(values) if v), None)


def check(
    records: Sequence[dict[str, Any]], metric: str, *, l2: float, learning_rate: float
) -> Health:
    """The verdict on a run's epoch records (each with "epoch", "loss", "valid" and, when
    logged, "target_rms"; an epoch-0 record may hold the initial "target_rms" only), judged at
    the last record."""
    rms = [r.get("target_rms") for r in records]
    records = [r for r in records if "loss" in r]  # the trained epochs
    if len(records) < 2:
        return Health()
    reasons, epochs = [], []
    if rms[0] and rms[-1] is not None and rms[-1] < SHRUNK * rms[0]:
        trained = [r.get("target_rms") for r in records]
        index = _first_index([x is not None and x < SHRUNK * rms[0] for x in trained])
        reasons.append(
            f"the target's parameters shrank to {rms[-1] / rms[0]:.1%} of their initial size "
            "(the L2 term outweighs the data)"
        )
        epochs.append(records[index]["epoch"])
    valid = [_value(r, metric) for r in records]
    known = [v for v in valid if v is not None]
    if known and max(known) > 0 and valid[-1] is not None and valid[-1] < FELL * max(known):
        peak = max(known)
        fell = [
            v is not None and v < FELL * peak and i > valid.index(peak) for i, v in enumerate(valid)
        ]
        reasons.append(
            f"validation {metric} fell from its peak {peak:.4f} to {valid[-1]:.4f} and did not "
            "recover"
        )
        epochs.append(records[_first_index(fell)]["epoch"])
    first_loss, last_loss = records[0].get("loss"), records[-1].get("loss")
    if (
        first_loss
        and last_loss is not None
        and abs(last_loss - first_loss) <= FLAT * abs(first_loss)
        and known
        and valid[0] is not None
        and max(known) <= valid[0]
    ):
        reasons.append(f"the loss stayed at {last_loss:.4f} (epoch 1: {first_loss:.4f})")
        epochs.append(records[0]["epoch"])
    if not reasons:
        return Health()
    advice = (
        f"lower --config.train.l2 (now {l2:g}, e.g. {l2 / 10:g}) or raise "
        f"--config.train.learning_rate (now {learning_rate:g})"
        if l2 > 0
        else f"change --config.train.learning_rate (now {learning_rate:g}) or the method's weights"
    )
    return Health("collapsed", min(epochs), tuple(reasons), advice)


def stop_now(
    records: Sequence[dict[str, Any]], metric: str, *, l2: float, learning_rate: float
) -> Health | None:
    """For `train.stop_on_collapse`: the verdict once a collapse is certain enough to stop:
    the parameters shrank, or validation has stayed below `FELL` of its peak for `PATIENCE`
    epochs; None to go on."""
    health = check(records, metric, l2=l2, learning_rate=learning_rate)
    if not health.collapsed:
        return None
    valid = [_value(r, metric) for r in records[-PATIENCE:]]
    peak = max((v for r in records if (v := _value(r, metric)) is not None), default=0.0)
    stayed_low = len(valid) == PATIENCE and all(v is not None and v < FELL * peak for v in valid)
    shrunk = any(reason.startswith("the target's parameters shrank") for reason in health.reasons)
    return health if shrunk or stayed_low else None
