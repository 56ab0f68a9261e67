"""The wheel and a non-editable install: what a user gets from `pip install dprec`.

The suite itself runs on the editable checkout, which hides a file that the wheel leaves out
(a config template, a tool) and a path that only resolves inside the checkout (`configs/`).
Here the wheel is built from a copy of the sources, installed into a fresh virtual environment
(`--system-site-packages`, for JAX and the other dependencies, `--no-deps --no-index`), and
its console scripts are run from an empty directory with PYTHONPATH unset, so that they can
import only the installed dprec.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
import setuptools

pytestmark = pytest.mark.slow  # a wheel build, a venv and nine script starts: about 40 s

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = tuple(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"])
MUST_SHIP = (
    "dprec/sweeps/tune.py",
    "dprec/sweeps/grid.py",
    "dprec/sweeps/noise_bench.py",
    "dprec/config/templates/default.py",
    "dprec/config/templates/tiny.py",
    "dprec/config/templates/recsys25.py",
    "dprec/sweeps/recsys25.py",
    "dprec/sweeps/defaults_matrix.py",
)


def _builds_wheels_here() -> bool:
    """Whether this environment's setuptools can build a wheel without build isolation: its own
    `bdist_wheel` (setuptools >= 70.1) or the `wheel` package's."""
    version = tuple(int(part) for part in setuptools.__version__.split(".")[:2])
    return version >= (70, 1) or importlib.util.find_spec("wheel") is not None


def _run(command: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(the wheel, the venv's bin/ and site-packages/, an empty working directory)."""
    root = tmp_path_factory.mktemp("packaging")
    source = root / "source"  # a copy: building writes build/ and *.egg-info beside the sources
    shutil.copytree(REPO / "dprec", source / "dprec", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    # Without a local wheel builder, pip builds in isolation with pyproject's build-system
    # requirements (as `pip install .` does), which needs the package index.
    isolation = ["--no-build-isolation"] if _builds_wheels_here() else []
    build = _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            *isolation,
            "-w",
            root / "dist",
            source,
        ],
        cwd=root,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    (wheel,) = (root / "dist").glob("dprec-*.whl")
    # The venv's pip is the system one (visible through --system-site-packages); it installs
    # into the venv, whose interpreter runs it.
    venv = root / "venv"
    made = _run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv], cwd=root
    )
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    install = _run(
        [
            python,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-index",
            "--no-warn-script-location",
            wheel,
        ],
        cwd=root,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    where = _run(
        [python, "-c", "import dprec, sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=root
    )
    site_packages = Path(where.stdout.strip())
    empty = root / "elsewhere"
    empty.mkdir()
    return wheel, venv / "bin", site_packages, empty


def test_the_wheel_holds_every_module_the_tools_and_the_templates(built):
    wheel, *_ = built
    names = set(zipfile.ZipFile(wheel).namelist())
    assert set(MUST_SHIP) <= names
    in_checkout = {
        path.relative_to(REPO).as_posix()
        for path in (REPO / "dprec").rglob("*.py")
        if "__pycache__" not in path.parts
    }
    tools = {name for name in in_checkout if name.startswith("dprec/tools/")}
    assert len(tools) >= 7 and tools <= names
    assert in_checkout - names == set()


def test_the_installed_package_is_imported_not_the_checkout(built):
    _, bin_dir, site_packages, empty = built
    shown = _run([bin_dir / "python", "-c", "import dprec; print(dprec.__file__)"], cwd=empty)
    assert Path(shown.stdout.strip()) == site_packages / "dprec" / "__init__.py"


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_console_script_answers_help_outside_the_checkout(built, script):
    _, bin_dir, _, empty = built
    done = _run([bin_dir / script, "--help"], cwd=empty)
    assert done.returncode == 0, done.stderr
    assert "usage" in (done.stdout + done.stderr).lower()


def test_a_grid_and_a_train_find_the_packaged_template_from_an_empty_directory(built):
    """`configs/default.py` does not exist there: the grid falls back to the installed
    template, and the training command it plans checks its config and data (--dry_run)."""
    _, bin_dir, site_packages, empty = built
    planned = _run(
        [
            bin_dir / "dprec-grid",
            "--config",
            "configs/default.py:model=gmf",
            "--out",
            "grid",
            "--grid",
            "seed=0,1",
            "--dry-run",
        ],
        cwd=empty,
    )
    assert planned.returncode == 0, planned.stderr
    commands = [line.split() for line in planned.stdout.splitlines() if "dprec.main" in line]
    assert len(commands) == 2
    template = site_packages / "dprec" / "config" / "templates" / "default.py"
    config = next(arg for arg in commands[0] if arg.startswith("--config="))
    assert config == f"--config={template}:model=gmf"
    assert Path(commands[0][0]) == bin_dir / "python"  # the runs use this interpreter too
    checked = _run([bin_dir / "dprec-train", config, "--dry_run"], cwd=empty)
    assert checked.returncode == 0, checked.stderr
    assert "config and data are valid" in checked.stdout + checked.stderr
    assert list(empty.iterdir()) == []  # a dry run writes nothing
