"""dprec-noise-bench: planted data, one command per method, the table and its AUCs."""

import csv
import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest

from dprec.data import planted
from dprec.evaluation import noise_scores
from dprec.sweeps import noise_bench


def test_roc_auc_is_the_share_of_correctly_ordered_pairs():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 4, 40).astype(float)  # many ties
    positive = rng.random(40) < 0.4
    pairs = [
        1.0 if p > n else 0.5 if p == n else 0.0
        for p, n in itertools.product(scores[positive], scores[~positive])
    ]
    assert noise_scores.roc_auc(scores, positive) == pytest.approx(np.mean(pairs))


def test_the_report_auc_of_a_known_good_score_is_high():
    """The planted ratings follow the truth; a score that is the rating with 5 % of its
    values shuffled must separate clean from noisy: AUC > 0.9 (and exactly 1 unshuffled)."""
    frame = planted.plant("popularity", 0.3, n_users=500, n_items=120, seed=1).frame
    score = frame["rating"].to_numpy().astype(float)
    table = frame.assign(probability=score)
    assert noise_scores.summarize_table(table)["noise_detection_auc"] == 1.0
    rng = np.random.default_rng(0)
    flipped = rng.random(len(score)) < 0.05
    score[flipped] = rng.permutation(score[flipped])
    auc = noise_scores.summarize_table(table.assign(probability=score))["noise_detection_auc"]
    assert 0.9 < auc < 1.0


def bench_run(path, seed, recall, auc):
    """A finished grid run of the bench: recall@20 and ndcg@20 = recall / 2 in every view."""
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"seed": seed, "method": {"name": "normal"}}))
    row = {"recall@20": recall, "ndcg@20": recall / 2, "users": 10}
    popularity = {"recall@20": 0.25, "ndcg@20": 0.1, "users": 10}
    test = {"paper": row, "warm": row, "popularity_paper": popularity}
    results = {"test": test, "interpretation": {"noise_detection_auc": auc}, "seed": seed}
    (path / "results.json").write_text(json.dumps(results))


def test_collect_reads_the_seed_runs_and_writes_one_table(tmp_path, capsys):
    """Two seeds (R@20 0.2 and 0.4, AUC 0.6 and 0.8) and one unreadable run (skipped, warned):
    mean ± sample std over the seeds; the popularity row from the runs' popularity_paper."""
    combo = tmp_path / "runs" / "uniform-0.2" / "normal"
    bench_run(combo / "seed=0", 0, 0.2, 0.6)
    bench_run(combo / "seed=1", 1, 0.4, 0.8)
    bench_run(combo / "seed=2", 2, 0.9, 0.9)
    (combo / "seed=2" / "results.json").write_text("{")
    rows = noise_bench.collect(tmp_path, "uniform", 0.2, ["normal"], tuned=False)
    assert "seed=2/results.json" in capsys.readouterr().err
    stats = {(row[2], row[4], row[5]): row[6:] for row in rows}
    assert stats[("normal", "recall@20", "paper")] == pytest.approx([0.3, math.sqrt(0.02), 2])
    assert stats[("normal", "ndcg@20", "warm")] == pytest.approx([0.15, math.sqrt(0.005), 2])
    assert stats[("normal", "auc", "train")] == pytest.approx([0.7, math.sqrt(0.02), 2])
    assert stats[("popularity", "recall@20", "paper")] == pytest.approx([0.25, 0.0, 1])
    lines = noise_bench.markdown(rows, ["normal"], "header").splitlines()
    assert lines[2:6] == [
        "### uniform noise, rate 0.2",
        "",
        "| method | R@20 all | N@20 all | R@20 warm | N@20 warm | noise AUC |",
        "|---|---|---|---|---|---|",
    ]
    assert lines[6] == (
        "| Normal (AUC: σ(f)) | **0.3000 ± 0.1414** | 0.1500 ± 0.0707 | 0.3000 ± 0.1414"
        " | 0.1500 ± 0.0707 | 0.7000 ± 0.1414 |"
    )
    assert lines[7] == "| Popularity (AUC: inverse popularity) | 0.2500 | 0.1000 | – | – | – |"


@pytest.mark.slow
def test_a_small_bench_writes_every_row(tmp_path, capsys):
    out = tmp_path / "bench"
    args = ["--out", str(out), "--kinds", "uniform", "--rates", "0.3", "--methods", "normal,dcf"]
    args += ["--seeds", "0", "--max-epochs", "2", "--n-users", "300", "--n-items", "80"]
    assert noise_bench.main(args) == 0
    rows = list(csv.DictReader((out / noise_bench.CSV_FILE).read_text().splitlines()))
    methods = {row["method"] for row in rows}
    assert methods == {"normal", "dcf", "popularity"}
    aucs = {row["method"]: float(row["mean"]) for row in rows if row["metric"] == "auc"}
    assert set(aucs) == {"normal", "dcf", "popularity"}
    assert all(0.0 <= value <= 1.0 for value in aucs.values())
    recall = [row for row in rows if row["metric"] == "recall@20" and row["view"] == "paper"]
    assert {row["method"] for row in recall} == methods and all(row["n"] == "1" for row in recall)
    table = (out / noise_bench.TABLE_FILE).read_text()
    assert "### uniform noise, rate 0.3" in table and "| DCF |" in table
    assert "Normal (AUC: σ(f))" in table
    # The data file is what the generator plants (its rates are tests/test_planted.py's).
    data = planted.plant("uniform", 0.3, n_users=300, n_items=80, seed=0).frame
    written = pd.read_csv(out / "data" / "uniform-0.3.csv.gz")
    np.testing.assert_array_equal(written["truth"], data["truth"])
    assert "[2/2]" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kinds", "bursty"], "unknown noise kind 'bursty'"),
        (["--kinds", "exposure"], "plants no noisy clicks"),
        (["--rates", "0.2,1.5"], "--rates must be in (0, 1)"),
        (["--methods", "tce,dpi"], "must include normal"),
        (["--methods", "normal,foo"], "unknown method 'foo'"),
        (["--seeds", "a"], "bad --seeds"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "bench"
    assert noise_bench.main(["--out", str(out), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("noise_bench: error:") and message in err and len(err.splitlines()) == 1
    assert not out.exists()
