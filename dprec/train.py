"""`train_and_evaluate`: the only training loop (data → state → epochs → evaluation → files)."""

from __future__ import annotations

import dataclasses
import logging
import math
import platform
import statistics
import sys
import time
from collections.abc import Callable
from importlib import metadata
from typing import Any

import jax
import numpy as np
import optax
import tqdm

from dprec import interpretation, metrics_io, prior, sharding
from dprec.checkpoint import RunCheckpoints
from dprec.data.batches import make_epoch_batches, padded_batch_size
from dprec.data.dataset import InteractionData, check_ks_against_data
from dprec.data.registry import load_dataset
from dprec.data.sampling import PositiveSet, popularity_distribution
from dprec.data.touched import touched_rows
from dprec.errors import TrainingError, UserInputError
from dprec.evaluator import Evaluator, create_evaluator
from dprec.graph.adjacency import Graph, build_graph_arrays
from dprec.models import GRAPH_MODELS
from dprec.roles import Roles, create_roles
from dprec.specs import RunSpec, run_spec_from_config
from dprec.state import TrainState, create_train_state
from dprec.steps import make_epoch_fn, make_method_train_step, role_tables

_log = logging.getLogger(__name__)
_PACKAGES = ("dprec", "jax", "jaxlib", "flax", "optax", "numpy", "pandas", "ml-collections")


def versions() -> dict[str, str]:
    """Python and package versions for the run record."""
    found = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def check_spec_against_data(spec: RunSpec, data: InteractionData) -> None:
    """Checks that need the data: every K must be at most the number of items."""
    check_ks_against_data(spec.eval.ks, data)


def negative_distribution(spec: RunSpec, data: InteractionData) -> np.ndarray | None:
    """WBPR draws negatives ∝ popularity ** exponent; every other method uniformly (None)."""
    if spec.method.name != "wbpr":
        return None
    return popularity_distribution(data.item_popularity(), spec.method.popularity_exponent)


def epoch_batches(
    spec: RunSpec,
    data: InteractionData,
    positives: PositiveSet,
    epoch: int,
    batch_size: int,
    item_probs: np.ndarray | None = None,
    *,
    multiple: int = 1,
) -> dict[str, np.ndarray]:
    """The host arrays of one epoch; seeded by (seed, epoch) so any epoch can be redrawn.

    In the lazy update mode they include each batch's touched rows (`data.touched`), padded
    to a multiple of `multiple` (the device count).
    """
    rng = np.random.default_rng([spec.seed, epoch])
    batches = make_epoch_batches(
        rng,
        data.train.users,
        data.train.items,
        positives,
        batch_size=batch_size,
        num_negatives=spec.train.num_negatives,
        item_probs=item_probs,
    )
    arrays = {
        "users": batches.users,
        "pos_items": batches.pos_items,
        "neg_items": batches.neg_items,
        "mask": batches.mask,
    }
    if role_tables(spec):
        arrays |= touched_rows(
            **arrays, n_users=data.n_users, n_items=data.n_items, multiple=multiple
        )
    return arrays


def format_metrics(values: dict[str, Any]) -> str:
    """'recall@5 0.1234 ndcg@5 ...' for a progress line."""
    return " ".join(f"{k} {v:.4f}" for k, v in values.items() if k != "users" and v is not None)


@dataclasses.dataclass
class FitResult:
    """What `fit` returns: the results dict, the roles, and the parameters to keep."""

    results: dict[str, Any]
    setup: Setup
    best_params: dict[str, Any]  # every trained role's params at the best validation epoch
    state: TrainState  # the state after the last epoch


@dataclasses.dataclass
class Setup:
    """Everything the epoch loop needs, built once per run (see `create_setup`)."""

    mesh: Any
    batch_size: int  # padded to a multiple of the device count
    roles: Roles
    state: TrainState
    epoch_fn: Callable[..., Any]
    evaluator: Evaluator
    positives: PositiveSet
    graph: Graph | None  # the training adjacency on the mesh, for graph models
    negative_probs: np.ndarray | None  # item distribution of sampled negatives (None: uniform)

    def batches(self, spec: RunSpec, data: InteractionData, epoch: int) -> dict[str, Any]:
        """Epoch `epoch`'s batches, sampled on the host and placed on the mesh."""
        host = epoch_batches(
            spec,
            data,
            self.positives,
            epoch,
            self.batch_size,
            self.negative_probs,
            multiple=sharding.num_shards(self.mesh),
        )
        return sharding.shard_epoch(host, self.mesh)


def uses_graph(spec: RunSpec) -> bool:
    """Whether any model of the run reads the training adjacency (CDAE, LightGCN)."""
    names = {spec.model.name}
    if spec.method.is_denoising:
        names |= {spec.method.noise.name} | (
            {spec.method.aux.name} if spec.method.name == "dpi" else set()
        )
    return bool(names & GRAPH_MODELS)


def create_setup(spec: RunSpec, data: InteractionData, *, prior_params: Any = None) -> Setup:
    """Mesh, roles, initial state, graph, the jitted epoch function and the evaluator."""
    mesh = sharding.create_mesh()
    shards = sharding.num_shards(mesh)
    batch_size = padded_batch_size(spec.train.batch_size, shards)
    graph = None
    if uses_graph(spec):
        arrays = build_graph_arrays(data, multiple=shards)
        graph = sharding.put_graph(arrays, data.n_users, data.n_items, mesh)
    init_key, train_key = jax.random.split(jax.random.key(spec.seed))
    roles = create_roles(spec, data.n_users, data.n_items, init_key, prior=prior_params)
    optimizer = optax.adam(spec.train.learning_rate)
    state = create_train_state(roles.params, optimizer, train_key, frozen=roles.frozen)
    step = make_method_train_step(spec, roles, optimizer, n_users=data.n_users)
    return Setup(
        mesh=mesh,
        batch_size=batch_size,
        roles=roles,
        state=sharding.replicate(state, mesh),
        epoch_fn=make_epoch_fn(step),
        evaluator=create_evaluator(data, spec.eval, roles.score["target"], graph),
        positives=PositiveSet.from_pairs(data.train.users, data.train.items, data.n_items),
        graph=graph,
        negative_probs=negative_distribution(spec, data),
    )


def _check_finite_loss(spec: RunSpec, epoch: int, loss: float, log_prefix: str) -> None:
    """Stop a diverged run before it writes results from NaN parameters."""
    if not math.isfinite(loss):
        raise TrainingError(
            f"{log_prefix}the training loss became {loss} in epoch {epoch}; lower "
            f"--config.train.learning_rate (now {spec.train.learning_rate}) or the loss "
            f"weights (--config.method.c1/c2, now {spec.method.c1}/{spec.method.c2}), or check "
            "the data"
        )


class _checkpoint_policy:  # noqa: N801 (used like a function)
    """`due(epoch)`: every `every` epochs and after the last; `every` = 0 chooses by time, so
    that checkpointing costs at most about a tenth of the run: the next save waits until the
    time since the last one is 9× what that save took."""

    def __init__(self, every: int, last_epoch: int):
        self.every, self.last_epoch = every, last_epoch
        self._save_started = self._saved_at = None

    def __call__(self, epoch: int) -> bool:
        if epoch == self.last_epoch:
            due = True
        elif self.every:
            due = epoch % self.every == 0
        else:
            due = self._saved_at is None or (
                time.perf_counter() - self._saved_at >= 9 * self._save_seconds
            )
        if due:
            self._save_started = time.perf_counter()
        return due

    def saved(self) -> None:
        self._saved_at = time.perf_counter()
        self._save_seconds = self._saved_at - self._save_started


def fit(
    spec: RunSpec,
    data: InteractionData,
    *,
    prior_params: Any = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    log_prefix: str = "",
    checkpoints: RunCheckpoints | None = None,
) -> FitResult:
    """Train `spec` on `data`, validate every epoch and test at the best and the last epoch.

    `prior_params` is the frozen DVAE prior f'. `on_epoch` receives each epoch's record.
    With `checkpoints`, the loop resumes after the last committed epoch and commits every
    `spec.train.checkpoint_every` epochs (and after the last); the resumed run ends with the
    same metrics as an uninterrupted one.
    """
    start = time.perf_counter()
    setup = create_setup(spec, data, prior_params=prior_params)
    state, epoch_fn, evaluator = setup.state, setup.epoch_fn, setup.evaluator

    selection = spec.eval.selection_metric
    best = {"epoch": 0, "value": -np.inf, "params": None, "valid": None}
    epoch_seconds, eval_seconds = [], []
    first_epoch = 1
    if checkpoints is not None and checkpoints.latest_epoch() is not None:
        done, state, best_params, meta = checkpoints.restore(state)
        if meta["data_fingerprint"] != data.fingerprint:
            raise UserInputError(
                "the workdir's checkpoint was made on other data; pass another --workdir"
            )
        best = {
            "epoch": meta["best_epoch"],
            "valid": meta["best_valid"],
            "value": -np.inf if meta["best_value"] is None else meta["best_value"],
            "params": best_params if meta["best_epoch"] else None,
        }
        epoch_seconds, eval_seconds = meta["epoch_seconds"], meta["eval_seconds"]
        first_epoch = done + 1
        _log.info("%sresuming after epoch %d", log_prefix, done)
    checkpoint_due = _checkpoint_policy(spec.train.checkpoint_every, spec.train.num_epochs)
    epochs = range(first_epoch, spec.train.num_epochs + 1)
    bar = None
    if sys.stderr.isatty():  # a progress bar in a terminal; plain lines in logs and batch jobs
        bar = tqdm.tqdm(epochs, desc=f"{log_prefix}epochs", unit="epoch", leave=False)
        epochs = bar
    for epoch in epochs:
        tic = time.perf_counter()
        state, logs = epoch_fn(state, setup.batches(spec, data, epoch), setup.graph)
        logs = {k: float(v) for k, v in jax.device_get(logs).items()}
        epoch_seconds.append(time.perf_counter() - tic)
        _check_finite_loss(spec, epoch, logs["loss"], log_prefix)

        tic = time.perf_counter()
        valid = evaluator.validate(state.params["target"])
        eval_seconds.append(time.perf_counter() - tic)
        extra = {}
        if spec.eval.test_every_epoch:
            extra["test_paper"] = evaluator.test_paper(state.params["target"])
        if valid[selection] is not None and valid[selection] > best["value"]:
            # Copy: the next epoch donates the state's buffers.
            best = {
                "epoch": epoch,
                "value": valid[selection],
                "valid": valid,
                "params": jax.tree.map(lambda x: x.copy(), state.params),
            }
        if bar is not None:
            bar.set_postfix(loss=f"{logs['loss']:.4f}", **{selection: f"{valid[selection]:.4f}"})
        if bar is None:
            _log.info(
                "%sepoch %d/%d loss %.4f | valid %s | %.2fs train %.2fs eval",
                log_prefix,
                epoch,
                spec.train.num_epochs,
                logs["loss"],
                format_metrics(valid),
                epoch_seconds[-1],
                eval_seconds[-1],
            )
        if on_epoch:
            on_epoch(
                {
                    "epoch": epoch,
                    "step": int(state.step),
                    **logs,
                    "valid": valid,
                    **extra,
                    "epoch_seconds": epoch_seconds[-1],
                    "eval_seconds": eval_seconds[-1],
                }
            )
        if checkpoints is not None and checkpoint_due(epoch):
            meta = {
                "best_epoch": best["epoch"],
                "best_valid": best["valid"],
                "best_value": None if best["params"] is None else best["value"],
                "epoch_seconds": epoch_seconds,
                "eval_seconds": eval_seconds,
                "data_fingerprint": data.fingerprint,
            }
            best_params = state.params if best["params"] is None else best["params"]
            checkpoints.save(epoch, state, best_params, meta)
            checkpoint_due.saved()

    if best["params"] is None:  # no validation user: fall back to the last epoch
        best = {
            "epoch": spec.train.num_epochs,
            "params": state.params,
            "valid": evaluator.validate(state.params["target"]),
        }
    results = {
        "best_epoch": best["epoch"],
        "epochs_run": spec.train.num_epochs,
        "test": evaluator.test(best["params"]["target"]),
        "test_last": evaluator.test(state.params["target"]),
        "valid": best["valid"],
        "selection_metric": selection,
        "seed": spec.seed,
        "data_fingerprint": data.fingerprint,
        "timing": {
            "epoch_seconds_median": statistics.median(epoch_seconds),
            "eval_seconds": statistics.median(eval_seconds),
            "total_seconds": time.perf_counter() - start,
        },
    }
    return FitResult(results=results, setup=setup, best_params=best["params"], state=state)


def train_and_evaluate(config: Any, workdir: str | None) -> dict[str, Any]:
    """Train and evaluate the run that `config` (ConfigDict or nested dict) describes.

    Writes config.json, run_info.json, metrics.jsonl, results.json, results.md and, for
    DPI/DVAE, the interpretation files into `workdir` (nothing is written when it is None)
    and returns the results dict.

    Raises:
      UserInputError: a bad config value, data file or workdir; nothing is written then.
    """
    spec = run_spec_from_config(config)
    config_dict = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    return run(spec, workdir, config_dict)


def run(
    spec: RunSpec, workdir: str | None, config_dict: dict[str, Any] | None = None
) -> dict[str, Any]:
    """`train_and_evaluate` for an already unpacked `RunSpec`."""
    start = time.perf_counter()
    checkpoints = resume_epoch = None
    if workdir is not None:
        metrics_io.check_workdir(workdir)
        if metrics_io.has_checkpoints(workdir):
            metrics_io.check_same_config(workdir, config_dict or {})
            checkpoints = RunCheckpoints(workdir)
            checkpoints.verify_latest()  # before any file of the run directory is touched
            resume_epoch = checkpoints.latest_epoch()
        else:
            metrics_io.check_no_finished_run(workdir)
    data = load_dataset(spec.data)
    check_spec_against_data(spec, data)
    _log.info("data %s: %s (fingerprint %s)", spec.data.name, data.summary(), data.fingerprint)
    prior_params = None
    if spec.method.name == "dvae":
        prior_params = prior.pretrained_prior(spec, data, fit_fn=fit)

    writer = None
    if workdir is not None:
        checkpoints = checkpoints or RunCheckpoints(workdir)
        writer = metrics_io.RunWriter(workdir, resume_epoch=resume_epoch)
        run_info = {
            "seed": spec.seed,
            "data_fingerprint": data.fingerprint,
            "data_summary": data.summary(),
            "versions": versions(),
            "devices": [str(d) for d in jax.local_devices()],
        }
        writer.write_config(config_dict or {}, run_info)
    try:
        fitted = fit(
            spec,
            data,
            prior_params=prior_params,
            on_epoch=writer.log_epoch if writer else None,
            checkpoints=checkpoints,
        )
    finally:
        if checkpoints is not None:
            checkpoints.close()
    results = fitted.results
    if spec.method.is_denoising:
        table = interpretation.real_positive_table(
            spec.method.name, fitted.setup.roles, fitted.best_params, data, fitted.setup.graph
        )
        results["interpretation"] = interpretation.summarize_table(table)
        if writer:
            interpretation.write_table(table, writer.path)
    results["timing"]["total_seconds"] = time.perf_counter() - start
    test = results["test"]
    _log.info(
        "test at best epoch %d: paper %s | warm %s | popularity %s",
        results["best_epoch"],
        format_metrics(test["paper"]),
        format_metrics(test["warm"]),
        format_metrics(test["popularity_paper"]),
    )
    if writer:
        writer.write_results(results, metrics_io.results_table(results, spec.eval.ks))
        _log.info(
            "results: %s (table: %s)",
            writer.path / metrics_io.RESULTS_FILE,
            writer.path / metrics_io.RESULTS_TABLE_FILE,
        )
    return results
