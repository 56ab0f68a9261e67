"""dprec-grid without training: expansion, names, resume, selection, job array, errors."""

import json
import os
import subprocess
import sys

import pytest
from conftest import REPO

from dprec.sweeps import grid

CONFIG = "configs/default.py:dataset=modcloth,model=gmf,method=dpi"
GRID_ARGS = [
    "--grid",
    "method.c1=1,10,100,1000",
    "--grid",
    "method.c2=1,10,100,1000",
    "--grid",
    "method.alpha=0,0.5,1",
    "--grid",
    "seed=0",
]


def complete(run_dir, valid=None):
    """Make `run_dir` a finished run (config.json, results.json with validation metrics)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps({"seed": 0, "method": {"name": "dpi"}}))
    results = {"best_epoch": 3, "valid": valid or {"recall@20": 0.1}, "test": {}}
    (run_dir / "results.json").write_text(json.dumps(results))


def small_plan(out):
    points = grid.name_points(grid.expand_grid({"method.c1": ["1", "10"], "seed": ["0"]}))
    return grid.Plan(CONFIG, out, {"train.num_epochs": "2"}, points)


def test_expand_grid_count_order_and_names():
    parsed = grid.parse_grid(GRID_ARGS[1::2])
    points = grid.expand_grid(parsed)
    assert len(points) == 4 * 4 * 3 * 1
    assert points[0] == {"method.c1": "1", "method.c2": "1", "method.alpha": "0", "seed": "0"}
    assert points[1]["method.alpha"] == "0.5"  # the last key varies fastest
    names = list(grid.name_points(points))
    assert len(set(names)) == 48
    assert names[0] == "c1=1,c2=1,alpha=0,seed=0"
    assert "c1=100,c2=10,alpha=0.5,seed=0" in names
    assert grid.expand_grid({}) == [{}]


def test_run_name_collisions_and_sanitising():
    assert grid.run_name({"method.l2": "1", "train.l2": "2", "seed": "0"}) == (
        "method.l2=1,train.l2=2,seed=0"
    )
    assert grid.run_name({"data.path": "a/b c.csv"}) == "path=a_b_c.csv"
    assert grid.run_name({}) == "default"
    long = grid.run_name({"x": "v" * 400})
    assert len(long) <= 200 and long != grid.run_name({"x": "v" * 401})
    assert grid.parse_assignment("eval.ks=5,20;10,50") == ("eval.ks", ["5,20", "10,50"])


@pytest.mark.parametrize(
    "bad", ["method.c1", "method.c1=", "method.c1=1,,2", "bad key=1", "=1", "1x=2"]
)
def test_bad_grid_syntax(bad):
    with pytest.raises(grid.GridError):
        grid.parse_grid([bad])


def test_duplicate_grid_key():
    with pytest.raises(grid.GridError, match="twice"):
        grid.parse_grid(["seed=0", "seed=1"])


def test_pending_runs_skip_complete(tmp_path):
    complete(tmp_path / "a")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "config.json").write_text("{}")  # started, not finished
    assert grid.pending_runs(tmp_path, ["a", "b", "c"]) == ["b", "c"]


def test_command(tmp_path):
    plan = small_plan(tmp_path / "out")
    cmd = grid.command(plan, "c1=10,seed=0", python="py")
    assert cmd == [
        "py",
        "-m",
        "dprec.main",
        f"--config={CONFIG}",
        f"--workdir={(tmp_path / 'out').resolve() / 'c1=10,seed=0'}",
        "--config.train.num_epochs=2",
        "--config.method.c1=10",
        "--config.seed=0",
    ]


def test_dry_run_writes_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    complete(out / "c1=1,c2=1,alpha=0,seed=0")
    args = ["--config", CONFIG, "--out", str(out), *GRID_ARGS, "--dry-run"]
    assert grid.main([*args, "--set", "train.num_epochs=40"]) == 0
    lines = capsys.readouterr().out.splitlines()
    commands = [line for line in lines if "dprec.main" in line]
    assert len(commands) == 47
    assert all("--config.train.num_epochs=40" in line for line in commands)
    assert "skipped c1=1,c2=1,alpha=0,seed=0 (results.json exists)" in lines
    assert lines[-1] == "grid: 48 runs: 47 to run, 1 skipped"
    assert sorted(p.name for p in out.iterdir()) == ["c1=1,c2=1,alpha=0,seed=0"]


def test_execute_runs_pending_in_parallel_and_reports_failures(tmp_path, monkeypatch, capsys):
    """A stand-in for dprec.main: writes results.json, or fails for c1=10."""
    script = (
        "import pathlib, sys; p = pathlib.Path(sys.argv[1]); "
        "sys.exit(3) if 'c1=10' in p.name else None; p.mkdir(); "
        "(p / 'results.json').write_text('{}'); print('trained')"
    )

    def fake_command(plan, name, python=sys.executable):
        return [python, "-c", script, str(plan.out.resolve() / name)]

    monkeypatch.setattr(grid, "command", fake_command)
    out = tmp_path / "out"
    points = grid.name_points(grid.expand_grid({"method.c1": ["1", "10", "100"], "seed": ["0"]}))
    complete(out / "c1=100,seed=0")
    plan = grid.Plan(CONFIG, out, {}, points)
    assert grid.execute(plan, jobs=2) == 1
    printed = capsys.readouterr().out.splitlines()
    assert "started c1=1,seed=0" in printed
    assert "skipped c1=100,seed=0 (results.json exists)" in printed
    assert any(line.startswith("done c1=1,seed=0 rc=0 ") for line in printed)
    assert any(line.startswith("FAILED c1=10,seed=0 rc=3 ") for line in printed)
    assert printed[-2] == "grid: 3 runs: 1 done, 1 skipped, 1 failed (c1=10,seed=0)"
    assert printed[-1] == (
        f"wrote {out / 'grid.json'}, 2 logs in {out / 'logs'} and the run directories {out}/NAME"
    )
    assert (out / "c1=1,seed=0" / "results.json").is_file()
    assert (out / "logs" / "c1=1,seed=0.log").read_text() == "trained\n"
    index = json.loads((out / "grid.json").read_text())
    assert index == {"config": CONFIG, "set": {}, "runs": points}
    # Resume: only the failed point is pending now.
    assert grid.pending_runs(out, points) == ["c1=10,seed=0"]


def test_index_refuses_another_config(tmp_path):
    plan = small_plan(tmp_path)
    grid.write_index(plan)
    other = grid.Plan(CONFIG.replace("gmf", "neumf"), tmp_path, plan.fixed, plan.points)
    with pytest.raises(grid.GridError, match="another config"):
        grid.write_index(other)


def test_array_script(tmp_path, capsys):
    out = tmp_path / "out"
    complete(out / "c1=1,c2=1,alpha=0,seed=0")
    script = tmp_path / "jobs" / "grid.sh"
    args = ["--config", CONFIG, "--out", str(out), *GRID_ARGS, "--array-script", str(script)]
    assert grid.main(args) == 0
    text = script.read_text()
    assert os.access(script, os.X_OK)
    assert f"sbatch --array=0-46 {script}" in text
    assert text.count("dprec.main --config=") == 47
    assert "c1=1,c2=1,alpha=0,seed=0'" not in text  # the complete run is left out
    assert 'task="${SLURM_ARRAY_TASK_ID:-$1}"' in text
    assert 'if [[ -f "$workdir/results.json" ]]' in text
    assert (out / "logs").is_dir()
    assert len(json.loads((out / "grid.json").read_text())["runs"]) == 48
    # Task 0 completes in the meantime: the task skips it instead of training.
    complete(out / "c1=1,c2=1,alpha=0.5,seed=0")
    proc = subprocess.run(["bash", str(script), "0"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0 and "skipped" in proc.stdout
    proc = subprocess.run(["bash", str(script), "47"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2


def make_grid_dir(tmp_path):
    """A finished grid of 3 settings: b and c tie on validation Recall@20 (0.3), a has 0.2."""
    directory = tmp_path / "grid"
    points = {
        "c1=1,seed=0": {"method.c1": "1", "seed": "0"},
        "c1=10,seed=0": {"method.c1": "10", "seed": "0"},
        "c1=100,seed=0": {"method.c1": "100", "seed": "0"},
    }
    grid.write_index(grid.Plan(CONFIG, directory, {"train.num_epochs": "5"}, points))
    for name, value in zip(points, (0.2, 0.3, 0.3), strict=True):
        complete(directory / name, {"recall@20": value, "ndcg@20": 0.5 - value})
    (directory / "unfinished").mkdir()
    return directory


def test_select_best(tmp_path):
    directory = make_grid_dir(tmp_path)
    (directory / "no-config").mkdir()  # results.json without config.json: not a finished run
    (directory / "no-config" / "results.json").write_text(json.dumps({"valid": {}}))
    runs = grid.load_runs(directory)
    assert [run["name"] for run in runs] == ["c1=1,seed=0", "c1=10,seed=0", "c1=100,seed=0"]
    assert grid.select_best(runs, "recall@20")["name"] == "c1=10,seed=0"  # tie: name order
    assert grid.select_best(runs, "ndcg@20")["name"] == "c1=1,seed=0"
    with pytest.raises(grid.GridError, match="recall@50"):
        grid.select_best(runs, "recall@50")


def test_select_cli_reruns_best_over_seeds(tmp_path, capsys):
    directory = make_grid_dir(tmp_path)
    out = tmp_path / "best"
    complete(out / "c1=10,seed=1")
    args = ["--select", str(directory), "--metric", "recall@20", "--seeds", "0,1,2"]
    assert grid.main([*args, "--out", str(out), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    table = [line for line in lines if line.startswith("| ")][1:]
    assert [row.split(" | ")[0] for row in table] == [
        "| **c1=10,seed=0**",
        "| c1=100,seed=0",
        "| c1=1,seed=0",
    ]
    commands = [line for line in lines if "dprec.main" in line]
    assert len(commands) == 2
    for seed, line in zip((0, 2), commands, strict=True):
        assert f"--workdir={out.resolve() / f'c1=10,seed={seed}'}" in line
        assert line.endswith(f"--config.seed={seed}") and line.count("--config.seed=") == 1
        assert "--config.method.c1=10 " in line and "--config.train.num_epochs=5" in line
    assert "skipped c1=10,seed=1 (results.json exists)" in lines


def test_select_without_seeds_only_prints(tmp_path, capsys):
    assert grid.main(["--select", str(make_grid_dir(tmp_path))]) == 0
    assert "best by valid recall@20: c1=10,seed=0" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args",
    [
        ["--out", "x", "--grid", "seed=0"],  # no --config
        ["--config", CONFIG, "--out", "x", "--grid", "method.c1="],
        ["--config", "configs/missing.py", "--out", "x"],
        ["--config", CONFIG, "--out", "x", "--jobs", "0"],
        ["--select", "missing-dir"],
        ["--select", ".", "--seeds", "0,1"],  # --seeds without --out
    ],
)
def test_bad_input_returns_2(args, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert grid.main(args) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    "args", [["--grid", "method.c1"], ["--grid", "method.c1=1,,2"], ["--select", "nowhere"]]
)
def test_cli_bad_input_exit_2(args, tmp_path):
    proc = subprocess.run(
        [sys.executable, "launch/grid.py", "--config", CONFIG, "--out", str(tmp_path / "o"), *args]
        if args[0] == "--grid"
        else [sys.executable, "launch/grid.py", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("grid: error:") and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_preset_keys_go_into_the_config_argument():
    merged = grid.config_with_presets(
        "configs/default.py:dataset=modcloth,method=dpi",
        {"preset.method": "tce", "preset.model": "cdae"},
    )
    assert merged == "configs/default.py:dataset=modcloth,method=tce,model=cdae"
    assert grid.config_with_presets("configs/tiny.py", {}) == "configs/tiny.py"
