"""Pure factories for the training steps and the whole-epoch `lax.scan`.

The DP/DN alternation of DPI and DVAE is decided here only: a traced `lax.cond` on
`state.step % 2` selects the sub-task's likelihood terms and which noise model is stepped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import optax

from dprec.batch_loss import (
    Batch,
    LossFn,
    make_normal_loss,
    make_rce_loss,
    make_regularizer,
    make_tce_loss,
    pair_logits,
)
from dprec.lazy_rows import (
    Tables,
    apply_role_update,
    gather_role,
    loss_view,
    scatter_role,
    step_local,
)
from dprec.models import row_tables
from dprec.objectives import likelihood
from dprec.objectives.kl import mixed_kl
from dprec.objectives.reduce import masked_mean
from dprec.roles import DN, DP, NOISE_ROLE, Roles
from dprec.specs import MethodSpec, RunSpec
from dprec.state import TrainState

TrainStep = Callable[[TrainState, Batch, Any], tuple[TrainState, dict[str, jax.Array]]]


def make_train_step(
    loss_fn: LossFn,
    optimizer: optax.GradientTransformation,
    tables: Mapping[str, Tables] | None = None,
) -> TrainStep:
    """One optimisation step of every role in `state.params` on one batch.

    `tables` (lazy update mode): role → its row tables, which the loss sees restricted to the
    batch's touched rows and the optimizer updates row-wise (`lazy_rows`). The step's rng is
    `fold_in(state.rng, state.step)`, so a resumed run draws the same numbers.
    """
    tables = tables or {}

    def train_step(state: TrainState, batch: Batch, graph: Any):
        rng = jax.random.fold_in(state.rng, state.step)
        views = _loss_views(state.params, tables, batch)
        grads, logs = jax.grad(loss_fn, has_aux=True)(views, batch, graph, rng, state.step)
        params, opt_state = _update_roles(optimizer, grads, state, tables, batch, list(grads))
        new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state)
        return new_state, logs

    return train_step


def _update_roles(optimizer, grads, state: TrainState, tables, batch: Batch, roles) -> tuple:
    """One optimizer step of each of `roles`: dicts of their new params and optimizer states."""
    params, opt_state = {}, {}
    for role in roles:
        params[role], opt_state[role] = apply_role_update(
            optimizer,
            grads[role],
            state.opt_state[role],
            state.params[role],
            tables.get(role, {}),
            batch,
        )
    return params, opt_state


def _loss_views(params: dict[str, Any], tables: Mapping[str, Tables], batch: Batch) -> dict:
    return {role: loss_view(p, tables.get(role, {}), batch) for role, p in params.items()}


def make_epoch_fn(train_step: TrainStep) -> Callable[..., tuple[TrainState, Any]]:
    """A jitted `epoch(state, batches, graph)` running `train_step` over epoch arrays
    `[n_batches, B, ...]`.

    `graph` (the training adjacency, or None) is an argument, not a closed-over constant.
    Returns the new state and the per-step logs averaged over the epoch. The input state's
    buffers are donated.
    """

    def epoch(state: TrainState, batches: Batch, graph: Any):
        state, logs = jax.lax.scan(lambda s, b: train_step(s, b, graph), state, batches)
        return state, jax.tree.map(jnp.mean, logs)

    return jax.jit(epoch, donate_argnums=0)


def _phase_cond(phase, dp_fn, dn_fn, operands):
    """`dp_fn(operands)` in DP, `dn_fn(operands)` in DN: a direct call for a fixed phase (a
    Python int), else `lax.cond` on the traced phase. Both return the same pytree structure."""
    if isinstance(phase, int):
        return (dp_fn if phase == DP else dn_fn)(operands)
    return jax.lax.cond(phase == DP, dp_fn, dn_fn, operands)


def make_denoising_loss(roles: Roles, method: MethodSpec, regularizer: Callable[[Any], Any]):
    """L_DPI (eq. 9) or L_DVAE (eq. 14) with the likelihood of the current sub-task.

    Returns `loss_fn(trainable, frozen, batch, graph, rng, phase) -> (loss, logs)`;
    `trainable` holds "target", "noise_dp", "noise_dn" and, for DPI, "aux"; `frozen` holds
    the DVAE "prior".
    Loss = mean_pos[KL − ll_pos] + mean_neg[KL − ll_neg] + the L2 term of f, with ll from
    eq. 15 (DP) or eq. 16 (DN). Gradients: f gets every term, g only the KL, h only the DP
    likelihood, h' only the DN likelihood, f' none.
    """
    reference_role = "aux" if method.name == "dpi" else "prior"
    c1, c2 = method.c1, method.c2

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

    def loss_fn(trainable, frozen, batch, graph, rng, phase):
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
        hp_pos, hp_neg = pair_logits(
            roles.score["noise_dn"], trainable["noise_dn"], batch, graph, keys[3]
        )
        kl_pos = mixed_kl(f_logits=f_pos, ref_logits=ref_pos, alpha=method.alpha)
        kl_neg = mixed_kl(f_logits=f_neg, ref_logits=ref_neg, alpha=method.alpha)
        # Only these [B]-sized logits flow through the cond, never parameters or states.
        ll_pos, ll_neg = _phase_cond(
            phase, dp_terms, dn_terms, (f_pos, f_neg, h_pos, h_neg, hp_pos, hp_neg)
        )
        mask = batch["mask"]
        kl = masked_mean(kl_pos, mask) + masked_mean(kl_neg, mask)
        ll = masked_mean(ll_pos, mask) + masked_mean(ll_neg, mask)
        l2 = regularizer(trainable["target"])
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
    loss_fn,
    optimizer: optax.GradientTransformation,
    *,
    mode: str,
    tables: Mapping[str, Tables] | None = None,
) -> TrainStep:
    """One DPI/DVAE step: DP on even steps and DN on odd ones (or one sub-task only).

    A DP step updates f, g and h; a DN step updates f, g and h'. The noise model outside the
    sub-task is not stepped at all (Adam with a zero gradient would still move it): a
    `lax.cond` on the phase steps exactly one of them, so the other keeps its parameters and
    Adam state bit for bit. `tables`: as in `make_train_step` (the frozen prior too).
    """
    tables = tables or {}
    fixed_phase = {"dp": DP, "dn": DN}.get(mode)
    noise_roles = (NOISE_ROLE[DP], NOISE_ROLE[DN])

    def train_step(state: TrainState, batch: Batch, graph: Any):
        phase = fixed_phase if fixed_phase is not None else state.step % 2
        rng = jax.random.fold_in(state.rng, state.step)
        grads, logs = jax.grad(loss_fn, has_aux=True)(
            _loss_views(state.params, tables, batch),
            _loss_views(state.frozen, tables, batch),
            batch,
            graph,
            rng,
            phase,
        )

        others = [role for role in state.params if role not in noise_roles]
        params, opt_state = _update_roles(optimizer, grads, state, tables, batch, others)

        # Only the touched rows go through the cond (lazy mode): a cond over whole tables
        # would copy them every step.
        noise = {
            role: gather_role(
                state.params[role], state.opt_state[role], tables.get(role, {}), batch
            )
            for role in noise_roles
        }

        def step_only(active):
            def step(noise):
                role = NOISE_ROLE[active]
                return {**noise, role: step_local(optimizer, grads[role], noise[role])}

            return step

        noise = _phase_cond(phase, step_only(DP), step_only(DN), noise)
        for role in noise_roles:
            params[role], opt_state[role] = scatter_role(
                state.params[role], state.opt_state[role], noise[role], tables.get(role, {}), batch
            )
        new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state)
        return new_state, logs

    return train_step


def make_method_train_step(
    spec: RunSpec, roles: Roles, optimizer: optax.GradientTransformation, *, n_users: int
) -> TrainStep:
    """The train step of `spec.method` (normal, WBPR, T-CE, R-CE, DPI or DVAE)."""
    # The authors' CDAE adds λ0·Σ‖θ_t‖ to a batch-*summed* BCE in normal training and to
    # batch-*mean* terms in DPI/DVAE; with dprec's mean losses, normal training divides it by
    # the examples per batch so λ0 keeps the authors' meaning in both.
    examples = spec.train.batch_size * (1 + spec.train.num_negatives)
    regularizer = make_regularizer(
        spec.model.name,
        lambda0=spec.train.l2,
        n_users=n_users,
        norm_scale=1.0 if spec.method.is_denoising else 1.0 / examples,
    )
    tables = role_tables(spec)
    if spec.method.is_denoising:
        loss_fn = make_denoising_loss(roles, spec.method, regularizer)
        return make_denoising_train_step(loss_fn, optimizer, mode=spec.method.mode, tables=tables)
    target, method = roles.score["target"], spec.method
    if method.name == "tce":
        loss_fn = make_tce_loss(
            target, regularizer, max_drop_rate=method.drop_rate, num_gradual=method.num_gradual
        )
    elif method.name == "rce":
        loss_fn = make_rce_loss(target, regularizer, beta=method.beta)
    else:  # normal and WBPR (whose difference is in the negative sampler)
        loss_fn = make_normal_loss(target, regularizer)
    return make_train_step(loss_fn, optimizer, tables)


def role_tables(spec: RunSpec) -> dict[str, Tables]:
    """Role → row tables updated lazily: empty unless `train.updates` is "lazy", and only for
    roles whose model reads one row per pair (MF, GMF, NeuMF)."""
    if spec.train.updates != "lazy":
        return {}
    models = {"target": spec.model.name}
    if spec.method.is_denoising:
        models |= {"noise_dp": spec.method.noise.name, "noise_dn": spec.method.noise.name}
        if spec.method.name == "dpi":
            models["aux"] = spec.method.aux.name
        else:
            models["prior"] = spec.model.name
    return {role: tables for role, name in models.items() if (tables := row_tables(name))}
