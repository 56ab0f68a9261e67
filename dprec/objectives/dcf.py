"""DCF, the Double Correction Framework (He et al., KDD 2024, arXiv 2405.11272).

Sample-dropping correction: each training positive's loss is remembered over a window of its
last W visits; the window's mean of the damped losses φ(ℓ) = log(1 + ℓ + ℓ²/2) (a robust
mean, Eq. 2) minus a concentration-inequality bound (Eq. 4) ranks the batch, so a sample with
few selections (a hard, uncertain one) gets a larger bound and is kept. The batch's ε(t) of
highest-ranked positives are dropped (ε(t) the T-CE schedule). Progressive label correction:
the top `relabel_ratio` of the dropped ones (r·ε(t) of the batch: a share that grows with t)
are relabelled as negatives and trained on. See docs/methods-dcf-crossdenoise.md.

Pure functions on arrays; the state is a `LossHistory` pytree updated with scatters inside jit.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from dprec.objectives.bce import bce
from dprec.objectives.tce import drop_rate


class LossHistory(NamedTuple):
    """Per-training-interaction state of DCF (a pytree).

    losses `[N, W]`: the last W losses (raw BCE) of each training positive, a ring buffer.
    visits `[N]` int32: how many losses were recorded (the ring position is visits mod W).
    selected `[N]` float: how often the interaction was selected (kept or dropped, not
      relabelled): the n of the bound, as the authors' code counts it.
    """

    losses: jax.Array
    visits: jax.Array
    selected: jax.Array


def init_history(n_train: int, window: int) -> LossHistory:
    """An empty history for `n_train` interactions and a window of `window` visits."""
    return LossHistory(
        losses=jnp.zeros((n_train, window), jnp.float32),
        visits=jnp.zeros((n_train,), jnp.int32),
        selected=jnp.zeros((n_train,), jnp.float32),
    )


def update_history(
    history: LossHistory,
    *,
    index: jax.Array,
    losses: jax.Array,
    selected: jax.Array,
    valid: jax.Array,
) -> LossHistory:
    """Record `losses` `[B]` of the interactions `index` `[B]` and add `selected` `[B]` (0/1).

    Rows with `valid` 0 (padding) change nothing: their scatter index is pushed out of range
    and dropped. An index repeated in one batch keeps one of its writes (an epoch visits each
    training positive once, so batches do not repeat one). The losses are stored without
    gradient.
    """
    n_train, window = history.losses.shape
    row = jnp.where(valid > 0, index, n_train)
    slot = history.visits[jnp.minimum(index, n_train - 1)] % window
    stored = jax.lax.stop_gradient(losses).astype(history.losses.dtype)
    return LossHistory(
        losses=history.losses.at[row, slot].set(stored, mode="drop"),
        visits=history.visits.at[row].add(1, mode="drop"),
        selected=history.selected.at[row].add(selected.astype(jnp.float32), mode="drop"),
    )


def count_selections(
    history: LossHistory, *, index: jax.Array, selected: jax.Array, valid: jax.Array
) -> LossHistory:
    """Add `selected` `[B]` (0/1) to the selection counts of the interactions `index` `[B]`;
    padding (`valid` 0) adds nothing."""
    row = jnp.where(valid > 0, index, history.selected.shape[0])
    counts = history.selected.at[row].add(selected.astype(jnp.float32), mode="drop")
    return history._replace(selected=counts)


def damping(losses: jax.Array) -> jax.Array:
    """φ(ℓ) = log(1 + ℓ + ℓ²/2): non-decreasing, ≈ ℓ for small ℓ, logarithmic for outliers."""
    return jnp.log1p(losses + 0.5 * jnp.square(losses))


def damped_mean(losses: jax.Array, visits: jax.Array) -> jax.Array:
    """Eq. 2: mean of φ over the recorded part of each window, `[N, W]`, `[N]` → `[N]`.

    Only the first min(visits, W) slots hold losses; an interaction never visited gets 0.
    """
    window = losses.shape[-1]
    filled = jnp.arange(window) < jnp.minimum(visits, window)[..., None]
    count = jnp.sum(filled, axis=-1)
    return jnp.sum(jnp.where(filled, damping(losses), 0.0), axis=-1) / jnp.maximum(count, 1)


def confidence_bound(*, variance: jax.Array, t: jax.Array, n: jax.Array) -> jax.Array:
    """σ²(t + σ² log(2t)/t²) / (n − σ²): the width of Eq. 4's bound (the authors' code form).

    t is the number of epochs so far (≥ 1), n the selection count + 1, σ² = `variance`; a
    rarely selected sample (small n) gets a wide bound. The denominator is floored at 1e-6 so
    that n ≤ σ² cannot divide by zero or flip the sign.
    """
    t = jnp.maximum(jnp.asarray(t, jnp.float32), 1.0)
    return (
        variance
        * (t + variance * jnp.log(2.0 * t) / jnp.square(t))
        / jnp.maximum(n - variance, 1e-6)
    )


def lower_confidence_bound(
    mean: jax.Array, *, variance: jax.Array, t: jax.Array, n: jax.Array
) -> jax.Array:
    """Eq. 4: ℓ* = max(μ̃ − bound, 0) `[N]`, the score DCF ranks positives by."""
    return jnp.maximum(mean - confidence_bound(variance=variance, t=t, n=n), 0.0)


def variance_schedule(epoch: jax.Array, *, variance: float, epochs: int) -> jax.Array:
    """σ²(e) = σ²₀ · (1 − e / (E − 1)): the authors' linear decay of σ² to 0 over E epochs."""
    return variance * (1.0 - jnp.minimum(epoch / max(epochs - 1, 1), 1.0))


def relabel_schedule(
    step: jax.Array, *, max_rate: float, num_gradual: int, relabel_ratio: float
) -> tuple[jax.Array, jax.Array]:
    """(ε(t), r·ε(t)): the drop rate (T-CE's schedule) and the share of the batch relabelled,
    which grows with ε(t) until step `num_gradual` (progressive label correction)."""
    rate = drop_rate(step, max_rate=max_rate, num_gradual=num_gradual)
    return rate, relabel_ratio * rate


def correction_masks(
    *,
    scores: jax.Array,
    labels: jax.Array,
    valid: jax.Array,
    drop_rate: jax.Array,
    relabel_rate: jax.Array,
) -> tuple[jax.Array, jax.Array]:
    """Which examples `[B]` DCF keeps (label as is) and which it relabels as negatives.

    Ranks the valid examples by score (negatives rank as 0, so only positives are dropped or
    relabelled; padding ranks last and is never chosen): the floor((1 − ε)·n) lowest are kept,
    the ranks from floor((1 − r·ε)·n) on are relabelled, the rest are dropped. n counts the
    valid examples of the whole batch, as in T-CE and the authors' code.
    """
    n_valid = jnp.sum(valid)
    key = jnp.where(valid > 0, jnp.where(labels > 0, scores, 0.0), jnp.inf)
    rank = jnp.argsort(jnp.argsort(key, stable=True), stable=True)
    keep_count = jnp.floor((1.0 - drop_rate) * n_valid)
    relabel_from = jnp.floor((1.0 - relabel_rate) * n_valid)
    keep = rank < keep_count
    relabel = (rank >= relabel_from) & (rank < n_valid) & ~keep & (labels > 0)
    return keep.astype(scores.dtype), relabel.astype(scores.dtype)


def dcf_loss(
    *,
    logits: jax.Array,
    labels: jax.Array,
    keep: jax.Array,
    relabel: jax.Array,
    relabel_label: float = 0.0,
) -> jax.Array:
    """Per-example loss `[B]`: BCE on kept examples, BCE against `relabel_label` (the paper's
    correction: 0, a negative) on relabelled ones, 0 on dropped ones.

    Reduce with sum / sum(keep + relabel) (the authors' mean over the trained examples). Their
    public code keeps the original label 1 for the relabelled set; `relabel_label=1.0` does that.
    """
    corrected = bce(logits=logits, labels=jnp.full_like(labels, relabel_label))
    return keep * bce(logits=logits, labels=labels) + relabel * corrected


def noise_score(history: LossHistory, *, variance: jax.Array, t: jax.Array) -> jax.Array:
    """Per-interaction noise score `[N]`, higher = more likely noisy: the lower bound ℓ* of
    the damped mean loss (what DCF drops and relabels by)."""
    mean = damped_mean(history.losses, history.visits)
    return lower_confidence_bound(mean, variance=variance, t=t, n=history.selected + 1.0)


def batch_scores(
    history: LossHistory, index: jax.Array, *, variance: jax.Array, t: jax.Array
) -> jax.Array:
    """ℓ* `[B]` of the interactions `index` `[B]` (call after recording the batch's losses, so
    the score includes the current loss, as in the authors' running mean)."""
    mean = damped_mean(history.losses[index], history.visits[index])
    return lower_confidence_bound(mean, variance=variance, t=t, n=history.selected[index] + 1.0)
