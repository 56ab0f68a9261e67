"""DVAE (Algorithm 2): f, h, h' and the frozen prior f' (pretrained by normal training) as
the KL reference. Its noise score is f's own probability (section 4.4)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from dprec import prior
from dprec.methods.denoising import DenoisingMethod, paper_presets
from dprec.specs import ModelSpec, RunSpec


class DVAE(DenoisingMethod):
    name = "dvae"
    label = "DVAE"
    reference_role = "prior"
    config_fields = (
        "c1",
        "c2",
        "alpha",
        "mode",
        "noise",
        "prior_init",
        "prior_seed_offset",
        "prior_epochs",
        "prior_l2",
        "prior_cache_dir",
    )
    # PROTOCOL.md: (C1, C2, α, λ0, epochs) per (dataset, model); synthetic: one for all.
    presets = {
        **paper_presets(
            {
                ("modcloth", "gmf"): (100.0, 10.0, 1.0, 0.1, 40),
                ("modcloth", "neumf"): (1000.0, 10.0, 1.0, 10.0, 40),
                ("modcloth", "cdae"): (1000.0, 100.0, 1.0, 1.0, 40),
                ("modcloth", "lightgcn"): (10.0, 10.0, 0.5, 0.1, 60),
                ("electronics", "gmf"): (1000.0, 10.0, 1.0, 0.01, 10),
                ("electronics", "neumf"): (100.0, 10.0, 0.0, 1000.0, 10),
                ("electronics", "cdae"): (100.0, 10.0, 0.0, 0.1, 15),
                ("electronics", "lightgcn"): (1000.0, 10.0, 1.0, 0.01, 10),
                ("adressa", "gmf"): (1000.0, 10.0, 1.0, 0.01, 10),
                ("adressa", "neumf"): (100.0, 10.0, 1.0, 1.0, 30),
                ("adressa", "cdae"): (100.0, 10.0, 1.0, 0.0, 50),
                ("adressa", "lightgcn"): (1000.0, 10.0, 0.5, 0.01, 15),
            }
        ),
        ("synthetic", "*"): {"c1": 10.0, "c2": 10.0, "alpha": 1.0, "l2": 0.01},
    }

    def frozen_role_models(self, spec: RunSpec) -> dict[str, ModelSpec]:
        return {"prior": spec.model}  # f' has f's architecture

    def pretrain_frozen(
        self, spec: RunSpec, data: Any, *, fit_fn: Callable[..., Any]
    ) -> dict[str, Any]:
        return {"prior": prior.pretrained_prior(spec, data, fit_fn=fit_fn)}

    def complete_config(self, config: Any, preset: Callable[[str], Mapping[str, Any]]) -> None:
        # f' is pretrained with the normal preset's λ0 and epochs of the same model.
        normal = preset("normal")
        config.method.prior_epochs = normal.get("num_epochs", config.train.num_epochs)
        config.method.prior_l2 = normal.get("l2", config.train.l2)


METHOD = DVAE()
