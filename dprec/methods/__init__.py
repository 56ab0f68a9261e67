"""The training methods: name → `Method` (see `dprec.methods.base`).

A new method is one module here, `dprec/methods/<name>.py` (a `Method` subclass and its
`METHOD` instance), its card in `cards.py` and its per-example objective in
`dprec.objectives`. This package imports no JAX: the cards are what the config layer reads,
and `get_method` imports a method's module (and JAX) the first time it is asked for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from dprec.methods.cards import METHOD_NAMES, unknown_method

if TYPE_CHECKING:
    from dprec.methods.base import Method

# name → the methods imported so far (`get_method` fills it; a test may register its own).
METHODS: dict[str, Method] = {}

__all__ = ["METHOD_NAMES", "METHODS", "all_methods", "check_method_name", "get_method"]


def check_method_name(name: str) -> None:
    """A `ConfigError` unless `name` is a registered method; imports no method."""
    if name not in METHODS and name not in METHOD_NAMES:
        raise unknown_method(name)


def get_method(name: str) -> Method:
    """The method called `name`; an unknown name is a `ConfigError`, never a default."""
    check_method_name(name)
    if name not in METHODS:
        METHODS[name] = importlib.import_module(f"dprec.methods.{name}").METHOD
    return METHODS[name]


def all_methods() -> dict[str, Method]:
    """name → method, every registered method (imports them all)."""
    return {name: get_method(name) for name in METHOD_NAMES}
