"""The reference recommenders' names and labels (no JAX, no SciPy: the config layer reads them)."""

from __future__ import annotations

from collections.abc import Sequence

from dprec.errors import ConfigError

# name → label in reports; the order is the order of the rows.
REFERENCE_LABELS = {
    "popularity": "Popularity",
    "itemknn": "ItemKNN",
    "rp3beta": "RP3β",
    "ease": "EASE",
    "ials": "iALS",
}
REFERENCE_NAMES = tuple(REFERENCE_LABELS)


def check_reference_names(names: Sequence[str]) -> None:
    """A one-line `ConfigError` unless `names` are distinct reference names."""
    example = "e.g. --config.eval.references=\"('itemknn', 'ease')\", or () for none"
    if isinstance(names, str) or not isinstance(names, (tuple, list)):
        raise ConfigError(f"eval.references must be a tuple of names, got {names!r}; {example}")
    for name in names:
        if name not in REFERENCE_LABELS:
            raise ConfigError(
                f"eval.references has unknown reference {name!r}; choose from "
                f"{', '.join(REFERENCE_NAMES)}, {example}"
            )
    if len(set(names)) != len(names):
        raise ConfigError(f"eval.references names a reference twice: {list(names)}")
