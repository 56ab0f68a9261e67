"""Test set-up: simulate 4 CPU devices before JAX starts, and shared tiny fixtures."""

import os

# Must happen before JAX initialises its backends: sharded code paths run on 4 CPU devices.
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")


def _use_compilation_cache() -> None:
    """Most of the suite's time is XLA compiling the same small programs again (each test
    builds its own jitted functions; each subprocess starts cold). JAX's persistent cache,
    inherited by the subprocesses through the environment, compiles each program once.
    DPREC_TEST_JAX_CACHE: a folder (default ~/.cache/dprec/test-jax-cache, kept between
    runs), or "off"."""
    folder = os.environ.get("DPREC_TEST_JAX_CACHE", "")
    if folder == "off" or "JAX_COMPILATION_CACHE_DIR" in os.environ:
        return
    folder = folder or os.path.join(os.path.expanduser("~"), ".cache", "dprec", "test-jax-cache")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = folder
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"


_use_compilation_cache()

import importlib.util  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

# The files that take minutes, longest first. Under `--dist loadfile` a file runs on one
# worker; started first, they cannot leave one worker running a long file alone at the end
# while the other idles (pyproject's `--no-loadscope-reorder` keeps this order instead of
# xdist's default, most tests first).
LONG_FILES = (
    "test_multiprocess.py",
    "test_safe_stops.py",
    "test_denoising_learns.py",
    "test_resume.py",
    "test_tune.py",
    "test_training.py",
    "test_readme_commands.py",
    "test_examples.py",
    "test_defaults.py",
    "test_device_suite.py",
)


def pytest_collection_modifyitems(config, items):
    """The long files first (in LONG_FILES order), then the rest in their usual order."""
    rank = {name: index for index, name in enumerate(LONG_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(LONG_FILES)))


SHARED_DATA = REPO.parent / "shared" / "data"


def run_main(*args, timeout=300, env=None, module="dprec.main"):
    """`python -m MODULE ARGS` (default dprec.main) from the repository root, output captured
    as text."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def kill_after_checkpoint(monkeypatch, config, workdir, epoch: int) -> None:
    """Train `config` into `workdir` and stop it (KeyboardInterrupt) right after the
    checkpoint of `epoch` is committed, as a kill would; saving is restored afterwards."""
    from dprec import train  # here: JAX must start after the flags above
    from dprec.runs import checkpoint  # here: JAX must start after the flags above

    real_save = checkpoint.RunCheckpoints.save

    def save_then_die(self, saved_epoch, *args):
        real_save(self, saved_epoch, *args)
        if saved_epoch == epoch:
            raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint.RunCheckpoints, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train.train_and_evaluate(config, str(workdir))
    monkeypatch.setattr(checkpoint.RunCheckpoints, "save", real_save)


@pytest.fixture
def tiny_config():
    """configs/tiny.py: a synthetic run of a few seconds (300 users, 80 items, 3 epochs)."""
    spec = importlib.util.spec_from_file_location("tiny_config", REPO / "configs" / "tiny.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


@pytest.fixture
def modcloth_path():
    path = SHARED_DATA / "modcloth" / "modcloth.csv.gz"
    if not path.exists():
        pytest.skip(f"{path} is not available")
    return path


def small_batch_spec(model: str, method: str, updates: str = "dense"):
    """The RunSpec of `model`, `method` on synthetic data of 300 users and 80 items, batches
    of 64: small enough to compare a batch-encoded step against the whole-graph path."""
    from dprec.config.presets import build_config  # here: JAX must start after the flags above
    from dprec.config.run_config import run_spec_from_config

    config = build_config(f"model={model},method={method}")
    config.data.synthetic.n_users = 300
    config.data.synthetic.n_items = 80
    config.train.batch_size = 64
    config.train.updates = updates
    return run_spec_from_config(config)


def item_side_test_graph(n_users, n_items, n_keys, num_devices, item_side, monkeypatch, **kw):
    """A random graph in which the last 3 users and 2 items have no edges, padded to
    `kw["pad_to"]` (default the device count), with T dense, sparse or not built ("none":
    propagation then applies T as two products with A); `row_users` adds the user rows."""
    import numpy as np

    from dprec import sharding
    from dprec.graph import adjacency

    rng = np.random.default_rng(7)
    keys = np.unique(rng.integers(0, (n_users - 3) * (n_items - 2), n_keys))
    users, items = keys // (n_items - 2), keys % (n_items - 2)
    monkeypatch.setattr(adjacency, "DENSE_ITEM_RATIO", 10**6 if item_side == "dense" else 0)
    arrays = adjacency.build_graph_arrays(
        users,
        items,
        n_users,
        n_items,
        kw.get("pad_to") or num_devices,
        item_graph=item_side != "none",
        row_users=kw.get("row_users", 0),
    )
    graph = adjacency.put_graph(arrays, n_users, n_items, sharding.create_mesh(num_devices))
    assert (graph.item_matrix is not None) == (item_side == "dense")
    assert (graph.item_rows is not None) == (item_side == "sparse")
    return graph
