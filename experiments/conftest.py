"""Set-up of the experiments' checks (`python -m pytest experiments`; CI does not collect this
folder): 4 simulated CPU devices before JAX starts, as tests/conftest.py sets them."""

import os
import sys
from pathlib import Path

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the experiments' scripts
