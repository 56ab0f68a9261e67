"""Reference recommenders: strong non-denoising rankers fitted on the training split, their
hyper-parameters chosen on the validation split (`select.fit_references`), that every run is
compared with (`popularity`, `itemknn`, `rp3beta`, `ease`, `ials`; docs/references.md).

This package imports neither JAX nor SciPy: the config layer checks names against
`REFERENCE_NAMES`, and `get_reference` imports a reference's module the first time it is asked
for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from dprec.references.names import REFERENCE_LABELS, REFERENCE_NAMES, check_reference_names

if TYPE_CHECKING:
    from dprec.references.base import Reference

__all__ = ["REFERENCE_LABELS", "REFERENCE_NAMES", "check_reference_names", "get_reference"]


def get_reference(name: str) -> Reference:
    """The reference called `name`; an unknown name is a `ConfigError`."""
    check_reference_names([name])
    return importlib.import_module(f"dprec.references.{name}").REFERENCE
