"""Commands on a trained run: top-K export (dprec.recommend) and the noisy-interaction report."""

import numpy as np
import pandas as pd
import pytest

from dprec import denoise_report, recommend, train
from dprec.presets import build_config
from dprec.run_loading import load_run


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
    assert denoise_report.roc_auc(scores, labels) == pytest.approx(4.5 / 6)
    assert denoise_report.precision_at(scores, labels, 2) == 0.5


def test_report_flags_noise_above_chance(dpi_run, capsys):
    assert denoise_report.main(["--workdir", str(dpi_run), "--top", "7"]) == 0
    table = pd.read_csv(dpi_run / denoise_report.REPORT_FILE)
    run = load_run(dpi_run)
    assert len(table) == len(run.data.train)
    assert len(pd.read_csv(dpi_run / denoise_report.SUSPICIOUS_FILE)) == 7
    detection = denoise_report.detection_scores(table)
    assert detection["1 - P(real positive)"]["auc"] > 0.5
    assert "flagging truly noisy" in capsys.readouterr().out


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
    assert "no-such-user" in capsys.readouterr().err
    assert recommend.main(["--workdir", str(tmp_path / "missing")]) == 2
    assert not (tmp_path / "x.csv").exists()
