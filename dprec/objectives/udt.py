"""UDT, user-level denoising with temperatures, as implemented in the RecSys 2025 re-evaluation
"Are We Really Making Recommendations Robust? Revisiting Model Evaluation for Denoising
Recommendation" (`bachml/EvalDenoisingRec`, `code/main.py`).

Each epoch records every training row's BCE loss. At the epoch's end:
1. each user's mean loss over their rows (`user_mean_loss`);
2. users ranked by that mean get, linearly in rank, a temperature τ_u (lowest loss →
   0.2, highest → 0.5) and a factor a_u (lowest loss → 0.5, highest → 0.0)
   (`user_temperature_and_factor`);
3. each training positive (u, i) gets w_ui = softmax_{i' ∈ P_u}(−ℓ_ui' / τ_u)_i · |P_u| · a_u,
   a softmax over the user's positives of their negated last losses: the highest-loss
   positive of a user gets the lowest weight (`positive_weights`, `interaction_weights`);
   a sampled negative of user u gets a_u.
The next epoch trains BCE × weight (batch mean). The authors' first two epochs (epoch
indices 0 and 1) use weight 1, so the weights first act in epoch index 2, computed from the
losses of epoch index 1 (`weights_active`).

Differences from the authors' code, and why:
- Dense |U| × |I| loss and weight matrices (`loss_mat`, `ui_factor`) become arrays over the
  training interactions plus segment reductions over user ids (`jax.ops.segment_*`):
  memory O(interactions), not O(|U|·|I|), and the same values.
- The softmax is taken in log space (segment max shift); the authors' dense softmax sets
  entries that underflow to 0 to weight 1 (their `ui_factor[ui_factor == 0] = 1.0` also
  catches non-positives); here only positives with no recorded loss get 1 (× a_u).
- The user loss is a true mean over the user's rows (a segment sum / count); the authors'
  indexed `user_loss[user] += loss` keeps one row per user per batch and divides by the
  number of positives. With a fixed number of negatives per positive this only rescales.
- Ties in the mean loss share the value of their mean rank (the authors' argsort breaks
  them arbitrarily); users without rows get the middle of each range (the authors rank them
  as loss 0, i.e. lowest).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from dprec.objectives.settings import check_finite, check_positive

FIRST_WEIGHTED_EPOCH = 2  # the authors' `if epoch <= 1: mul_factor = 1`


def weights_active(epoch: jax.Array) -> jax.Array:
    """Whether epoch `epoch` (0-based) trains with the UDT weights (else weight 1)."""
    return jnp.asarray(epoch) >= FIRST_WEIGHTED_EPOCH


def segment_mean(
    values: jax.Array, segment_ids: jax.Array, *, num_segments: int, mask: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """(mean `[S]`, count `[S]`) of `values` `[N]` per segment over entries with `mask` 1.

    An empty segment has mean 0 and count 0.
    """
    weight = mask.astype(jnp.float32)
    ids = jnp.where(mask > 0, segment_ids, num_segments)  # out of range: dropped
    total = jax.ops.segment_sum(values * weight, ids, num_segments=num_segments)
    count = jax.ops.segment_sum(weight, ids, num_segments=num_segments)
    return total / jnp.maximum(count, 1.0), count


def user_mean_loss(
    *, losses: jax.Array, users: jax.Array, n_users: int, mask: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """(mean loss `[U]`, row count `[U]`) from the epoch's row losses `[N]` of users `[N]`.

    Pass positives and sampled negatives alike (the authors add every row); padding has
    `mask` 0. The losses are taken without gradient.
    """
    return segment_mean(jax.lax.stop_gradient(losses), users, num_segments=n_users, mask=mask)


def _rank_position(values: jax.Array, valid: jax.Array) -> jax.Array:
    """Position in [0, 1] `[U]` of each value among the valid ones by ascending value: 0 for
    the smallest, 1 for the largest; ties share the position of their mean rank."""
    ordered = jnp.sort(jnp.where(valid, values, jnp.inf))
    below = jnp.searchsorted(ordered, values, side="left")
    through = jnp.searchsorted(ordered, values, side="right")
    rank = (below + through - 1) / 2.0
    return rank / jnp.maximum(jnp.sum(valid) - 1, 1)


def user_temperature_and_factor(
    mean_losses: jax.Array,
    *,
    valid: jax.Array,
    temperature_range: tuple[float, float] = (0.2, 0.5),  # (temp1, temp2)
    factor_range: tuple[float, float] = (0.5, 0.0),  # (userfact1, userfact2)
) -> tuple[jax.Array, jax.Array]:
    """(τ `[U]`, a `[U]`): each range's first value for the lowest mean loss, its second for
    the highest, linear in rank between (the authors' linspace over sorted users).

    valid `[U]`: users with rows this epoch (count > 0); the others get each range's middle.
    Defaults: the authors' GMF/NeuMF configs (LightGCN uses temp1 = 0.1).
    """
    for name, value in zip(("temp1", "temp2"), temperature_range, strict=True):
        check_positive(f"temperature_range {name}", value)
    for name, value in zip(("userfact1", "userfact2"), factor_range, strict=True):
        check_finite(f"factor_range {name}", value)
    valid = valid > 0
    position = _rank_position(mean_losses, valid)

    def along(value_range: tuple[float, float]) -> jax.Array:
        first, last = value_range
        return jnp.where(valid, first + (last - first) * position, (first + last) / 2.0)

    return along(temperature_range), along(factor_range)


def segment_log_softmax(
    scores: jax.Array, segment_ids: jax.Array, *, num_segments: int, mask: jax.Array
) -> jax.Array:
    """log softmax `[N]` of `scores` `[N]` within each segment over entries with `mask` 1;
    −inf where `mask` is 0. Shifted by the segment max (`segment_max`), summed with
    `segment_sum`, so no exp overflows."""
    valid = mask > 0
    ids = jnp.where(valid, segment_ids, num_segments)  # out of range: dropped
    gather = jnp.minimum(ids, num_segments - 1)
    peak = jax.ops.segment_max(jnp.where(valid, scores, -jnp.inf), ids, num_segments=num_segments)
    peak = jnp.where(jnp.isfinite(peak), peak, 0.0)  # empty segments
    shifted = jnp.where(valid, scores - peak[gather], -jnp.inf)
    total = jax.ops.segment_sum(jnp.exp(shifted), ids, num_segments=num_segments)
    log_total = jnp.log(jnp.where(total > 0, total, 1.0))
    return jnp.where(valid, shifted - log_total[gather], -jnp.inf)


def positive_weights(
    *,
    losses: jax.Array,
    users: jax.Array,
    temperature: jax.Array,
    n_users: int,
    mask: jax.Array,
) -> jax.Array:
    """softmax_{i ∈ P_u}(−ℓ_ui / τ_u) `[P]` over each user's positives: sums to 1 per user.

    losses `[P]`: each training positive's last loss; users `[P]`; temperature `[U]`: τ_u;
    mask `[P]`: 1 for positives with a recorded loss (others get 0). No gradient.
    """
    scores = -jax.lax.stop_gradient(losses) / temperature[users]
    log_weight = segment_log_softmax(scores, users, num_segments=n_users, mask=mask)
    return jnp.where(mask > 0, jnp.exp(log_weight), 0.0)


def interaction_weights(
    *,
    losses: jax.Array,
    users: jax.Array,
    temperature: jax.Array,
    factor: jax.Array,
    n_users: int,
    mask: jax.Array,
) -> jax.Array:
    """UDT weight `[P]` of each training positive: softmax weight · |P_u| · a_u.

    |P_u| counts the user's positives with `mask` 1 (so a user's weights average a_u);
    a positive with `mask` 0 (no loss recorded) gets a_u. A sampled negative's weight is
    `factor[users]`. Inputs as in `positive_weights`; factor `[U]`: a_u.
    """
    softmax = positive_weights(
        losses=losses, users=users, temperature=temperature, n_users=n_users, mask=mask
    )
    count = jax.ops.segment_sum(mask.astype(softmax.dtype), users, num_segments=n_users)
    scale = factor[users]
    return jnp.where(mask > 0, softmax * count[users] * scale, scale)
