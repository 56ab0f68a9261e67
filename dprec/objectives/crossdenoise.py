"""CrossDenoise / EARD (Liu et al., 2025, arXiv 2508.10851): entity-aware loss reweighting.

Over an epoch each user's and item's training losses are averaged; the entities are ranked by
their mean loss and mapped linearly onto [α, β] (lowest mean loss → β, highest → α): their
reliability. Each training interaction's last loss gets an ECDF weight, the share of the
epoch's losses at least as large (minus ½, over n): a high loss gets a small weight. The next
epoch trains each interaction with BCE × ECDF weight × user reliability × item reliability;
α, β are the two hyper-parameters. See docs/methods-dcf-crossdenoise.md.

Pure functions on arrays; the accumulators are an `EntityLosses` pytree updated inside jit.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from dprec.objectives.bce import bce


class EntityLosses(NamedTuple):
    """One epoch's accumulators (a pytree); reset with `init_entity_losses` each epoch.

    user_sum, user_count `[U]`; item_sum, item_count `[I]`: sums and counts of the losses of
      the rows each user/item took part in.
    last_loss `[N]`: each training interaction's latest loss this epoch; seen `[N]`: 1 once set.
    """

    user_sum: jax.Array
    user_count: jax.Array
    item_sum: jax.Array
    item_count: jax.Array
    last_loss: jax.Array
    seen: jax.Array


def init_entity_losses(n_users: int, n_items: int, n_train: int) -> EntityLosses:
    """Zeroed accumulators."""
    return EntityLosses(
        user_sum=jnp.zeros((n_users,), jnp.float32),
        user_count=jnp.zeros((n_users,), jnp.float32),
        item_sum=jnp.zeros((n_items,), jnp.float32),
        item_count=jnp.zeros((n_items,), jnp.float32),
        last_loss=jnp.zeros((n_train,), jnp.float32),
        seen=jnp.zeros((n_train,), jnp.float32),
    )


def accumulate_entities(
    state: EntityLosses,
    *,
    users: jax.Array,
    items: jax.Array,
    losses: jax.Array,
    valid: jax.Array,
) -> EntityLosses:
    """Add the losses `[B]` of rows (users `[B]`, items `[B]`) to the entity sums and counts.

    The authors add every training row, positives and sampled negatives alike; call it for
    both. Repeated ids in a batch all count (a scatter-add; the authors' indexed `+=` keeps
    one). Padding (`valid` 0) adds nothing; the losses are taken without gradient.
    """
    weight = valid.astype(jnp.float32)
    value = jax.lax.stop_gradient(losses).astype(jnp.float32) * weight
    return state._replace(
        user_sum=state.user_sum.at[users].add(value),
        user_count=state.user_count.at[users].add(weight),
        item_sum=state.item_sum.at[items].add(value),
        item_count=state.item_count.at[items].add(weight),
    )


def record_interactions(
    state: EntityLosses, *, index: jax.Array, losses: jax.Array, valid: jax.Array
) -> EntityLosses:
    """Store the losses `[B]` of the training interactions `index` `[B]` (the ECDF's input)."""
    row = jnp.where(valid > 0, index, state.last_loss.shape[0])
    stored = jax.lax.stop_gradient(losses).astype(jnp.float32)
    return state._replace(
        last_loss=state.last_loss.at[row].set(stored, mode="drop"),
        seen=state.seen.at[row].set(1.0, mode="drop"),
    )


def _average_rank(values: jax.Array, valid: jax.Array) -> jax.Array:
    """0-based rank `[N]` of each value among the valid ones; ties share their mean rank."""
    ordered = jnp.sort(jnp.where(valid > 0, values, jnp.inf))
    below = jnp.searchsorted(ordered, values, side="left")
    through = jnp.searchsorted(ordered, values, side="right")
    return (below + through - 1) / 2.0


def rank_reliability(
    mean_losses: jax.Array, *, low: float, high: float, valid: jax.Array
) -> jax.Array:
    """Reliability `[N]` from mean losses `[N]`: rank-based linear map onto [low, high].

    The lowest mean loss gets `high` (β), the highest `low` (α), evenly spaced by rank (the
    authors' linspace over the sorted entities); ties share the value of their mean rank (the
    authors' sort breaks them arbitrarily). Entities with `valid` 0 (no rows) get 1, neutral.
    """
    n_valid = jnp.sum(valid > 0)
    position = _average_rank(mean_losses, valid) / jnp.maximum(n_valid - 1, 1)
    return jnp.where(valid > 0, high + (low - high) * position, 1.0)


def ecdf_weight(losses: jax.Array, *, valid: jax.Array) -> jax.Array:
    """Interaction weights `[N]`: (#{j: ℓ_j ≥ ℓ_i} − ½) / n over the valid losses.

    The ECDF of the negated loss at the plotting position (rank − ½)/n: the largest loss gets
    ½/n, the smallest (n − ½)/n; ties get the higher weight (all tied values are counted, as
    the authors' right-sided search). Padding gets 0.
    """
    n_valid = jnp.sum(valid > 0)
    negated = jnp.where(valid > 0, -losses, jnp.inf)
    at_least = jnp.searchsorted(jnp.sort(negated), -losses, side="right")
    return jnp.where(valid > 0, (at_least - 0.5) / jnp.maximum(n_valid, 1), 0.0)


def fused_weight(
    *, base: jax.Array, user_reliability: jax.Array, item_reliability: jax.Array
) -> jax.Array:
    """w = w_base · r_u · r_i, elementwise `[B]`."""
    return base * user_reliability * item_reliability


def epoch_weights(
    state: EntityLosses,
    *,
    train_users: jax.Array,
    train_items: jax.Array,
    low: float,
    high: float,
) -> jax.Array:
    """Next epoch's weight `[N]` of each training interaction (users `[N]`, items `[N]`) from
    this epoch's accumulators. An interaction not seen this epoch gets weight 1."""
    user_mean = state.user_sum / jnp.maximum(state.user_count, 1.0)
    item_mean = state.item_sum / jnp.maximum(state.item_count, 1.0)
    user_rel = rank_reliability(user_mean, low=low, high=high, valid=state.user_count > 0)
    item_rel = rank_reliability(item_mean, low=low, high=high, valid=state.item_count > 0)
    base = ecdf_weight(state.last_loss, valid=state.seen)
    weight = fused_weight(
        base=base, user_reliability=user_rel[train_users], item_reliability=item_rel[train_items]
    )
    return jnp.where(state.seen > 0, weight, 1.0)


def crossdenoise_loss(*, logits: jax.Array, labels: jax.Array, weights: jax.Array) -> jax.Array:
    """Per-example loss `[B]`: BCE × weight, the weight without gradient (1 for negatives and
    in the authors' first two epochs). Reduce with the batch mean, as the authors do."""
    return jax.lax.stop_gradient(weights) * bce(logits=logits, labels=labels)


def noise_score(weights: jax.Array, *, high: float) -> jax.Array:
    """Per-interaction noise score `[N]` in [0, 1), higher = more likely noisy: 1 − w / β²
    (β² bounds w_base · r_u · r_i from above)."""
    return 1.0 - weights / (high * high)
