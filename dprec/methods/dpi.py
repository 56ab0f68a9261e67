"""DPI (Algorithm 1): f, the auxiliary model g as the KL reference, and h, h'.

Its noise score is the posterior P(r=1 | r̃=1) = h'·f / (h'·f + h·(1−f)) (section 4.4); with
the exposure-aware h (`method.exposure_power` > 0) the noise report's h carries the same
popularity term as in training.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dprec.methods import cards
from dprec.methods.base import PairScoreFn
from dprec.methods.denoising import DenoisingMethod
from dprec.methods.roles import Roles
from dprec.objectives.likelihood import posterior_real_positive
from dprec.pair_scores import score_pairs
from dprec.specs import ModelSpec, RunSpec


class DPI(DenoisingMethod):
    card = cards.DPI
    reference_role = "aux"

    def role_models(self, spec: RunSpec) -> dict[str, ModelSpec]:
        return {**super().role_models(spec), "aux": spec.method.aux}

    def make_noise_score(self, roles: Roles, h_offset: Any = None) -> PairScoreFn:
        """P(r=1 | r̃=1) of pairs; `h_offset` `[n_items]` (κ·log popularity) is added to h's
        logits when given."""

        def logits(role, params, graph, users, items):
            score = roles.score[role]
            return score.pair(params[role], score.encode(params[role], graph, None), users, items)

        def probability(params, graph, users, items):
            h_logits = logits("noise_dp", params, graph, users, items)
            if h_offset is not None:
                h_logits = h_logits + h_offset[items]
            return posterior_real_positive(
                f_logits=logits("target", params, graph, users, items),
                h_logits=h_logits,
                h_prime_logits=logits("noise_dn", params, graph, users, items),
            )

        return probability

    def real_positive_scores(
        self,
        spec: RunSpec,
        roles: Roles,
        params: dict[str, Any],
        method_state: Any,
        data: Any,
        graph: Any,
    ) -> np.ndarray:
        if not self.stateful(spec):
            return super().real_positive_scores(spec, roles, params, method_state, data, graph)
        offset = spec.method.exposure_power * method_state.log_popularity
        score = self.make_noise_score(roles, h_offset=offset)
        return score_pairs(score, params, graph, data.train.users, data.train.items)


METHOD = DPI()
