"""Every `python -m dprec.main` command of the README runs as written, on small data.

Each command is checked with `--dry_run` (config, workdir and data, nothing written); the
quickstart and the own-log example also train for a few epochs. Paths that only exist on the
reader's machine (`/data/...`, `clicks.csv.gz`) are replaced by small files of the same layout.
"""

import re
import shlex

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, SHARED_DATA, run_main


def readme_commands() -> list[str]:
    """The README's `python -m dprec.main` command lines (continuations joined), without
    the usage template."""
    text = (REPO / "README.md").read_text()
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("&&")[-1].strip()
            if line.startswith("python -m dprec.main") and "DATASET" not in line:
                commands.append(re.sub(r"\s+", " ", line))
    return commands


def write_denoisingrec(prefix, n_users=40, n_items=30, value=5):
    rng = np.random.default_rng(0)
    for suffix, rows in ((".train.rating", 300), (".valid.rating", 60), (".test.negative", 60)):
        users = rng.integers(0, n_users, rows)
        items = rng.integers(0, n_items, rows)
        values = rng.choice([1, value], rows) if value > 1 else rng.integers(0, 2, rows)
        lines = [f"{u}\t{i}\t{v}" for u, i, v in zip(users, items, values, strict=True)]
        prefix.parent.mkdir(parents=True, exist_ok=True)
        (prefix.parent / (prefix.name + suffix)).write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def stand_ins(tmp_path_factory):
    """README path → a small file (or DenoisingRec prefix) of the same layout."""
    root = tmp_path_factory.mktemp("readme-data")
    write_denoisingrec(root / "adressa" / "adressa", value=1)
    write_denoisingrec(root / "electronics" / "electronics_5")
    write_denoisingrec(root / "yelp" / "yelp")
    rng = np.random.default_rng(1)
    clicks = pd.DataFrame(
        {
            "uid": [f"u{u}" for u in rng.integers(0, 150, 3000)],
            "sku": [f"s{i}" for i in rng.integers(0, 60, 3000)],
            "stars": rng.integers(1, 6, 3000),
        }
    )
    clicks.to_csv(root / "clicks.csv.gz", index=False)
    return {
        "/data/DenoisingRec/adressa": str(root / "adressa"),
        "/data/DeCA/electronics/electronics_5": str(root / "electronics" / "electronics_5"),
        "/data/DenoisingRec/yelp": str(root / "yelp"),
        "clicks.csv.gz": str(root / "clicks.csv.gz"),
    }


def as_args(command: str, stand_ins: dict[str, str], workdir) -> list[str]:
    args = shlex.split(command)[3:]  # after "python -m dprec.main"
    out = []
    for arg in args:
        key, sep, value = arg.partition("=")
        if sep and value in stand_ins:
            arg = f"{key}={stand_ins[value]}"
        if key == "--workdir":
            arg = f"--workdir={workdir}"
        out.append(arg)
    return out


COMMANDS = readme_commands()


def test_the_readme_has_the_commands_this_file_checks():
    assert len(COMMANDS) >= 10
    assert any("dataset=table" in c for c in COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_passes_its_checks(command, stand_ins, tmp_path):
    if ("modcloth" in command or "ml-100k" in command) and not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not available")
    proc = run_main(*as_args(command, stand_ins, tmp_path / "run"), "--dry_run")
    assert proc.returncode == 0, f"{command}\n{proc.stderr}"
    assert "config and data are valid" in proc.stdout
    assert not (tmp_path / "run").exists(), "--dry_run must write nothing"


def test_own_log_example_trains(stand_ins, tmp_path):
    """The own-log example: a CSV without a truth column trains to results (issue 11.10)."""
    command = next(c for c in COMMANDS if "dataset=table" in c)
    args = as_args(command, stand_ins, tmp_path / "run")
    proc = run_main(*args, "--config.train.num_epochs=2")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "run" / "results.json").is_file()


def test_quickstart_prints_a_few_lines_and_where_the_results_are(tmp_path):
    """A run prints dprec's own lines only: the data summary, one line per epoch, the test
    line and the results path; no orbax INFO flood, no 'Unable to initialize backend'."""
    command = COMMANDS[0]
    assert command == ("python -m dprec.main --config=configs/default.py --workdir=runs/quickstart")
    epochs = 4
    workdir = tmp_path / "quickstart"
    proc = run_main(*as_args(command, {}, workdir), f"--config.train.num_epochs={epochs}")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) <= epochs + 4, proc.stderr
    assert sum(bool(re.search(r"\] epoch \d+/", line)) for line in lines) == epochs
    assert not [line for line in lines if "orbax" in line or "backend" in line]
    assert lines[-1].endswith(f"results: {workdir}/results.json (table: {workdir}/results.md)")


def test_verbosity_flag_restores_third_party_logs(tmp_path):
    proc = run_main(
        "--config=configs/tiny.py",
        "--config.train.num_epochs=1",
        "--verbosity=0",
        f"--workdir={tmp_path / 'run'}",
    )
    assert proc.returncode == 0, proc.stderr
    assert "checkpoint" in proc.stderr.lower()  # orbax's INFO lines are back
