"""The planted-noise generator delivers each kind at its requested rate, with its truth."""

import numpy as np
import pandas as pd
import pytest

from dprec.data.planted import KINDS, generate_planted, plant
from dprec.data.registry import load_dataset
from dprec.specs import ColumnSpec, DataSpec
from dprec.tools.plant_data import main

# Rates are exact by construction; the only slack is the rare clean pair still repeated after
# the redraw rounds, which is dropped (< 1 % of rows at these sizes), so 0.01 bounds the error.
TOLERANCE = 0.01
SIZE = {"n_users": 2000, "n_items": 400, "seed": 3}


def liked(planted, frame):
    return planted.item_cluster[frame["item"]] == planted.user_home[frame["user"]]


def spearman(a, b):
    ranks_a = pd.Series(a).rank().to_numpy()
    ranks_b = pd.Series(b).rank().to_numpy()
    return float(np.corrcoef(ranks_a, ranks_b)[0, 1])


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "exposure"])
@pytest.mark.parametrize("rate", [0.2, 0.4])
def test_click_kinds_deliver_rate_and_truth(kind, rate):
    planted = plant(kind, rate, **SIZE)
    frame = planted.frame
    assert abs((1 - frame["truth"].mean()) - rate) < TOLERANCE
    assert len(frame) > 0.99 * 10 * SIZE["n_users"]
    # truth = liked, and the ratings follow it: noisy 1-2, clean 4-5.
    np.testing.assert_array_equal(frame["truth"].to_numpy() == 1, liked(planted, frame))
    assert set(frame.loc[frame.truth == 0, "rating"]) == {1, 2}
    assert set(frame.loc[frame.truth == 1, "rating"]) == {4, 5}
    assert not frame.duplicated(["user", "item"]).any()
    assert len(planted.hidden) == 0


def test_exposure_hides_liked_items():
    planted = plant("exposure", 0.3, **SIZE)
    frame, hidden = planted.frame, planted.hidden
    assert abs(len(hidden) / (len(hidden) + len(frame)) - 0.3) < 1e-3
    assert frame["truth"].eq(1).all()
    assert liked(planted, hidden).all()  # every hidden one is a liked item
    observed = set(zip(frame.user, frame.item, strict=True))
    assert not observed & set(zip(hidden.user, hidden.item, strict=True))


def top_share(counts, share=0.1):
    """Share of the total carried by the top `share` of entries."""
    ordered = np.sort(counts)[::-1]
    return ordered[: round(share * ordered.shape[0])].sum() / ordered.sum()


def noisy_counts(frame, column, size):
    return np.bincount(frame.loc[frame.truth == 0, column], minlength=size)


def test_user_kind_concentrates_noise_on_a_minority():
    planted = plant("user", 0.3, concentration=0.8, **SIZE)
    counts = noisy_counts(planted.frame, "user", SIZE["n_users"])
    assert counts[planted.noisy_users].sum() / counts.sum() == pytest.approx(0.8, abs=0.01)
    assert top_share(counts) > 0.5
    # Uniform noise follows the power-law activity alone: its top tenth carries far less.
    uniform = plant("uniform", 0.3, **SIZE)
    assert top_share(counts) > top_share(noisy_counts(uniform.frame, "user", SIZE["n_users"])) + 0.3


def test_item_kind_concentrates_noise_on_clickbait():
    planted = plant("item", 0.3, concentration=0.8, **SIZE)
    counts = noisy_counts(planted.frame, "item", SIZE["n_items"])
    assert counts[planted.clickbait_items].sum() / counts.sum() == pytest.approx(0.8, abs=0.02)
    assert top_share(counts) > 0.5
    assert planted.clickbait_items.shape[0] == round(0.1 * SIZE["n_items"])


def test_popularity_kind_follows_popularity():
    planted = plant("popularity", 0.3, beta=1.0, **SIZE)
    counts = noisy_counts(planted.frame, "item", SIZE["n_items"])
    rho = spearman(counts, planted.item_popularity)
    uniform = plant("uniform", 0.3, **SIZE)
    rho_uniform = spearman(
        noisy_counts(uniform.frame, "item", SIZE["n_items"]), planted.item_popularity
    )
    assert rho > 0.7
    assert abs(rho_uniform) < 0.3
    # The most popular tenth of the items takes far more than a tenth of the noisy clicks.
    top = np.argsort(-planted.item_popularity)[: SIZE["n_items"] // 10]
    assert counts[top].sum() / counts.sum() > 0.4


def test_deterministic_by_seed():
    a = generate_planted("item", 0.25, **SIZE)
    b = generate_planted("item", 0.25, **SIZE)
    pd.testing.assert_frame_equal(a, b)
    c = generate_planted("item", 0.25, **{**SIZE, "seed": 4})
    assert not a.equals(c)


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="unknown noise kind"):
        plant("bogus", 0.1)
    with pytest.raises(ValueError, match="rate"):
        plant("uniform", 1.0)


def test_the_rate_holds_at_electronics_mean_degree():
    """A tenth of Electronics (1.16M users, 9.5k items, 1.3M interactions): mean degree 1.12,
    where the user kind's extra rows have least room. Its time: benchmarks/bench_planted.py."""
    frame = generate_planted(
        "user", 0.3, n_users=115_763, n_items=9560, n_interactions=130_000, seed=0
    )
    assert len(frame) == 130_000
    assert abs((1 - frame["truth"].mean()) - 0.3) < TOLERANCE


def test_cli_writes_a_loadable_table(tmp_path):
    out = tmp_path / "x.csv.gz"
    main(["--kind", "exposure", "--rate", "0.2", "--out", str(out), "--n-users", "300"])
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["user_id", "item_id", "rating", "truth"]
    hidden = pd.read_csv(tmp_path / "x.hidden.csv.gz")
    assert abs(len(hidden) / (len(hidden) + len(frame)) - 0.2) < 1e-2


def test_table_loads_with_the_printed_flags(tmp_path):
    out = tmp_path / "p.csv.gz"
    main(["--kind", "popularity", "--rate", "0.3", "--out", str(out), "--n-users", "500"])
    spec = DataSpec(
        name="table",
        path=str(out),
        columns=ColumnSpec(rating="rating", truth="truth"),
        clean_threshold=4.0,
    )
    data = load_dataset(spec)
    # The clean rule (rating >= 4) keeps exactly the truly clean held-out rows.
    for noisy, clean in ((data.valid, data.valid_clean), (data.test, data.test_clean)):
        assert np.all(clean.truth == 1)
        assert len(clean) == int(np.sum(noisy.truth == 1)) > 0
    assert 0.25 < 1 - data.train.truth.mean() < 0.35
