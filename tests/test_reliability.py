"""Nothing lost, nothing silent (issue 11): each case is an input that once lost results, trained
to garbage, dropped rows silently or printed a traceback."""

import dataclasses
import gc
import gzip
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, run_main

from dprec import specs, train
from dprec.config import run_config
from dprec.config.presets import build_config
from dprec.data.dataset import build_interaction_data
from dprec.data.io import read_table
from dprec.errors import ConfigError, DataError, TrainingError, UserInputError
from dprec.methods import method_fields
from dprec.runs.checkpoint import CheckpointError, RunCheckpoints

TINY = "configs/tiny.py"


def one_error_line(proc, *words):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("dprec: error: ")
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished tiny DPI run with a checkpoint after every epoch."""
    workdir = tmp_path_factory.mktemp("finished") / "run"
    proc = run_main(f"--config={TINY}", "--config.train.checkpoint_every=1", f"--workdir={workdir}")
    assert proc.returncode == 0, proc.stderr
    return workdir


def snapshot(workdir):
    return {
        name: (workdir / name).read_bytes()
        for name in ("results.json", "results.md", "metrics.jsonl", "config.json")
    }


def copy_run(src, dst):
    subprocess.run(["cp", "-r", str(src), str(dst)], check=True)
    return dst


# --- 1. an unreadable checkpoint: one line, and the finished results survive ----------------


def test_corrupt_checkpoint_chunk_keeps_the_results(finished_run, tmp_path):
    workdir = copy_run(finished_run, tmp_path / "run")
    before = snapshot(workdir)
    chunks = sorted((workdir / "checkpoints" / "3" / "state").rglob("ocdbt.process_0/d/*"))
    assert chunks
    rng = np.random.default_rng(0)
    for chunk in chunks:  # every chunk: the one holding the read arrays is among them
        chunk.write_bytes(rng.bytes(chunk.stat().st_size))
    proc = run_main(f"--config={TINY}", "--config.train.checkpoint_every=1", f"--workdir={workdir}")
    line = one_error_line(proc, "checkpoints/3 is unreadable", "resume from epoch 2")
    assert "another --workdir" in line
    assert snapshot(workdir) == before


def test_verifying_a_corrupt_checkpoint_leaves_no_reads_behind(finished_run, tmp_path, monkeypatch):
    """Orbax's concurrent restore abandons its other reads when one fails, and their late
    failures surface as unraisable exceptions (stray tracebacks); the check reads one array at
    a time, so nothing is left to fail later."""
    workdir = copy_run(finished_run, tmp_path / "run")
    for chunk in (workdir / "checkpoints" / "3").rglob("ocdbt.process_0/d/*"):
        chunk.write_bytes(np.random.default_rng(1).bytes(chunk.stat().st_size))
    late_failures = []
    monkeypatch.setattr(sys, "unraisablehook", late_failures.append)
    with pytest.raises(CheckpointError, match="checkpoints/3 is unreadable"):
        RunCheckpoints(workdir).verify_latest()
    time.sleep(1.0)
    gc.collect()
    assert late_failures == []


def test_truncated_checkpoint_metadata_keeps_the_results(finished_run, tmp_path):
    workdir = copy_run(finished_run, tmp_path / "run")
    before = snapshot(workdir)
    metadata = workdir / "checkpoints" / "3" / "meta" / "metadata"
    metadata.write_bytes(metadata.read_bytes()[:10])
    tiny = _tiny_config()
    tiny.train.checkpoint_every = 1
    with pytest.raises(CheckpointError, match="checkpoints/3 is unreadable.*epoch 2"):
        train.train_and_evaluate(tiny, str(workdir))
    assert snapshot(workdir) == before


@pytest.mark.slow
def test_deleting_the_bad_checkpoint_resumes_from_the_previous_one(finished_run, tmp_path):
    workdir = copy_run(finished_run, tmp_path / "run")
    before = snapshot(workdir)
    subprocess.run(["rm", "-r", str(workdir / "checkpoints" / "3")], check=True)
    tiny = _tiny_config()
    tiny.train.checkpoint_every = 1
    train.train_and_evaluate(tiny, str(workdir))
    after = snapshot(workdir)
    # The same epochs again: identical metrics lines and results (timings aside).
    assert _without_timing(after["results.json"]) == _without_timing(before["results.json"])


def _without_timing(results: bytes) -> dict:
    import json

    def drop_seconds(node):
        # Wall-clock fields (the run's timing, each reference's fit time) differ between runs.
        if isinstance(node, dict):
            return {k: drop_seconds(v) for k, v in node.items() if k not in ("timing", "seconds")}
        if isinstance(node, list):
            return [drop_seconds(v) for v in node]
        return node

    return drop_seconds(json.loads(results))


def test_a_new_run_never_overwrites_finished_results_without_checkpoints(finished_run, tmp_path):
    workdir = copy_run(finished_run, tmp_path / "run")
    before = snapshot(workdir)
    subprocess.run(["rm", "-r", str(workdir / "checkpoints")], check=True)
    with pytest.raises(UserInputError, match="finished run but no checkpoint"):
        train.train_and_evaluate(_tiny_config(), str(workdir))
    assert snapshot(workdir) == before


def _tiny_config():
    from dprec.config.templates.tiny import get_config  # what the CLI's configs/tiny.py gives

    return get_config(None)


# --- 2. non-finite settings and a diverging loss ---------------------------------------------


@pytest.mark.parametrize(
    "field, value",
    [
        ("train.learning_rate", float("nan")),
        ("method.c1", float("inf")),
        ("method.c2", float("-inf")),
        ("train.l2", float("nan")),
        ("method.alpha", float("nan")),
        ("data.split_ratios", (0.8, float("nan"), 0.1)),
    ],
)
def test_non_finite_settings_are_rejected(field, value):
    config = _tiny_config()
    section, name = field.split(".")
    config[section][name] = value
    with pytest.raises(ConfigError, match=f"{field} must be a finite number"):
        run_config.run_spec_from_config(config)


def test_cli_rejects_nan_learning_rate_before_training(tmp_path):
    proc = run_main(
        f"--config={TINY}", "--config.train.learning_rate=nan", f"--workdir={tmp_path / 'r'}"
    )
    one_error_line(proc, "train.learning_rate must be a finite number")
    assert not (tmp_path / "r").exists()


def test_diverging_loss_stops_the_run_without_results(tmp_path):
    config = _tiny_config()
    config.train.learning_rate = 1e30  # finite, but the parameters overflow in epoch 1
    with pytest.raises(TrainingError, match="loss became (nan|inf) in epoch 1; lower"):
        train.train_and_evaluate(config, str(tmp_path / "run"))
    assert not (tmp_path / "run" / "results.json").exists()


# --- 3. blank ids are counted, and too many are an error -------------------------------------


def frame_with_blank_ids(n=1000, blank=30):
    rng = np.random.default_rng(0)
    users = rng.integers(0, 100, n).astype(object)
    items = rng.integers(0, 40, n).astype(object)
    users[: blank // 2] = np.nan
    items[blank // 2 : blank] = "  "
    return pd.DataFrame({"user": users, "item": items})


def table_spec(**changes):
    return specs.DataSpec(name="table", clean_rule="none", **changes)


def test_blank_ids_are_counted_in_the_summary():
    data = build_interaction_data(
        frame_with_blank_ids(), table_spec(max_dropped_fraction=0.05), source="x.csv"
    )
    assert data.dropped_rows == 30
    kept = len(data.train) + len(data.valid) + len(data.test)
    assert kept + data.duplicate_rows == 970  # every row with both ids: kept or a repeat
    assert "; dropped 30 rows with a blank or NaN user/item id" in data.summary()


def test_repeated_pairs_are_counted_in_the_summary():
    """Three copies of one pair and two of another: three repeats dropped, the first kept."""
    frame = pd.DataFrame(
        {
            "user": [f"u{u}" for u in range(60)] + ["u0", "u0", "u1"],
            "item": [f"i{u % 7}" for u in range(60)] + ["i0", "i0", "i1"],
        }
    )
    data = build_interaction_data(frame, table_spec(), source="x.csv")
    assert data.duplicate_rows == 3
    assert len(data.train) + len(data.valid) + len(data.test) == 60
    assert data.summary().endswith("; dropped 3 repeated (user, item) rows (kept the first)")


def test_too_many_blank_ids_is_an_error_naming_the_threshold():
    with pytest.raises(
        DataError, match=r"30 of 1000 rows .* \(3\.0%\).*max_dropped_fraction=0\.03"
    ):
        build_interaction_data(frame_with_blank_ids(), table_spec(), source="x.csv")


# --- 4-6. one line instead of a traceback, before JAX where possible -------------------------


def test_truncated_gzip_is_one_line(tmp_path):
    path = tmp_path / "clicks.csv.gz"
    rows = "".join(f"{u},{i}\n" for u, i in np.random.default_rng(0).integers(0, 999, (5000, 2)))
    whole = gzip.compress(("user_id,item_id\n" + rows).encode())
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError, match="truncated or corrupt"):
        read_table(str(path), specs.ColumnSpec())


def test_missing_config_file_is_one_line(tmp_path):
    proc = run_main("--config=configs/nope.py", f"--workdir={tmp_path / 'r'}")
    one_error_line(proc, "config file configs/nope.py not found", "repository root")
    assert not (tmp_path / "r").exists()  # refused before a run directory was made


def test_config_errors_come_before_the_training_modules_load(tmp_path):
    script = (
        "import runpy, sys\n"
        f"sys.argv = ['dprec.main', '--config={TINY}', '--config.train.num_epochs=0',"
        f" '--workdir={tmp_path / 'r'}']\n"
        "try:\n    runpy.run_module('dprec.main', run_name='__main__')\n"
        "except SystemExit as exit:\n"
        "    loaded = ('dprec.train', 'orbax.checkpoint', 'jax', 'flax')\n"
        "    print(exit.code, *(name in sys.modules for name in loaded))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    # JAX not imported either: the config's presets come from the methods' cards.
    assert proc.stdout.split() == ["2", "False", "False", "False", "False"], proc.stderr
    assert "train.num_epochs must be a positive integer" in proc.stderr


def test_unwritable_workdir_fails_before_the_data_is_read(tmp_path):
    proc = run_main(f"--config={TINY}", "--workdir=/proc/dprec-run")
    one_error_line(proc, "workdir /proc/dprec-run is not writable", "writable --workdir")


def test_unknown_config_key_names_the_field_and_lists_its_section(tmp_path):
    proc = run_main(f"--config={TINY}", "--config.train.nonexistent=1", f"--workdir={tmp_path}")
    line = one_error_line(proc, "unknown config field train.nonexistent")
    for field in ("num_epochs", "batch_size", "learning_rate", "checkpoint_every"):
        assert field in line


# --- 9. help ----------------------------------------------------------------------------------


def test_help_exits_0_and_lists_the_choices_and_the_override_syntax():
    from dprec.config import presets

    proc = run_main("--help")
    assert proc.returncode == 0
    for name in (*presets.DATASETS, *presets.MODELS, *presets.METHODS, *presets.MODES):
        assert name in proc.stdout, name
    assert "--config.SECTION.FIELD=VALUE" in proc.stdout
    assert proc.stdout.count("python -m dprec.main --config=") >= 3  # usage + two examples


def test_config_help_lists_every_field_with_its_default():
    proc = run_main("--config_help")
    assert proc.returncode == 0
    names = [f"train.{field.name}" for field in dataclasses.fields(specs.TrainSpec)]
    names += ["method.name"] + [
        f"method.{name}"
        for name, field in method_fields().items()
        if not dataclasses.is_dataclass(field.default)  # aux, noise: shown field by field
    ]
    for name in names:
        assert f"  {name} = " in proc.stdout, name
    assert "method.c1 = 1000.0  # C1, weight of f on sampled negatives in DP" in proc.stdout
    # Nested sections show the parent's default (g and h are MF), not their class's (GMF).
    defaults = build_config()
    assert defaults.method.aux.name == defaults.method.noise.name == "mf"
    assert defaults.model.name == "gmf"
    shown = {
        "method.aux.name": defaults.method.aux.name,
        "method.noise.name": defaults.method.noise.name,
        "model.name": defaults.model.name,
    }
    for name, expected in shown.items():
        assert f"  {name} = {expected!r}  #" in proc.stdout, name


# --- 10. a table dataset starts neutral -------------------------------------------------------


def test_table_dataset_has_no_synthetic_columns():
    config = build_config("dataset=table,method=dpi")
    assert config.data.columns.truth == ""
    assert config.data.columns.rating == ""
    assert config.data.clean_rule == "none"
    # The synthetic default names no columns either, so data.name=table starts neutral too.
    assert build_config().data.columns.truth == ""


# --- 11. checkpoint cost -----------------------------------------------------------------------


def test_time_based_checkpoints_cost_at_most_a_tenth(monkeypatch):
    clock = {"now": 0.0}
    monkeypatch.setattr(train.time, "perf_counter", lambda: clock["now"])
    due = train._checkpoint_policy(every=0, last_epoch=1000)
    saves = []
    for epoch in range(1, 1001):
        clock["now"] += 1.0  # an epoch takes 1 s
        if due(epoch):
            clock["now"] += 2.0  # a save takes 2 s
            due.saved()
            saves.append(epoch)
    assert saves[0] == 1 and saves[-1] == 1000
    assert 2.0 * len(saves) <= 0.11 * clock["now"]
    fixed = train._checkpoint_policy(every=3, last_epoch=10)
    assert [e for e in range(1, 11) if fixed(e)] == [3, 6, 9, 10]
