"""Test set-up: simulate 4 CPU devices before JAX starts, and shared tiny fixtures."""

import os

# Must happen before JAX initialises its backends: sharded code paths run on 4 CPU devices.
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture
def tiny_config():
    """A synthetic run of a few seconds (300 users, 80 items, 3 epochs)."""
    from dprec.presets import build_config

    config = build_config()
    config.data.synthetic.n_users = 300
    config.data.synthetic.n_items = 80
    config.train.num_epochs = 3
    config.train.batch_size = 256
    return config


@pytest.fixture
def modcloth_path():
    path = SHARED_DATA / "modcloth" / "modcloth.csv.gz"
    if not path.exists():
        pytest.skip(f"{path} is not available")
    return path
