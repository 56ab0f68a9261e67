"""The models a method trains: target f, auxiliary g (DPI), noise models h and h', prior f'.

`create_roles` initialises each role's parameters from its own key and returns the pure
scoring functions per role. h (DP) and h' (DN) share one architecture and are stacked on a
leading axis: index `DP` is h = P(r̃=1 | r=0), index `DN` is h' = P(r̃=1 | r=1).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from dprec.models import ScoreFns, init_model, make_score_fns
from dprec.specs import RunSpec

DP, DN = 0, 1  # index of h and h' in the stacked "noise" role, and the phase ids


@dataclasses.dataclass(frozen=True)
class Roles:
    """Scoring functions and initial parameters per role.

    score: role → ScoreFns ("target", and "aux", "noise", "prior" where the method has them);
    params: trained roles' initial parameters; frozen: never-trained parameters ("prior");
    stacked: roles whose parameters carry a leading model axis.
    """

    score: dict[str, ScoreFns]
    params: dict[str, Any]
    frozen: dict[str, Any]
    stacked: tuple[str, ...]


def stack_params(trees: list[Any]) -> Any:
    """Stack equally shaped parameter trees on a new leading axis."""
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *trees)


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
        return Roles(score=score, params=params, frozen=frozen, stacked=())
    noise_def, h = init_model(method.noise, n_users, n_items, keys[1])
    _, h_prime = init_model(method.noise, n_users, n_items, keys[2])
    score["noise"] = make_score_fns(noise_def)
    params["noise"] = stack_params([h, h_prime])
    if method.name == "dpi":
        aux_def, params["aux"] = init_model(method.aux, n_users, n_items, keys[3])
        score["aux"] = make_score_fns(aux_def)
    else:
        if prior is None:
            raise ValueError("DVAE needs the pretrained prior f' parameters")
        score["prior"] = score["target"]
        frozen["prior"] = prior
    return Roles(score=score, params=params, frozen=frozen, stacked=("noise",))
