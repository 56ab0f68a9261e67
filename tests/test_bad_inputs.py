"""Bad inputs: one line on stderr naming the problem and the fix, exit status 2, no files.

A few representative cases run the CLI in a subprocess; the rest call the library functions
that raise the `UserInputError` which `dprec.main` turns into that line.
"""

import dataclasses
import subprocess
import sys

import pandas as pd
import pytest
from conftest import REPO

from dprec.errors import ConfigError, DataError, UserInputError

RESULT_FILES = ("results.json", "results.md", "metrics.jsonl", "config.json", "run_info.json")


def run_cli(workdir, *args, config="configs/tiny.py"):
    return subprocess.run(
        [sys.executable, "-m", "dprec.main", f"--config={config}", *args, f"--workdir={workdir}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_one_line_error(proc, *words):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("dprec: error: "), lines[0]
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def assert_no_results(workdir):
    if workdir.is_dir():
        assert not [p.name for p in workdir.iterdir() if p.name in RESULT_FILES]
    assert not workdir.exists(), "a bad input must fail before the workdir is created"


def write_csv(path, text):
    path.write_text(text)
    return path


# --- CLI: representative cases through a subprocess ------------------------------------------


@pytest.fixture
def ab_csv(tmp_path):
    return write_csv(tmp_path / "ab.csv", "a,b\n1,2\n3,4\n")


@pytest.mark.parametrize(
    "case",
    ["missing_file", "missing_column", "dataset_arg", "batch_size", "k_too_large"],
)
def test_cli_bad_input(tmp_path, ab_csv, case):
    args, words = {
        "missing_file": (
            ["--config.data.name=table", "--config.data.path=/nonexistent.csv"],
            ["not found", "/nonexistent.csv", "data.path"],
        ),
        "missing_column": (
            [
                f"--config.data.path={ab_csv}",
                "--config.data.name=table",
                "--config.data.columns.user=user_id",
            ],
            ["'user_id'", "data.columns.user"],
        ),
        "dataset_arg": ([], ["unknown dataset 'nope'", "choose one of"]),
        "batch_size": (["--config.train.batch_size=0"], ["train.batch_size", "got 0"]),
        "k_too_large": (["--config.eval.ks=5,500"], ["eval.ks", "500"]),
    }[case]
    workdir = tmp_path / "run"
    config = "configs/default.py:dataset=nope" if case == "dataset_arg" else "configs/tiny.py"
    proc = run_cli(workdir, *args, config=config)
    assert_one_line_error(proc, *words)
    assert_no_results(workdir)


def test_cli_workdir_is_a_file(tmp_path):
    workdir = write_csv(tmp_path / "not_a_dir", "x\n")
    proc = run_cli(workdir)
    assert_one_line_error(proc, "is a file", "--workdir")
    assert workdir.read_text() == "x\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not_a_dir"]


# --- Library: the same errors without a subprocess -------------------------------------------


def test_missing_data_file():
    from dprec.data.io import read_table
    from dprec.specs import ColumnSpec

    with pytest.raises(DataError, match="not found.*data.path"):
        read_table("/nonexistent.csv", ColumnSpec())


def test_data_path_is_a_directory(tmp_path):
    from dprec.data.io import read_table
    from dprec.specs import ColumnSpec

    with pytest.raises(DataError, match="directory"):
        read_table(str(tmp_path), ColumnSpec())


@pytest.mark.parametrize(
    ("columns", "named"),
    [
        ({"user": "user_id"}, "data.columns.user"),
        ({"user": "a", "item": "item_id"}, "data.columns.item"),
        ({"user": "a", "item": "b", "rating": "stars"}, "data.columns.rating"),
    ],
)
def test_missing_column(ab_csv, columns, named):
    from dprec.data.io import read_table
    from dprec.specs import ColumnSpec

    with pytest.raises(DataError, match=named) as err:
        read_table(str(ab_csv), ColumnSpec(**columns))
    assert "['a', 'b']" in str(err.value)
    assert "\n" not in str(err.value)


def test_columns_renamed_when_present(ab_csv):
    from dprec.data.io import read_table
    from dprec.specs import ColumnSpec

    frame = read_table(str(ab_csv), ColumnSpec(user="a", item="b"))
    assert list(frame.columns) == ["user", "item"]


def test_unreadable_file(tmp_path):
    from dprec.data.io import read_table
    from dprec.specs import ColumnSpec

    with pytest.raises(DataError, match="cannot read"):
        read_table(str(write_csv(tmp_path / "empty.csv", "")), ColumnSpec())


def _frame(ratings):
    n = len(ratings)
    return pd.DataFrame(
        {"user": [i % 37 for i in range(n)], "item": [i % 41 for i in range(n)], "rating": ratings}
    )


def test_empty_clean_test_after_filtering():
    from dprec.data.dataset import build_interaction_data
    from dprec.specs import DataSpec

    frame = _frame([1 + i % 4 for i in range(400)])  # every rating < 5
    with pytest.raises(DataError, match="test_clean set.*empty after filtering.*clean_threshold"):
        build_interaction_data(frame, DataSpec(clean_threshold=5.0), source="t.csv")
    # With threshold 4 the same frame is fine.
    data = build_interaction_data(frame, DataSpec(clean_threshold=4.0), source="t.csv")
    assert len(data.test_clean) > 0


def test_header_only_table(tmp_path):
    from dprec.data.dataset import build_interaction_data
    from dprec.data.io import read_table
    from dprec.specs import ColumnSpec, DataSpec

    path = write_csv(tmp_path / "header.csv", "user_id,item_id,rating\n")
    frame = read_table(str(path), ColumnSpec(rating="rating"))
    with pytest.raises(DataError, match="no interactions"):
        build_interaction_data(frame, DataSpec(), source=str(path))


def test_header_only_table_through_load_dataset(tmp_path):
    from dprec.data.registry import load_dataset
    from dprec.specs import ColumnSpec, DataSpec

    path = write_csv(tmp_path / "header.csv", "user_id,item_id,rating\n")
    spec = DataSpec(name="table", path=str(path), columns=ColumnSpec(rating="rating"))
    with pytest.raises(DataError, match="no interactions"):
        load_dataset(spec)


def test_non_integer_rating_with_threshold():
    from dprec.data.dataset import build_interaction_data
    from dprec.specs import DataSpec

    frame = _frame([4.5] + [5] * 399)
    with pytest.raises(DataError, match="non-integer rating 4.5.*clean_rule=none"):
        build_interaction_data(frame, DataSpec(clean_rule="rating"), source="t.csv")
    # Without a threshold rule, fractional ratings are accepted.
    build_interaction_data(frame, DataSpec(clean_rule="none"), source="t.csv")


def test_non_numeric_rating():
    from dprec.data.dataset import build_interaction_data
    from dprec.specs import DataSpec

    frame = _frame(["five"] + [5] * 399)
    with pytest.raises(DataError, match="non-numeric value 'five'"):
        build_interaction_data(frame, DataSpec(), source="t.csv")


def _spec(config, **overrides):
    from dprec.config.run_config import run_spec_from_config

    for key, value in overrides.items():
        section, field = key.split("__")
        config[section][field] = value
    return run_spec_from_config(config)


@pytest.mark.parametrize("batch_size", [0, -5])
def test_batch_size_not_positive(tiny_config, batch_size):
    with pytest.raises(ConfigError, match=f"train.batch_size.*got {batch_size}.*--config"):
        _spec(tiny_config, train__batch_size=batch_size)


def test_unknown_method_name_is_an_error_not_a_default(tiny_config):
    with pytest.raises(ConfigError, match="method.name='dfc' is not one of.*dvae"):
        _spec(tiny_config, method__name="dfc")


def test_unknown_model_name(tiny_config):
    with pytest.raises(ConfigError, match="model.name='nope' is not one of.*gmf"):
        _spec(tiny_config, model__name="nope")


@pytest.mark.parametrize(
    ("overrides", "pattern"),
    [
        ({"eval__ks": ()}, "eval.ks is empty"),
        ({"eval__ks": (5, 0)}, "eval.ks must be a positive integer"),
        ({"data__split": "time"}, "data.split='time'"),
        ({"data__clean_rule": "stars"}, "data.clean_rule='stars'"),
        ({"train__learning_rate": 0.0}, "train.learning_rate"),
        ({"eval__select_metric": "recall@50"}, "eval.select_metric='recall@50'"),
    ],
)
def test_other_config_errors(tiny_config, overrides, pattern):
    with pytest.raises(ConfigError, match=pattern):
        _spec(tiny_config, **overrides)


def test_unknown_config_field(tiny_config):
    tiny_config.train.batchsize = 4
    with pytest.raises(ConfigError, match="unknown config field train.batchsize"):
        _spec(tiny_config)


def test_unknown_dataset_argument():
    from dprec.config.presets import build_config

    with pytest.raises(ConfigError, match="unknown dataset 'nope'; choose one of"):
        build_config("dataset=nope")
    with pytest.raises(ConfigError, match="bad config argument"):
        build_config("nope")


def test_unknown_dataset_name():
    from dprec.data.registry import load_dataset
    from dprec.specs import DataSpec

    with pytest.raises(DataError, match="unknown dataset 'nope'; choose one of.*table"):
        load_dataset(DataSpec(name="nope"))


def test_table_without_path():
    from dprec.data.registry import load_dataset
    from dprec.specs import DataSpec

    with pytest.raises(DataError, match="data.path"):
        load_dataset(DataSpec(name="table"))


def test_k_larger_than_item_count_writes_nothing(tiny_config, tmp_path):
    from dprec import train

    spec = _spec(tiny_config, eval__ks=(5, 500))
    workdir = tmp_path / "run"
    with pytest.raises(ConfigError, match="eval.ks has K=500.*only \\d+ items"):
        train.run_spec(spec, str(workdir))
    assert_no_results(workdir)


def test_k_check_against_data(tiny_config):
    from dprec.data.registry import load_dataset
    from dprec.train import check_spec_against_data

    spec = _spec(tiny_config)
    data = load_dataset(spec.data)
    ok = dataclasses.replace(spec, eval=dataclasses.replace(spec.eval, ks=(data.n_items,)))
    check_spec_against_data(ok, data)
    bad = dataclasses.replace(spec, eval=dataclasses.replace(spec.eval, ks=(data.n_items + 1,)))
    with pytest.raises(ConfigError, match=f"choose K <= {data.n_items}"):
        check_spec_against_data(bad, data)


def test_workdir_is_a_file(tmp_path):
    from dprec.runs.rundir import RunWriter, check_workdir

    path = write_csv(tmp_path / "file", "x\n")
    for workdir in (path, path / "sub"):
        with pytest.raises(UserInputError, match="is a file"):
            check_workdir(workdir)
        with pytest.raises(UserInputError, match="is a file"):
            RunWriter(workdir)
    assert path.read_text() == "x\n"
