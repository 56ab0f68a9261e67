"""DPI (Algorithm 1): f, the auxiliary model g as the KL reference, and h, h'.

Its noise score is the posterior P(r=1 | r̃=1) = h'·f / (h'·f + h·(1−f)) (section 4.4).
"""

from __future__ import annotations

from dprec.methods.base import PairScoreFn
from dprec.methods.denoising import DenoisingMethod, paper_presets
from dprec.objectives.likelihood import posterior_real_positive
from dprec.roles import Roles
from dprec.specs import ModelSpec, RunSpec


class DPI(DenoisingMethod):
    name = "dpi"
    label = "DPI"
    reference_role = "aux"
    config_fields = ("c1", "c2", "alpha", "mode", "aux", "noise")
    # PROTOCOL.md: (C1, C2, α, λ0, epochs) per (dataset, model); synthetic: one for all.
    presets = {
        **paper_presets(
            {
                ("modcloth", "gmf"): (100.0, 10.0, 0.0, 0.1, 40),
                ("modcloth", "neumf"): (1000.0, 10.0, 0.5, 10.0, 40),
                ("modcloth", "cdae"): (1000.0, 100.0, 0.0, 1.0, 40),
                ("modcloth", "lightgcn"): (1000.0, 10.0, 0.0, 0.1, 60),
                ("electronics", "gmf"): (1000.0, 10.0, 1.0, 0.01, 15),
                ("electronics", "neumf"): (100.0, 10.0, 0.5, 1000.0, 15),
                ("electronics", "cdae"): (100.0, 10.0, 0.0, 0.1, 15),
                ("electronics", "lightgcn"): (1000.0, 10.0, 1.0, 0.01, 10),
                ("adressa", "gmf"): (100.0, 10.0, 1.0, 0.0, 15),
                ("adressa", "neumf"): (1000.0, 10.0, 0.0, 1.0, 30),
                ("adressa", "cdae"): (1000.0, 10.0, 0.0, 0.0, 50),
                ("adressa", "lightgcn"): (10.0, 1000.0, 0.0, 10.0, 15),
            }
        ),
        # C1 = C2 suits the synthetic data's dense, heavily corrupted interactions (README).
        ("synthetic", "*"): {"c1": 10.0, "c2": 10.0, "alpha": 0.0, "l2": 0.01},
    }

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
