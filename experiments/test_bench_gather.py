"""experiments/bench_gather.py on a tiny table: the GSPMD and shard_map formulations of the
gather and of the lazy Adam update agree with each other and with plain NumPy / one device,
and the collectives it reports are those of the compiled functions."""

import bench_gather as bench  # experiments/conftest.py puts this folder on sys.path
import jax
import numpy as np
import pytest

from dprec import sharding

N_ROWS, DIM, BATCH = 400, 8, 64  # 100 rows per device on the 4 simulated devices


@pytest.fixture(scope="module")
def host():
    params, opt_state = bench.make_state(N_ROWS, DIM)
    batch = bench.make_batch(N_ROWS, BATCH, 4, zipf=1.0)
    grads = bench.gradients(batch["touched"], N_ROWS, DIM)
    return {"params": params, "opt_state": opt_state, **batch, "grads": grads}


def test_a_batch_repeats_ids_and_pads_its_distinct_ids(host):
    ids, touched = host["ids"], host["touched"]
    distinct = np.unique(ids)
    assert distinct.size < BATCH  # duplicates, as in real batches
    assert touched.size == 68  # B + 1 rounded up to a multiple of 4
    np.testing.assert_array_equal(touched[: distinct.size], distinct)
    assert (touched[distinct.size :] == N_ROWS).all()
    assert {i * 4 // N_ROWS for i in distinct} == {0, 1, 2, 3}  # rows on every device


@pytest.mark.parametrize("indices", ["sharded", "replicated"])
def test_the_formulations_agree_with_numpy_and_one_device(host, indices):
    mesh = sharding.create_mesh(4)
    fns = bench.build(mesh, N_ROWS, indices, host["params"], host["opt_state"])
    bench.check_agree(fns, mesh, N_ROWS, indices, host)
    table = host["params"][bench.ATTR][bench.KEY]
    one = sharding.create_mesh(1)
    reference = bench.build(one, N_ROWS, indices, host["params"], host["opt_state"])
    expected = jax.device_get(
        bench.call(reference, "GSPMD", "update", bench.place(one, N_ROWS, indices, host))["out"]
    )
    for formulation in bench.FORMULATIONS:
        arrays = bench.place(mesh, N_ROWS, indices, host)
        rows = bench.call(fns, formulation, "gather", arrays)["out"]
        np.testing.assert_array_equal(rows, table[host["ids"]])
        out = jax.device_get(bench.call(fns, formulation, "update", arrays)["out"])
        new = out[0][bench.ATTR][bench.KEY]
        changed = np.flatnonzero((new != table).any(axis=1))
        np.testing.assert_array_equal(changed, np.unique(host["ids"]))  # touched rows only
        for leaf, want in zip(jax.tree.leaves(out), jax.tree.leaves(expected), strict=True):
            np.testing.assert_allclose(leaf, want, rtol=1e-6, atol=1e-9)


def test_shard_map_updates_replicated_ids_without_any_collective(host):
    mesh = sharding.create_mesh(4)
    fns = bench.build(mesh, N_ROWS, "replicated", host["params"], host["opt_state"])
    arrays = bench.place(mesh, N_ROWS, "replicated", host)
    args = bench.arguments("update", arrays)
    assert bench.collectives(fns["shard_map", "update"], *args) == "none"
    assert bench.collectives(fns["shard_map", "gather"], *bench.arguments("gather", arrays)) == (
        f"all-reduce f32[{BATCH},{DIM}]"
    )
    assert "all-reduce" in bench.collectives(fns["GSPMD", "update"], *args)
