"""Pure factories for the one train step and the whole-epoch `lax.scan`.

The DP/DN alternation of DPI and DVAE is decided here only: a traced `lax.cond` on the
phase (`state.step % 2`) selects which phase role is stepped (`phase_cond`); every other role
steps on every batch.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import optax

from dprec.lazy_rows import (
    Tables,
    apply_role_update,
    gather_role,
    loss_view,
    scatter_role,
    step_local,
)
from dprec.state import TrainState

DP, DN = 0, 1  # phase ids of the two sub-tasks of DPI and DVAE
Batch = Mapping[str, jax.Array]

# Compiler options of the epoch function, per platform. XLA:CPU's copy insertion with region
# analysis proves that the scan body may update the carried tables and Adam moments in place;
# without it, every step copies the `[n_users, D]` tables (dense updates on Modcloth, measured
# on a loaded 2-core CPU: NeuMF's epoch 16-26 % faster, NeuMF-DPI's 26 %). The numbers are bit
# for bit the same: it only removes copies. Other compilers reject options they do not know,
# so a probe decides (`epoch_options`).
EPOCH_COMPILER_OPTIONS: dict[str, dict[str, Any]] = {
    "cpu": {"xla_cpu_copy_insertion_use_region_analysis": True},
}


TrainStep = Callable[[TrainState, Batch, Any], tuple[TrainState, dict[str, jax.Array]]]


def make_train_step(
    loss_fn: Callable[..., tuple[jax.Array, dict[str, jax.Array]]],
    optimizer: optax.GradientTransformation,
    *,
    tables: Mapping[str, Tables] | None = None,
    phase_roles: Mapping[int, str] | None = None,
    phase_of: Callable[[Any], Any] | None = None,
    stateful: bool = False,
) -> TrainStep:
    """One optimisation step on one batch: `fold_in`, loss, grad, update.

    `loss_fn(trainable, frozen, batch, graph, rng, step)` sees every role of `state.params`
    (trainable) and `state.frozen`. Every trained role is stepped, except `phase_roles`
    (phase → role, e.g. DP → h, DN → h'): only the role of `phase_of(state.step)` is, and the
    other keeps its parameters and Adam state bit for bit (Adam with a zero gradient would
    still move it). `tables` (lazy update mode): role → its row tables, which the loss sees
    restricted to the batch's touched rows and the optimizer updates row-wise (`lazy_rows`).
    The step's rng is `fold_in(state.rng, state.step)`, so a resumed run draws the same
    numbers. `stateful`: the loss also takes `state.method_state` as a last argument and
    returns `(loss, (logs, new_method_state))`; the step stores the new method state.
    """
    tables = tables or {}
    phase_roles = dict(phase_roles or {})

    def train_step(state: TrainState, batch: Batch, graph: Any):
        rng = jax.random.fold_in(state.rng, state.step)
        args = (
            _loss_views(state.params, tables, batch),
            _loss_views(state.frozen, tables, batch),
            batch,
            graph,
            rng,
            state.step,
        )
        method_state = state.method_state
        if stateful:
            grads, (logs, method_state) = jax.grad(loss_fn, has_aux=True)(*args, method_state)
        else:
            grads, logs = jax.grad(loss_fn, has_aux=True)(*args)
        always = [role for role in state.params if role not in phase_roles.values()]
        params, opt_state = _update_roles(optimizer, grads, state, tables, batch, always)
        if phase_roles:
            phase = phase_of(state.step)
            stepped = _update_phase_roles(
                optimizer, grads, state, tables, batch, phase_roles, phase
            )
            for role, (role_params, role_opt_state) in stepped.items():
                params[role], opt_state[role] = role_params, role_opt_state
        new_state = state.replace(
            step=state.step + 1, params=params, opt_state=opt_state, method_state=method_state
        )
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


def _update_phase_roles(optimizer, grads, state, tables, batch, phase_roles, phase) -> dict:
    """role → (params, optimizer state) of each phase role, only the `phase` one stepped."""
    # Only the touched rows go through the cond (lazy mode): a cond over whole tables would
    # copy them every step.
    local = {
        role: gather_role(state.params[role], state.opt_state[role], tables.get(role, {}), batch)
        for role in phase_roles.values()
    }

    def step_only(active):
        def step(local):
            role = phase_roles[active]
            return {**local, role: step_local(optimizer, grads[role], local[role])}

        return step

    local = phase_cond(phase, step_only(DP), step_only(DN), local)
    return {
        role: scatter_role(
            state.params[role], state.opt_state[role], local[role], tables.get(role, {}), batch
        )
        for role in phase_roles.values()
    }


def _loss_views(params: dict[str, Any], tables: Mapping[str, Tables], batch: Batch) -> dict:
    return {role: loss_view(p, tables.get(role, {}), batch) for role, p in params.items()}


def epoch_options(
    platform: str, candidates: Mapping[str, Mapping[str, Any]] = EPOCH_COMPILER_OPTIONS
) -> dict[str, Any]:
    """The compiler options of `candidates[platform]` if `platform`'s compiler accepts them
    (probed once per platform and option set), else none."""
    options = dict(candidates.get(platform, {}))
    if options and not _compiler_accepts(platform, tuple(sorted(options.items()))):
        return {}
    return options


@functools.cache
def _compiler_accepts(platform: str, options: tuple[tuple[str, Any], ...]) -> bool:
    """Whether a trivial function compiles for `platform` with `options` (`(name, value)`)."""
    try:
        x = jax.device_put(jnp.zeros((), jnp.float32), jax.devices(platform)[0])
        jax.jit(lambda v: v + 1, compiler_options=dict(options)).lower(x).compile()
    except (RuntimeError, ValueError):  # JaxRuntimeError: "No such compile option"
        return False
    return True


def _platform_of(state_shardings: Any) -> str:
    """The platform the epoch runs on: that of its state's devices, else JAX's default."""
    leaves = jax.tree.leaves(state_shardings)
    if leaves and hasattr(leaves[0], "device_set"):
        return next(iter(leaves[0].device_set)).platform
    return jax.default_backend()


def make_epoch_fn(
    train_step: TrainStep,
    end_epoch: Callable[[Any], Any] | None = None,
    *,
    state_shardings: Any = None,
    compiler_options: Mapping[str, Any] | None = None,
) -> Callable[..., tuple[TrainState, Any]]:
    """A jitted `epoch(state, batches, graph)` running `train_step` over epoch arrays
    `[n_batches, B, ...]`, then `end_epoch(method_state) -> method_state` if given (a
    method's per-epoch update, e.g. CrossDenoise's weights for the next epoch).

    `graph` (the training adjacency, or None) is an argument, not a closed-over constant.
    Returns the new state and the per-step logs averaged over the epoch. The input state's
    buffers are donated. `state_shardings` (a pytree like the state, from
    `sharding.shardings_of`): the output state is placed exactly like that, so a row-sharded
    table stays sharded and the next epoch reuses the compiled function and the buffers.
    `compiler_options`: XLA options of the epoch; None = `epoch_options` of its platform
    (in-place table updates on CPU), `{}` = none.
    """

    def epoch(state: TrainState, batches: Batch, graph: Any):
        state, logs = jax.lax.scan(lambda s, b: train_step(s, b, graph), state, batches)
        if end_epoch is not None:
            state = state.replace(method_state=end_epoch(state.method_state))
        return state, jax.tree.map(jnp.mean, logs)

    if compiler_options is None:
        compiler_options = epoch_options(_platform_of(state_shardings))
    jit_args = {"donate_argnums": 0, "compiler_options": dict(compiler_options) or None}
    if state_shardings is None:
        return jax.jit(epoch, **jit_args)
    return jax.jit(epoch, out_shardings=(state_shardings, None), **jit_args)


def phase_cond(phase, dp_fn, dn_fn, operands):
    """`dp_fn(operands)` in DP, `dn_fn(operands)` in DN: a direct call for a fixed phase (a
    Python int), else `lax.cond` on the traced phase. Both return the same pytree structure."""
    if isinstance(phase, int):
        return (dp_fn if phase == DP else dn_fn)(operands)
    return jax.lax.cond(phase == DP, dp_fn, dn_fn, operands)
