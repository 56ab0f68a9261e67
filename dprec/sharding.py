"""The only module that knows about devices: mesh, shardings, and placing arrays on devices.

One code path serves one CPU, several GPUs or a TPU slice: a one-axis mesh over all local
devices; training batches are split along the batch axis and parameters are replicated, so
`jax.jit` inserts the gradient all-reduce. With `shard_tables` (`state_placement`), the user and
item embedding tables (and their Adam moments) are split by rows over the same axis instead,
so each device holds 1/n of them; GSPMD (plain `jax.jit` on the sharded inputs) inserts the
gathers and scatters of batch rows and the evaluation's collectives.

Several processes (one per host, or one per GPU under SLURM) join through
`initialize_distributed` before any JAX computation; the mesh then spans every process's
devices, `put` builds global arrays from each process's copy (transferring only its own
devices' slices), `to_host` gathers them back, and only the main process (`is_main_process`)
writes the run directory.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"


def initialize_distributed(
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    auto: bool = False,
) -> bool:
    """Join a multi-process JAX run; must come before any JAX computation. True if it did.

    `auto`: `jax.distributed.initialize()` with no arguments, so JAX detects the coordinator,
    the process count and this process's id (SLURM, TPU VM slices, Open MPI). Otherwise the
    explicit values are passed; a single process (`num_processes` None or 1) does nothing.
    The values are checked by the caller (`dprec.main` validates its flags).
    """
    if auto:
        jax.distributed.initialize()
        return True
    if num_processes is None or num_processes == 1:
        return False
    jax.distributed.initialize(
        coordinator_address=coordinator, num_processes=num_processes, process_id=process_id
    )
    return True


def is_main_process() -> bool:
    """Process 0 of a multi-process run, or the only process: the one that writes files."""
    return jax.process_index() == 0


def process_count() -> int:
    return jax.process_count()


def local_device_names() -> list[str]:
    """This process's devices, e.g. ['TFRT_CPU_0', ...], for run_info.json."""
    return [str(d) for d in jax.local_devices()]


def create_mesh(num_devices: int | None = None) -> Mesh:
    """A one-axis mesh named `data` over the first `num_devices` devices (all if None).

    One process: its local devices. Several processes: the global devices of all of them
    (`jax.devices()`), so every process builds the same mesh.
    """
    devices = jax.devices() if jax.process_count() > 1 else jax.local_devices()
    count = len(devices) if num_devices is None else num_devices
    return Mesh(np.asarray(devices[:count]), (DATA_AXIS,))


def num_shards(mesh: Mesh) -> int:
    return int(mesh.devices.size)


def put(tree: Any, shardings: Any) -> Any:
    """Place every array of `tree` (host or one-device arrays, equal in every process) with
    `shardings` (one sharding, or a pytree of them like `tree`).

    One process: `jax.device_put`. Several: `device_put` cannot target other processes'
    devices, so each process builds its part of every global array from its own copy
    (`jax.make_array_from_callback`): it transfers only the slices its devices hold, e.g. its
    share of every batch. PRNG keys travel as their key data.
    """
    if jax.process_count() == 1:
        return jax.device_put(tree, shardings)
    if isinstance(shardings, jax.sharding.Sharding):
        shardings = jax.tree.map(lambda _: shardings, tree)
    return jax.tree.map(_put_global, tree, shardings)


def _put_global(leaf: Any, sharding: jax.sharding.Sharding) -> jax.Array:
    if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        data = _put_global(jax.random.key_data(leaf), sharding)
        return jax.random.wrap_key_data(data, impl=jax.random.key_impl(leaf))
    host = np.asarray(leaf)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def to_host(tree: Any) -> Any:
    """NumPy copies of every array of `tree`, whole, in every process (in a multi-process run
    a row-sharded table is gathered from all processes first)."""
    if jax.process_count() == 1:
        return jax.device_get(tree)
    return multihost_utils.process_allgather(tree, tiled=True)


def wait_for_all_processes(name: str) -> None:
    """Block until every process of the run reaches the point `name` (nothing with one)."""
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(name)


def in_every_process(flag: bool) -> bool:
    """`flag` is true in every process of the run (just `flag` with one process)."""
    if jax.process_count() == 1:
        return flag
    return bool(np.all(multihost_utils.process_allgather(np.asarray(flag))))


def replicated(mesh: Mesh) -> NamedSharding:
    """Every device holds the whole array."""
    return NamedSharding(mesh, PartitionSpec())


def map_row_slices(fn: Callable[..., Any], mesh: Mesh, *arrays: jax.Array) -> Any:
    """Inside jit: `fn` on each device's slice of the leading axis of every array (slice s of
    `[S × R, ...]` is rows s·R … (s+1)·R − 1), results concatenated along that axis.

    For evaluation: a chunk's scores `[C, n_items]` are laid out so each device computes and
    holds its C / n users' rows, and masks and ranks them without any collective.
    """
    rows = PartitionSpec(DATA_AXIS)
    arrays = [jax.lax.with_sharding_constraint(x, NamedSharding(mesh, rows)) for x in arrays]
    return jax.shard_map(fn, mesh=mesh, in_specs=rows, out_specs=rows)(*arrays)


def row_sharded(mesh: Mesh) -> NamedSharding:
    """Rows of a 2-D table split over the mesh axis, columns whole."""
    return NamedSharding(mesh, PartitionSpec(DATA_AXIS, None))


def is_row_table(leaf: Any, n_users: int, n_items: int, shards: int) -> bool:
    """A 2-D array with `n_users` or `n_items` rows, divisible by `shards`.

    A table whose row count does not divide evenly stays replicated: padding rows would change
    the models' shapes (and so checkpoints and the evaluation's item axis) for one placement.
    """
    shape = getattr(leaf, "shape", ())
    return len(shape) == 2 and shape[0] in (n_users, n_items) and shape[0] % shards == 0


def state_placement(
    state: Any, mesh: Mesh, *, shard_tables: bool, n_users: int, n_items: int
) -> Any:
    """The shardings of a `TrainState` (arrays or shapes) on `mesh`, a pytree like it:
    everything replicated, or with `shard_tables` every user/item table of params, optimizer
    states and frozen params split by rows (`row_sharded`); step, rng, biases, MLP weights
    and `method_state` stay replicated.

    A checkpoint restored into a state placed so (`checkpoint.RunCheckpoints.restore` takes
    the target's shardings) comes back placed the same way.
    """
    if not shard_tables:
        return jax.tree.map(lambda _: replicated(mesh), state)
    return state_shardings(state, mesh, n_users=n_users, n_items=n_items)


def state_shardings(state: Any, mesh: Mesh, *, n_users: int, n_items: int) -> Any:
    """The row-sharded placement of `state_placement`, as a pytree of shardings like `state`."""
    everywhere, rows = replicated(mesh), row_sharded(mesh)
    shards = num_shards(mesh)

    def tables(tree):
        return jax.tree.map(
            lambda x: rows if is_row_table(x, n_users, n_items, shards) else everywhere, tree
        )

    everything = jax.tree.map(lambda x: everywhere, state)
    return everything.replace(
        params=tables(state.params),
        opt_state=tables(state.opt_state),
        frozen=tables(state.frozen),
    )


def shardings_of(tree: Any) -> Any:
    """The sharding of every array of `tree` (e.g. to pin a jitted function's outputs)."""
    return jax.tree.map(lambda x: x.sharding, tree)


def shard_epoch(arrays: Any, mesh: Mesh) -> Any:
    """Put epoch arrays `[n_batches, B, ...]` on `mesh`, split along the batch axis B."""
    return put(arrays, NamedSharding(mesh, PartitionSpec(None, DATA_AXIS)))


def sum_over_edge_shards(fn: Callable[..., Any], mesh: Mesh | None, edges: tuple, dense: tuple):
    """`fn(*edges, *dense)` summed over edges split across `mesh`.

    Each device applies `fn` to its slice of the edge arrays `[E]` and the replicated dense
    arrays, and a `psum` adds the partial results. With no mesh (one device) `fn` runs once.
    """
    if mesh is None:
        return fn(*edges, *dense)

    def local(*args):
        return jax.lax.psum(fn(*args), DATA_AXIS)

    specs = (PartitionSpec(DATA_AXIS),) * len(edges) + (PartitionSpec(),) * len(dense)
    return jax.shard_map(local, mesh=mesh, in_specs=specs, out_specs=PartitionSpec())(
        *edges, *dense
    )
