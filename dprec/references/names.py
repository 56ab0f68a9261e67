"""The reference recommenders' names and labels (no JAX, no SciPy: the config layer reads them)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

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


def versus_references(test: Mapping[str, Any], metric: str, view: str = "paper") -> str:
    """One line: the model's test `metric` against the best reference row of the same view."""
    model = test[view][metric]
    rows = {
        key.removesuffix(f"_{view}"): row[metric]
        for key, row in test.items()
        if key.endswith(f"_{view}") and key != f"random_{view}" and row.get(metric) is not None
    }
    if not rows or model is None:
        return f"{metric} {model}: no reference row to compare with"
    best = max(rows, key=rows.get)
    label = REFERENCE_LABELS.get(best, best)
    verdict = "above" if model > rows[best] else "BELOW" if model < rows[best] else "equal to"
    return (
        f"{view} {metric} {model:.4f} is {verdict} the best reference, {label} "
        f"{rows[best]:.4f} ({(model / rows[best] - 1) * 100:+.1f} %)"
        if rows[best]
        else f"{view} {metric} {model:.4f}; the best reference, {label}, scores 0"
    )
