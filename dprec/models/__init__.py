"""Model registry and the functional interface every training and evaluation path uses.

Models are Flax NNX modules with three forward methods:
`encode(graph, rng, users=None)` (work shared by all pairs of a step, e.g. LightGCN propagation
or CDAE hidden codes; None for embedding models; `rng` None means evaluation: no corruption;
`users` None means all users, and only `BATCH_ENCODED` models restrict it to a batch's users),
`pair_logits(encoded, users, items) -> [B]` and `all_item_logits(encoded, users) -> [U, n_items]`.
They are split once into `(graphdef, params)`; jitted code calls the pure functions of
`make_score_fns(graphdef)` with params as a plain pytree (nested dicts of arrays).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
from flax import nnx

from dprec.models.cdae import CDAE
from dprec.models.gmf import GMF
from dprec.models.lightgcn import LightGCN
from dprec.models.mf import MF
from dprec.models.neumf import NeuMF

Params = Any  # nested dict of arrays

_MODELS = {"mf": MF, "gmf": GMF, "neumf": NeuMF, "cdae": CDAE, "lightgcn": LightGCN}
MODEL_NAMES = tuple(_MODELS)
# How λ0 regularises each model under the "paper" L2 rule (PROTOCOL.md): "squared" =
# λ0·½·‖θ‖²/n_users; "norm" = λ0·Σ_tensors ‖θ_t‖₂, not squared nor divided (the authors' CDAE).
L2_KIND = {"cdae": "norm"}
# Models whose `encode` reads the training adjacency.
GRAPH_MODELS = frozenset({"cdae", "lightgcn"})
# Models whose training step encodes its batch's users only: `encode(graph, rng, users)` with
# distinct `users [U]` gives their encodings `[U, ...]`, reading the users' training rows
# (`Graph.rows`) and user tables (`ROW_TABLES` "user" entries: CDAE's V; none for LightGCN,
# whose item side reads every user) restricted to those rows; pairs are then scored with
# positions in `users`. Their row tables are user tables only.
BATCH_ENCODED = frozenset({"cdae", "lightgcn"})


@dataclasses.dataclass(frozen=True)
class ScoreFns:
    """Pure functions of one model architecture.

    encode: (params, graph, rng | None, users [U] | None = None) -> encoded
    pair: (params, encoded, users [B], items [B]) -> logits [B]
    all_items: (params, encoded, users [U]) -> logits [U, n_items]
    batch_tables: for a `BATCH_ENCODED` model, its user tables (attribute → "user") that
    `encode` with `users` reads restricted to those users' rows; None for every other model.
    """

    encode: Callable[..., Any]
    pair: Callable[[Params, Any, jax.Array, jax.Array], jax.Array]
    all_items: Callable[[Params, Any, jax.Array], jax.Array]
    batch_tables: dict[str, str] | None = None


def model_name(graphdef: Any) -> str | None:
    """The registry name of the architecture `graphdef` splits (None for other modules)."""
    kind = getattr(graphdef.nodes[0], "type", None)  # the root module's class
    return next((name for name, cls in _MODELS.items() if cls is kind), None)


def row_tables(name: str) -> dict[str, str]:
    """Attribute → "user" | "item" of the tables model `name` reads one row of per pair (for
    CDAE: V, read for the batch's users); empty for LightGCN, whose propagation reads whole
    tables."""
    return dict(getattr(_MODELS[name], "ROW_TABLES", {}))


def l2_row_tables(name: str) -> dict[str, str]:
    """Attribute → "user" | "item" of the tables whose rows the "batch" L2 rule charges to the
    examples that read them: the row tables, or a model's own `L2_ROW_TABLES` (LightGCN: its
    layer-0 embeddings, as in He et al.'s regulariser)."""
    cls = _MODELS[name]
    return dict(getattr(cls, "L2_ROW_TABLES", getattr(cls, "ROW_TABLES", {})))


def create_model(spec, n_users: int, n_items: int, rngs: nnx.Rngs) -> nnx.Module:
    """Build the module named by `spec.name` (a `ModelSpec`)."""
    if spec.name not in _MODELS:
        raise ValueError(f"unknown model {spec.name!r}; choose one of {', '.join(MODEL_NAMES)}")
    return _MODELS[spec.name](n_users, n_items, spec, rngs=rngs)


def init_model(spec, n_users: int, n_items: int, key: jax.Array) -> tuple[Any, Params]:
    """Create and split a model: `(graphdef, params)` with params as a plain nested dict."""
    graphdef, state = nnx.split(create_model(spec, n_users, n_items, nnx.Rngs(key)))
    return graphdef, nnx.to_pure_dict(state)


def make_score_fns(graphdef: Any) -> ScoreFns:
    """Pure scoring functions for the architecture `graphdef`."""

    def encode(params: Params, graph: Any, rng: Any, users: Any = None) -> Any:
        return nnx.merge(graphdef, params).encode(graph, rng, users)

    def pair(params: Params, encoded: Any, users: jax.Array, items: jax.Array) -> jax.Array:
        return nnx.merge(graphdef, params).pair_logits(encoded, users, items)

    def all_items(params: Params, encoded: Any, users: jax.Array) -> jax.Array:
        return nnx.merge(graphdef, params).all_item_logits(encoded, users)

    name = model_name(graphdef)
    batch_tables = row_tables(name) if name in BATCH_ENCODED else None
    return ScoreFns(encode=encode, pair=pair, all_items=all_items, batch_tables=batch_tables)
