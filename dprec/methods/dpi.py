"""DPI (Algorithm 1): f, the auxiliary model g as the KL reference, and h, h'.

Its noise score is the posterior P(r=1 | r̃=1) = h'·f / (h'·f + h·(1−f)) (section 4.4).
"""

from __future__ import annotations

from dprec.methods import cards
from dprec.methods.base import PairScoreFn
from dprec.methods.denoising import DenoisingMethod
from dprec.methods.roles import Roles
from dprec.objectives.likelihood import posterior_real_positive
from dprec.specs import ModelSpec, RunSpec


class DPI(DenoisingMethod):
    card = cards.DPI
    reference_role = "aux"

    def role_models(self, spec: RunSpec) -> dict[str, ModelSpec]:
        return {**super().role_models(spec), "aux": spec.method.aux}

    def make_noise_score(self, roles: Roles) -> PairScoreFn:
        def logits(role, params, graph, users, items):
            score = roles.score[role]
            return score.pair(params[role], score.encode(params[role], graph, None), users, items)

        def probability(params, graph, users, items):
            return posterior_real_positive(
                f_logits=logits("target", params, graph, users, items),
                h_logits=logits("noise_dp", params, graph, users, items),
                h_prime_logits=logits("noise_dn", params, graph, users, items),
            )

        return probability


METHOD = DPI()
