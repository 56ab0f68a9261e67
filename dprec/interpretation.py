"""P(r=1 | r̃=1) for every training interaction (section 4.4, Figure 5).

DPI: h'·f / (h'·f + h·(1−f)); DVAE: f. The table carries the original ids, the rating where
the data has one, and the ground truth where the data has one (synthetic data).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from dprec import metrics_io
from dprec.data.dataset import InteractionData
from dprec.objectives.likelihood import posterior_real_positive
from dprec.roles import Roles

TABLE_FILE = "real_positive.csv.gz"
_CHUNK = 65_536


def real_positive_probability(
    method: str,
    roles: Roles,
    params: dict[str, Any],
    users: np.ndarray,
    items: np.ndarray,
    graph: Any = None,
) -> np.ndarray:
    """P(r=1 | r̃=1) `[N]` for interacted pairs `users [N]`, `items [N]` (in chunks): DPI's
    posterior, DVAE's f, and σ(f) for any other method."""

    def logits(role, params, graph, users, items):
        score = roles.score[role]
        return score.pair(params[role], score.encode(params[role], graph, None), users, items)

    @jax.jit
    def probability(params, graph, users, items):
        f = logits("target", params, graph, users, items)
        if method != "dpi":  # DVAE: P = f; other methods: the model's own probability σ(f)
            return jax.nn.sigmoid(f)
        h = logits("noise_dp", params, graph, users, items)
        h_prime = logits("noise_dn", params, graph, users, items)
        return posterior_real_positive(f_logits=f, h_logits=h, h_prime_logits=h_prime)

    out = np.empty(users.shape[0], np.float32)
    for start in range(0, users.shape[0], _CHUNK):
        stop = min(start + _CHUNK, users.shape[0])
        # Pad the last chunk to the full size: one compilation for every chunk.
        pad = _CHUNK - (stop - start) if users.shape[0] > _CHUNK else 0
        u = np.pad(users[start:stop], (0, pad))
        i = np.pad(items[start:stop], (0, pad))
        out[start:stop] = np.asarray(probability(params, graph, jnp.asarray(u), jnp.asarray(i)))[
            : stop - start
        ]
    return out


def real_positive_table(
    method: str, roles: Roles, params: dict[str, Any], data: InteractionData, graph: Any = None
) -> pd.DataFrame:
    """One row per training interaction: user, item (original ids), probability, [rating, truth]."""
    train = data.train
    table = pd.DataFrame(
        {
            "user": data.user_ids[train.users],
            "item": data.item_ids[train.items],
            "probability": real_positive_probability(
                method, roles, params, train.users, train.items, graph
            ),
        }
    )
    if train.ratings is not None:
        table["rating"] = train.ratings
    if train.truth is not None:
        table["truth"] = train.truth
    return table


def summarize_table(table: pd.DataFrame) -> dict[str, Any]:
    """Mean probability overall, per rating level (Figure 5) and per ground-truth label."""
    summary: dict[str, Any] = {"mean": float(table.probability.mean()), "rows": len(table)}
    if "rating" in table:
        by_rating = table.groupby("rating").probability.agg(["mean", "size"])
        summary["by_rating"] = {
            str(level): {"mean": float(row["mean"]), "count": int(row["size"])}
            for level, row in by_rating.iterrows()
        }
    if "truth" in table:
        summary["truly_clean_mean"] = float(table.probability[table.truth == 1].mean())
        summary["truly_noisy_mean"] = float(table.probability[table.truth == 0].mean())
    return summary


def write_table(table: pd.DataFrame, run_dir: Path) -> None:
    """Write the table as gzip CSV into the run directory, atomically."""
    metrics_io.write_atomic_bytes(
        Path(run_dir) / TABLE_FILE,
        table.to_csv(index=False, compression=None).encode(),
        gzip_compress=True,
    )
