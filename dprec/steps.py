"""Pure factories for the training steps and the whole-epoch `lax.scan`.

The DP/DN alternation of DPI and DVAE is decided here only: a traced `lax.cond` on
`state.step % 2` that selects the sub-task's likelihood terms.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from dprec.batch_loss import Batch, LossFn, make_normal_loss, pair_logits
from dprec.objectives import likelihood
from dprec.objectives.kl import mixed_kl
from dprec.objectives.reduce import l2_penalty, masked_mean
from dprec.roles import DN, DP, Roles
from dprec.specs import MethodSpec, RunSpec
from dprec.state import TrainState

TrainStep = Callable[[TrainState, Batch], tuple[TrainState, dict[str, jax.Array]]]


def make_train_step(loss_fn: LossFn, optimizer: optax.GradientTransformation) -> TrainStep:
    """One optimisation step of every role in `state.params` on one batch.

    The step's rng is `fold_in(state.rng, state.step)`, so a resumed run draws the same numbers.
    """

    def train_step(state: TrainState, batch: Batch):
        rng = jax.random.fold_in(state.rng, state.step)
        grads, logs = jax.grad(loss_fn, has_aux=True)(state.params, batch, rng)
        params, opt_state = {}, {}
        for role, role_grads in grads.items():
            updates, opt_state[role] = optimizer.update(
                role_grads, state.opt_state[role], state.params[role]
            )
            params[role] = optax.apply_updates(state.params[role], updates)
        new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state)
        return new_state, logs

    return train_step


def make_epoch_fn(train_step: TrainStep) -> Callable[[TrainState, Batch], tuple[TrainState, Any]]:
    """A jitted function running `train_step` over epoch arrays `[n_batches, B, ...]`.

    Returns the new state and the per-step logs averaged over the epoch. The input state's
    buffers are donated.
    """

    def epoch(state: TrainState, batches: Batch):
        state, logs = jax.lax.scan(train_step, state, batches)
        return state, jax.tree.map(jnp.mean, logs)

    return jax.jit(epoch, donate_argnums=0)


def _likelihood_terms(phase, f_pos, f_neg, noise_pos, noise_neg, *, c1: float, c2: float):
    """Per-example log-likelihoods `([B], [B, n_neg])` of the DP (eq. 15) or DN (eq. 16) sub-task.

    `phase` is DP, DN (a Python int when the mode is fixed) or a traced int32 (alternating):
    then only these small logit arrays flow through the `lax.cond`, never parameters or states.
    """

    def dp(args):
        f_pos, f_neg, h_pos, h_neg = args
        return (
            likelihood.dp_positive(f_logits=f_pos, h_logits=h_pos),
            likelihood.dp_negative(f_logits=f_neg, h_logits=h_neg, c1=c1),
        )

    def dn(args):
        f_pos, f_neg, hp_pos, hp_neg = args
        return (
            likelihood.dn_positive(f_logits=f_pos, h_prime_logits=hp_pos, c2=c2),
            likelihood.dn_negative(f_logits=f_neg, h_prime_logits=hp_neg),
        )

    args = (f_pos, f_neg, noise_pos, noise_neg)
    if isinstance(phase, int):
        return (dp if phase == DP else dn)(args)
    return jax.lax.cond(phase == DP, dp, dn, args)


def make_denoising_loss(roles: Roles, method: MethodSpec, *, lambda0: float, n_users: int):
    """L_DPI (eq. 9) or L_DVAE (eq. 14) with the likelihood of the current sub-task.

    Returns `loss_fn(trainable, frozen, batch, phase) -> (loss, logs)`, where `trainable`
    holds "target", "noise" (the active noise model only: h in DP, h' in DN) and, for DPI,
    "aux"; `frozen` holds the DVAE "prior". Loss = mean_pos[KL − ll_pos] + mean_neg[KL − ll_neg]
    + λ0·½·‖θ_f‖²/n_users. Gradients: f gets every term, g only the KL, the noise model only
    the likelihood, f' none.
    """
    reference_role = "aux" if method.name == "dpi" else "prior"

    def loss_fn(trainable, frozen, batch, phase):
        f_pos, f_neg = pair_logits(roles.score["target"], trainable["target"], batch)
        reference = trainable.get(reference_role, frozen.get(reference_role))
        ref_pos, ref_neg = pair_logits(roles.score[reference_role], reference, batch)
        noise_pos, noise_neg = pair_logits(roles.score["noise"], trainable["noise"], batch)
        kl_pos = mixed_kl(f_logits=f_pos, ref_logits=ref_pos, alpha=method.alpha)
        kl_neg = mixed_kl(f_logits=f_neg, ref_logits=ref_neg, alpha=method.alpha)
        ll_pos, ll_neg = _likelihood_terms(
            phase, f_pos, f_neg, noise_pos, noise_neg, c1=method.c1, c2=method.c2
        )
        mask = batch["mask"]
        kl = masked_mean(kl_pos, mask) + masked_mean(kl_neg, mask)
        ll = masked_mean(ll_pos, mask) + masked_mean(ll_neg, mask)
        l2 = l2_penalty(trainable["target"], lambda0=lambda0, n_users=n_users)
        loss = kl - ll + l2
        return loss, {
            "loss": loss,
            "kl": kl,
            "log_likelihood": ll,
            "l2": l2,
            "phase": jnp.asarray(phase, jnp.int32),
        }

    return loss_fn


def make_denoising_train_step(
    loss_fn, optimizer: optax.GradientTransformation, *, mode: str
) -> TrainStep:
    """One DPI/DVAE step: DP on even steps and DN on odd ones (or one sub-task only).

    A DP step updates f, g and h; a DN step updates f, g and h'. The inactive noise model is
    not stepped at all: only the active slice of the stacked "noise" parameters and Adam state
    is read, updated and written back, so the other stays bit for bit unchanged.
    """
    fixed_phase = {"dp": DP, "dn": DN}.get(mode)

    def train_step(state: TrainState, batch: Batch):
        phase = fixed_phase if fixed_phase is not None else state.step % 2
        trainable = {role: p for role, p in state.params.items() if role != "noise"}
        opt_states = {role: s for role, s in state.opt_state.items() if role != "noise"}
        trainable["noise"] = jax.tree.map(lambda x: x[phase], state.params["noise"])
        opt_states["noise"] = jax.tree.map(lambda x: x[phase], state.opt_state["noise"])
        grads, logs = jax.grad(loss_fn, has_aux=True)(trainable, state.frozen, batch, phase)
        params, opt_state = {}, {}
        for role, role_grads in grads.items():
            updates, opt_state[role] = optimizer.update(
                role_grads, opt_states[role], trainable[role]
            )
            params[role] = optax.apply_updates(trainable[role], updates)
        params["noise"] = jax.tree.map(
            lambda full, part: full.at[phase].set(part), state.params["noise"], params["noise"]
        )
        opt_state["noise"] = jax.tree.map(
            lambda full, part: full.at[phase].set(part),
            state.opt_state["noise"],
            opt_state["noise"],
        )
        new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state)
        return new_state, logs

    return train_step


def make_method_train_step(
    spec: RunSpec, roles: Roles, optimizer: optax.GradientTransformation, *, n_users: int
) -> TrainStep:
    """The train step of `spec.method` (normal, DPI or DVAE) for these roles."""
    lambda0 = spec.train.l2
    if spec.method.is_denoising:
        loss_fn = make_denoising_loss(roles, spec.method, lambda0=lambda0, n_users=n_users)
        return make_denoising_train_step(loss_fn, optimizer, mode=spec.method.mode)
    loss_fn = make_normal_loss(roles.score["target"], lambda0=lambda0, n_users=n_users)
    return make_train_step(loss_fn, optimizer)
