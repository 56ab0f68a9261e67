"""dprec-noise-bench: planted data in each world, one command per method and the oracle, the
gap each method closes, the summary counts, the page and its AUCs."""

import csv
import dataclasses
import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest

from dprec.data import planted
from dprec.evaluation import noise_scores
from dprec.sweeps import noise_bench, noise_bench_table


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


def bench_run(path, seed, recall, auc, references=True):
    """A finished run of the bench: recall@20 and ndcg@20 = recall / 2 in every view; with
    `references`, the popularity (R@20 0.25) and ItemKNN (0.5) rows and their settings."""
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"seed": seed, "method": {"name": "normal"}}))
    row = {"recall@20": recall, "ndcg@20": recall / 2, "users": 10}
    test = {"paper": row, "warm": row}
    results = {"test": test, "interpretation": {"noise_detection_auc": auc}, "seed": seed}
    if references:
        test["popularity_paper"] = {"recall@20": 0.25, "ndcg@20": 0.1, "users": 10}
        test["itemknn_paper"] = {"recall@20": 0.5, "ndcg@20": 0.2, "users": 10}
        test["itemknn_warm"] = {"recall@20": 0.6, "ndcg@20": 0.3, "users": 8}
        results["reference_settings"] = {
            "popularity": {"label": "Popularity", "hyper": {}},
            "itemknn": {"label": "ItemKNN", "hyper": {"k": 100, "shrink": 10.0}},
            "ease": {"label": "EASE", "skipped": "too many items"},
        }
    (path / "results.json").write_text(json.dumps(results))


CELL = noise_bench.Cell("latent", "uniform", 0.2)


def test_collect_reads_the_seed_runs_and_writes_one_table(tmp_path, capsys):
    """Two seeds (R@20 0.2 and 0.4, AUC 0.6 and 0.8) and one unreadable run (skipped, warned):
    mean ± sample std over the seeds; the reference rows from the normal runs, with the
    setting each chose."""
    combo = tmp_path / "runs" / "latent-uniform-0.2" / "normal"
    bench_run(combo / "seed=0", 0, 0.2, 0.6)
    bench_run(combo / "seed=1", 1, 0.4, 0.8)
    bench_run(combo / "seed=2", 2, 0.9, 0.9)
    (combo / "seed=2" / "results.json").write_text("{")
    rows = noise_bench.collect(tmp_path, CELL, ["normal"], tuned=False)
    assert "seed=2/results.json" in capsys.readouterr().err
    assert {row[:3] for row in rows} == {("latent", "uniform", 0.2)}
    stats = {(row.method, row.metric, row.view): row[-3:] for row in rows}
    assert stats[("normal", "recall@20", "paper")] == pytest.approx([0.3, math.sqrt(0.02), 2])
    assert stats[("normal", "ndcg@20", "warm")] == pytest.approx([0.15, math.sqrt(0.005), 2])
    assert stats[("normal", "auc", "train")] == pytest.approx([0.7, math.sqrt(0.02), 2])
    assert stats[("popularity", "recall@20", "paper")] == pytest.approx([0.25, 0.0, 2])
    assert stats[("itemknn", "recall@20", "warm")] == pytest.approx([0.6, 0.0, 2])
    assert stats[("oracle", "recall@20", "paper")][2] == 0  # no oracle run: n = 0
    settings = {row.method: row.setting for row in rows}
    assert settings["itemknn"] == "k=100, shrink=10" and settings["ease"] == "skipped"
    assert settings["normal"] == settings["popularity"] == ""
    lines = noise_bench_table.page_body(rows, [CELL], ["normal"], "header").splitlines()
    table = lines[lines.index("### World: latent") + 2 :]
    assert table[0] == (
        "| noise | rate | method | R@20 all | N@20 all | R@20 warm | N@20 warm"
        " | gap closed (R@20 all) | noise AUC |"
    )
    assert table[2] == (
        "| uniform | 0.2 | Normal (AUC: σ(f)) | **0.3000 ± 0.1414** | 0.1500 ± 0.0707"
        " | 0.3000 ± 0.1414 | 0.1500 ± 0.0707 | – | 0.7000 ± 0.1414 |"
    )
    assert table[3].startswith("| uniform | 0.2 | Oracle (normal on truth-clean rows) | – |")
    assert table[4].startswith("| uniform | 0.2 | Popularity (AUC: inverse popularity) |")
    assert table[5] == (
        "| uniform | 0.2 | ItemKNN (k=100, shrink=10) | 0.5000 ± 0.0000 | 0.2000 ± 0.0000"
        " | 0.6000 ± 0.0000 | 0.3000 ± 0.0000 | – | – |"
    )
    assert table[6] == "| uniform | 0.2 | EASE (skipped) | – | – | – | – | – | – |"
    assert len(table) == 7  # RP3β and iALS: neither run nor skipped, no row


def cell_rows(cell, recall, auc=None):
    """BenchRows of one cell: method → (R@20 mean, std, n); method → mean AUC."""
    rows = []
    for method, (mean, std, n) in recall.items():
        rows.append(noise_bench_table.BenchRow(*dataclasses.astuple(cell), method, "", "",
                                               "recall@20", "paper", mean, std, n))  # fmt: skip
    for method, value in (auc or {}).items():
        rows.append(noise_bench_table.BenchRow(*dataclasses.astuple(cell), method, "", "own",
                                               "auc", "train", value, 0.0, 1))  # fmt: skip
    return rows


def test_gap_closed_column_on_run_dirs(tmp_path):
    """Normal R@20 0.2 and 0.3 (mean 0.25, std 0.0707), the oracle 0.45, DPI 0.35 and T-CE
    0.2: DPI closes (0.35 − 0.25) / (0.45 − 0.25) = 50 % of the gap, T-CE −25 %."""
    runs = tmp_path / "runs" / "latent-uniform-0.2"
    bench_run(runs / "normal" / "seed=0", 0, 0.2, 0.6)
    bench_run(runs / "normal" / "seed=1", 1, 0.3, 0.6)
    for method, recall, auc in (("oracle", 0.45, None), ("dpi", 0.35, 0.7), ("tce", 0.2, 0.5)):
        for seed in (0, 1):
            bench_run(runs / method / f"seed={seed}", seed, recall, auc, references=False)
    methods = ["normal", "dpi", "tce"]
    rows = noise_bench.collect(tmp_path, CELL, methods, tuned=False)
    body = noise_bench_table.page_body(rows, [CELL], methods, "header")
    gap = {line.split(" | ")[2]: line.split(" | ")[7] for line in body.splitlines()
           if line.startswith("| uniform | 0.2 |")}  # fmt: skip
    assert (
        gap["Normal (AUC: σ(f))"] == "0 %" and gap["Oracle (normal on truth-clean rows)"] == "100 %"
    )
    assert gap["DPI"] == "50 %" and gap["T-CE (AUC: its loss)"] == "-25 %"
    assert gap["Popularity (AUC: inverse popularity)"] == "–"  # the methods' column only
    verdict = noise_bench_table.cell_verdict(noise_bench_table.index_rows(rows), CELL, methods)
    assert verdict.gap and verdict.best == "dpi" and verdict.closed == pytest.approx(0.5)
    assert "| latent | uniform | 0.2 | 0.2500 ± 0.0707 | 0.4500 ± 0.0000 | DPI |" in body


def test_no_gap_rule_is_normals_seed_spread():
    normal = (0.30, 0.02, 3)
    assert not noise_bench_table.has_gap(normal, (0.315, 0.0, 3))  # within one std: no gap
    assert noise_bench_table.has_gap(normal, (0.33, 0.0, 3))
    assert not noise_bench_table.has_gap(normal, (0.20, 0.0, 3))  # oracle below: nothing to close
    assert noise_bench_table.gap_closed(0.315, 0.30, 0.33) == pytest.approx(0.5)


def test_summary_counts_gap_and_do_no_harm_cells():
    """Four cells: a gap the best method (DPI 0.36) closes 60 % of; a gap the best (T-CE 0.32)
    closes 20 % of; no gap with the best within normal's std; no gap with the best below
    normal − std (harm); plus an AUC below inverse popularity in the first cell."""
    cells = [noise_bench_table.Cell("latent", kind, 0.2) for kind in ("uniform", "popularity")]
    cells += [noise_bench_table.Cell("block", kind, 0.2) for kind in ("uniform", "popularity")]
    normal = (0.30, 0.01, 3)
    rows = cell_rows(cells[0], {"normal": normal, "oracle": (0.40, 0, 3), "dpi": (0.36, 0, 3),
                                "tce": (0.31, 0, 3)},
                     {"normal": 0.7, "dpi": 0.55, "tce": 0.65, "popularity": 0.6})  # fmt: skip
    rows += cell_rows(cells[1], {"normal": normal, "oracle": (0.40, 0, 3), "dpi": (0.29, 0, 3),
                                 "tce": (0.32, 0, 3)})  # fmt: skip
    rows += cell_rows(cells[2], {"normal": normal, "oracle": (0.305, 0, 3), "dpi": (0.295, 0, 3),
                                 "tce": (0.28, 0, 3)})  # fmt: skip
    rows += cell_rows(cells[3], {"normal": normal, "oracle": (0.30, 0, 3), "dpi": (0.25, 0, 3),
                                 "tce": (0.28, 0, 3)})  # fmt: skip
    index = noise_bench_table.index_rows(rows)
    verdicts = [noise_bench_table.cell_verdict(index, c, ["normal", "dpi", "tce"]) for c in cells]
    assert [(v.gap, v.best) for v in verdicts] == [
        (True, "dpi"),
        (True, "tce"),
        (False, "dpi"),
        (False, "tce"),
    ]
    assert [v.closed for v in verdicts[:2]] == pytest.approx([0.6, 0.2])
    assert [v.versus_normal for v in verdicts] == [None, None, "within", "below"]
    lines = noise_bench_table.summary_lines(index, cells, ["normal", "dpi", "tce"])
    rows_by_world = {line.split(" | ")[0].strip("| "): line.split(" | ")[1:] for line in lines[2:]}
    # cells, gap: closes ≥ 50 %, no gap: within 1 std, outside, no verdict, AUCs below inv. pop.
    assert rows_by_world["latent"] == ["2", "1 of 2", "–", "–", "0", "1 of 3 |"]
    assert rows_by_world["block"] == ["2", "–", "1 of 2", "above 0, below 1", "0", "– |"]
    assert rows_by_world["**all**"] == ["4", "1 of 2", "1 of 2", "above 0, below 1", "0",
                                        "1 of 3 |"]  # fmt: skip
    flags = noise_bench_table.auc_flags(index, cells[0], ["normal", "dpi", "tce"])
    assert flags == {"normal": False, "dpi": True, "tce": False}


def args_of(*argv):
    args = noise_bench.build_parser().parse_args(["--out", "/tmp/unused", *argv])
    return args


@pytest.mark.parametrize("tune", ["0", "3"])
def test_the_oracle_is_normal_training_on_the_truth_clean_rows(tmp_path, tune):
    args = args_of("--tune", tune)
    data, out = tmp_path / "d.csv.gz", tmp_path / "oracle"
    oracle = noise_bench.oracle_command(args, data, out, {"train.l2": "0.1"})
    normal = noise_bench.combo_command(args, "normal", data, out, {"train.l2": "0.1"})
    assert "--set" in oracle and "data.train_truth=clean" in oracle
    assert "data.train_truth=clean" not in " ".join(normal)
    # otherwise the same command: normal training, its tuning or presets, the same data
    extra = oracle.index("data.train_truth=clean")
    assert oracle[: extra - 1] + oracle[extra + 1 :] == normal
    assert any(part.endswith("method=normal") for part in oracle)


def test_the_control_reruns_normal_at_the_best_methods_setting(tmp_path, capsys):
    """Tuned layout: normal 0.25 ± 0.07, the oracle 0.45, DPI 0.35 (its tune chose learning
    rate 0.004 and λ0 1), T-CE 0.2. The control is normal training at DPI's learning rate and
    λ0 over the seeds, as a grid; at 0.34 ± 0.014 it reaches DPI (within the larger std),
    and the cell says the gain was the setting's; a later, different best keeps the old one."""
    runs = tmp_path / "runs" / "latent-uniform-0.2"
    bench_run(runs / "normal" / "best" / "seed=0", 0, 0.2, 0.6)
    bench_run(runs / "normal" / "best" / "seed=1", 1, 0.3, 0.6)
    for method, recall in (("oracle", 0.45), ("dpi", 0.35), ("tce", 0.2)):
        for seed in (0, 1):
            bench_run(runs / method / "best" / f"seed={seed}", seed, recall, 0.5, references=False)
    params = {"train.learning_rate": 0.004, "train.l2": 1.0, "method.c1": 10.0}
    (runs / "dpi" / "tune.json").write_text(json.dumps({"best": {"params": params}}))
    methods = ["normal", "dpi", "tce"]
    args = args_of("--tune", "8", "--seeds", "0,1", "--max-epochs", "20")
    data = tmp_path / "data.csv.gz"
    folder, command, log = noise_bench.control_job(args, tmp_path, CELL, methods, data)
    assert folder == runs / "control" and log.name == "latent-uniform-0.2-control.log"
    assert "dprec.sweeps.grid" in command and "dprec.sweeps.tune" not in command
    sets = {command[i + 1] for i, part in enumerate(command) if part == "--set"}
    assert {"train.learning_rate=0.004", "train.l2=1.0", "train.num_epochs=20"} <= sets
    assert not any(part.startswith("method.") for part in sets)  # normal's own fields only
    assert command[command.index("--grid") + 1] == "seed=0,1"
    assert any(part.endswith("method=normal") for part in command)
    for seed, recall in ((0, 0.35), (1, 0.33)):
        bench_run(folder / f"seed={seed}", seed, recall, None, references=False)
    rows = noise_bench.collect(tmp_path, CELL, methods, tuned=True)
    body = noise_bench_table.page_body(rows, [CELL], methods, "header")
    assert "| Control: normal training (at DPI's learning_rate=0.004, l2=1) | " in body
    assert "| DPI | closes 50 % of the gap | 0.3400 ± 0.0141 (reaches the best: the" in body
    verdict = noise_bench_table.cell_verdict(noise_bench_table.index_rows(rows), CELL, methods)
    assert verdict.best == "dpi"  # the control is never the best method
    # A control further below (0.26) does not reach DPI's 0.35.
    control = noise_bench_table.lookup(noise_bench_table.index_rows(rows), CELL, "control")
    assert "reaches" not in noise_bench_table._control_text((0.26, 0.0, 2), (0.35, 0.0, 2))
    assert "reaches" in noise_bench_table._control_text(control, (0.35, 0.0, 2))
    # Another best setting after the control ran: the finished control is kept, and said so.
    params["train.learning_rate"] = 0.01
    (runs / "dpi" / "tune.json").write_text(json.dumps({"best": {"params": params}}))
    assert noise_bench.control_job(args, tmp_path, CELL, methods, data) is None
    assert "best method changed since; kept the old control" in capsys.readouterr().out


def test_each_world_writes_its_own_data_file_with_sizes_only_where_taken(tmp_path):
    args = args_of("--n-users", "150", "--n-items", "110")
    assert noise_bench.world_options("latent", args) == (
        "latent",
        {"n_users": 150, "n_items": 110, "seed": 0},
    )
    assert noise_bench.world_options("block", args)[1]["n_users"] == 150
    assert noise_bench.world_options("real-modcloth", args) == (
        "real",
        {"dataset": "modcloth", "seed": 0},
    )
    assert noise_bench.world_options("real-ml100k", args)[1] == {"dataset": "ml-100k", "seed": 0}
    for world in ("latent", "block"):
        path = noise_bench.write_data(tmp_path, "popularity", 0.3, args, world)
        assert path == tmp_path / "data" / f"{world}-popularity-0.3.csv.gz"
        planted_rows = planted.plant("popularity", 0.3, world=world, n_users=150, n_items=110)
        np.testing.assert_array_equal(pd.read_csv(path)["truth"], planted_rows.frame["truth"])
    # the two worlds' tables differ: each file is its own world's
    block = pd.read_csv(tmp_path / "data" / "block-popularity-0.3.csv.gz")
    latent = pd.read_csv(tmp_path / "data" / "latent-popularity-0.3.csv.gz")
    assert len(block) != len(latent) or not block.equals(latent)


@pytest.mark.parametrize("user_set", [{}, {"eval.references": "('ease',)"}])
def test_tune_trials_skip_the_references_and_the_best_reruns_keep_them(tmp_path, user_set):
    """The bench's tunes: every trial runs with eval.references=() (unless --set names them);
    the best setting's reruns carry no such override, so their runs fit the references."""
    from dprec.sweeps import tune

    fixed = {"train.num_epochs": "3", **user_set}
    tuner = tune.Tune("configs/tiny.py", tmp_path, fixed, {}, "recall@20")
    trial = tune.grid.command(tuner.plan("0000", {"train.learning_rate": 0.01}), "0000")
    assert f"--config.eval.references={user_set.get('eval.references', '()')}" in trial
    assert "--config.train.learning_rate=0.01" in trial
    best = tune.best_plan(tuner, {"train.learning_rate": 0.01}, ["0", "1"])
    assert best.fixed.get("eval.references") == user_set.get("eval.references")


@pytest.mark.parametrize(("user_set", "reused"), [({}, False), ({"eval.references": "()"}, True)])
def test_the_best_reruns_reuse_a_trial_only_when_it_ran_their_config(tmp_path, user_set, reused):
    """A trial without the reference rows is not the best setting's seed-0 run: rerun it."""
    from types import SimpleNamespace

    from dprec.sweeps import tune

    tuner = tune.Tune("configs/tiny.py", tmp_path, dict(user_set), {}, "recall@20")
    source = tmp_path / "trials" / "0003"
    source.mkdir(parents=True)
    (source / "results.json").write_text("{}")
    best = SimpleNamespace(user_attrs={"run_dir": "trials/0003"})
    plan = tune.best_plan(tuner, {"train.learning_rate": 0.01}, ["0", "1"])
    tune.prepare_best(tuner, plan, best, trial_seed=0)
    assert (plan.out / "seed=0" / "results.json").is_file() == reused
    assert not (plan.out / "seed=1").exists()


@pytest.mark.slow
def test_a_tiny_latent_bench_writes_every_row_and_the_page(tmp_path, capsys):
    """Latent world, normal and DCF with their presets (--tune 0), one seed, 2 epochs: every
    method, the oracle and the reference rows (ItemKNN only, to stay quick) are in the CSV;
    the page has the summary and the latent world's table."""
    out, page = tmp_path / "bench", tmp_path / "page.md"
    args = ["--out", str(out), "--worlds", "latent", "--kinds", "uniform", "--rates", "0.3"]
    args += ["--methods", "normal,dcf", "--seeds", "0", "--max-epochs", "2", "--jobs", "2"]
    args += ["--n-users", "300", "--n-items", "120", "--set", "eval.references=('itemknn',)"]
    assert noise_bench.main([*args, "--page", str(page)]) == 0
    rows = list(csv.DictReader((out / noise_bench.CSV_FILE).read_text().splitlines()))
    assert {row["world"] for row in rows} == {"latent"}
    recall = {row["method"]: row for row in rows if row["metric"] == "recall@20"
              and row["view"] == "paper" and row["n"] != "0"}  # fmt: skip
    assert set(recall) == {"normal", "dcf", "oracle", "popularity", "itemknn"}
    aucs = {row["method"]: float(row["mean"]) for row in rows
            if row["metric"] == "auc" and row["n"] != "0"}  # fmt: skip
    assert set(aucs) == {"normal", "dcf", "popularity"}  # the oracle trains on clean rows only
    assert aucs["popularity"] < aucs["normal"], aucs  # training learns more than item counts
    oracle = json.loads((out / "runs/latent-uniform-0.3/oracle/seed=0/config.json").read_text())
    assert oracle["data"]["train_truth"] == "clean" and oracle["method"]["name"] == "normal"
    text = page.read_text()
    assert text.startswith("# Planted-noise benchmark") and "- command: `dprec-noise-bench" in text
    assert "### Summary" in text and "### World: latent" in text
    assert "| uniform | 0.3 | DCF |" in text and "| uniform | 0.3 | ItemKNN (" in text
    assert text.split("\n", 8)[-1].strip() in (out / noise_bench.TABLE_FILE).read_text()
    data = planted.plant("uniform", 0.3, world="latent", n_users=300, n_items=120, seed=0).frame
    written = pd.read_csv(out / "data" / "latent-uniform-0.3.csv.gz")
    np.testing.assert_array_equal(written["truth"], data["truth"])
    assert "[3/3]" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kinds", "bursty"], "unknown noise kind 'bursty'"),
        (["--kinds", "exposure"], "plants no noisy clicks"),
        (["--rates", "0.2,1.5"], "--rates must be in (0, 1)"),
        (["--methods", "tce,dpi"], "must include normal"),
        (["--methods", "normal,foo"], "unknown method 'foo'"),
        (["--seeds", "a"], "bad --seeds"),
        (["--worlds", "latent,moon"], "unknown world 'moon'"),
        (["--methods", "normal,oracle"], "the oracle runs in every cell"),
        (["--set", "data.train_truth=clean"], "the oracle's setting"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "bench"
    assert noise_bench.main(["--out", str(out), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("noise_bench: error:") and message in err and len(err.splitlines()) == 1
    assert not out.exists()
