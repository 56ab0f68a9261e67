"""The DVAE prior f' (Algorithm 2): pretrained with normal training, frozen, and cached.

By default (`prior_init=seed`, the paper) f' is trained under its own seed s1 = seed + offset;
`prior_init=copy` starts it from f's initial weights (seed s2), as the authors' code does.
The cache key covers everything that determines f' (architecture, data and split, training
hyper-parameters, seed, dprec version), so a prior is never reused across settings.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np

import dprec
from dprec import sharding
from dprec.data.dataset import InteractionData
from dprec.files import write_atomic_bytes
from dprec.models import init_model
from dprec.specs import MethodSpec, RunSpec

_log = logging.getLogger(__name__)


def prior_run_spec(spec: RunSpec) -> RunSpec:
    """The normal-training run that produces f' for the DVAE run `spec`."""
    method = spec.method
    seed = spec.seed if method.prior_init == "copy" else spec.seed + method.prior_seed_offset
    train = dataclasses.replace(
        spec.train,
        num_epochs=method.prior_epochs or spec.train.num_epochs,
        l2=spec.train.l2 if method.prior_l2 < 0 else method.prior_l2,
    )
    return dataclasses.replace(spec, seed=seed, method=MethodSpec(name="normal"), train=train)


# Bump when the training of f' changes meaning without a config change (e.g. a regulariser).
_CACHE_FORMAT = 2


def _train_fields(prior_spec: RunSpec) -> dict:
    """The training fields that determine f': not where its tables live (`shard_tables`,
    a placement), so sharded and replicated runs share a prior and older keys stay valid."""
    fields = dataclasses.asdict(prior_spec.train)
    del fields["shard_tables"]
    return fields


def cache_key(prior_spec: RunSpec, data: InteractionData) -> str:
    """sha256 of everything that determines the pretrained prior."""
    fields = {
        "version": dprec.__version__,
        "format": _CACHE_FORMAT,
        "model": dataclasses.asdict(prior_spec.model),
        "data": dataclasses.asdict(prior_spec.data),
        "data_fingerprint": data.fingerprint,
        "train": _train_fields(prior_spec),
        "eval": dataclasses.asdict(prior_spec.eval),
        "seed": prior_spec.seed,
    }
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:24]


def cache_dir(method: MethodSpec) -> Path:
    """`method.prior_cache_dir`, else `$DPREC_CACHE_DIR/priors`, else ~/.cache/dprec/priors."""
    if method.prior_cache_dir:
        return Path(method.prior_cache_dir).expanduser()
    root = os.environ.get("DPREC_CACHE_DIR") or Path.home() / ".cache" / "dprec"
    return Path(root) / "priors"


def save_params(path: Path, params: Any) -> None:
    """Save a parameter tree's leaves (in tree order) atomically as .npz."""
    path.parent.mkdir(parents=True, exist_ok=True)
    leaves = {str(i): np.asarray(leaf) for i, leaf in enumerate(jax.tree.leaves(params))}
    buffer = io.BytesIO()
    np.savez(buffer, **leaves)
    write_atomic_bytes(path, buffer.getvalue())


def load_params(path: Path, template: Any) -> Any:
    """Load leaves saved by `save_params` into the structure of `template`."""
    with np.load(path) as stored:
        leaves = [stored[str(i)] for i in range(len(stored.files))]
    return jax.tree.unflatten(jax.tree.structure(template), leaves)


def pretrained_prior(spec: RunSpec, data: InteractionData, *, fit_fn: Callable[..., Any]) -> Any:
    """f' parameters for the DVAE run `spec`: from the cache, or pretrained and then cached.

    `fit_fn` is `train.fit`; f' is the normal run's model at its best validation epoch.
    """
    prior_spec = prior_run_spec(spec)
    path = cache_dir(spec.method) / f"{spec.model.name}-{cache_key(prior_spec, data)}.npz"
    _, template = init_model(spec.model, data.n_users, data.n_items, jax.random.key(0))
    # Every process of a run must take the same branch (pretraining is collective); each
    # reads and writes its own cache (hosts may not share one), so all must have the file.
    if sharding.in_every_process(path.exists()):
        _log.info("DVAE prior f' loaded from %s", path)
        return load_params(path, template)
    _log.info("pretraining the DVAE prior f' (normal training, seed %d)", prior_spec.seed)
    fitted = fit_fn(prior_spec, data, log_prefix="prior: ")
    params = sharding.to_host(fitted.best_params["target"])
    save_params(path, params)  # atomic: processes sharing a cache write the same bytes
    _log.info("DVAE prior f' cached at %s", path)
    return params
