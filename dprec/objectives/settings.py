"""Checks of the static hyper-parameters the objectives close over (temperatures, exponents).

They run in Python at trace time, so a bad setting fails at once with its name, not as a NaN
many steps later. A traced value (a jax array inside jit) is not checked.
"""

from __future__ import annotations

import math
import numbers


def _is_static_number(value) -> bool:
    return isinstance(value, numbers.Real)


def check_positive(name: str, value) -> None:
    """Reject a static `value` that is not a finite number > 0."""
    if _is_static_number(value) and not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


def check_nonnegative(name: str, value) -> None:
    """Reject a static `value` that is not a finite number >= 0."""
    if _is_static_number(value) and not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


def check_finite(name: str, value) -> None:
    """Reject a static `value` that is NaN or infinite."""
    if _is_static_number(value) and not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
