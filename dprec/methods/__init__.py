"""The training methods: name → `Method` (see `dprec.methods.base`).

A new method is two files and its tests: `dprec/methods/<name>.py`, a `Method` subclass whose
`card` (`cards.MethodCard`) declares the fields it reads (`fields.Field`: default, doc, range,
tune space) and its presets, and its `METHOD` instance; and its per-example objective,
`dprec/objectives/<name>.py`. The config's `method` section (`--config.method.<field>`), the
range checks and `dprec-tune`'s space come from the card: `get_method` and `get_card` import
`dprec.methods.<name>` the first time a config names it, and `register(method)` adds a method
defined anywhere else (a notebook, a test).

This package imports no JAX until a method is asked for. The built-in methods' cards are in
`cards.py` so that `--help` and `--config_help` list them and the command line checks their
configs before JAX starts; a method found by its module's name imports JAX when a config
selects it, and `--config_help` shows its fields once it is registered.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

from dprec.errors import ConfigError
from dprec.methods.cards import CARDS, METHOD_NAMES, MethodCard
from dprec.methods.fields import Field
from dprec.specs import MethodSpec, use_method_fields

if TYPE_CHECKING:
    from dprec.methods.base import Method

# name → the methods imported or registered so far (`get_method` and `register` fill it).
METHODS: dict[str, Method] = {}

__all__ = [
    "METHODS",
    "METHOD_NAMES",
    "all_methods",
    "check_method_name",
    "get_card",
    "get_method",
    "is_method",
    "method_fields",
    "method_names",
    "register",
]


def method_names() -> tuple[str, ...]:
    """The built-in methods, then those registered (or found by name) in this process."""
    return (*METHOD_NAMES, *(name for name in METHODS if name not in CARDS))


def registered_cards() -> dict[str, MethodCard]:
    """name → card of every method of `method_names()`."""
    return {**CARDS, **{name: method.card for name, method in METHODS.items()}}


def method_fields() -> dict[str, Field]:
    """field → `Field` of every registered card, each once, in the cards' order: the config's
    `method` section and the values a `MethodSpec` holds."""
    fields: dict[str, Field] = {}
    for card in registered_cards().values():
        fields.update(card.fields)
    return fields


use_method_fields(method_fields)  # `MethodSpec` holds the value of every registered field


def unknown_method(name: str) -> ConfigError:
    """The error for a method name no registry knows."""
    return ConfigError(
        f"method.name={name!r} is not one of {', '.join(method_names())}; set --config.method.name"
    )


def register(method: Method) -> Method:
    """Add `method` (defined anywhere) to the registry under its card's name, so that
    `get_method`, the config boundary and `dprec-tune` see it and its card's fields; returns it.

    Raises:
      ValueError: its name is a built-in method's, or one of its fields is declared by another
        card with another default, doc, check or space (a shared field is one `Field` object).
    """
    card = method.card
    if card.name in CARDS and card is not CARDS[card.name]:
        raise ValueError(f"method name {card.name!r} is a built-in method's; choose another")
    others: dict[str, tuple[str, Field]] = {}  # field → (the first card declaring it, its Field)
    for other in registered_cards().values():
        if other.name != card.name:
            for name, field in other.fields.items():
                others.setdefault(name, (other.name, field))
    for name, field in card.fields.items():
        if hasattr(MethodSpec, name):
            raise ValueError(f"method {card.name!r}: field name {name!r} is reserved; rename it")
        if name in others and others[name][1] != field:
            raise ValueError(
                f"method {card.name!r}: field {name!r} is already declared by method "
                f"{others[name][0]!r}; reuse its Field or rename the field"
            )
    METHODS[card.name] = method
    return method


def _import_method(name: str) -> Method | None:
    """`dprec.methods.<name>.METHOD` if that module exists and defines the method `name`."""
    if not name.isidentifier():
        return None
    module_name = f"{__name__}.{name}"
    if importlib.util.find_spec(module_name) is None:
        return None
    method: Any = getattr(importlib.import_module(module_name), "METHOD", None)
    card = getattr(method, "card", None)
    return method if isinstance(card, MethodCard) and card.name == name else None


def get_method(name: str) -> Method:
    """The method called `name`; an unknown name is a `ConfigError`, never a default."""
    if name not in METHODS:
        method = _import_method(name)
        if method is None:
            raise unknown_method(name)
        register(method)
    return METHODS[name]


def get_card(name: str) -> MethodCard:
    """The card of the method called `name`: a built-in's without importing its module; an
    unknown name is a `ConfigError`."""
    if name in METHODS:
        return METHODS[name].card
    if name in CARDS:
        return CARDS[name]
    return get_method(name).card


def is_method(name: str) -> bool:
    """Whether `name` is a registered method (or a module of this package that defines it)."""
    try:
        get_card(name)
    except ConfigError:
        return False
    return True


def check_method_name(name: str) -> None:
    """A `ConfigError` unless `name` is a registered method; imports no built-in method."""
    get_card(name)


def all_methods() -> dict[str, Method]:
    """name → method, every registered method (imports them all)."""
    return {name: get_method(name) for name in method_names()}
