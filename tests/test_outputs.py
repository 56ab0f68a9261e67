"""Commands on a trained run: top-K export (dprec-recommend) and the noisy-interaction report."""

import json

import numpy as np
import pandas as pd
import pytest

from dprec import train
from dprec.config.presets import build_config
from dprec.evaluation import noise_scores
from dprec.tools import denoise_report, recommend
from dprec.tools.run_loading import load_run


@pytest.fixture(scope="module")
def dpi_run(tmp_path_factory):
    config = build_config("method=dpi")
    config.data.synthetic.n_users = 600
    config.data.synthetic.n_items = 150
    config.train.batch_size = 256
    config.train.num_epochs = 25
    workdir = tmp_path_factory.mktemp("runs") / "dpi"
    train.train_and_evaluate(config, str(workdir))
    return workdir


def test_auc_and_precision_hand_computed():
    scores = np.array([0.9, 0.8, 0.3, 0.3, 0.1])
    labels = np.array([True, False, True, False, False])
    # positive pairs above negatives: 0.9 > all 3 (3); 0.3 vs (0.8, 0.3, 0.1): 1 + 0.5 = 1.5
    assert noise_scores.roc_auc(scores, labels) == pytest.approx(4.5 / 6)
    assert denoise_report.precision_at(scores, labels, 2) == 0.5


def test_the_method_auc_is_printed_beside_inverse_popularity():
    """Noisy rows (truth 0) on the item of 3 rows, clean ones on it once and on 3 items of 1
    row: flagging by popularity puts each noisy row (3) above 3 clean rows (1) and level with
    one (3): AUC (2 · 3.5) / (2 · 4) = 0.875. A constant P scores 0.5, worse: one line says so;
    P = the truth scores 1, and no such line."""
    table = pd.DataFrame(
        {"item": [7, 7, 7, 1, 2, 3], "truth": [0, 0, 1, 1, 1, 1], "probability": 0.5, "loss": 0.0}
    )
    detection = denoise_report.detection_scores(table)
    assert detection[denoise_report.TRIVIAL_SCORE]["auc"] == pytest.approx(0.875)
    assert noise_scores.inverse_popularity_auc(table) == pytest.approx(0.875)  # the bench's
    assert denoise_report.trivial_score_lines(detection) == [
        "  noise-detection AUC 0.500 (1 - P(real positive)) beside 0.875 (inverse item popularity)",
        "  the method's score is WORSE than inverse item popularity, a trivial score: "
        "AUC 0.500 < 0.875",
    ]
    perfect = denoise_report.detection_scores(table.assign(probability=table["truth"] * 1.0))
    assert denoise_report.trivial_score_lines(perfect) == [
        "  noise-detection AUC 1.000 (1 - P(real positive)) beside 0.875 (inverse item popularity)"
    ]


def test_report_flags_noise_above_chance(dpi_run, capsys):
    assert denoise_report.main(["--workdir", str(dpi_run), "--top", "7"]) == 0
    table = pd.read_csv(dpi_run / denoise_report.REPORT_FILE)
    run = load_run(dpi_run)
    assert len(table) == len(run.data.train)
    assert len(pd.read_csv(dpi_run / denoise_report.SUSPICIOUS_FILE)) == 7
    detection = denoise_report.detection_scores(table)
    assert detection["1 - P(real positive)"]["auc"] > 0.5
    out = capsys.readouterr().out
    assert "flagging truly noisy" in out
    assert denoise_report.trivial_score_lines(detection)[0] in out.splitlines()
    # The run's lines end by naming every file written, with its row count.
    assert out.splitlines()[-2:] == [
        f"  wrote {dpi_run / denoise_report.REPORT_FILE} ({len(run.data.train)} rows)",
        f"  wrote {dpi_run / denoise_report.SUSPICIOUS_FILE} (7 rows)",
    ]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_recommend_exports_original_ids_without_seen_items(dpi_run, tmp_path, suffix):
    run = load_run(dpi_run)
    chosen = [str(u) for u in run.data.user_ids[[5, 0, 17]]]
    (tmp_path / "users.txt").write_text("\n".join(chosen) + "\n")
    out = tmp_path / f"top{suffix}"
    assert (
        recommend.main(
            [
                "--workdir",
                str(dpi_run),
                "--k",
                "10",
                "--users",
                str(tmp_path / "users.txt"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    frame = pd.read_parquet(out) if suffix == ".parquet" else pd.read_csv(out)
    assert list(frame.columns) == ["user", "rank", "item", "score"]
    assert [str(u) for u in frame.user.unique()] == chosen  # requested order kept
    assert (frame.groupby("user")["rank"].apply(list) == [list(range(1, 11))] * 3).all()
    data = run.data
    seen = {
        (str(data.user_ids[u]), data.item_ids[i])
        for part in (data.train, data.valid, data.test)
        for u, i in zip(part.users, part.items, strict=True)
    }
    assert not any((str(u), i) in seen for u, i in zip(frame.user, frame.item, strict=True))
    # Scores are the model's logits, in decreasing order per user.
    index = {str(v): k for k, v in enumerate(data.user_ids)}
    item_index = {v: k for k, v in enumerate(data.item_ids)}
    users = np.array([index[str(u)] for u in frame.user])
    items = np.array([item_index[i] for i in frame.item])
    np.testing.assert_allclose(
        np.asarray(run.target_logits(users, items)), frame.score, rtol=1e-5, atol=1e-6
    )
    assert (frame.groupby("user")["score"].apply(lambda s: s.is_monotonic_decreasing)).all()


def test_recommend_errors(dpi_run, tmp_path, capsys):
    (tmp_path / "users.txt").write_text("no-such-user\n")
    assert (
        recommend.main(
            [
                "--workdir",
                str(dpi_run),
                "--users",
                str(tmp_path / "users.txt"),
                "--out",
                str(tmp_path / "x.csv"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("recommend: error: none of the 1 user ids")
    assert "'no-such-user'" in err and "--cold popularity" in err
    assert recommend.main(["--workdir", str(tmp_path / "missing")]) == 2
    assert not (tmp_path / "x.csv").exists()
    assert list(tmp_path.iterdir()) == [tmp_path / "users.txt"]


def _recommend(workdir, out, *args):
    return recommend.main(["--workdir", str(workdir), "--out", str(out), *args])


def _pairs(data, part):
    """The (original user id as text, original item id) pairs of one split."""
    return set(zip(data.user_ids[part.users].astype(str), data.item_ids[part.items], strict=True))


def test_recommend_exclude_train_valid_reproduces_test_metrics(dpi_run, tmp_path, capsys):
    run = load_run(dpi_run)
    data, ks = run.data, run.spec.eval.ks
    out = tmp_path / "top.csv"
    assert _recommend(dpi_run, out, "--k", str(max(ks)), "--exclude", "train,valid") == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"wrote {data.n_users * max(ks)} rows ({data.n_users} users × top {max(ks)}, "
        f"--exclude train,valid) to {out}"
    )
    frame = pd.read_csv(out, dtype={"user": str, "item": data.item_ids.dtype})
    assert len(frame) == data.n_users * max(ks)
    top = frame.sort_values(["user", "rank"]).groupby("user")["item"].apply(list)
    # The clean test set in original ids; metrics in plain NumPy.
    relevant = {}
    for user, item in _pairs(data, data.test_clean):
        relevant.setdefault(user, set()).add(item)
    results = json.loads((dpi_run / "results.json").read_text())["test"]["paper"]
    assert results["users"] == len(relevant)
    for k in ks:
        recall, ndcg = [], []
        for user, items in relevant.items():
            hits = np.array([item in items for item in top[user][:k]], dtype=float)
            discount = 1.0 / np.log2(np.arange(2, k + 2))
            recall.append(hits.sum() / len(items))
            ndcg.append((hits * discount).sum() / discount[: min(len(items), k)].sum())
        assert np.mean(recall) == pytest.approx(results[f"recall@{k}"], rel=1e-12, abs=0)
        assert np.mean(ndcg) == pytest.approx(results[f"ndcg@{k}"], rel=1e-12, abs=0)
        assert results[f"recall@{k}"] > 0
    exported = set(zip(frame.user, frame.item, strict=True))
    assert not exported & (_pairs(data, data.train) | _pairs(data, data.valid))
    assert exported & _pairs(data, data.test)  # test items may now be recommended


@pytest.mark.parametrize(
    ("exclude", "never", "may"),
    [("all", ("train", "valid", "test"), ()), ("train", ("train",), ("valid", "test"))],
)
def test_recommend_exclude_modes(dpi_run, tmp_path, exclude, never, may):
    data = load_run(dpi_run).data
    out = tmp_path / "top.csv"
    args = ["--k", "20"] + ([] if exclude == "all" else ["--exclude", exclude])
    assert _recommend(dpi_run, out, *args) == 0
    frame = pd.read_csv(out, dtype={"user": str, "item": data.item_ids.dtype})
    exported = set(zip(frame.user, frame.item, strict=True))
    for name in never:
        assert not exported & _pairs(data, getattr(data, name)), name
    for name in may:
        assert exported & _pairs(data, getattr(data, name)), name


def test_recommend_skips_unknown_users(dpi_run, tmp_path, capsys):
    data = load_run(dpi_run).data
    known = [str(u) for u in data.user_ids[[3, 8]]]
    (tmp_path / "users.txt").write_text(f"u999\n{known[0]}\n\nu998\n{known[1]}\nu997\n")
    out = tmp_path / "top.csv"
    assert _recommend(dpi_run, out, "--k", "5", "--users", str(tmp_path / "users.txt")) == 0
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        "recommend: skipped 3 unknown user ids (first: 'u999'); "
        "pass --cold popularity to rank them by training popularity"
    ]
    assert captured.out.splitlines()[-1] == (
        f"wrote 10 rows (2 users × top 5, --exclude all) to {out}"
    )
    frame = pd.read_csv(out, dtype={"user": str})
    assert list(frame.columns) == ["user", "rank", "item", "score"]
    assert list(frame.user.unique()) == known


def test_recommend_cold_users_by_popularity(dpi_run, tmp_path, capsys):
    run = load_run(dpi_run)
    data = run.data
    known = str(data.user_ids[4])
    (tmp_path / "users.txt").write_text(f"u999\n{known}\nu998\n")
    out = tmp_path / "top.parquet"
    args = ["--k", "6", "--users", str(tmp_path / "users.txt"), "--cold", "popularity"]
    assert _recommend(dpi_run, out, *args) == 0
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        "recommend: ranking 2 unknown user ids by training popularity "
        "(first: 'u999'; source 'popularity')"
    ]
    assert captured.out.splitlines()[-1] == (
        f"wrote 18 rows (3 users, 2 by popularity × top 6, --exclude all) to {out}"
    )
    frame = pd.read_parquet(out)
    assert list(frame.columns) == ["user", "rank", "item", "score", "source"]
    assert list(frame.user.unique()) == ["u999", known, "u998"]  # requested order kept
    assert list(frame.source) == ["popularity"] * 6 + ["model"] * 6 + ["popularity"] * 6
    # Cold rows: the most popular training items (ties: lowest index), scored by their count.
    popularity = np.bincount(data.train.items, minlength=data.n_items)
    expected = np.argsort(-popularity, kind="stable")[:6]
    for user in ("u999", "u998"):
        rows = frame[frame.user == user]
        assert list(rows.item) == list(data.item_ids[expected])
        assert list(rows.score) == list(popularity[expected].astype(float))
    # The known user's rows come from the model: none of its items, logits not counts.
    model_rows = frame[frame.user == known]
    assert not set(zip(model_rows.user, model_rows.item, strict=True)) & (
        _pairs(data, data.train) | _pairs(data, data.valid) | _pairs(data, data.test)
    )
    item_index = {v: k for k, v in enumerate(data.item_ids)}
    items = np.array([item_index[i] for i in model_rows.item])
    logits = run.target_logits(np.full(items.shape, 4), items)
    np.testing.assert_allclose(np.asarray(logits), model_rows.score, rtol=1e-5, atol=1e-6)
