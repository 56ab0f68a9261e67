"""Validation losses for picking the best epoch: the target's binary cross-entropy on the
validation positives and a fixed sample of negatives, and the same with the highest-loss
positives dropped (`EvalSpec.selection` "loss" / "trimmed_loss").

The trimmed loss is the epoch selection of the RecSys'25 re-evaluation ("Are We Really Making
Recommendations Robust?", its ERM_RE: plain training, epoch chosen by this loss with the 20 %
highest-loss validation positives dropped). Like its `eval_RevistingEvaluation`, both losses
are one mean over every kept pair, positives and negatives pooled: (Σ kept positive losses +
Σ negative losses) / (kept positives + negatives), keeping ⌊(1 − r)·P⌋ of the P positives.
Where dprec differs, and why:
- the negatives are drawn once per run from the seed (host NumPy, `data.sampling`) and reused
  every epoch, so two epochs are compared on the same pairs; the re-evaluation redraws them
  at every validation, which adds sampling noise to the epoch choice;
- a negative is never one of the user's training *or validation* items (the re-evaluation
  excludes the training items only, so a validation positive can also be drawn as a
  negative); test items stay drawable, since excluding them would let the test steer
  selection;
- the positives are those of `eval.valid_set` (the re-evaluation uses every validation
  interaction: dprec's `eval.valid_set=noisy`);
- the negatives are uniform for every method (the re-evaluation samples them as its training
  does, also uniform), so methods with their own negative distribution (WBPR) are compared
  on the same pairs;
- the loss is the plain BCE for every method (the re-evaluation scores T-CE and R-CE runs by
  their own training losses), so the rule does not change with the method;
- the re-evaluation averages per-batch means of shuffled batches (its last, smaller batch
  weighs as much as a full one); dprec takes the exact mean over all pairs.

The losses run jitted, `lax.map` over chunks of C positives (each with its n negatives), so
memory is bounded by C · (1 + n) pair logits whatever the size of the validation set.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from dprec import sharding
from dprec.data.dataset import InteractionData
from dprec.data.sampling import PositiveSet, sample_negatives
from dprec.models import ScoreFns

# The validation negatives' random stream: (seed, VALID_STREAM). Training batches use
# (seed, epoch) with epochs 1, 2, ..., so the two streams never meet.
VALID_STREAM = 2**31 - 1
# Pairs (positives and their negatives) scored at once: the chunk's logits and gathered rows
# (e.g. 2¹⁶ pairs × 2 rows × 32 floats = 16 MiB for GMF) stay small on any device.
PAIRS_PER_CHUNK = 1 << 16


@struct.dataclass
class ValidationLossTask:
    """Fixed inputs of the validation losses, padded to whole chunks of C positives.

    users `[n_chunks, C]` each validation positive's user (padding: user 0);
    items `[n_chunks, C]` its item (padding: item 0);
    negatives `[n_chunks, C, n]` its n sampled negative items;
    real `[n_chunks, C]` bool: a real positive (False: padding);
    n_kept `[]` int32: positives the trimmed loss keeps, ⌊(1 − r)·P⌋ of the P positives.
    """

    users: Any
    items: Any
    negatives: Any
    real: Any
    n_kept: Any

    @property
    def n_positives(self) -> int:
        return int(np.asarray(self.real).sum())


def kept_positives(n_positives: int, trim_rate: float) -> int:
    """⌊(1 − trim_rate) · n_positives⌋, the count the re-evaluation keeps (`int(P * 0.8)`);
    the 1e-9 keeps e.g. (1 − 0.9) · 10 = 0.99999… from flooring to 0."""
    return int(math.floor((1.0 - trim_rate) * n_positives + 1e-9))


def make_validation_loss_task(
    data: InteractionData,
    valid_set: str,
    num_negatives: int,
    seed: int,
    chunk: int,
    trim_rate: float = 0.2,
) -> ValidationLossTask | None:
    """The validation positives of `valid_set` ("clean": `data.valid_clean`, "noisy": all of
    `data.valid`), `num_negatives` uniform negatives each, drawn once from `seed` among the
    items the user has neither in training nor in validation, in chunks of `chunk` positives;
    None when the set has no positive. Host NumPy only.

    Raises:
      DataError: a user has interacted with every item (no negative can be drawn).
    """
    positives = data.valid_clean if valid_set == "clean" else data.valid
    n_positives = len(positives)
    if n_positives == 0:
        return None
    seen = PositiveSet.from_pairs(
        np.concatenate([data.train.users, data.valid.users]),
        np.concatenate([data.train.items, data.valid.items]),
        data.n_items,
    )
    rng = np.random.default_rng([seed, VALID_STREAM])
    users = np.repeat(positives.users[:, None], num_negatives, axis=1)
    negatives = sample_negatives(rng, users, seen)
    chunk = max(1, min(chunk, n_positives))
    n_chunks = -(-n_positives // chunk)
    padding = n_chunks * chunk - n_positives

    def padded(values: np.ndarray) -> np.ndarray:
        rows = np.concatenate([values, np.zeros((padding, *values.shape[1:]), values.dtype)])
        return rows.reshape(n_chunks, chunk, *values.shape[1:])

    return ValidationLossTask(
        users=padded(positives.users.astype(np.int32)),
        items=padded(positives.items.astype(np.int32)),
        negatives=padded(negatives.astype(np.int32)),
        real=padded(np.ones(n_positives, bool)),
        n_kept=np.int32(kept_positives(n_positives, trim_rate)),
    )


def validation_losses(
    score: ScoreFns, params: Any, graph: Any, task: ValidationLossTask
) -> tuple[jax.Array, jax.Array]:
    """(loss, trimmed_loss) `[]`: the mean BCE over every positive and negative pair of `task`,
    and the same with only the `task.n_kept` lowest-loss positives. Pure; jit it with
    `make_validation_loss_fn`."""
    encoded = score.encode(params, graph, None)  # no corruption: evaluation

    def chunk_losses(chunk):
        users, items, negatives = chunk
        n = negatives.shape[-1]
        logits = score.pair(
            params,
            encoded,
            jnp.concatenate([users, jnp.repeat(users, n)]),
            jnp.concatenate([items, negatives.reshape(-1)]),
        )
        # −log σ(x) for a positive, −log(1 − σ(x)) = −log σ(−x) for a negative: log space.
        positive = -jax.nn.log_sigmoid(logits[: users.shape[0]])
        negative = -jax.nn.log_sigmoid(-logits[users.shape[0] :]).reshape(negatives.shape)
        return positive, negative

    positive, negative = jax.lax.map(chunk_losses, (task.users, task.items, task.negatives))
    real = task.real
    n_positives = jnp.sum(real)
    n_negatives = n_positives * task.negatives.shape[-1]
    negative_sum = jnp.sum(jnp.where(real[..., None], negative, 0.0))
    positive_sum = jnp.sum(jnp.where(real, positive, 0.0))
    loss = (positive_sum + negative_sum) / (n_positives + n_negatives)
    # Padding sorts last (+inf), and n_kept <= P, so the kept prefix holds real positives only.
    ranked = jnp.sort(jnp.where(real, positive, jnp.inf).reshape(-1))
    kept = jnp.arange(ranked.shape[0]) < task.n_kept
    kept_sum = jnp.sum(jnp.where(kept, ranked, 0.0))
    trimmed = (kept_sum + negative_sum) / (task.n_kept + n_negatives)
    return loss, trimmed


def make_validation_loss_fn(
    score: ScoreFns, mesh: Any = None
) -> Callable[[Any, Any, ValidationLossTask], tuple[jax.Array, jax.Array]]:
    """Jitted `(params, graph, task) -> (loss, trimmed_loss)` for the target's `score`; with a
    mesh of several devices the two scalars come back replicated (readable in every process)."""

    def losses(params, graph, task):
        return validation_losses(score, params, graph, task)

    if mesh is None or sharding.num_shards(mesh) == 1:
        return jax.jit(losses)
    return jax.jit(losses, out_shardings=sharding.replicated(mesh))
