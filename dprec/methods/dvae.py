"""DVAE (Algorithm 2): f, h, h' and the frozen prior f' (pretrained by normal training) as
the KL reference. Its noise score is f's own probability (section 4.4)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dprec.methods import cards, prior
from dprec.methods.denoising import DenoisingMethod
from dprec.specs import ModelSpec, RunSpec


class DVAE(DenoisingMethod):
    card = cards.DVAE
    reference_role = "prior"

    def frozen_role_models(self, spec: RunSpec) -> dict[str, ModelSpec]:
        return {"prior": spec.model}  # f' has f's architecture

    def pretrain_frozen(
        self, spec: RunSpec, data: Any, *, fit_fn: Callable[..., Any]
    ) -> dict[str, Any]:
        return {"prior": prior.pretrained_prior(spec, data, fit_fn=fit_fn)}


METHOD = DVAE()
