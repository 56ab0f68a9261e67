"""The only module that knows about devices: mesh, shardings, and placing arrays on devices.

One code path serves one CPU, several GPUs or a TPU slice: a one-axis mesh over all local
devices; training batches are split along the batch axis and parameters are replicated, so
`jax.jit` inserts the gradient all-reduce.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"


def create_mesh(num_devices: int | None = None) -> Mesh:
    """A one-axis mesh named `data` over the first `num_devices` local devices (all if None)."""
    devices = jax.local_devices()
    count = len(devices) if num_devices is None else num_devices
    return Mesh(np.asarray(devices[:count]), (DATA_AXIS,))


def num_shards(mesh: Mesh) -> int:
    return int(mesh.devices.size)


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Put every array of `tree` on all devices of `mesh`."""
    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec()))


def shard_epoch(arrays: Any, mesh: Mesh) -> Any:
    """Put epoch arrays `[n_batches, B, ...]` on `mesh`, split along the batch axis B."""
    return jax.device_put(arrays, NamedSharding(mesh, PartitionSpec(None, DATA_AXIS)))


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
