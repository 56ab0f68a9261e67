"""The models a method trains: target f, auxiliary g (DPI), noise models h and h', prior f'.

`create_roles` initialises each role's parameters from its own key and returns the pure
scoring functions per role. Role names: "target" (f), "aux" (g, DPI only), "noise_dp"
(h = P(r̃=1 | r=0), trained in DP steps), "noise_dn" (h' = P(r̃=1 | r=1), trained in DN steps),
and the frozen "prior" (f', DVAE only).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax

from dprec.models import ScoreFns, init_model, make_score_fns
from dprec.specs import RunSpec

DP, DN = 0, 1  # phase ids of the two sub-tasks
NOISE_ROLE = {DP: "noise_dp", DN: "noise_dn"}  # the noise model each sub-task trains


@dataclasses.dataclass(frozen=True)
class Roles:
    """Scoring functions and initial parameters per role.

    score: role → ScoreFns for every role the method has ("noise_dp" and "noise_dn" share
    one architecture); params: trained roles' initial parameters; frozen: never-trained
    parameters ("prior").
    """

    score: dict[str, ScoreFns]
    params: dict[str, Any]
    frozen: dict[str, Any]


def create_roles(
    spec: RunSpec, n_users: int, n_items: int, key: jax.Array, prior: Any = None
) -> Roles:
    """Initial parameters and scoring functions of every role of `spec.method`.

    `prior` (DVAE only) holds the pretrained f' parameters, same architecture as f.
    """
    keys = jax.random.split(key, 4)
    target_def, target = init_model(spec.model, n_users, n_items, keys[0])
    score = {"target": make_score_fns(target_def)}
    params: dict[str, Any] = {"target": target}
    frozen: dict[str, Any] = {}
    method = spec.method
    if not method.is_denoising:
        return Roles(score=score, params=params, frozen=frozen)
    noise_def, params["noise_dp"] = init_model(method.noise, n_users, n_items, keys[1])
    _, params["noise_dn"] = init_model(method.noise, n_users, n_items, keys[2])
    score["noise_dp"] = score["noise_dn"] = make_score_fns(noise_def)
    if method.name == "dpi":
        aux_def, params["aux"] = init_model(method.aux, n_users, n_items, keys[3])
        score["aux"] = make_score_fns(aux_def)
    else:
        if prior is None:
            raise ValueError("DVAE needs the pretrained prior f' parameters")
        score["prior"] = score["target"]
        frozen["prior"] = prior
    return Roles(score=score, params=params, frozen=frozen)
