"""Data layer: id remapping, splits, clean rules, negative sampling, epoch batches."""

import numpy as np
import pandas as pd
import pytest

from dprec.data import splits, synthetic
from dprec.data.batches import make_epoch_batches
from dprec.data.dataset import build_interaction_data
from dprec.data.io import read_table
from dprec.data.sampling import PositiveSet, sample_negatives
from dprec.specs import ColumnSpec, DataSpec, SyntheticSpec


def _frame(n=200, seed=0, users=40, items=30):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "user": rng.integers(0, users, n),
            "item": rng.integers(0, items, n),
            "rating": rng.integers(1, 6, n),
            "timestamp": rng.permutation(n),
        }
    )
    return frame.drop_duplicates(["user", "item"]).reset_index(drop=True)


def test_remapping_round_trips_string_ids(tmp_path):
    frame = pd.DataFrame(
        {
            "uid": ["bob", "amy", "bob", "cy", "amy", "cy", "dan"],
            "iid": [10, 7, 7, 99, 10, 10, 7],
            "stars": [5, 5, 3, 5, 4, 5, 5],
        }
    )
    path = tmp_path / "x.csv.gz"
    frame.to_csv(path, index=False, compression="gzip")
    table = read_table(str(path), ColumnSpec(user="uid", item="iid", rating="stars"))
    spec = DataSpec(name="table", split="random", split_ratios=(0.6, 0.2, 0.2), split_seed=1)
    data = build_interaction_data(table, spec, "x")
    assert list(data.user_ids) == ["amy", "bob", "cy", "dan"]
    assert list(data.item_ids) == [7, 10, 99]
    pairs = {
        (data.user_ids[u], data.item_ids[i])
        for part in (data.train, data.valid, data.test)
        for u, i in zip(part.users, part.items, strict=True)
    }
    assert pairs == set(zip(frame.uid, frame.iid, strict=True))


def test_integer_ids_keep_their_order():
    frame = _frame()
    data = build_interaction_data(frame, DataSpec(split="random"), "t")
    np.testing.assert_array_equal(data.item_ids, np.sort(frame.item.unique()))
    assert np.all(np.diff(data.item_ids) > 0)


def test_duplicates_removed_keeping_first():
    ids = list(range(20))
    frame = pd.DataFrame({"user": [1, *ids, 9], "item": [1, *ids, 9], "rating": [2] + [5] * 21})
    data = build_interaction_data(frame, DataSpec(split="random"), "t")
    assert len(data.train) + len(data.valid) + len(data.test) == 20
    # The first row of the duplicated pair (1, 1) is kept: rating 2, so it is not clean.
    every = [data.train, data.valid, data.test]
    rating = {(u, i): r for p in every for u, i, r in zip(p.users, p.items, p.ratings, strict=True)}
    assert rating[(1, 1)] == 2


@pytest.mark.parametrize("n", [10, 101, 1000])
def test_random_split_proportions_and_no_leak(n):
    part = splits.random_split(n, (0.8, 0.1, 0.1), seed=3)
    counts = np.bincount(part, minlength=3)
    assert counts[0] == int(n * 0.8) and counts[1] == int(n * 0.1)
    assert counts.sum() == n
    np.testing.assert_array_equal(part, splits.random_split(n, (0.8, 0.1, 0.1), seed=3))


def test_splits_are_disjoint_and_cover_everything():
    frame = _frame(n=500)
    data = build_interaction_data(frame, DataSpec(split="random"), "t")
    keys = [
        set(zip(p.users.tolist(), p.items.tolist(), strict=True))
        for p in (data.train, data.valid, data.test)
    ]
    assert not (keys[0] & keys[1]) and not (keys[0] & keys[2]) and not (keys[1] & keys[2])
    assert sum(map(len, keys)) == len(frame)
    # The clean sets are the held-out rows with rating >= 5.
    assert np.all(data.test_clean.ratings >= 5) and np.all(data.valid_clean.ratings >= 5)
    assert len(data.test_clean) == int(np.sum(data.test.ratings >= 5))


def test_chronological_split_orders_by_time():
    frame = _frame(n=300)
    data = build_interaction_data(frame, DataSpec(split="chrono"), "t")
    stamp = {(u, i): t for u, i, t in zip(frame.user, frame.item, frame.timestamp, strict=True)}

    def times(part):
        return np.array(
            [
                stamp[(data.user_ids[u], data.item_ids[i])]
                for u, i in zip(part.users, part.items, strict=True)
            ]
        )

    assert times(data.train).max() < times(data.valid).min()
    assert times(data.valid).max() < times(data.test).min()


def test_clean_rules():
    frame = pd.DataFrame({"rating": [1, 5, 4], "dwell": [3.0, 30.0, 10.0], "clean": [0, 1, 1]})
    np.testing.assert_array_equal(splits.clean_flags(frame, "rating", 4, "t"), [0, 1, 1])
    np.testing.assert_array_equal(splits.clean_flags(frame, "dwell", 10, "t"), [0, 1, 0])
    np.testing.assert_array_equal(splits.clean_flags(frame, "flag", 0, "t"), [0, 1, 1])
    np.testing.assert_array_equal(splits.clean_flags(frame, "none", 0, "t"), [1, 1, 1])


def test_sampled_negatives_are_never_positives_and_uniform():
    rng = np.random.default_rng(0)
    n_items = 20
    users = np.array([0, 0, 0, 1, 2, 2])
    items = np.array([0, 1, 2, 5, 0, 19])
    positives = PositiveSet.from_pairs(users, items, n_items)
    draws = sample_negatives(rng, np.zeros(34_000, np.int64), positives)
    assert not np.isin(draws, [0, 1, 2]).any()
    counts = np.bincount(draws, minlength=n_items)[3:]
    # 17 allowed items, 2000 expected each: a chi-square far below the 0.1 % critical value.
    chi2 = ((counts - 2000) ** 2 / 2000).sum()
    assert chi2 < 40.8
    many_users = rng.integers(0, 3, 10_000)
    negatives = sample_negatives(rng, many_users, positives)
    assert not positives.contains(many_users, negatives).any()


def test_epoch_batches_shapes_mask_and_negatives():
    rng = np.random.default_rng(1)
    users = np.array([0, 1, 1, 2, 3])
    items = np.array([1, 2, 3, 4, 0])
    positives = PositiveSet.from_pairs(users, items, 6)
    batches = make_epoch_batches(rng, users, items, positives, batch_size=2, num_negatives=3)
    assert batches.users.shape == (3, 2) and batches.neg_items.shape == (3, 2, 3)
    assert batches.mask.sum() == 5 and batches.mask[-1, -1] == 0
    real = batches.mask.reshape(-1) == 1
    flat_users = batches.users.reshape(-1)[real]
    assert sorted(zip(flat_users, batches.pos_items.reshape(-1)[real], strict=True)) == sorted(
        zip(users, items, strict=True)
    )
    neg_users = np.repeat(flat_users[:, None], 3, axis=1)
    assert not positives.contains(neg_users, batches.neg_items.reshape(-1, 3)[real]).any()


def test_synthetic_generator_truth_and_ratings():
    frame = synthetic.generate(SyntheticSpec(n_users=300, n_items=100, seed=4))
    assert set(frame.columns) == {"user", "item", "rating", "truth"}
    assert not frame.duplicated(["user", "item"]).any()
    assert frame.rating[frame.truth == 1].min() >= 4  # true positives rate 4-5
    assert frame.rating[frame.truth == 0].max() <= 4  # noisy clicks never rate 5
    # noisy_positive_rate = 2 noisy clicks per observed true positive: about 2/3 are noisy.
    share_noisy = 1 - frame.truth.mean()
    assert 0.6 < share_noisy < 0.72
    again = synthetic.generate(SyntheticSpec(n_users=300, n_items=100, seed=4))
    pd.testing.assert_frame_equal(frame, again)


def test_modcloth_preset_matches_the_authors_split(modcloth_path):
    from dprec.config.presets import build_config
    from dprec.config.run_config import run_spec_from_config
    from dprec.data.registry import load_dataset

    config = build_config("dataset=modcloth,model=gmf,method=normal")
    config.data.path = str(modcloth_path)
    data = load_dataset(run_spec_from_config(config).data)
    assert (data.n_users, data.n_items) == (44_784, 1_020)
    assert (len(data.train), len(data.valid), len(data.test)) == (79_914, 9_990, 9_989)
    assert len(data.test_clean) == 5_433 and len(np.unique(data.test_clean.users)) == 4_303
    assert len(data.valid_clean) == 5_445
