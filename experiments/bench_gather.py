"""Row-sharded tables: GSPMD (`jax.jit` on sharded inputs, what dprec does) against an explicit
`jax.shard_map`, for the two table ops of a lazy-mode step: gathering a batch's rows and the
lazy row-wise Adam update of the touched rows.

    python experiments/bench_gather.py [--rows 1000000] [--dim 32] [--batch 2048]
                                      [--repeats 15] [--calls 20] [--zipf 0.8]
                                      [--meshes 4,1] [--indices sharded,replicated]

Simulates 4 CPU devices (`--xla_force_host_platform_device_count=4`, set before JAX starts).
A table `[N, D]` and its Adam moments mu, nu are split by rows over a one-axis mesh as
`train.shard_tables` places them (`sharding.row_sharded`). A batch draws B user ids from a
power-law popularity (`--zipf`), so it repeats users as real batches do; its touched rows are
its distinct ids padded to a fixed length with an out-of-range id (`touched_rows`). Two ops,
each in two formulations:

- gather: the batch's B rows `[B, D]` (duplicates included);
- update: one lazy row-wise Adam step of the touched rows from their gradients `[U, D]`
  (`lazy_rows.apply_role_update`: gather the rows of the table, mu and nu, step them, scatter
  them back), the table, mu and nu donated and the outputs pinned to the inputs' placement.

GSPMD: the library's functions under `jax.jit`, the partitioner decides the communication.
shard_map: each device masks the ids to its own rows [s·N/n, (s+1)·N/n), runs the same
functions on its shard (ids held elsewhere gather zeros and their writes are dropped), and a
`psum` (replicated ids) or `psum_scatter` (batch-sharded ids) adds the gathered rows; the
update needs no communication beyond gathering batch-sharded ids and gradients.

`--indices sharded` is dprec's layout (`sharding.shard_epoch` splits every batch array, the
touched ids included, along the batch axis; here the touched rows' gradients are split the
same way, and the gathered rows come out split so, as the loss consumes them); `replicated`
gives every device all ids. A one-device
mesh is the reference (its shard_map collectives run over a group of one).

The script first checks that both formulations give the same arrays from identical inputs
(`check_agree`: gathers, mu, nu and untouched rows bit for bit; touched parameters to the
last bits, see there), then times them alternately (GSPMD, shard_map, then shard_map, GSPMD
in the next repeat, ...): each repeat is the mean of `--calls` calls, after a warm-up call
that compiles. The table shows per (mesh, ids layout, formulation, op) the median and the
range over `--repeats`, GSPMD's time over shard_map's paired within each repeat (median),
and the collectives of each compiled function (`.lower(...).compile().as_text()`). The
simulated devices share this machine's cores, so the times show the cost of the work and of
the collectives (a rendezvous of the device threads each), not a speed-up.
"""

from __future__ import annotations

import os

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
).strip()

import argparse  # noqa: E402
import re  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from jax.sharding import Mesh, NamedSharding, PartitionSpec  # noqa: E402

from dprec import sharding  # noqa: E402
from dprec.data.touched import touched_rows  # noqa: E402
from dprec.lazy_rows import apply_role_update, loss_view  # noqa: E402

AXIS = sharding.DATA_AXIS
ATTR, KEY = "user_embedding", "embedding"  # GMF's user table, as `models` names it
TABLES = {ATTR: "user"}
OPTIMIZER = optax.adam(1e-3)  # train.py's optimizer at its default rate
FORMULATIONS = ("GSPMD", "shard_map")
# Users' popularity exponent: 2,048 draws from 1,000,000 users repeat about 10 % of them, as
# a batch of Modcloth's interactions does (about 1,790 distinct users in 2,048).
ZIPF = 0.8
COLLECTIVES = ("all-reduce", "all-gather", "all-to-all", "collective-permute", "reduce-scatter")
# One HLO instruction: `%name = TYPE op(` or `%name = TYPE op-start(` (async collectives).
COLLECTIVE_RE = re.compile(
    r"= (?P<type>\(.*?\)|\S+) (?P<op>" + "|".join(COLLECTIVES) + r")(?:-start)?\("
)
LAYOUT_RE = re.compile(r"\{[^}]*\}")  # f32[2048,32]{1,0} → f32[2048,32]


def role(table: Any) -> dict:
    """A role's parameters (or gradients) holding just one user table `[N, D]`."""
    return {ATTR: {KEY: table}}


def lazy_batch(ids: jax.Array) -> dict:
    """The batch keys `lazy_rows` reads; the user table takes `touched_users` (no item table
    here, so `touched_items` is never read)."""
    return {"touched_users": ids, "touched_items": ids}


def make_batch(
    n_rows: int, batch: int, shards: int, *, zipf: float = ZIPF, seed: int = 0
) -> dict[str, np.ndarray]:
    """One batch's ids, as host arrays.

    Returns ids `[B]` drawn with replacement, P(rank r) ∝ (r + 1)^-zipf, the ranks spread over
    the rows by a random permutation (so popular rows sit on every shard); touched `[U]`: the
    distinct ids sorted, padded with `n_rows` to U = B + 1 rounded up to a multiple of `shards`
    (`touched_rows`).
    """
    rng = np.random.default_rng(seed)
    popularity = np.arange(1, n_rows + 1, dtype=np.float64) ** -zipf
    ranks = rng.choice(n_rows, size=batch, p=popularity / popularity.sum())
    ids = rng.permutation(n_rows)[ranks].astype(np.int32)
    touched = touched_rows(
        ids[None],
        ids[None],  # the item half of `touched_rows` is not used here
        np.zeros((1, batch, 0), np.int32),
        np.ones((1, batch), np.float32),
        n_users=n_rows,
        n_items=n_rows,
        multiple=shards,
    )["touched_users"][0]
    return {"ids": ids, "touched": touched}


def make_state(n_rows: int, dim: int, seed: int = 0) -> tuple[dict, Any]:
    """Host (params, Adam state): a random table `[N, D]`; mu, nu `[N, D]` random too (nu ≥ 0),
    as after some steps, so that a wrong row shows; count 7."""
    rng = np.random.default_rng(seed + 1)

    def table() -> np.ndarray:
        return rng.standard_normal((n_rows, dim), dtype=np.float32)

    params = role(table())
    adam, rest = OPTIMIZER.init(params)
    adam = adam._replace(count=np.asarray(7, np.int32), mu=role(table()), nu=role(table() ** 2))
    return params, (adam, rest)


def gradients(touched: np.ndarray, n_rows: int, dim: int, seed: int = 0) -> np.ndarray:
    """Gradients of the touched rows `[U, D]` (zero at the padding slots, as the loss gives)."""
    grads = np.random.default_rng(seed + 2).standard_normal((touched.size, dim), np.float32)
    return np.where((touched < n_rows)[:, None], grads, np.float32(0))


def placement(tree: Any, mesh: Mesh, n_rows: int) -> Any:
    """`tree`'s shardings by dprec's rule (`sharding.is_row_table`): tables split by rows,
    everything else (Adam's count) replicated."""
    shards = sharding.num_shards(mesh)
    return jax.tree.map(
        lambda x: (
            sharding.row_sharded(mesh)
            if sharding.is_row_table(x, n_rows, n_rows, shards)
            else sharding.replicated(mesh)
        ),
        tree,
    )


def specs(shardings: Any) -> Any:
    return jax.tree.map(lambda s: s.spec, shardings)


def gather(params: dict, ids: jax.Array) -> jax.Array:
    """The rows `[B, D]` of `ids` `[B]` as the loss sees them (`loss_view`; out-of-range ids
    gather zeros)."""
    return loss_view(params, TABLES, lazy_batch(ids)).params[ATTR][KEY]


def update(params: dict, opt_state: Any, touched: jax.Array, grads: jax.Array) -> tuple:
    """One lazy row-wise Adam step (`apply_role_update`): (params, opt_state) with the rows
    of `touched` `[U]` stepped by `grads` `[U, D]`; out-of-range ids write nothing."""
    return apply_role_update(OPTIMIZER, role(grads), opt_state, params, TABLES, lazy_batch(touched))


def owned(ids: jax.Array, shard_rows: int) -> jax.Array:
    """Inside shard_map: global ids → indices into this device's `shard_rows` rows; ids held
    by other devices (and padding) → `shard_rows`, out of range, so they gather zeros and
    their writes are dropped."""
    local = ids - jax.lax.axis_index(AXIS) * shard_rows
    return jnp.where((local >= 0) & (local < shard_rows), local, shard_rows)


def build(mesh: Mesh, n_rows: int, indices: str, params: Any, opt_state: Any) -> dict:
    """(formulation, op) → jitted function on `mesh`, for ids placed by `indices`
    ("sharded": split along the batch axis as `shard_epoch` does; "replicated")."""
    param_shardings = placement(params, mesh, n_rows)
    opt_shardings = placement(opt_state, mesh, n_rows)
    split = indices == "sharded"
    ids_spec = PartitionSpec(AXIS) if split else PartitionSpec()
    rows_spec = PartitionSpec(AXIS, None) if split else PartitionSpec()
    rows_sharding = NamedSharding(mesh, rows_spec)
    shard_rows = n_rows // sharding.num_shards(mesh)

    def all_ids(x: jax.Array) -> jax.Array:
        # Batch-sharded ids (and their gradients): every device needs all of them, since any
        # of them may be one of its rows.
        return jax.lax.all_gather(x, AXIS, tiled=True) if split else x

    def local_gather(params, ids):
        rows = gather(params, owned(all_ids(ids), shard_rows))  # zeros where held elsewhere
        if split:  # each device keeps the sum of its B / n rows only
            return jax.lax.psum_scatter(rows, AXIS, scatter_dimension=0, tiled=True)
        return jax.lax.psum(rows, AXIS)

    def local_update(params, opt_state, touched, grads):
        return update(params, opt_state, owned(all_ids(touched), shard_rows), all_ids(grads))

    table_specs = (specs(param_shardings), specs(opt_shardings))
    mapped_gather = jax.shard_map(
        local_gather,
        mesh=mesh,
        in_specs=(table_specs[0], ids_spec),
        out_specs=rows_spec,
    )
    mapped_update = jax.shard_map(
        local_update,
        mesh=mesh,
        in_specs=(*table_specs, ids_spec, rows_spec),
        out_specs=table_specs,
    )
    state_out = (param_shardings, opt_shardings)
    # The gather only reads the table: nothing to donate (its output is the [B, D] rows).
    return {
        ("GSPMD", "gather"): jax.jit(gather, out_shardings=rows_sharding),
        ("shard_map", "gather"): jax.jit(mapped_gather, out_shardings=rows_sharding),
        ("GSPMD", "update"): jax.jit(update, donate_argnums=(0, 1), out_shardings=state_out),
        ("shard_map", "update"): jax.jit(
            mapped_update, donate_argnums=(0, 1), out_shardings=state_out
        ),
    }


def place(mesh: Mesh, n_rows: int, indices: str, host: dict) -> dict:
    """Device copies of `host` (params, opt_state, ids, touched, grads) on `mesh`."""
    split = indices == "sharded"
    ids = NamedSharding(mesh, PartitionSpec(AXIS) if split else PartitionSpec())
    rows = NamedSharding(mesh, PartitionSpec(AXIS, None) if split else PartitionSpec())
    return {
        "params": sharding.put(host["params"], placement(host["params"], mesh, n_rows)),
        "opt_state": sharding.put(host["opt_state"], placement(host["opt_state"], mesh, n_rows)),
        "ids": sharding.put(host["ids"], ids),
        "touched": sharding.put(host["touched"], ids),
        "grads": sharding.put(host["grads"], rows),
    }


def collectives(fn: Callable, *args: Any) -> str:
    """The collectives of `fn`'s compiled HLO for `args`, e.g. 'all-gather s32[2048] +
    all-reduce f32[2048,32]' (layouts dropped), or 'none'."""
    hlo = fn.lower(*args).compile().as_text()
    found = Counter(
        f"{m['op']} {LAYOUT_RE.sub('', m['type'])}" for m in COLLECTIVE_RE.finditer(hlo)
    )
    return " + ".join(f"{n}× {what}" if n > 1 else what for what, n in found.items()) or "none"


def arguments(op: str, arrays: dict) -> tuple:
    if op == "gather":
        return arrays["params"], arrays["ids"]
    return arrays["params"], arrays["opt_state"], arrays["touched"], arrays["grads"]


def call(fns: dict, formulation: str, op: str, arrays: dict) -> dict:
    """Run one (formulation, op) once on `arrays`; an update replaces the state in `arrays`
    (its buffers were donated). Returns `arrays` with the result under "out"."""
    out = fns[formulation, op](*arguments(op, arrays))
    if op == "gather":
        return {**arrays, "out": out}
    return {**arrays, "params": out[0], "opt_state": out[1], "out": out}


def check_agree(fns: dict, mesh: Mesh, n_rows: int, indices: str, host: dict) -> tuple[int, float]:
    """Both formulations give the same arrays for each op, from identical inputs; returns how
    many updated parameters are not bit-identical and their largest difference.

    The gathered rows, Adam's mu, nu and count, and every row the batch does not touch are
    bit-identical. A touched row's new parameters may differ in their last bits: XLA:CPU
    always contracts multiply-adds into FMAs within a fusion, and the shard_map program
    recomputes the new moments inside the parameters' fusion (rounded differently from the
    stored moments) where the GSPMD program reads them back. They agree to rtol 1e-6 and
    atol 1e-9 (a millionth of the step, `OPTIMIZER`'s rate 1e-3).
    """
    for op in ("gather", "update"):
        results = [
            jax.device_get(call(fns, f, op, place(mesh, n_rows, indices, host))["out"])
            for f in FORMULATIONS
        ]
        if op == "gather":
            np.testing.assert_array_equal(*results, err_msg="gather: the formulations differ")
            continue
        (params_a, opt_a), (params_b, opt_b) = results
        for a, b in zip(jax.tree.leaves(opt_a), jax.tree.leaves(opt_b), strict=True):
            np.testing.assert_array_equal(a, b, err_msg="update: Adam states differ")
        table_a, table_b = params_a[ATTR][KEY], params_b[ATTR][KEY]
        touched = np.zeros(n_rows, bool)
        touched[host["touched"][host["touched"] < n_rows]] = True
        np.testing.assert_array_equal(table_a[~touched], table_b[~touched])
        np.testing.assert_allclose(table_a[touched], table_b[touched], rtol=1e-6, atol=1e-9)
    return int((table_a != table_b).sum()), float(np.abs(table_a - table_b).max())


def measure(
    mesh: Mesh, n_rows: int, indices: str, host: dict, repeats: int, calls: int
) -> tuple[list[dict], tuple[int, float]]:
    """Rows of the table for one mesh and ids layout: per (formulation, op) the per-call ms
    of each repeat and the compiled collectives; and `check_agree`'s parameters that are not
    bit-identical (count, largest difference)."""
    fns = build(mesh, n_rows, indices, host["params"], host["opt_state"])
    differing = check_agree(fns, mesh, n_rows, indices, host)
    arrays = {f: place(mesh, n_rows, indices, host) for f in FORMULATIONS}
    rows = {}
    for op in ("gather", "update"):
        for f in FORMULATIONS:
            hlo = collectives(fns[f, op], *arguments(op, arrays[f]))
            rows[f, op] = {"collectives": hlo, "ms": []}
            arrays[f] = call(fns, f, op, arrays[f])  # warm-up: compiles
            jax.block_until_ready(arrays[f]["out"])
    for repeat in range(repeats):
        # A B, B A, A B, ...: neither formulation always runs first (caches, a neighbour's load).
        order = FORMULATIONS if repeat % 2 == 0 else FORMULATIONS[::-1]
        for op in ("gather", "update"):
            for f in order:
                start = time.perf_counter()
                for _ in range(calls):
                    arrays[f] = call(fns, f, op, arrays[f])
                jax.block_until_ready(arrays[f]["out"])
                rows[f, op]["ms"].append((time.perf_counter() - start) / calls * 1e3)
    table = [{"formulation": f, "op": op, **row} for (f, op), row in rows.items()]
    return table, differing


def paired(a: list[float], b: list[float]) -> float:
    """The median over repeats of a / b: each repeat's two times ran next to each other, under
    the same load from other processes, so their ratio is steadier than a ratio of medians."""
    return statistics.median(x / y for x, y in zip(a, b, strict=True))


HEADER = (
    f"{'mesh':>4} {'ids':>10} {'formulation':>11} {'op':>6} {'median ms':>9} "
    f"{'min–max ms':>13} {'GSPMD ÷':>7}  collectives in the compiled HLO"
)


def table_lines(devices: int, indices: str, rows: list[dict]) -> list[str]:
    """`measure`'s rows as lines under `HEADER`; a shard_map row also shows GSPMD's time
    over its own (`paired`)."""
    gspmd = {row["op"]: row["ms"] for row in rows if row["formulation"] == "GSPMD"}
    lines = []
    for row in rows:
        ms = row["ms"]
        ratio = "" if row["formulation"] == "GSPMD" else f"{paired(gspmd[row['op']], ms):.2f}"
        lines.append(
            f"{devices:>4} {indices if devices > 1 else '-':>10} {row['formulation']:>11} "
            f"{row['op']:>6} {statistics.median(ms):>9.3f} "
            f"{f'{min(ms):.3f}–{max(ms):.3f}':>13} {ratio:>7}  {row['collectives']}"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="table rows N")
    parser.add_argument("--dim", type=int, default=32, help="table columns D")
    parser.add_argument("--batch", type=int, default=2048, help="batch size B")
    parser.add_argument("--repeats", type=int, default=15, help="timed repeats (default 15)")
    parser.add_argument("--calls", type=int, default=20, help="calls per repeat (default 20)")
    parser.add_argument("--zipf", type=float, default=ZIPF, help=f"default {ZIPF}")
    parser.add_argument("--meshes", default="4,1", help="device counts (default 4,1)")
    parser.add_argument("--indices", default="sharded,replicated", help="ids layouts")
    args = parser.parse_args()
    meshes = [int(n) for n in args.meshes.split(",")]
    layouts = args.indices.split(",")
    if any(args.rows % n for n in meshes):
        parser.error("--rows must be a multiple of every mesh size")
    if any(layout not in ("sharded", "replicated") for layout in layouts):
        parser.error("--indices: sharded and/or replicated")

    params, opt_state = make_state(args.rows, args.dim)
    load_before = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"jax {jax.__version__}, {len(jax.devices())} simulated devices, {os.cpu_count()} CPUs")
    print(f"table [{args.rows:,}, {args.dim}] f32 (+ Adam mu, nu), batch {args.batch}")
    lines = []
    for devices in meshes:
        batch = make_batch(args.rows, args.batch, devices, zipf=args.zipf)
        grads = gradients(batch["touched"], args.rows, args.dim)
        host = {"params": params, "opt_state": opt_state, **batch, "grads": grads}
        mesh = sharding.create_mesh(devices)
        # One device: both layouts are the same placement.
        for indices in layouts if devices > 1 else ["sharded"]:
            rows, (n_differ, max_diff) = measure(
                mesh, args.rows, indices, host, args.repeats, args.calls
            )
            distinct = int((batch["touched"] < args.rows).sum())
            print(
                f"mesh {devices}, ids {indices}: {distinct} distinct of {args.batch} ids, "
                f"touched padded to {batch['touched'].size}; the formulations agree (gathers, "
                f"mu, nu bit for bit; {n_differ} of {distinct * args.dim} updated parameters "
                f"differ in their last bits, by {max_diff:.1e} at most)",
                flush=True,
            )
            lines += table_lines(devices, indices, rows)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average before / after: {load_before} / {load}")
    print(
        f"per-call ms: median and range over {args.repeats} repeats of {args.calls} calls; "
        "GSPMD ÷: the median over repeats of GSPMD's time over shard_map's in the same repeat"
    )
    print()
    print(HEADER)
    print("-" * len(HEADER))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
