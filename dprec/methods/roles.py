"""The models a method trains (roles) and their initial parameters.

Role names: "target" (f), "aux" (g, DPI), "noise_dp" (h = P(r̃=1 | r=0), trained in DP
steps), "noise_dn" (h' = P(r̃=1 | r=1), trained in DN steps), and the frozen "prior" (f',
DVAE). Which roles a run has is the method's choice (`Method.role_models`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import jax

from dprec.models import ScoreFns, init_model, make_score_fns
from dprec.specs import ModelSpec

# Keys drawn for the trained roles: at least this many, so that adding a role to one method
# does not change the initial parameters of another.
_MIN_KEYS = 4


@dataclasses.dataclass(frozen=True)
class Roles:
    """Scoring functions and initial parameters per role.

    score: role → ScoreFns for every role; params: trained roles' initial parameters;
    frozen: never-trained parameters ("prior").
    """

    score: dict[str, ScoreFns]
    params: dict[str, Any]
    frozen: dict[str, Any]


def create_roles(
    trained: Mapping[str, ModelSpec],
    frozen_models: Mapping[str, ModelSpec],
    n_users: int,
    n_items: int,
    key: jax.Array,
    *,
    frozen: Mapping[str, Any] | None = None,
) -> Roles:
    """Initialise every trained role from its own key (`trained` order) and score every role.

    `frozen`: role → parameters of each of `frozen_models` (e.g. the pretrained prior); None
    gives shape-only placeholders, for restoring a checkpoint into or for timing.
    """
    keys = jax.random.split(key, max(_MIN_KEYS, len(trained)))
    score, params, frozen_params = {}, {}, {}
    for (role, model), role_key in zip(trained.items(), keys, strict=False):
        graphdef, params[role] = init_model(model, n_users, n_items, role_key)
        score[role] = make_score_fns(graphdef)
    for role, model in frozen_models.items():
        graphdef, placeholder = init_model(model, n_users, n_items, jax.random.key(0))
        score[role] = make_score_fns(graphdef)
        frozen_params[role] = placeholder if frozen is None else frozen[role]
    return Roles(score=score, params=params, frozen=frozen_params)
