"""dprec-tune on tiny data: planted best setting, noisy validation, report, resume, errors.

Every trial is a real `python -m dprec.main` subprocess on configs/tiny.py (3 epochs), so the
planted tune is shared by the tests that read its output (one tune, several assertions).
"""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import REPO

pytest.importorskip("optuna")

from dprec.sweeps import tune  # noqa: E402  (after the optuna check)

TINY = "configs/tiny.py:method=normal"
GOOD_LR, HOPELESS_LR = 0.05, 1e-6  # 3 tiny epochs: 0.05 learns, 1e-6 does not move


def tune_cmd(out, *args):
    return [sys.executable, "-m", "dprec.sweeps.tune", "--out", str(out), *args]


def run_tune(out, *args, timeout=600):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        tune_cmd(out, *args), cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )


def read_trials(out):
    with open(out / "trials.csv") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """Four trials over two learning rates, pruning after one trial; the best over seeds 0, 1."""
    out = tmp_path_factory.mktemp("tune") / "planted"
    space = json.dumps({"train.learning_rate": [HOPELESS_LR, GOOD_LR]})
    proc = run_tune(
        out,
        *("--config", TINY, "--trials", "4", "--space", space, "--seeds", "0,1"),
        *("--prune-startup", "1"),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out, proc.stdout


@pytest.mark.slow
def test_picks_the_planted_better_setting(planted):
    out, stdout = planted
    summary = json.loads((out / "tune.json").read_text())
    rows = read_trials(out)
    tried = {float(row["train.learning_rate"]) for row in rows}
    assert tried == {GOOD_LR, HOPELESS_LR}  # the planted case tried both settings
    assert summary["best"]["params"] == {"train.learning_rate": GOOD_LR}
    complete = [row for row in rows if row["state"] == "COMPLETE"]
    best_row = max(complete, key=lambda row: float(row["value"]))
    assert summary["best"]["value"] == pytest.approx(float(best_row["value"]))
    assert summary["best"]["trial"] == int(best_row["number"])
    # the best value is the run's own validation at its best epoch (results.json)
    results = json.loads((out / summary["best"]["run_dir"] / "results.json").read_text())
    assert summary["best"]["value"] == pytest.approx(results["valid"]["recall@20"])
    hopeless = [row for row in rows if float(row["train.learning_rate"]) == HOPELESS_LR]
    assert all(float(row["value"]) < summary["best"]["value"] - 0.03 for row in hopeless)
    n = summary["trials"]
    assert n["complete"] + n["pruned"] == 4 and n["failed"] == 0
    assert n["complete"] + n["pruned"] + n["failed"] == len(rows) == n["total"]
    assert summary["metric"] == "recall@20" and summary["valid_set"] == "noisy"
    # one progress line per finished trial, with its state and the best so far
    lines = [line for line in stdout.splitlines() if line.startswith("trial ")]
    assert len(lines) == 4 and all(" best=" in line for line in lines)


def test_hopeless_setting_after_a_good_one_is_pruned(planted):
    out, _ = planted
    rows = read_trials(out)
    first_good = min(
        int(row["number"]) for row in rows if float(row["train.learning_rate"]) == GOOD_LR
    )
    later_hopeless = [
        row
        for row in rows
        if float(row["train.learning_rate"]) == HOPELESS_LR and int(row["number"]) > first_good
    ]
    ran = [row for row in later_hopeless if not row["duplicate_of"]]
    assert ran and all(row["state"] == "PRUNED" and row["pruned_at"] == "1" for row in ran)
    # a repeated setting reuses the first run's value instead of training again
    for row in rows:
        if row["duplicate_of"]:
            original = rows[int(row["duplicate_of"])]
            assert row["state"] == original["state"]
            assert row["train.learning_rate"] == original["train.learning_rate"]


def test_every_trial_validates_on_the_noisy_split(planted):
    out, _ = planted
    run_dirs = {row["run_dir"] for row in read_trials(out)}
    assert run_dirs
    for run_dir in run_dirs:
        config = json.loads((out / run_dir / "config.json").read_text())
        assert config["eval"]["valid_set"] == "noisy"
        assert config["eval"]["select_metric"] == "recall@20"
        assert config["train"]["num_epochs"] == 3


def test_best_over_seeds_is_a_run_tree_the_report_reads(planted):
    out, stdout = planted
    best = out / "best"
    index = json.loads((best / "grid.json").read_text())
    assert set(index["runs"]) == {"seed=0", "seed=1"}
    assert index["set"]["train.learning_rate"] == repr(GOOD_LR)
    for seed in (0, 1):
        config = json.loads((best / f"seed={seed}" / "config.json").read_text())
        assert config["seed"] == seed and config["train"]["learning_rate"] == GOOD_LR
        assert config["eval"]["valid_set"] == "noisy"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "dprec.tools.report", str(best)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    normal = [line for line in proc.stdout.splitlines() if line.startswith("| Normal")]
    assert normal and all(line.rstrip(" |").endswith("2") for line in normal)  # n = 2 seeds
    summary = json.loads((out / "tune.json").read_text())
    seeds = summary["best_over_seeds"]["runs"]
    assert set(seeds) == {"seed=0", "seed=1"}
    # seed 0 is the best trial's own run (same config), reused, not retrained
    assert seeds["seed=0"]["valid"] == pytest.approx(summary["best"]["value"])
    # The reference rows of the reruns (configs/tiny.py fits four), averaged over the seeds,
    # and one line against the best of them.
    references = summary["best_over_seeds"]["references_test_paper"]
    assert set(references) == {"popularity", "itemknn", "rp3beta", "ease"}
    for name, mean in references.items():
        runs = [json.loads((best / f"seed={s}" / "results.json").read_text()) for s in (0, 1)]
        values = [run["test"][f"{name}_paper"]["recall@20"] for run in runs]
        assert mean == pytest.approx(sum(values) / 2)
    best_name = max(references, key=references.get)
    line = next(x for x in stdout.splitlines() if "the best reference" in x)
    assert f"{references[best_name]:.4f}" in line and line.startswith("best over seeds: paper")


def _processes_mentioning(text):
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                if text.encode() in handle.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found


@pytest.mark.slow
def test_resume_after_kill(tmp_path):
    """SIGKILL the tuner while trial 1 runs; the same command finishes the two trials."""
    out = tmp_path / "resume"
    args = (
        "--config",
        TINY,
        "--trials",
        "2",
        "--seeds",
        "0",
        "--valid",
        "clean",
        "--max-epochs",
        "8",
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        tune_cmd(out, *args), cwd=REPO, env=env, stdout=subprocess.PIPE, text=True
    )
    first = ""
    for line in proc.stdout:
        if line.startswith("trial 0 "):
            first = line
            break
    assert "COMPLETE" in first, first
    metrics = out / "trials" / "0001" / "metrics.jsonl"
    deadline = time.monotonic() + 120
    # after trial 1's second epoch, so its first is checkpointed and the rerun resumes it
    while len(tune.read_epochs(metrics)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    deadline = time.monotonic() + 10  # the running trial dies with the tuner
    while _processes_mentioning(str(out / "trials")) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _processes_mentioning(str(out / "trials"))
    trial0 = (out / "trials" / "0000" / "results.json").stat().st_mtime_ns

    again = run_tune(out, *args)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "trial 1 was left RUNNING by a killed tune" in again.stdout
    rows = read_trials(out)
    states = [row["state"] for row in rows]
    assert states.count("COMPLETE") + states.count("PRUNED") == 2
    assert states.count("FAIL") == 1 and rows[1]["state"] == "FAIL"
    retry = [row for row in rows if row["retry_of"] == "1"]
    assert len(retry) == 1 and retry[0]["state"] in ("COMPLETE", "PRUNED")
    assert retry[0]["run_dir"] == "trials/0001"  # the same run directory, resumed
    # Trial 0 was the preset (configs/tiny.py: learning rate 1e-3, λ0 1e-3).
    assert float(rows[0]["train.learning_rate"]) == 1e-3 and float(rows[0]["train.l2"]) == 1e-3
    assert retry[0]["train.learning_rate"] == rows[1]["train.learning_rate"]
    assert retry[0]["train.l2"] == rows[1]["train.l2"]
    assert (out / "trials" / "0000" / "results.json").stat().st_mtime_ns == trial0  # not rerun
    epochs = [json.loads(line)["epoch"] for line in metrics.read_text().splitlines()]
    assert epochs == list(range(1, 9))
    assert sorted(p.name for p in (out / "trials").iterdir()) == ["0000", "0001"]
    summary = json.loads((out / "tune.json").read_text())
    assert summary["trials"]["failed"] == 1 and summary["valid_set"] == "clean"
    assert summary["preset_first"] is True
    config = json.loads((out / "trials" / "0001" / "config.json").read_text())
    assert config["eval"]["valid_set"] == "clean"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--config", "configs/tiny.py:method=foo", "--trials", "2"], "unknown method 'foo'"),
        (["--config", TINY, "--trials", "0"], "--trials must be at least 1"),
        (["--config", TINY, "--trials", "2", "--metric", "recall@7"], "unknown metric"),
        (["--config", TINY, "--trials", "2", "--space", "{bad"], "bad --space"),
        (["--config", TINY, "--trials", "2", "--seeds", "a"], "bad --seeds"),
        (["--config", "nope.py", "--trials", "2"], "not found"),
    ],
)
def test_bad_input_one_line_exit_2(tmp_path, capsys, args, message):
    out = tmp_path / "bad"
    assert tune.main([*args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and err.startswith("tune: error:")
    assert not out.exists()  # nothing written


def test_bad_input_from_the_command_line(tmp_path):
    for bad in (["--trials", "x"], ["--trials", "2", "--valid", "dirty"]):
        proc = run_tune(tmp_path / "bad", "--config", TINY, *bad, timeout=120)
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
        assert proc.stderr.startswith("tune: error:")
    proc = run_tune(tmp_path / "bad", "--config", "configs/tiny.py:method=nope", "--trials", "1")
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "tune: error: unknown method 'nope'; dprec-tune knows normal, wbpr, tce, rce, dcf, "
        "crossdenoise, dpi, dvae, bpr, softmax, bsl, pda, relmf, udt, pld"
    )


def test_space_table_and_parsing():
    from dprec.methods import METHOD_NAMES

    for method in METHOD_NAMES:  # the common space, then the card's fields' spaces
        assert list(tune.method_space(method))[:2] == ["train.learning_rate", "train.l2"]
    assert list(tune.method_space("dcf"))[2:] == [
        f"method.{field}"
        for field in ("drop_rate", "num_gradual", "relabel_ratio", "co_lambda", "dcf_window")
    ]
    assert tune.method_space("normal") == tune.COMMON
    cross = tune.method_space("crossdenoise")  # α ≤ β for every sample
    assert cross["method.factor_lower"].high <= cross["method.factor_upper"].low
    dpi = tune.method_space("dpi")
    assert dpi["method.c1"].values == (1.0, 10.0, 100.0, 1000.0)
    assert dpi["method.alpha"].values == (0.0, 0.5, 1.0)
    assert dpi["train.learning_rate"] == tune.Float(1e-4, 1e-2, log=True)
    parsed = tune.parse_space('{"a.b": [1, 2], "c.d": {"low": 0.1, "high": 1, "log": true}}')
    assert parsed == {"a.b": tune.Choice((1, 2)), "c.d": tune.Float(0.1, 1.0, log=True)}
    assert tune.parse_space('{"e.f": {"low": 1, "high": 9, "int": true, "step": 2}}') == {
        "e.f": tune.Int(1, 9, 2)
    }
    assert tune.override_value(1e-6) == "1e-06" and tune.override_value(True) == "true"
    with pytest.raises(tune.TuneError, match="log range"):
        tune.parse_space('{"a.b": {"low": 0, "high": 1, "log": true}}')


def test_a_new_study_tries_the_preset_first(tmp_path):
    """Trial 0 of a new study is the preset: every searched key at the config's value; none
    when one key's preset lies outside its range or the config has no such key."""
    config = tune.load_config("configs/default.py:dataset=ml-100k,model=gmf,method=tce")
    space = tune.method_space("tce")
    first = tune.preset_params(config, space, {})
    assert set(first) == set(space)
    assert first["train.learning_rate"] == config.train.learning_rate == 1e-3
    assert first["method.drop_rate"] == config.method.drop_rate
    assert first["method.num_gradual"] == config.method.num_gradual
    outside = {**space, "train.learning_rate": tune.Float(0.1, 1.0)}
    assert tune.preset_params(config, outside, {}) == {}
    assert tune.preset_params(config, {"train.learning_rate.x": tune.Float(0, 1)}, {}) == {}
    assert tune.preset_params(config, {"train.nope": tune.Float(0, 1)}, {}) == {}
    assert tune.Int(1, 9, 2).contains(5) and not tune.Int(1, 9, 2).contains(4)
    assert tune.Choice((0.1, 1.0)).contains(1.0) and not tune.Choice((0.1,)).contains(0.2)


def test_a_reopened_study_samples_new_settings(tmp_path):
    """Topping up a study (a rerun with more --trials, or after a kill) must not propose the
    first trials' settings again: the sampler's seed moves on with the stored trials."""
    space = {"x": tune.Float(0.0, 1.0)}
    settings = {"config": "c", "space": tune.describe_space(space)}
    job = tune.Tune("c", tmp_path, {}, space, "recall@20", 1, 0)

    def objective(trial):
        return space["x"].suggest(trial, "x")

    tmp_path.mkdir(exist_ok=True)
    tune.open_study(job, settings, 5, 0, "none").optimize(objective, n_trials=3)
    tune.open_study(job, settings, 5, 0, "none").optimize(objective, n_trials=3)
    values = [t.params["x"] for t in tune.open_study(job, settings, 5, 0, "none").trials]
    assert len(values) == 6 and len(set(values)) == 6
