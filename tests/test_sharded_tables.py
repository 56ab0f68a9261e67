"""Row-sharded embedding tables (`train.shard_tables`) on the 4 simulated CPU devices: the
tables are really split by rows, stay split through the jitted epoch and a checkpoint, and
training and evaluation give the replicated run's numbers."""

import re

import jax
import numpy as np
import pytest
from conftest import kill_after_checkpoint
from jax.sharding import PartitionSpec
from test_resume import comparable

from dprec import sharding, train
from dprec.config.run_config import run_spec_from_config
from dprec.data.registry import load_dataset
from dprec.errors import ConfigError
from dprec.methods import get_method
from dprec.tools.run_loading import load_run

DEVICES = 4
N_USERS = 296  # synthetic users asked for: 232 have interactions, 232 = 4 × 58
LOSS_RTOL = 1e-5  # the sharded sum of the L2 term and of the gradients is reordered
METRIC_ATOL = 1e-6  # recall/ndcg: the same ranked items (up to float ties)


def sharded_config(config, *, shard_tables=True, epochs=2):
    config.data.synthetic.n_users = N_USERS
    config.train.num_epochs = epochs
    config.train.shard_tables = shard_tables
    return config


def table_leaves(state, n_users, n_items):
    """(path, array) of every user/item table of params, optimizer states and frozen params."""
    trees = {"params": state.params, "opt_state": state.opt_state, "frozen": state.frozen}
    return [
        (f"{name}{jax.tree_util.keystr(path)}", leaf)
        for name, tree in trees.items()
        for path, leaf in jax.tree_util.tree_leaves_with_path(tree)
        if leaf.ndim == 2 and leaf.shape[0] in (n_users, n_items)
    ]


def assert_tables_sharded(state, n_users, n_items):
    tables = table_leaves(state, n_users, n_items)
    assert tables
    for path, leaf in tables:
        assert leaf.sharding.spec == PartitionSpec(sharding.DATA_AXIS, None), path
        shapes = {shard.data.shape for shard in leaf.addressable_shards}
        assert shapes == {(leaf.shape[0] // DEVICES, leaf.shape[1])}, path
    return tables


def test_initial_state_splits_tables_by_rows_and_replicates_the_rest(tiny_config):
    spec = run_spec_from_config(sharded_config(tiny_config, epochs=1))
    data = load_dataset(spec.data)
    assert (data.n_users, data.n_items) == (232, 80) and len(jax.devices()) == DEVICES
    state = train.create_setup(spec, data).initial_state
    tables = assert_tables_sharded(state, data.n_users, data.n_items)
    paths = [path for path, _ in tables]
    # GMF-DPI: four roles × (user, item) × (param, Adam mu, Adam nu).
    assert len(paths) == 4 * 2 * 3
    assert any(".mu" in p for p in paths) and any(".nu" in p for p in paths)
    table_ids = {id(leaf) for _, leaf in tables}
    others = [leaf for leaf in jax.tree.leaves(state) if id(leaf) not in table_ids]
    assert others  # step, rng, GMF's output layer, Adam counts
    for leaf in others:
        assert leaf.sharding.spec == PartitionSpec(), leaf.shape
    kernel = state.params["target"]["predict"]["kernel"]
    assert kernel.addressable_shards[0].data.shape == kernel.shape


def test_a_table_whose_rows_do_not_divide_stays_replicated(tiny_config):
    tiny_config.train.shard_tables = True  # 245 users (not a multiple of 4), 80 items
    spec = run_spec_from_config(tiny_config)
    data = load_dataset(spec.data)
    assert data.n_users % DEVICES and not data.n_items % DEVICES
    params = train.create_setup(spec, data).initial_state.params["target"]
    assert params["user_embedding"]["embedding"].sharding.spec == PartitionSpec()
    item = params["item_embedding"]["embedding"]
    assert item.sharding.spec == PartitionSpec(sharding.DATA_AXIS, None)


def fit_twice(config, tmp_path):
    """(epoch records, results, final state, data) of the replicated and the sharded run."""
    runs = []
    for shard_tables in (False, True):
        config.train.shard_tables = shard_tables
        config.method.prior_cache_dir = str(tmp_path / "priors")
        spec = run_spec_from_config(config)
        data = load_dataset(spec.data)
        frozen = get_method(spec.method.name).pretrain_frozen(spec, data, fit_fn=train.fit)
        records = []
        fitted = train.fit(spec, data, frozen_params=frozen, on_epoch=records.append)
        runs.append((records, fitted.results, fitted.state, data))
    return runs


def assert_metrics_close(actual, expected):
    for key, value in expected.items():
        if isinstance(value, dict):
            assert_metrics_close(actual[key], value)
        elif isinstance(value, float):
            assert actual[key] == pytest.approx(value, abs=METRIC_ATOL), key
        else:
            assert actual[key] == value, key


@pytest.mark.parametrize(
    "model,method,updates",
    [
        ("gmf", "dpi", "dense"),
        ("gmf", "dpi", "lazy"),
        ("neumf", "dvae", "dense"),
        ("lightgcn", "dpi", "dense"),
    ],
)
def test_sharded_run_matches_the_replicated_run(tiny_config, tmp_path, model, method, updates):
    config = sharded_config(tiny_config)
    config.model.name, config.method.name, config.train.updates = model, method, updates
    config.method.prior_epochs = 1  # DVAE's f': the shared cache trains it once
    (base_records, base, _, _), (records, results, state, data) = fit_twice(config, tmp_path)
    assert len(records) == len(base_records) == 2
    for got, want in zip(records, base_records, strict=True):
        assert got["loss"] == pytest.approx(want["loss"], rel=LOSS_RTOL)
        assert_metrics_close(got["valid"], want["valid"])
    assert results["best_epoch"] == base["best_epoch"]
    assert_metrics_close(results["test"], base["test"])
    assert_metrics_close(results["test_last"], base["test_last"])
    assert results["test"]["paper"]["recall@20"] > 0  # the runs rank something
    # The jitted epochs kept the tables split (no silent replication, donation intact).
    assert_tables_sharded(state, data.n_users, data.n_items)


def test_sharded_run_resumes_sharded_to_the_same_metrics(tiny_config, tmp_path, monkeypatch):
    config = sharded_config(tiny_config, epochs=3)
    config.train.checkpoint_every = 1
    train.train_and_evaluate(config, str(tmp_path / "straight"))

    kill_after_checkpoint(monkeypatch, config, tmp_path / "resumed", epoch=1)
    run = load_run(tmp_path / "resumed", allow_unfinished=True)  # epoch 1, restored sharded
    assert run.epoch == 1
    assert_tables_sharded(run.state, run.data.n_users, run.data.n_items)
    best = run.best_params["target"]["user_embedding"]["embedding"]
    assert best.sharding.spec == PartitionSpec(sharding.DATA_AXIS, None)
    assert np.isfinite(np.asarray(best)).all()

    train.train_and_evaluate(config, str(tmp_path / "resumed"))
    assert comparable(tmp_path / "resumed") == comparable(tmp_path / "straight")


def test_the_epoch_moves_batch_rows_not_whole_tables(tiny_config):
    """With tables larger than a batch, GSPMD gathers a batch's rows from their shards
    instead of all-gathering a table onto every device (checked in the compiled epoch)."""
    config = sharded_config(tiny_config, epochs=1)
    config.data.synthetic.n_items = 1000
    config.train.updates = "lazy"
    spec = run_spec_from_config(config)
    data = load_dataset(spec.data)
    assert data.n_items == 1000
    setup = train.create_setup(spec, data)
    epoch = setup.epoch_fn.lower(setup.initial_state, setup.batches(1), setup.graph)
    hlo = epoch.compile().as_text()
    gathered = re.findall(r"= \w+\[(\d+),\d+\]\S* all-gather", hlo)
    assert gathered  # the batch rows are gathered ...
    assert str(data.n_items) not in gathered  # ... the item tables never are


def test_shard_tables_must_be_a_bool(tiny_config):
    config = tiny_config.to_dict()
    config["train"]["shard_tables"] = 1
    with pytest.raises(ConfigError, match="train.shard_tables must be True or False"):
        run_spec_from_config(config)


def test_sharded_top_k_ranks_each_devices_users_without_gathering_scores():
    """Row-sharded tables, 4 devices: every device scores, masks and ranks its quarter of
    each chunk's users, so the compiled ranking gathers no `[C, n_items]` score matrix (only
    the chunk's user ids, the item table and the small top-K result); and the ranking is
    the dense NumPy one."""
    from dprec.data.dataset import Interactions
    from dprec.evaluation import ranking
    from dprec.models import ScoreFns

    n_users, n_items, dim, chunk = 64, 40, 8, 16
    rng = np.random.default_rng(0)
    tables = {
        "users": rng.standard_normal((n_users, dim)).astype(np.float32),
        "items": rng.standard_normal((n_items, dim)).astype(np.float32),
    }
    mesh = sharding.create_mesh()
    params = jax.device_put(tables, sharding.row_sharded(mesh))
    score = ScoreFns(
        encode=lambda params, graph, rng: None,
        pair=lambda params, encoded, users, items: None,
        all_items=lambda params, encoded, users: params["users"][users] @ params["items"].T,
    )
    users = rng.choice(n_users, 45, replace=False).astype(np.int32)
    relevant = Interactions(users=users, items=rng.integers(0, n_items, 45).astype(np.int32))
    ex_users = rng.choice(users, 120).astype(np.int32)
    excluded = Interactions(users=ex_users, items=rng.integers(0, n_items, 120).astype(np.int32))
    task = ranking.make_ranking_task(
        relevant, [excluded], n_items=n_items, chunk_size=chunk, multiple=DEVICES
    )
    topk = ranking.make_topk_fn(score, 5, mesh=mesh)
    args = (params, None, task.user_chunks, task.excluded_rows, task.excluded_items)
    compiled = topk.lower(*args).compile().as_text()
    gathered = re.findall(r"= (\w+)\[([\d,]+)\]\S* all-gather\(", compiled)
    assert ("f32", f"{chunk},{n_items}") not in gathered
    assert ("f32", f"{dim},{n_items}") in gathered or ("f32", f"{n_items},{dim}") in gathered
    scores = tables["users"] @ tables["items"].T
    scores[excluded.users, excluded.items] = -np.inf
    expected = np.argsort(-scores[task.users], axis=1, kind="stable")[:, :5]
    np.testing.assert_array_equal(ranking.rank(topk, params, task), expected)
