"""What DPI and DVAE share: the noise models h and h', the DP/DN sub-tasks and their loss.

L_DPI (eq. 9) and L_DVAE (eq. 14) differ only in the reference distribution of the KL term:
DPI's trained auxiliary model g ("aux"), DVAE's frozen prior f' ("prior").

With `method.exposure_power` κ > 0, h = P(r̃=1 | r=0) is exposure-aware: its logit gets
κ·log((c_i + 1) / (max c + 1)) added, c the training clicks of item i, so that a noisy click
is more likely on a popular item (exposure, position, clickbait). The feature `[n_items]`
reaches the loss as the method state (as PD's popularity does); at κ = 0 nothing changes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp

from dprec.methods.base import Method
from dprec.methods.common import LossFn, Regularizer, pair_logits
from dprec.methods.roles import Roles
from dprec.objectives import likelihood
from dprec.objectives.kl import mixed_kl
from dprec.objectives.reduce import masked_mean
from dprec.specs import MethodSpec, ModelSpec, RunSpec
from dprec.steps import DN, DP, phase_cond

# The noise model each sub-task trains: h = P(r̃=1 | r=0) in DP, h' = P(r̃=1 | r=1) in DN.
NOISE_ROLE = {DP: "noise_dp", DN: "noise_dn"}
_FIXED_PHASE = {"dp": DP, "dn": DN}


def make_phase_fn(mode: str) -> Callable[[Any], Any]:
    """`step → phase`: DP on even steps and DN on odd ones ("alternate"), or a fixed phase
    as a Python int ("dp", "dn") so no cond is traced."""
    if mode in _FIXED_PHASE:
        fixed = _FIXED_PHASE[mode]
        return lambda step: fixed
    return lambda step: step % 2


class ExposureState(NamedTuple):
    """log_popularity `[n_items]`: `likelihood.log_popularity` of the training clicks."""

    log_popularity: jax.Array


def make_denoising_loss(
    roles: Roles, method: MethodSpec, regularizer: Regularizer, *, reference_role: str
) -> LossFn:
    """L_DPI (eq. 9) or L_DVAE (eq. 14) with the likelihood of the step's sub-task.

    Returns `loss_fn(trainable, frozen, batch, graph, rng, step) -> (loss, logs)`;
    `trainable` holds "target", "noise_dp", "noise_dn" and, for DPI, "aux"; `frozen` holds
    the DVAE "prior". `reference_role` is the KL's reference: trained ("aux") or frozen
    ("prior"). Loss = mean_pos[KL − ll_pos] + mean_neg[KL − ll_neg] + the L2 term of f, with
    ll from eq. 15 (DP) or eq. 16 (DN). Gradients: f gets every term, g only the KL, h only
    the DP likelihood, h' only the DN likelihood, f' none. With κ = `method.exposure_power`
    > 0 the loss also takes the `ExposureState` (`loss_fn(..., step, state) -> (loss, (logs,
    state))`) and h's logits get κ·log_popularity of their items.
    """
    c1, c2 = method.c1, method.c2
    phase_of = make_phase_fn(method.mode)
    exposure = float(method.exposure_power)

    def dp_terms(logits):
        f_pos, f_neg, h_pos, h_neg, _, _ = logits
        return (
            likelihood.dp_positive(f_logits=f_pos, h_logits=h_pos),
            likelihood.dp_negative(f_logits=f_neg, h_logits=h_neg, c1=c1),
        )

    def dn_terms(logits):
        f_pos, f_neg, _, _, hp_pos, hp_neg = logits
        return (
            likelihood.dn_positive(f_logits=f_pos, h_prime_logits=hp_pos, c2=c2),
            likelihood.dn_negative(f_logits=f_neg, h_prime_logits=hp_neg),
        )

    def loss_with(trainable, frozen, batch, graph, rng, step, h_offsets):
        phase = phase_of(step)
        keys = jax.random.split(rng, 4)
        f_pos, f_neg = pair_logits(
            roles.score["target"], trainable["target"], batch, graph, keys[0]
        )
        if reference_role in trainable:
            reference, reference_rng = trainable[reference_role], keys[1]
        else:  # the frozen prior is a fixed distribution: scored without corruption
            reference, reference_rng = frozen[reference_role], None
        ref_pos, ref_neg = pair_logits(
            roles.score[reference_role], reference, batch, graph, reference_rng
        )
        h_pos, h_neg = pair_logits(
            roles.score["noise_dp"], trainable["noise_dp"], batch, graph, keys[2]
        )
        if h_offsets is not None:
            h_pos, h_neg = h_pos + h_offsets[0], h_neg + h_offsets[1]
        hp_pos, hp_neg = pair_logits(
            roles.score["noise_dn"], trainable["noise_dn"], batch, graph, keys[3]
        )
        kl_pos = mixed_kl(f_logits=f_pos, ref_logits=ref_pos, alpha=method.alpha)
        kl_neg = mixed_kl(f_logits=f_neg, ref_logits=ref_neg, alpha=method.alpha)
        # Only these [B]-sized logits flow through the cond, never parameters or states.
        ll_pos, ll_neg = phase_cond(
            phase, dp_terms, dn_terms, (f_pos, f_neg, h_pos, h_neg, hp_pos, hp_neg)
        )
        mask = batch["mask"]
        kl = masked_mean(kl_pos, mask) + masked_mean(kl_neg, mask)
        ll = masked_mean(ll_pos, mask) + masked_mean(ll_neg, mask)
        l2 = regularizer(trainable["target"], batch)
        loss = kl - ll + l2
        return loss, {
            "loss": loss,
            "kl": kl,
            "log_likelihood": ll,
            "l2": l2,
            "phase": jnp.asarray(phase, jnp.int32),
        }

    if exposure == 0.0:  # the paper's h: no state, the same program as before the option

        def loss_fn(trainable, frozen, batch, graph, rng, step):
            return loss_with(trainable, frozen, batch, graph, rng, step, None)

        return loss_fn

    def exposure_loss_fn(trainable, frozen, batch, graph, rng, step, state: ExposureState):
        offsets = (
            exposure * state.log_popularity[batch["pos_items"]],
            exposure * state.log_popularity[batch["neg_items"]],
        )
        loss, logs = loss_with(trainable, frozen, batch, graph, rng, step, offsets)
        return loss, (logs, state)

    return exposure_loss_fn


class DenoisingMethod(Method):
    """DPI/DVAE: f, h, h' (+ the reference role); h steps only in DP and h' only in DN."""

    is_denoising = True
    phase_roles = NOISE_ROLE
    reference_role: ClassVar[str]

    def role_models(self, spec: RunSpec) -> dict[str, ModelSpec]:
        noise = spec.method.noise
        return {"target": spec.model, "noise_dp": noise, "noise_dn": noise}

    def norm_l2_scale(self, spec: RunSpec) -> float:
        del spec  # the authors' DPI/DVAE add λ0·Σ‖θ_t‖ to batch-mean terms, as dprec does
        return 1.0

    def phase_of(self, spec: RunSpec) -> Callable[[Any], Any]:
        return make_phase_fn(spec.method.mode)

    def make_loss(self, spec: RunSpec, roles: Roles, regularizer: Regularizer) -> LossFn:
        return make_denoising_loss(
            roles, spec.method, regularizer, reference_role=self.reference_role
        )

    def stateful(self, spec: RunSpec) -> bool:
        return spec.method.exposure_power > 0

    def init_method_state(self, spec: RunSpec, data: Any) -> Any:
        if not self.stateful(spec):
            return {}
        counts = jnp.asarray(data.item_popularity(), jnp.float32)
        return ExposureState(log_popularity=likelihood.log_popularity(counts))
