"""`train_and_evaluate`: the only training loop (data → state → epochs → evaluation → files)."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import math
import platform
import signal
import statistics
import sys
import time
from collections.abc import Callable
from importlib import metadata
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import tqdm

from dprec import sharding
from dprec.config.run_config import run_spec_from_config
from dprec.data.batches import epoch_batches, padded_batch_size
from dprec.data.dataset import InteractionData, check_ks_against_data
from dprec.data.registry import load_dataset
from dprec.data.sampling import PositiveSet
from dprec.errors import TrainingError, UserInputError
from dprec.evaluation import health, noise_scores, valid_loss
from dprec.evaluation.views import Evaluator, create_evaluator, validation_set
from dprec.graph.adjacency import Graph, build_graph_arrays, put_graph
from dprec.methods import get_method
from dprec.methods.base import Method
from dprec.methods.roles import Roles
from dprec.models import l2_row_tables
from dprec.references import rows as reference_rows
from dprec.references.names import versus_references
from dprec.runs import rundir
from dprec.runs.checkpoint import CheckpointMeta, RunCheckpoints
from dprec.runs.lock import WorkdirBusy, workdir_lock
from dprec.runs.stop import RunStopped, StopRequest, stop_on_signals
from dprec.specs import RunSpec
from dprec.state import TrainState, create_train_state
from dprec.steps import make_epoch_fn

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


def format_metrics(values: dict[str, Any]) -> str:
    """'recall@5 0.1234 ndcg@5 ...' for a progress line."""
    return " ".join(f"{k} {v:.4f}" for k, v in values.items() if k != "users" and v is not None)


@dataclasses.dataclass
class Setup:
    """Everything the epoch loop needs, built once per run (see `create_setup`)."""

    spec: RunSpec
    data: InteractionData
    method: Method
    mesh: Any
    batch_size: int  # padded to a multiple of the device count
    roles: Roles
    initial_state: TrainState
    epoch_fn: Callable[..., Any]
    evaluator: Evaluator
    positives: PositiveSet
    graph: Graph | None  # the training adjacency on the mesh, for graph models
    negative_probs: np.ndarray | None  # item distribution of sampled negatives (None: uniform)
    # The validation losses (`evaluation.valid_loss`): the fixed pairs on the mesh (None: no
    # validation positive) and the jitted `(params, graph, task) -> (loss, trimmed_loss)`.
    valid_loss_task: valid_loss.ValidationLossTask | None = None
    valid_loss_fn: Callable[..., Any] | None = None

    def host_batches(self, epoch: int) -> dict[str, np.ndarray]:
        """Epoch `epoch`'s batches as host arrays `[n_batches, B, ...]`."""
        return epoch_batches(
            self.data,
            self.positives,
            seed=self.spec.seed,
            epoch=epoch,
            batch_size=self.batch_size,
            num_negatives=self.spec.train.num_negatives,
            item_probs=self.negative_probs,
            with_touched_rows=self.method.needs_touched_rows(self.spec),
            with_touched_items=self.method.needs_touched_items(self.spec),
            multiple=sharding.num_shards(self.mesh),
        )

    def batches(self, epoch: int) -> dict[str, Any]:
        """Epoch `epoch`'s batches, sampled on the host and placed on the mesh."""
        return sharding.shard_epoch(self.host_batches(epoch), self.mesh)

    def validation_losses(self, target_params: Any) -> dict[str, float | None]:
        """{"valid_loss", "valid_trimmed_loss"} of the target (both None without a validation
        positive)."""
        if self.valid_loss_task is None or self.valid_loss_fn is None:
            return {"valid_loss": None, "valid_trimmed_loss": None}
        loss, trimmed = self.valid_loss_fn(target_params, self.graph, self.valid_loss_task)
        return {"valid_loss": float(loss), "valid_trimmed_loss": float(trimmed)}


def create_setup(
    spec: RunSpec,
    data: InteractionData,
    *,
    frozen_params: dict[str, Any] | None = None,
    mesh: Any = None,
) -> Setup:
    """Mesh, roles, initial state, graph, the jitted epoch function and the evaluator.

    `frozen_params`: the method's frozen roles (DVAE's pretrained prior); None gives them
    shape-only placeholders (to restore a checkpoint into, or for timing). `mesh`: default
    all devices (`sharding.create_mesh`).
    """
    method = get_method(spec.method.name)
    mesh = sharding.create_mesh() if mesh is None else mesh
    shards = sharding.num_shards(mesh)
    batch_size = padded_batch_size(spec.train.batch_size, shards)
    graph = None
    if method.uses_graph(spec):
        train = data.train
        # Batch-encoded models (CDAE, LightGCN) read the rows of at most a batch's distinct users.
        row_users = batch_size if method.batch_encoded(spec) else 0
        arrays = build_graph_arrays(
            train.users,
            train.items,
            data.n_users,
            data.n_items,
            shards,
            item_graph=spec.model.name == "lightgcn",  # item-side propagation
            row_users=row_users,
        )
        graph = put_graph(arrays, data.n_users, data.n_items, mesh)
    init_key, train_key = jax.random.split(jax.random.key(spec.seed))
    roles = method.create_roles(spec, data.n_users, data.n_items, init_key, frozen_params)
    optimizer = optax.adam(spec.train.learning_rate)
    step = method.make_train_step(spec, roles, optimizer, n_users=data.n_users)
    state = _initial_state(spec, data, method, roles, optimizer, train_key, mesh)
    # The roles' host copies of the initial parameters would double the tables' memory.
    roles = dataclasses.replace(roles, params=state.params, frozen=state.frozen)
    end_epoch = method.make_end_epoch(spec, data)
    loss_task = valid_loss.make_validation_loss_task(
        data,
        spec.eval.valid_set,
        spec.train.num_negatives,
        spec.seed,
        chunk=max(1, valid_loss.PAIRS_PER_CHUNK // (1 + spec.train.num_negatives)),
        trim_rate=spec.eval.trim_rate,
    )
    return Setup(
        spec=spec,
        data=data,
        method=method,
        mesh=mesh,
        batch_size=batch_size,
        roles=roles,
        initial_state=state,
        epoch_fn=make_epoch_fn(step, end_epoch, state_shardings=sharding.shardings_of(state)),
        evaluator=create_evaluator(
            data,
            spec.eval,
            roles.score["target"],
            graph,
            mesh,
            model_free_fn=functools.partial(
                reference_rows.model_free_rows, data, spec.eval, validation_set(data, spec.eval)
            ),
        ),
        positives=PositiveSet.from_pairs(data.train.users, data.train.items, data.n_items),
        graph=graph,
        negative_probs=method.negative_probs(spec, data),
        valid_loss_task=(
            None if loss_task is None else sharding.put(loss_task, sharding.replicated(mesh))
        ),
        valid_loss_fn=valid_loss.make_validation_loss_fn(roles.score["target"], mesh),
    )


def _initial_state(
    spec: RunSpec,
    data: InteractionData,
    method: Method,
    roles: Roles,
    optimizer: optax.GradientTransformation,
    rng: jax.Array,
    mesh: Any,
) -> TrainState:
    """Step 0 placed on `mesh` (`sharding.state_placement`): the parameters are put there
    first and the optimizer state is then made in place, by a jitted init with the target
    shardings, so no device holds a whole row-sharded table's moments even briefly."""

    def make(params, frozen, key, method_state):
        return create_train_state(params, optimizer, key, frozen=frozen, method_state=method_state)

    inputs = (roles.params, roles.frozen, rng, method.init_method_state(spec, data))
    placement = sharding.state_placement(
        jax.eval_shape(make, *inputs),
        mesh,
        shard_tables=spec.train.shard_tables,
        n_users=data.n_users,
        n_items=data.n_items,
    )
    placed = sharding.put(
        inputs, (placement.params, placement.frozen, placement.rng, placement.method_state)
    )
    return jax.jit(make, out_shardings=placement, donate_argnums=(0, 1, 3))(*placed)


@dataclasses.dataclass
class Best:
    """The best validation epoch so far; `params` None until an epoch was validated. `value`
    is the epoch's selected value (`eval.selection`): its validation metric or loss."""

    epoch: int = 0
    value: float = -np.inf
    valid: dict[str, Any] | None = None
    params: dict[str, Any] | None = None


def selected_value(
    spec: RunSpec, valid: dict[str, Any], losses: dict[str, float | None]
) -> float | None:
    """An epoch's value under `spec.eval.selection`: the validation metric (`metric`), or
    `losses["valid_loss"]` / `losses["valid_trimmed_loss"]`; None where it is unknown."""
    rule = spec.eval.selection
    return valid[spec.eval.selection_metric] if rule == "metric" else losses.get(f"valid_{rule}")


def improves(selection: str, value: float | None, best: Best) -> bool:
    """Whether an epoch with selected `value` becomes the best: the first finite value, then
    a higher metric (`metric`) or a lower loss (`loss`, `trimmed_loss`); ties keep the earlier
    epoch, and a missing or non-finite value never wins."""
    if value is None or not math.isfinite(value):
        return False
    if best.params is None:
        return True
    return value > best.value if selection == "metric" else value < best.value


@dataclasses.dataclass
class _Progress:
    """What the loop carries from epoch to epoch (and through a checkpoint)."""

    state: TrainState
    best: Best
    epoch_seconds: list[float]
    eval_seconds: list[float]
    first_epoch: int = 1
    history: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # the guard's
    stopped: health.Health | None = None  # a collapse that stopped the run (stop_on_collapse)


@dataclasses.dataclass
class FitResult:
    """What `fit` returns: the results dict, the setup, and the parameters to keep."""

    results: dict[str, Any]
    setup: Setup
    best_params: dict[str, Any]  # every trained role's params at the best validation epoch
    state: TrainState  # the state after the last epoch


def _resume(setup: Setup, checkpoints: RunCheckpoints | None, log_prefix: str) -> _Progress:
    """The progress after the last committed checkpoint, or a fresh start."""
    initial_size = _target_size(setup.spec, setup.initial_state.params["target"])
    fresh = _Progress(
        state=setup.initial_state,
        best=Best(),
        epoch_seconds=[],
        eval_seconds=[],
        history=[{"epoch": 0, "target_rms": initial_size}],  # the guard's baseline
    )
    if checkpoints is None or checkpoints.latest_epoch() is None:
        return fresh
    done, state, best_params, meta = checkpoints.restore(setup.initial_state)
    if meta.data_fingerprint != setup.data.fingerprint:
        raise UserInputError(
            "the workdir's checkpoint was made on other data; pass another --workdir"
        )
    _log.info("%sresuming after epoch %d", log_prefix, done)
    best = Best(
        epoch=meta.best_epoch,
        value=-np.inf if meta.best_value is None else meta.best_value,
        valid=meta.best_valid,
        params=best_params if meta.best_epoch else None,
    )
    return _Progress(
        state,
        best,
        meta.epoch_seconds,
        meta.eval_seconds,
        first_epoch=done + 1,
        history=meta.history,
    )


def _save(checkpoints: RunCheckpoints, epoch: int, progress: _Progress, fingerprint: str):
    best = progress.best
    meta = CheckpointMeta(
        best_epoch=best.epoch,
        best_valid=best.valid,
        best_value=None if best.params is None else best.value,
        epoch_seconds=progress.epoch_seconds,
        eval_seconds=progress.eval_seconds,
        data_fingerprint=fingerprint,
        history=progress.history,
    )
    best_params = progress.state.params if best.params is None else best.params
    checkpoints.save(epoch, progress.state, best_params, meta)


def _report_epoch(bar, spec: RunSpec, log_prefix: str, record: dict[str, Any]) -> None:
    """The epoch's progress-bar postfix in a terminal, else one log line."""
    selection, valid = spec.eval.selection_metric, record["valid"]
    if spec.eval.selection != "metric":  # the loss that picks the epoch
        selection = f"valid_{spec.eval.selection}"
        valid = {**valid, selection: record.get(selection)}
    if bar is not None:
        shown = "–" if valid[selection] is None else f"{valid[selection]:.4f}"
        bar.set_postfix(loss=f"{record['loss']:.4f}", **{selection: shown})
        return
    losses = {k: record[k] for k in ("valid_loss", "valid_trimmed_loss") if k in record}
    _log.info(
        "%sepoch %d/%d loss %.4f | valid %s | %.2fs train %.2fs eval",
        log_prefix,
        record["epoch"],
        spec.train.num_epochs,
        record["loss"],
        format_metrics({**record["valid"], **losses}),
        record["epoch_seconds"],
        record["eval_seconds"],
    )


def _check_finite_loss(spec: RunSpec, epoch: int, loss: float) -> None:
    """Stop a diverged run before it writes results from NaN parameters."""
    if not math.isfinite(loss):
        raise TrainingError(
            f"the training loss became {loss} in epoch {epoch}; lower "
            f"--config.train.learning_rate (now {spec.train.learning_rate}) or the loss "
            f"weights (--config.method.c1/c2, now {spec.method.c1}/{spec.method.c2}), or check "
            "the data"
        )


class _checkpoint_policy:  # noqa: N801 (used like a function)
    """`due(epoch)`: every `every` epochs, after the last and when forced (a stop); `every` = 0
    chooses by time, so that checkpointing costs at most about a tenth of the run: the next
    save waits until the time since the last one is 9× what that save took."""

    def __init__(self, every: int, last_epoch: int):
        self.every, self.last_epoch = every, last_epoch
        self._save_started = self._saved_at = None

    def __call__(self, epoch: int, *, force: bool = False) -> bool:
        if force or epoch == self.last_epoch:
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


@jax.jit
def _root_mean_square(params: Any) -> jax.Array:
    """The root mean square of every entry of `params`."""
    leaves = jax.tree.leaves(params)
    return jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in leaves) / sum(x.size for x in leaves))


def _target_size(spec: RunSpec, params: Any) -> float:
    """The size the collapse guard follows: the root mean square of the target's user and item
    tables (`models.l2_row_tables`; what an L2 term that outweighs the data shrinks to zero),
    or of all its parameters for a model without them."""
    tables = l2_row_tables(spec.model.name)
    rows = {attr: params[attr] for attr in tables if attr in params} or params
    return float(_root_mean_square(rows))


def _health(spec: RunSpec, history: list[dict[str, Any]], stop: bool = False):
    judge = health.stop_now if stop else health.check
    return judge(
        history,
        spec.eval.selection_metric,
        l2=spec.train.l2,
        learning_rate=spec.train.learning_rate,
    )


def _run_epoch(setup: Setup, progress: _Progress, epoch: int) -> dict[str, Any]:
    """Train and validate one epoch; updates `progress` and returns the epoch's record."""
    spec, evaluator = setup.spec, setup.evaluator
    tic = time.perf_counter()
    progress.state, logs = setup.epoch_fn(progress.state, setup.batches(epoch), setup.graph)
    logs = {k: float(v) for k, v in jax.device_get(logs).items()}
    progress.epoch_seconds.append(time.perf_counter() - tic)
    _check_finite_loss(spec, epoch, logs["loss"])
    tic = time.perf_counter()
    valid = evaluator.validate(progress.state.params["target"])
    # Every epoch, whatever `eval.selection`: ~2 % of a Modcloth GMF epoch (one jitted pass
    # over the validation pairs), so every run logs them.
    losses = setup.validation_losses(progress.state.params["target"])
    progress.eval_seconds.append(time.perf_counter() - tic)
    extra = {}
    if spec.eval.test_every_epoch:
        extra["test_paper"] = evaluator.test_paper(progress.state.params["target"])
    metric = valid[spec.eval.selection_metric]
    value = selected_value(spec, valid, losses)
    target_rms = _target_size(spec, progress.state.params["target"])
    progress.history.append(
        {
            "epoch": epoch,
            "loss": logs["loss"],
            "target_rms": target_rms,
            "valid": {spec.eval.selection_metric: metric},  # the collapse guard reads it
            **losses,  # so results.json has the best epoch's losses after a resume too
        }
    )
    if improves(spec.eval.selection, value, progress.best):
        # Copy: the next epoch donates the state's buffers.
        params = jax.tree.map(lambda x: x.copy(), progress.state.params)
        progress.best = Best(epoch=epoch, value=value, valid=valid, params=params)
    return {
        "epoch": epoch,
        "step": int(progress.state.step),
        **logs,
        "valid": valid,
        **losses,
        **extra,
        "target_rms": target_rms,
        "epoch_seconds": progress.epoch_seconds[-1],
        "eval_seconds": progress.eval_seconds[-1],
    }


def _results(setup: Setup, progress: _Progress, start: float) -> tuple[dict[str, Any], Best]:
    """The results dict (test at the best and the last epoch) and the final best epoch."""
    spec, data, evaluator, state = setup.spec, setup.data, setup.evaluator, progress.state
    best = progress.best
    if best.params is None:  # no validation user: fall back to the last epoch
        valid = evaluator.validate(state.params["target"])
        best = Best(epoch=spec.train.num_epochs, valid=valid, params=state.params)
    verdict = _health(spec, progress.history)
    at_best = next((h for h in progress.history if h["epoch"] == best.epoch), {})
    results = {
        "best_epoch": best.epoch,
        "epochs_run": progress.history[-1]["epoch"] if progress.history else spec.train.num_epochs,
        "test": evaluator.test(best.params["target"]),
        "test_last": evaluator.test(state.params["target"]),
        "valid": best.valid,
        "selection_metric": spec.eval.selection_metric,
        "selection": spec.eval.selection,
        # The best epoch's value under `selection` (None: no epoch had one, the last is kept).
        "selected_value": None if progress.best.params is None else best.value,
        "valid_loss": at_best.get("valid_loss"),
        "valid_trimmed_loss": at_best.get("valid_trimmed_loss"),
        "health": verdict.to_dict(),
        "seed": spec.seed,
        "data_fingerprint": data.fingerprint,
        "timing": {
            "epoch_seconds_median": statistics.median(progress.epoch_seconds),
            "eval_seconds": statistics.median(progress.eval_seconds),
            "total_seconds": time.perf_counter() - start,
        },
    }
    return results, best


def fit(
    spec: RunSpec,
    data: InteractionData,
    *,
    frozen_params: dict[str, Any] | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    log_prefix: str = "",
    checkpoints: RunCheckpoints | None = None,
    mesh: Any = None,
    stop: StopRequest | None = None,
) -> FitResult:
    """Train `spec` on `data`, validate every epoch and test at the best and the last epoch.

    `frozen_params` are the method's frozen roles (DVAE's prior f'). `on_epoch` receives each
    epoch's record. With `checkpoints`, the loop resumes after the last committed epoch and
    commits by `spec.train.checkpoint_every` (and after the last); the resumed run
    ends with the same metrics as an uninterrupted one. `mesh`: default all local devices.

    Raises:
      RunStopped: `stop` was requested (a signal); the epoch it ended was checkpointed.
    """
    start = time.perf_counter()
    setup = create_setup(spec, data, frozen_params=frozen_params, mesh=mesh)
    progress = _resume(setup, checkpoints, log_prefix)
    checkpoint_due = _checkpoint_policy(spec.train.checkpoint_every, spec.train.num_epochs)
    epochs = range(progress.first_epoch, spec.train.num_epochs + 1)
    bar = None
    if sys.stderr.isatty():  # a progress bar in a terminal; plain lines in logs and batch jobs
        bar = tqdm.tqdm(epochs, desc=f"{log_prefix}epochs", unit="epoch", leave=False)
        epochs = bar
    for epoch in epochs:
        record = _run_epoch(setup, progress, epoch)
        _report_epoch(bar, spec, log_prefix, record)
        if on_epoch:
            on_epoch(record)
        stopping = stop is not None and stop.requested()
        if spec.train.stop_on_collapse:
            progress.stopped = _health(spec, progress.history, stop=True)
        if checkpoints is not None and checkpoint_due(epoch, force=stopping or progress.stopped):
            _save(checkpoints, epoch, progress, data.fingerprint)
            checkpoint_due.saved()
        if stopping:
            raise RunStopped(stop.signum or signal.SIGTERM, epoch)
        if progress.stopped is not None:
            _log.warning("%sstopping: %s", log_prefix, progress.stopped.line())
            break
    results, best = _results(setup, progress, start)
    return FitResult(results=results, setup=setup, best_params=best.params, state=progress.state)


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
    return run_spec(spec, workdir, config_dict)


def _open_writer(
    workdir: str, spec: RunSpec, data: InteractionData, config_dict: dict[str, Any], resume
) -> rundir.RunWriter:
    writer = rundir.RunWriter(workdir, resume_epoch=resume)
    run_info = {
        "seed": spec.seed,
        "data_fingerprint": data.fingerprint,
        "data_summary": data.summary(),
        "versions": versions(),
        "devices": sharding.local_device_names(),
        "processes": sharding.process_count(),
    }
    writer.write_config(config_dict, run_info)
    return writer


def run_spec(
    spec: RunSpec, workdir: str | None, config_dict: dict[str, Any] | None = None
) -> dict[str, Any]:
    """`train_and_evaluate` for an already unpacked `RunSpec`.

    With a workdir the run holds its lock (`runs.lock`: a second run there is refused) and
    stops cleanly on SIGTERM/SIGINT (`runs.stop`: checkpoint, then `RunStopped`).
    """
    if workdir is None:
        return _run(spec, None, config_dict or {}, None)
    rundir.check_workdir(workdir)
    with contextlib.ExitStack() as stack:
        # Process 0 holds the lock for the run (the others may share its filesystem); all
        # processes learn whether it got it, so none waits for a run that never starts.
        busy = None
        if sharding.is_main_process():
            try:
                stack.enter_context(workdir_lock(workdir))
            except WorkdirBusy as err:
                busy = err
        if not sharding.in_every_process(busy is None):
            raise busy or WorkdirBusy(f"{workdir} is in use by another run; pass another --workdir")
        stop = stack.enter_context(stop_on_signals())
        return _run(spec, workdir, config_dict or {}, stop)


def _run(
    spec: RunSpec, workdir: str | None, config_dict: dict[str, Any], stop: StopRequest | None
) -> dict[str, Any]:
    start = time.perf_counter()
    resuming = workdir is not None and rundir.has_checkpoints(workdir)
    if resuming:
        rundir.check_same_config(workdir, config_dict)
    elif workdir is not None:
        rundir.check_no_finished_run(workdir)
    method = get_method(spec.method.name)
    data = load_dataset(spec.data)
    check_spec_against_data(spec, data)
    checkpoints = resume = None
    if resuming:
        # Before any file of the run directory is touched: the data, then the checkpoint.
        rundir.check_same_data(workdir, data.fingerprint, data.summary())
        checkpoints = RunCheckpoints(workdir)
        checkpoints.verify_latest()
        resume = checkpoints.latest_epoch()
    _log.info("data %s: %s (fingerprint %s)", spec.data.name, data.summary(), data.fingerprint)
    if workdir is not None:
        # No process may write (process 0 starts with config.json) before all have checked.
        sharding.wait_for_all_processes("dprec: workdir checked")
    frozen_params = method.pretrain_frozen(spec, data, fit_fn=fit)
    if workdir is not None and checkpoints is None:
        checkpoints = RunCheckpoints(workdir)
    writer = None
    try:
        if workdir is not None and sharding.is_main_process():  # one writer per run
            writer = _open_writer(workdir, spec, data, config_dict, resume)
        fitted = fit(
            spec,
            data,
            frozen_params=frozen_params,
            on_epoch=writer.log_epoch if writer else None,
            checkpoints=checkpoints,
            stop=stop,
        )
        results = _finish(spec, method, data, fitted, writer, start)
    finally:
        if checkpoints is not None:
            checkpoints.close()
        if writer is not None:
            writer.close()
    return results


def _finish(
    spec: RunSpec,
    method: Method,
    data: InteractionData,
    fitted: FitResult,
    writer: rundir.RunWriter | None,
    start: float,
) -> dict[str, Any]:
    """The noise scores, the last log lines and the result files of a fitted run."""
    results = fitted.results
    # With planted truth every method's score is checked: σ(f) for the plain ones is the
    # trivial baseline a denoiser's score must beat.
    if method.is_denoising or data.train.truth is not None:
        setup = fitted.setup
        table = noise_scores.real_positive_table(
            spec,
            method,
            setup.roles,
            fitted.best_params,
            data,
            setup.graph,
            fitted.state.method_state,
        )
        results["interpretation"] = noise_scores.summarize_table(table)
        if writer:
            noise_scores.write_table(table, writer.path)
    results["reference_settings"] = fitted.setup.evaluator.reference_settings
    results["timing"]["total_seconds"] = time.perf_counter() - start
    test = results["test"]
    _log.info(
        "test at best epoch %d: paper %s | warm %s | popularity %s",
        results["best_epoch"],
        format_metrics(test["paper"]),
        format_metrics(test["warm"]),
        format_metrics(test["popularity_paper"]),
    )
    _log.info("%s", versus_references(test, f"recall@{max(spec.eval.ks)}"))
    verdict = health.Health.from_dict(results["health"])
    if verdict.collapsed:
        _log.warning("%s", verdict.line())
    if writer:
        writer.write_results(results, rundir.results_table(results, spec.eval.ks))
        _log.info(
            "results: %s (table: %s)",
            writer.path / rundir.RESULTS_FILE,
            writer.path / rundir.RESULTS_TABLE_FILE,
        )
    return results
