"""PLD (Zhang et al., WWW 2025): from epoch index 5 (`objectives.pld.resampling_active`) each
row trains BPR on a positive resampled from a pool of k of its user's training positives, with
probability softmax(−ℓ/τ) of their BPR losses against the row's negatives; before, on the
row's own positive (plain BPR).

The pool. `make_loss` gets no data and the host's epoch arrays have no hook for a method, so
the pool is drawn inside the jitted step, with a fixed shape: the user's training positives as
a CSR list (offsets `[U + 1]`, items `[n_train]`, built once on the host with NumPy and kept in
`TrainState.method_state`), k distinct positions per row by Floyd's algorithm
(`draw_pools`) from the step's key `fold_in(state.rng, state.step)`. A resumed run therefore
draws the same pools (the key and the epoch count are in the checkpoint). A user with fewer
than k positives gets all of them and masked padding slots (`objectives.pld`).

Lazy updates restrict the item tables to the batch's touched rows, which do not hold the pool's
items: for models with item row tables (MF, GMF, NeuMF) PLD needs `train.updates=dense`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from dprec.errors import ConfigError
from dprec.methods import cards
from dprec.methods.base import Method
from dprec.methods.common import Batch, LossFn, Regularizer, pair_logits
from dprec.methods.roles import Roles
from dprec.models import ScoreFns
from dprec.objectives import pld
from dprec.objectives.bpr import bpr_loss
from dprec.objectives.reduce import masked_mean
from dprec.specs import RunSpec

# fold_in constants: the pool and the resampling draw streams of their own, apart from the
# model's use of the step key (CDAE's corruption).
POOL_STREAM, RESAMPLE_STREAM = 0x504C44, 0x504C45


class PLDState(NamedTuple):
    """offsets `[U + 1]` int32, items `[n_train]` int32: user u's training positives are
    items[offsets[u]:offsets[u + 1]] (constant); epoch `[]` int32: epochs done."""

    offsets: jax.Array
    items: jax.Array
    epoch: jax.Array


def user_positive_lists(
    users: np.ndarray, items: np.ndarray, n_users: int
) -> tuple[np.ndarray, np.ndarray]:
    """(offsets `[n_users + 1]`, items `[N]`) int32: the training pairs `[N]` grouped by user
    (a CSR list; within a user in the training arrays' order)."""
    order = np.argsort(users, kind="stable")
    counts = np.bincount(users, minlength=n_users)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    return offsets, np.asarray(items)[order].astype(np.int32)


def draw_pools(
    key: jax.Array, users: jax.Array, offsets: jax.Array, items: jax.Array, *, size: int
) -> tuple[jax.Array, jax.Array]:
    """(pool items `[B, size]`, pool mask `[B, size]`): for each row, `size` distinct training
    positives of its user `users[b]`, uniformly without replacement (Floyd's algorithm: for
    j = d − size … d − 1 draw t in [0, j] and take t, or j if t was taken). A user with
    d < size positives gets all d in the slots whose j ≥ 0; the others are masked (item 0)."""
    start = offsets[users]
    degree = offsets[users + 1] - start
    # One uniform per slot, scaled to [0, j] below: float32 resolves 2^-24, far finer than
    # 1/degree for any user (and compiles in a fraction of `randint`'s time with array bounds).
    uniforms = jax.random.uniform(key, (*users.shape, size))
    taken: list[jax.Array] = []
    for slot in range(size):
        top = degree - size + slot  # Floyd's j: the slot exists when j >= 0
        draw = jnp.minimum(jnp.floor(uniforms[:, slot] * (top + 1)).astype(top.dtype), top)
        if taken:
            draw = jnp.where(jnp.any(jnp.stack(taken, axis=1) == draw[:, None], axis=1), top, draw)
        taken.append(jnp.where(top >= 0, draw, -1))  # -1: an empty slot, never drawn again
    positions = jnp.stack(taken, axis=1)
    valid = positions >= 0
    pool = items[start[:, None] + jnp.where(valid, positions, 0)]
    return jnp.where(valid, pool, 0), valid.astype(jnp.float32)


def make_pld_loss(
    target: ScoreFns, regularizer: Regularizer, *, pool_size: int, temperature: float
) -> LossFn:
    """Mean BPR of each row's positive against its negatives + the L2 term (on the rows the
    step reads: the drawn positive's). From `pld.resampling_active` the positive is the pool
    candidate drawn by softmax(−ℓ/τ), ℓ its mean BPR loss against the row's negatives (the
    authors' one negative when `train.num_negatives` is 1); the pool is scored in the same
    call as the negatives, and only the drawn candidate's logit takes a gradient."""

    def loss_fn(trainable, frozen, batch: Batch, graph, rng: jax.Array, step, state: PLDState):
        del frozen, step
        pool_items, pool_mask = draw_pools(
            jax.random.fold_in(rng, POOL_STREAM),
            batch["users"],
            state.offsets,
            state.items,
            size=pool_size,
        )
        n_neg = batch["neg_items"].shape[1]
        scored = {**batch, "neg_items": jnp.concatenate([batch["neg_items"], pool_items], axis=1)}
        pos, others = pair_logits(target, trainable["target"], scored, graph, rng)
        neg, pool_logits = others[:, :n_neg], others[:, n_neg:]
        pool_losses = jnp.mean(
            jax.vmap(
                lambda column: pld.candidate_losses(pool_logits=pool_logits, neg_logits=column),
                in_axes=1,
            )(neg),
            axis=0,
        )
        slot = pld.resample(
            jax.random.fold_in(rng, RESAMPLE_STREAM),
            pool_losses=pool_losses,
            pool_mask=pool_mask,
            temperature=temperature,
        )
        drawn_logit = jnp.take_along_axis(pool_logits, slot[:, None], axis=1)[:, 0]
        drawn_item = jnp.take_along_axis(pool_items, slot[:, None], axis=1)[:, 0]
        active = pld.resampling_active(state.epoch)
        positive = jnp.where(active, drawn_logit, pos)
        mask = batch["mask"]
        data_loss = masked_mean(bpr_loss(pos_logits=positive, neg_logits=neg), mask)
        read = {**batch, "pos_items": jnp.where(active, drawn_item, batch["pos_items"])}
        l2 = regularizer(trainable["target"], read)
        loss = data_loss + l2
        logs = {
            "loss": loss,
            "data_loss": data_loss,
            "resampling": active.astype(jnp.float32),
            "kept_own_positive": masked_mean(
                (read["pos_items"] == batch["pos_items"]).astype(jnp.float32), mask
            ),
            "l2": l2,
        }
        return loss, (logs, state)

    return loss_fn


class PLD(Method):
    card = cards.PLD
    has_method_state = True

    def init_method_state(self, spec: RunSpec, data: Any) -> PLDState:
        del spec
        offsets, items = user_positive_lists(data.train.users, data.train.items, data.n_users)
        return PLDState(
            offsets=jnp.asarray(offsets), items=jnp.asarray(items), epoch=jnp.zeros((), jnp.int32)
        )

    def make_end_epoch(self, spec: RunSpec, data: Any):
        del spec, data

        def next_epoch(state: PLDState) -> PLDState:
            return state._replace(epoch=state.epoch + 1)

        return next_epoch

    def make_loss(self, spec: RunSpec, roles: Roles, regularizer: Regularizer) -> LossFn:
        if "item" in self.lazy_tables(spec).get("target", {}).values():
            raise ConfigError(
                f"method=pld scores pool items outside a lazy step's touched rows; set "
                f"--config.train.updates=dense for model={spec.model.name}"
            )
        return make_pld_loss(
            roles.score["target"],
            regularizer,
            pool_size=spec.method.pool_size,
            temperature=spec.method.temperature,
        )


METHOD = PLD()
