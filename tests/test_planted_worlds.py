"""The planted-noise worlds: exact rates, the truth each world claims, the oracle's data
(`data.train_truth=clean`), and a latent world that is not trivially separable."""

import dataclasses
import os

import numpy as np
import pandas as pd
import pytest

from dprec.config.run_config import run_spec_from_config
from dprec.data.dataset import build_interaction_data
from dprec.data.planted import KINDS, WORLDS, plant
from dprec.data.registry import load_dataset, resolve_path
from dprec.data.worlds import noise
from dprec.errors import ConfigError, DataError
from dprec.evaluation.noise_scores import roc_auc
from dprec.specs import ColumnSpec, DataSpec
from dprec.tools.plant_data import main as plant_data

CLICK_KINDS = [k for k in KINDS if k != "exposure"]
LATENT = {"n_users": 600, "n_items": 200, "top_m": 25, "mean_degree": 12.0, "seed": 1}
BLOCK = {"n_users": 600, "n_items": 200, "seed": 1}
ML100K = resolve_path("ml-100k", "")


def ml100k_path() -> str:
    if not os.path.isfile(ML100K):
        pytest.skip(f"{ML100K} is missing")
    return ML100K


def affinity_rank(planted, frame: pd.DataFrame) -> np.ndarray:
    """Each row's item rank `[N]` in its user's affinity order (0 = liked most), recomputed
    from the factors the world returns."""
    dim = planted.item_factors.shape[1]
    affinity = planted.user_factors @ planted.item_factors.T / np.sqrt(dim) + planted.item_bias
    ranks = np.argsort(np.argsort(-affinity, axis=1), axis=1)
    return ranks[frame["user"].to_numpy(), frame["item"].to_numpy()]


def noisy_share(frame: pd.DataFrame) -> float:
    return 1.0 - float(frame["truth"].mean())


# ---------------------------------------------------------------- shared draws


def test_draw_distinct_respects_pools_weights_and_room():
    allowed = np.ones((3, 6), bool)
    allowed[0, 3:] = False  # user 0 may draw items 0, 1, 2 only
    log_weight = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 60.0])  # item 5 wins any draw it is in
    users, items, short = noise.draw_distinct(
        np.random.default_rng(0), np.array([5, 2, 0]), log_weight, lambda u: allowed[u]
    )
    np.testing.assert_array_equal(short, [2, 0, 0])  # user 0's pool has room for 3 of 5
    np.testing.assert_array_equal(np.sort(items[users == 0]), [0, 1, 2])
    assert items[users == 1][0] == 5 and len(set(items[users == 1])) == 2
    assert not (users == 2).any()


# ---------------------------------------------------------------- latent world


@pytest.mark.parametrize("kind", CLICK_KINDS)
@pytest.mark.parametrize("rate", [0.2, 0.4])
def test_latent_rate_is_exact_and_rows_follow_affinity(kind, rate):
    planted = plant(kind, rate, world="latent", **LATENT)
    frame = planted.frame
    total = round(LATENT["mean_degree"] * LATENT["n_users"])
    assert len(frame) == total
    assert int((frame.truth == 0).sum()) == round(rate * total)
    assert not frame.duplicated(["user", "item"]).any()
    rank = affinity_rank(planted, frame)
    clean = frame["truth"].to_numpy() == 1
    assert rank[clean].max() < LATENT["top_m"]  # clean: among the user's top_m items
    assert rank[~clean].min() >= LATENT["n_items"] // 2  # noisy: in the bottom half
    assert set(frame.loc[clean, "rating"]) == {4, 5}
    assert set(frame.loc[~clean, "rating"]) == {1, 2}
    degree = frame.groupby("user").size()
    assert 10 <= degree.mean() <= 15 and degree.min() >= 1


def test_latent_exposure_hides_liked_items_exactly():
    planted = plant("exposure", 0.3, world="latent", **LATENT)
    frame, hidden = planted.frame, planted.hidden
    total = round(LATENT["mean_degree"] * LATENT["n_users"])
    assert len(hidden) == round(0.3 * total) and len(frame) + len(hidden) == total
    assert frame["truth"].eq(1).all()
    assert affinity_rank(planted, hidden).max() < LATENT["top_m"]
    observed = set(zip(frame.user, frame.item, strict=True))
    assert not observed & set(zip(hidden.user, hidden.item, strict=True))


def test_latent_minorities_carry_their_share():
    users = plant("user", 0.3, world="latent", concentration=0.8, **LATENT)
    noisy = users.frame[users.frame.truth == 0]
    on_minority = noisy["user"].isin(users.noisy_users).sum() / len(noisy)
    assert on_minority == pytest.approx(0.8, abs=1e-3)
    assert users.noisy_users.shape[0] == round(0.1 * LATENT["n_users"])
    items = plant("item", 0.3, world="latent", concentration=0.8, **LATENT)
    noisy = items.frame[items.frame.truth == 0]
    assert noisy["item"].isin(items.clickbait_items).mean() == pytest.approx(0.8, abs=0.01)


def observed_popularity(frame: pd.DataFrame) -> np.ndarray:
    """Each row's item count in the table `[N]`: what a model trained on it sees."""
    return frame.groupby("item")["item"].transform("size").to_numpy()


def test_latent_popularity_noise_lands_on_popular_items():
    frame = plant("popularity", 0.4, world="latent", **LATENT).frame
    clean = frame["truth"].to_numpy() == 1
    popularity = observed_popularity(frame)
    inverse_auc = roc_auc(-popularity, clean)  # rarer item = more likely clean
    popularity_auc = roc_auc(popularity, clean)
    print(
        f"latent popularity-noise AUC: inverse popularity {inverse_auc:.3f}, "
        f"popularity {popularity_auc:.3f}"
    )
    # Noisy clicks are on more popular items than clean ones: a score that trusts what is
    # fitted well (low loss, high σ(f)) points the wrong way ...
    assert popularity[~clean].mean() > 1.2 * popularity[clean].mean()
    assert popularity_auc < 0.5 < inverse_auc
    # ... and popularity alone is far from separating them.
    assert popularity_auc > 0.2 and inverse_auc < 0.8


def cooccurrence_auc(frame: pd.DataFrame, n_users: int, n_items: int) -> float:
    """ROC AUC (clean above noisy) of a model-free score: the mean cosine co-occurrence of a
    row's item with the user's other items."""
    rows = np.zeros((n_users, n_items))
    rows[frame.user, frame.item] = 1.0
    counts = rows.T @ rows
    np.fill_diagonal(counts, 0.0)
    degree = rows.sum(0)
    cosine = counts / np.sqrt(np.outer(degree, degree) + 1e-12)
    others = np.maximum(rows.sum(1)[frame.user] - 1, 1)
    score = (rows @ cosine)[frame.user, frame.item] / others
    return roc_auc(score, frame["truth"].to_numpy() == 1)


def test_latent_world_is_not_trivially_separable_unlike_block():
    sizes = {"n_users": 1000, "n_items": 200, "seed": 0}
    block = plant("uniform", 0.3, world="block", **sizes).frame
    latent = plant("uniform", 0.3, world="latent", top_m=25, **sizes).frame
    latent_popular = plant("popularity", 0.3, world="latent", top_m=25, **sizes).frame
    block_auc = cooccurrence_auc(block, 1000, 200)
    latent_auc = cooccurrence_auc(latent, 1000, 200)
    print(f"co-occurrence AUC: block {block_auc:.3f}, latent {latent_auc:.3f}")
    assert block_auc > 0.95  # one cluster per user: co-occurrence finds the outsiders
    assert latent_auc < 0.85
    assert cooccurrence_auc(latent_popular, 1000, 200) < 0.6


def test_latent_deterministic_and_rejects_bad_arguments():
    a = plant("item", 0.25, world="latent", **LATENT).frame
    pd.testing.assert_frame_equal(a, plant("item", 0.25, world="latent", **LATENT).frame)
    assert not a.equals(plant("item", 0.25, world="latent", **{**LATENT, "seed": 2}).frame)
    with pytest.raises(ValueError, match="top_m"):
        plant("uniform", 0.2, world="latent", n_items=40, top_m=30)
    with pytest.raises(ValueError, match="rate"):
        plant("uniform", 1.0, world="latent")
    with pytest.raises(ValueError, match="unknown world"):
        plant("uniform", 0.2, world="bogus")
    assert set(WORLDS) == {"block", "latent", "real"}


# ---------------------------------------------------------------- real world


def real_rows(path: str) -> pd.DataFrame:
    """The real table with the world's id remapping (sorted ids -> 0..n-1)."""
    frame = pd.read_csv(path)
    for column in ("user_id", "item_id"):
        frame[column] = np.unique(frame[column].to_numpy(), return_inverse=True)[1]
    return frame


@pytest.mark.parametrize("kind", CLICK_KINDS)
def test_real_world_keeps_every_liked_row_and_drops_the_rest(kind):
    path = ml100k_path()
    real = real_rows(path)
    frame = plant(kind, 0.4, world="real", path=path).frame
    liked = real[real.rating >= 4]
    clean = frame[frame.truth == 1]
    # Every real row rated >= 4 is a clean row, with its real rating, and nothing else is.
    merged = liked.merge(clean, left_on=["user_id", "item_id"], right_on=["user", "item"])
    assert len(merged) == len(liked) == len(clean)
    np.testing.assert_array_equal(merged["rating_x"], merged["rating_y"])
    # No row rated <= 3 is in the table: noisy clicks avoid every item the user touched.
    touched = real.user_id.to_numpy() * 10_000 + real.item_id.to_numpy()
    noisy = frame[frame.truth == 0]
    assert not np.isin(noisy.user * 10_000 + noisy.item, touched).any()
    assert set(noisy["rating"]) == {1}
    assert len(noisy) == round(0.4 / 0.6 * len(liked))  # rate × all rows, exactly
    assert noisy_share(frame) == pytest.approx(0.4, abs=1e-4)
    assert not frame.duplicated(["user", "item"]).any()


def test_real_world_kinds_shape_the_noise():
    path = ml100k_path()
    uniform = plant("uniform", 0.3, world="real", path=path)
    popular = plant("popularity", 0.3, world="real", path=path)
    noisy_popularity = {
        name: planted.item_popularity[planted.frame.item[planted.frame.truth == 0]].mean()
        for name, planted in (("uniform", uniform), ("popularity", popular))
    }
    assert noisy_popularity["popularity"] > 2 * noisy_popularity["uniform"]
    users = plant("user", 0.3, world="real", path=path, concentration=0.8)
    noisy = users.frame[users.frame.truth == 0]
    assert noisy["user"].isin(users.noisy_users).mean() == pytest.approx(0.8, abs=1e-3)
    exposure = plant("exposure", 0.3, world="real", path=path)
    n_liked = int((pd.read_csv(path).rating >= 4).sum())
    assert len(exposure.hidden) == round(0.3 * n_liked)
    assert len(exposure.frame) + len(exposure.hidden) == n_liked


def test_real_world_missing_file_names_it(tmp_path):
    missing = tmp_path / "absent.csv.gz"
    with pytest.raises(DataError, match="absent.csv.gz"):
        plant("uniform", 0.2, world="real", path=str(missing))
    with pytest.raises(ValueError, match="unknown real dataset"):
        plant("uniform", 0.2, world="real", dataset="adressa")


# ---------------------------------------------------------------- the oracle's data

TRUTH_SPEC = DataSpec(
    name="table", columns=ColumnSpec(rating="rating", truth="truth"), clean_threshold=4.0
)


def world_frame(world: str) -> pd.DataFrame:
    if world == "real":
        return plant("popularity", 0.3, world="real", path=ml100k_path()).frame
    options = LATENT if world == "latent" else BLOCK
    return plant("popularity", 0.3, world=world, **options).frame


@pytest.mark.parametrize("world", ["block", "latent", "real"])
def test_oracle_trains_on_truth_clean_rows_with_the_same_split(world):
    frame = world_frame(world)
    full = build_interaction_data(frame, TRUTH_SPEC, source=world)
    oracle_spec = dataclasses.replace(TRUTH_SPEC, train_truth="clean")
    oracle = build_interaction_data(frame, oracle_spec, source=world)
    assert np.all(oracle.train.truth == 1)
    keep = full.train.truth == 1
    np.testing.assert_array_equal(oracle.train.users, full.train.users[keep])
    np.testing.assert_array_equal(oracle.train.items, full.train.items[keep])
    assert 0 < len(oracle.train) < len(full.train)
    assert (oracle.n_users, oracle.n_items) == (full.n_users, full.n_items)
    for name in ("valid", "valid_clean", "test", "test_clean"):
        for field in ("users", "items"):
            np.testing.assert_array_equal(
                getattr(getattr(oracle, name), field), getattr(getattr(full, name), field)
            )
    # The clean rule (rating >= 4) recovers the truth on the held-out rows.
    assert np.all(full.test_clean.truth == 1)
    assert len(full.test_clean) == int(np.sum(full.test.truth == 1))
    assert oracle.fingerprint != full.fingerprint
    assert (
        f"train restricted to truth-clean rows ({len(oracle.train)} of {len(full.train)})"
        in oracle.summary()
    )
    assert "truth-clean" not in full.summary()


def test_oracle_fingerprint_differs_even_without_noisy_rows():
    frame = plant("exposure", 0.2, world="latent", **LATENT).frame  # every row is clean
    full = build_interaction_data(frame, TRUTH_SPEC, source="latent")
    oracle_spec = dataclasses.replace(TRUTH_SPEC, train_truth="clean")
    oracle = build_interaction_data(frame, oracle_spec, source="latent")
    assert len(oracle.train) == len(full.train)
    assert oracle.fingerprint != full.fingerprint


def test_oracle_needs_a_truth_column_and_a_known_value():
    frame = plant("uniform", 0.3, world="latent", **LATENT).frame.drop(columns="truth")
    spec = DataSpec(name="table", columns=ColumnSpec(rating="rating"), train_truth="clean")
    with pytest.raises(DataError, match=r"data\.columns\.truth"):
        build_interaction_data(frame, spec, source="x.csv")
    with pytest.raises(ConfigError, match=r"data\.train_truth='bogus' is not one of all, clean"):
        run_spec_from_config({"data": {"train_truth": "bogus"}})
    assert run_spec_from_config({"data": {"train_truth": "clean"}}).data.train_truth == "clean"


# ---------------------------------------------------------------- the CLI


def test_plant_data_writes_a_table_the_printed_flags_load(tmp_path, capsys):
    out = tmp_path / "latent.csv.gz"
    argv = ["--world", "latent", "--kind", "popularity", "--rate", "0.3", "--out", str(out)]
    assert plant_data([*argv, "--n-users", "400", "--n-items", "120", "--top-m", "20"]) == 0
    printed = capsys.readouterr().out
    assert "latent world, 4800 rows" in printed and "0.300 noisy" in printed
    flags = dict(
        flag.removeprefix("--config.").split("=", 1)
        for flag in printed.split("load with: ")[1].split()
    )
    assert flags["data.path"] == str(out)
    spec = DataSpec(
        name=flags["data.name"],
        path=flags["data.path"],
        columns=ColumnSpec(rating=flags["data.columns.rating"], truth=flags["data.columns.truth"]),
        clean_rule=flags["data.clean_rule"],
        clean_threshold=float(flags["data.clean_threshold"]),
        train_truth="clean",
    )
    data = load_dataset(spec)
    assert np.all(data.train.truth == 1) and np.all(data.test_clean.truth == 1)


def test_plant_data_rejects_an_option_the_world_does_not_take(tmp_path, capsys):
    out = str(tmp_path / "x.csv.gz")
    argv = ["--world", "latent", "--kind", "uniform", "--rate", "0.2", "--out", out]
    assert plant_data([*argv, "--n-clusters", "4"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("plant-data: error: --n-clusters is not an option of the latent")
    assert "\n" not in error and not os.path.exists(out)
    assert plant_data([*argv[:-2], "--rate", "1.5", "--out", out]) == 2
    assert "rate must be in [0, 1)" in capsys.readouterr().err
