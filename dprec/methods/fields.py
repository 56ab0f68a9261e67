"""A method's config fields: what a card declares of each (`Field`: default, doc, range check,
tuner search space), read without JAX by the config boundary, `--config_help` and `dprec-tune`.

A field shared by several methods (DPI/DVAE's C1, C2, α; T-CE's schedule that DCF reuses) is one
`Field` object that each of their cards lists. The search spaces (`Choice`, `Float`, `Int`) are
Optuna distributions described as data: `suggest` calls the trial Optuna hands in, so this
module imports neither Optuna nor JAX.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from dprec.errors import ConfigError

# ---------------------------------------------------------------------------------------------
# Search spaces: a field's distribution in `dprec-tune`


@dataclasses.dataclass(frozen=True)
class Choice:
    """Categorical: one of `values`."""

    values: tuple

    def suggest(self, trial, key: str):
        return trial.suggest_categorical(key, list(self.values))

    def contains(self, value: Any) -> bool:
        return value in self.values

    def describe(self) -> Any:
        return list(self.values)

    def text(self) -> str:
        return (
            "{" + ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in self.values) + "}"
        )


@dataclasses.dataclass(frozen=True)
class Float:
    """A float in [low, high], uniform or (log=True) log-uniform."""

    low: float
    high: float
    log: bool = False

    def suggest(self, trial, key: str):
        return trial.suggest_float(key, self.low, self.high, log=self.log)

    def contains(self, value: Any) -> bool:
        return isinstance(value, (int, float)) and self.low <= value <= self.high

    def describe(self) -> Any:
        return {"low": self.low, "high": self.high, "log": self.log}

    def text(self) -> str:
        return f"[{self.low:g}, {self.high:g}]" + (" log-uniform" if self.log else "")


@dataclasses.dataclass(frozen=True)
class Int:
    """An integer in [low, high] (every `step`-th)."""

    low: int
    high: int
    step: int = 1

    def suggest(self, trial, key: str):
        return trial.suggest_int(key, self.low, self.high, step=self.step)

    def contains(self, value: Any) -> bool:
        return (
            isinstance(value, int)
            and self.low <= value <= self.high
            and (value - self.low) % self.step == 0
        )

    def describe(self) -> Any:
        return {"low": self.low, "high": self.high, "step": self.step, "int": True}

    def text(self) -> str:
        step = f" step {self.step}" if self.step != 1 else ""
        return f"integers {self.low}…{self.high}{step}"


Space = Choice | Float | Int

# ---------------------------------------------------------------------------------------------
# Checks: (value, "method.FIELD") → None, or a one-line ConfigError naming the field and the fix

Check = Callable[[Any, str], None]


def _number(value: float) -> str:
    return f"{value:g}"


@dataclasses.dataclass(frozen=True)
class Range:
    """A number within bounds: `low` and/or `high` (None: unbounded), each open or closed.
    `symbol`, the paper's name of the field, is shown beside it: "method.alpha (α)"."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    symbol: str = ""

    def holds(self, value: float) -> bool:
        above = self.low is None or (value > self.low if self.low_open else value >= self.low)
        below = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return above and below

    def bounds(self) -> str:
        """'in [0, 0.5)', '>= 0', '> 0', '<= 1'."""
        if self.low is not None and self.high is not None:
            left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
            return f"in {left}{_number(self.low)}, {_number(self.high)}{right}"
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {_number(self.low)}"
        if self.high is not None:
            return f"{'<' if self.high_open else '<='} {_number(self.high)}"
        return "a number"

    def __call__(self, value: Any, name: str) -> None:
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not number or not self.holds(value):
            shown = f"{name} ({self.symbol})" if self.symbol else name
            raise ConfigError(f"{shown} must be {self.bounds()}, got {value}; set --config.{name}")


@dataclasses.dataclass(frozen=True)
class OneOf:
    """One of the strings `choices`."""

    choices: tuple[str, ...]

    def __call__(self, value: Any, name: str) -> None:
        if value not in self.choices:
            raise ConfigError(
                f"{name}={value!r} is not one of {', '.join(self.choices)}; set --config.{name}"
            )


@dataclasses.dataclass(frozen=True)
class PositiveInt:
    """An integer > 0 (a bool is not one)."""

    def __call__(self, value: Any, name: str) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ConfigError(
                f"{name} must be a positive integer, got {value!r}; set --config.{name}"
            )


# ---------------------------------------------------------------------------------------------
# The field


@dataclasses.dataclass(frozen=True)
class Field:
    """One config field of a method: `--config.method.<its name>`.

    default: its value unless set (a float default makes it a float field, whose value must be
    finite; a spec dataclass default, e.g. `ModelSpec`, makes it a section of its own);
    doc: its `--config_help` line; check: its range (a `Check`), None for any value of its
    type; space: its distribution in `dprec-tune`, None if the tuner leaves it fixed.
    """

    default: Any
    doc: str = ""
    check: Check | None = None
    space: Space | None = None
