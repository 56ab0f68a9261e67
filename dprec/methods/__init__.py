"""The training methods: name → `Method` (see `dprec.methods.base`).

A new method is one module here (a `Method` subclass and its `METHOD` instance, listed in
`_MODULES`) plus its per-example objective in `dprec.objectives`.
"""

from __future__ import annotations

from dprec.errors import ConfigError
from dprec.methods import crossdenoise, dcf, dpi, dvae, normal, rce, tce, wbpr
from dprec.methods.base import Method

_MODULES = (normal, wbpr, tce, rce, dcf, crossdenoise, dpi, dvae)
METHODS: dict[str, Method] = {module.METHOD.name: module.METHOD for module in _MODULES}
METHOD_NAMES = tuple(METHODS)


def get_method(name: str) -> Method:
    """The method called `name`; an unknown name is a `ConfigError`, never a default."""
    if name not in METHODS:
        raise ConfigError(
            f"method.name={name!r} is not one of {', '.join(METHOD_NAMES)}; "
            "set --config.method.name"
        )
    return METHODS[name]
