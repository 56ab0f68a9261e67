"""Dataset presets and formats: the DenoisingRec layout, fixed id spaces, Adressa, Electronics,
ML-100k and the synthetic data at Electronics scale."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
from conftest import SHARED_DATA

from dprec.config.presets import build_config
from dprec.config.run_config import run_spec_from_config
from dprec.data import synthetic
from dprec.data.registry import load_dataset
from dprec.errors import ConfigError, DataError
from dprec.specs import DataSpec, SyntheticSpec


def _data_spec(arg, **changes):
    return dataclasses.replace(run_spec_from_config(build_config(arg)).data, **changes)


def _write(path, rows):
    path.write_text("".join("\t".join(str(v) for v in row) + "\n" for row in rows))


def _small_layout(tmp_path, name="shop", noisy=True):
    """train/valid/test over user ids 10..13 and item ids 100..104 (ratings 1-5)."""
    _write(
        tmp_path / f"{name}.train.rating", [(10, 100, 5), (10, 101, 2), (11, 100, 4), (12, 102, 5)]
    )
    _write(tmp_path / f"{name}.valid.rating", [(11, 103, 5), (12, 100, 1)])
    test = [(10, 104, 5), (13, 101, 3), (12, 103, 5)]
    if noisy:
        _write(tmp_path / f"{name}.test.noisy", test)
    _write(tmp_path / f"{name}.test.negative", [row for row in test if row[2] == 5])
    return tmp_path / name


def test_denoisingrec_reader_small_files(tmp_path):
    prefix = _small_layout(tmp_path)
    spec = DataSpec(name="table", format="denoisingrec", split="column", path=str(prefix))
    data = load_dataset(spec)
    assert (data.n_users, data.n_items) == (4, 5)
    assert list(data.user_ids) == [10, 11, 12, 13] and list(data.item_ids) == [
        100,
        101,
        102,
        103,
        104,
    ]
    assert (len(data.train), len(data.valid), len(data.valid_clean)) == (4, 2, 1)
    assert len(data.test) == 3  # test.noisy
    clean = data.test_clean
    pairs = set(zip(data.user_ids[clean.users], data.item_ids[clean.items], strict=True))
    assert pairs == {(10, 104), (12, 103)}  # test.negative
    # A directory with one *.train.rating and the train file itself name the same layout.
    for path in (tmp_path, tmp_path / "shop.train.rating"):
        again = load_dataset(dataclasses.replace(spec, path=str(path)))
        assert again.fingerprint == data.fingerprint


def test_denoisingrec_without_noisy_test_and_tuple_lines(tmp_path):
    # DenoisingRec's Adressa: no test.noisy, test.negative lines "(u, i)\tneg\tneg...", 2-column
    # train file, flag column (1 = clean) in valid.
    _write(tmp_path / "news.train.rating", [(0, 1), (1, 2), (2, 0)])
    _write(tmp_path / "news.valid.rating", [(0, 2, 1), (1, 0, 0)])
    _write(tmp_path / "news.test.negative", [("(2, 1)", 5, 6), ("(0, 3)", 1, 2), ("(0, 3)", 4, 2)])
    spec = DataSpec(
        name="table",
        format="denoisingrec",
        split="column",
        clean_rule="flag",
        path=str(tmp_path / "news"),
    )
    data = load_dataset(spec)
    assert len(data.valid_clean) == 1 and len(data.valid) == 2
    assert len(data.test_clean) == 2  # duplicate line dropped
    assert len(data.test) == len(data.test_clean)  # the clean test is the only test


def test_denoisingrec_errors(tmp_path):
    prefix = _small_layout(tmp_path)
    (tmp_path / "shop.valid.rating").unlink()
    spec = DataSpec(name="table", format="denoisingrec", split="column", path=str(prefix))
    with pytest.raises(DataError, match=r"shop\.valid\.rating"):
        load_dataset(spec)
    _small_layout(tmp_path, name="other")
    with pytest.raises(DataError, match="2 .*train.rating"):
        load_dataset(dataclasses.replace(spec, path=str(tmp_path)))
    with pytest.raises(ConfigError, match="data.split=column"):
        load_dataset(dataclasses.replace(spec, path=str(tmp_path / "other"), split="random"))
    _write(tmp_path / "bad.train.rating", [("u1", 3, 5)])
    _write(tmp_path / "bad.valid.rating", [(1, 3, 5)])
    _write(tmp_path / "bad.test.negative", [(1, 3, 5)])
    with pytest.raises(DataError, match="non-numeric user 'u1'"):
        load_dataset(dataclasses.replace(spec, path=str(tmp_path / "bad")))


def test_fixed_id_space_keeps_ids_and_rejects_out_of_range(tmp_path):
    prefix = _small_layout(tmp_path)
    spec = DataSpec(
        name="table",
        format="denoisingrec",
        split="column",
        path=str(prefix),
        n_users=20,
        n_items=200,
    )
    data = load_dataset(spec)
    assert (data.n_users, data.n_items) == (20, 200)
    assert set(data.train.users) == {10, 11, 12} and 104 in set(data.test.items)
    with pytest.raises(DataError, match=r"item id 100 in .* 0\.\.99; set data.n_items"):
        load_dataset(dataclasses.replace(spec, n_items=100))


def _modcloth_frame():
    return pd.read_csv(SHARED_DATA / "modcloth" / "modcloth.csv.gz")


def test_modcloth_in_denoisingrec_layout_equals_the_csv(tmp_path, modcloth_path):
    frame = _modcloth_frame()
    columns = ["user_id", "item_id", "rating"]
    for split, suffix in (
        ("train", "train.rating"),
        ("valid", "valid.rating"),
        ("test", "test.noisy"),
    ):
        part = frame[frame.split == split][columns]
        part.to_csv(tmp_path / f"modcloth.{suffix}", sep="\t", header=False, index=False)
    test = frame[frame.split == "test"]
    test[test.rating == 5][columns].to_csv(
        tmp_path / "modcloth.test.negative", sep="\t", header=False, index=False
    )
    from_csv = load_dataset(_data_spec("dataset=modcloth", path=str(modcloth_path)))
    layout = _data_spec("dataset=modcloth", format="denoisingrec", path=str(tmp_path / "modcloth"))
    from_layout = load_dataset(layout)
    assert from_layout.fingerprint == from_csv.fingerprint
    assert len(from_layout.test_clean) == 5433


def _held_out(name):
    path = SHARED_DATA / name / f"{name}_valid_test.csv.gz"
    if not path.exists():
        pytest.skip(f"{path} not available")
    return pd.read_csv(path)


def test_electronics_held_out_data_through_the_preset(tmp_path):
    frame = _held_out("electronics")
    valid, test = frame[frame.split == "valid"], frame[frame.split == "test"]
    columns = ["user_id", "item_id", "rating"]
    # No train split is published here: half of valid stands in for it.
    half = len(valid) // 2
    for part, suffix in (
        (valid[:half], "train.rating"),
        (valid[half:], "valid.rating"),
        (test, "test.noisy"),
    ):
        part[columns].to_csv(tmp_path / f"e.{suffix}", sep="\t", header=False, index=False)
    test[test.rating == 5][columns].to_csv(
        tmp_path / "e.test.negative", sep="\t", header=False, index=False
    )
    data = load_dataset(_data_spec("dataset=electronics", path=str(tmp_path / "e")))
    assert (data.n_users, data.n_items) == (1_157_633, 9_560)  # Table 1, ids kept
    assert (len(data.test), len(data.test_clean)) == (129_295, 75_674)
    assert len(data.valid_clean) == int((valid[half:].rating == 5).sum())
    np.testing.assert_array_equal(data.test.users, test.user_id.to_numpy())


def test_adressa_held_out_data_through_the_preset(tmp_path):
    frame = _held_out("adressa")
    valid = frame[frame.split == "valid"]
    half = len(valid) // 2
    # DenoisingRec's layout: valid = test_noisy + valid; test.negative = the clean test.
    valid[:half][["user_id", "item_id", "clean"]].to_csv(
        tmp_path / "a.train.rating", sep="\t", header=False, index=False
    )
    held = pd.concat([frame[frame.split == "test_noisy"], valid[half:]])
    held[["user_id", "item_id", "clean"]].to_csv(
        tmp_path / "a.valid.rating", sep="\t", header=False, index=False
    )
    clean = frame[frame.split == "test_clean"]
    lines = [f"({u}, {i})\t7\t8\n" for u, i in zip(clean.user_id, clean.item_id, strict=True)]
    (tmp_path / "a.test.negative").write_text("".join(lines))
    data = load_dataset(_data_spec("dataset=adressa", path=str(tmp_path / "a")))
    assert (data.n_users, data.n_items) == (212_231, 6_596)
    assert len(data.test_clean) == 18_028  # 18,632 rows, 18,028 distinct pairs
    assert len(data.valid_clean) == int(held.drop_duplicates(["user_id", "item_id"]).clean.sum())


def test_adressa_default_files_explain_the_missing_train_split():
    if not (SHARED_DATA / "adressa").exists():
        pytest.skip("../shared/data not available")
    with pytest.raises(DataError, match="held-out splits of adressa"):
        load_dataset(_data_spec("dataset=adressa"))


def test_adressa_table_with_timestamps_splits_chronologically(tmp_path):
    rng = np.random.default_rng(0)
    n = 600
    frame = pd.DataFrame(
        {
            "user_id": rng.integers(0, 50, n),
            "item_id": rng.integers(0, 40, n),
            "dwell_flag": rng.integers(0, 2, n),
            "time": rng.permutation(n) * 10,
        }
    ).drop_duplicates(["user_id", "item_id"])
    path = tmp_path / "adressa.csv"
    frame.to_csv(path, index=False)
    spec = _data_spec(
        "dataset=adressa",
        format="table",
        split="chrono",
        path=str(path),
        n_users=0,
        n_items=0,
        columns=dataclasses.replace(DataSpec().columns, clean="dwell_flag", timestamp="time"),
    )
    data = load_dataset(spec)
    stamp = dict(zip(zip(frame.user_id, frame.item_id, strict=True), frame.time, strict=True))

    def times(part):
        pairs = zip(data.user_ids[part.users], data.item_ids[part.items], strict=True)
        return np.array([stamp[pair] for pair in pairs])

    assert times(data.train).max() < times(data.valid).min() < times(data.test).min()
    assert len(data.train) == int(0.8 * len(frame))


def test_ml100k_preset():
    path = SHARED_DATA / "ml-100k" / "ml-100k.csv.gz"
    if not path.exists():
        pytest.skip("ml-100k not available")
    data = load_dataset(_data_spec("dataset=ml-100k"))
    assert (data.n_users, data.n_items) == (943, 1682)
    assert (len(data.train), len(data.valid), len(data.test)) == (80_000, 10_000, 10_000)
    assert np.all(data.test_clean.ratings == 5)
    assert len(data.test_clean) == int(np.sum(data.test.ratings == 5))


@pytest.mark.parametrize("dataset", ["adressa", "electronics", "ml-100k", "synthetic-electronics"])
def test_presets_validate(dataset):
    spec = run_spec_from_config(build_config(f"dataset={dataset},model=gmf,method=dpi"))
    assert spec.data.name == dataset
    expected = (10, 50) if "electronics" in dataset else (5, 20)
    assert spec.eval.ks == expected
    lazy = "electronics" in dataset  # the scale mode at Electronics size only
    assert spec.train.updates == ("lazy" if lazy else "dense")


def test_electronics_presets_take_the_authors_settings():
    spec = run_spec_from_config(build_config("dataset=synthetic-electronics,model=gmf,method=dpi"))
    assert (spec.method.c1, spec.method.c2, spec.method.alpha) == (1000.0, 10.0, 1.0)
    assert (spec.train.l2, spec.train.num_epochs) == (0.01, 15)


def test_power_law_degrees_hit_the_total_exactly():
    rng = np.random.default_rng(0)
    degrees = synthetic.user_degrees(rng, 5000, 5600, max_degree=300)
    assert degrees.sum() == 5600 and degrees.min() >= 1
    assert (degrees == 1).mean() > 0.8  # heavy mass at one interaction, like Electronics


def test_generator_at_scale_matches_requested_statistics():
    spec = SyntheticSpec(
        n_users=20_000,
        n_items=600,
        n_interactions=26_000,
        popularity_exponent=1.1,
        noisy_positive_rate=0.7,
        n_clusters=20,
        seed=3,
    )
    frame = synthetic.generate(spec)
    assert frame.user.nunique() == 20_000 and frame.user.max() == 19_999
    assert 0.97 * 26_000 <= len(frame) <= 26_000
    assert not frame.duplicated(["user", "item"]).any()
    counts = np.sort(frame.item.value_counts().to_numpy())[::-1]
    ranks = np.arange(1, counts.size + 1)
    slope = np.polyfit(np.log(ranks[5:300]), np.log(counts[5:300]), 1)[0]
    assert -1.4 < slope < -0.8  # Zipf exponent 1.1
    truth = frame.truth.to_numpy().astype(bool)
    assert 0.55 < truth.mean() < 0.75  # 1 / 1.7 true, plus noisy clicks inside the cluster
    assert set(frame.rating[truth]) <= {4, 5} and set(frame.rating[~truth]) <= {1, 2, 3, 4}


def test_profile_statistics_by_hand():
    from dprec.tools.profile_data import profile, zipf_slope

    frame = pd.DataFrame({"user": [0, 0, 1, 2], "item": [5, 6, 5, 5], "rating": [5, 1, 5, 3]})
    stats = profile(frame)
    assert (stats["users"], stats["items"], stats["max user degree"]) == (3, 2, 2)
    assert stats["mean user degree"] == pytest.approx(4 / 3)
    assert stats["users with one interaction"] == pytest.approx(2 / 3)
    assert stats["rated 5"] == pytest.approx(0.5)
    exact = np.round(1e6 / np.arange(1, 1001) ** 1.2)
    assert zipf_slope(exact) == pytest.approx(-1.2, abs=0.01)


def test_profile_cli_bad_columns(tmp_path, capsys):
    from dprec.tools.profile_data import main

    path = tmp_path / "t.csv"
    path.write_text("u,i\n1,2\n")
    assert main([str(path), "--columns", "u"]) == 2
    assert "give user,item[,rating]" in capsys.readouterr().err
    assert main([str(path), "--columns", "u,i"]) == 0
