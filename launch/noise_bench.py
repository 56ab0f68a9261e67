"""Kept for old command lines: `python launch/noise_bench.py ARGS` is `dprec-noise-bench ARGS`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's dprec

from dprec.sweeps.noise_bench import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
