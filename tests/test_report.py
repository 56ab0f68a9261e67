"""dprec.tools.report and its reader, dprec.runs.finished, on hand-made run directories: means,
stds, groups by setting, mixed K, bold and ↓ against the reference rows, CSV, errors."""

import json
import math
import subprocess
import sys

import pandas as pd
import pytest
from conftest import REPO

from dprec.errors import UserInputError
from dprec.runs import finished
from dprec.sweeps import grid, tune
from dprec.tools import report

METRICS = ("recall@5", "recall@20", "ndcg@5", "ndcg@20")
POPULARITY = (0.10, 0.27, 0.07, 0.12)
RANDOM = (0.01, 0.02, 0.005, 0.01)


def metrics(values, users=10, ks=(5, 20)):
    """{'recall@K1': v0, 'recall@K2': v1, 'ndcg@K1': v2, 'ndcg@K2': v3, 'users': users}."""
    names = [f"{name}@{k}" for name in ("recall", "ndcg") for k in ks]
    return {**dict(zip(names, values, strict=True)), "users": users}


def shifted(values, delta):
    return tuple(v + delta for v in values)


def write_run(
    path,
    dataset,
    model,
    method,
    seed,
    paper,
    *,
    mode="alternate",
    random=True,
    complete=True,
    c1=10.0,
    ks=(5, 20),
    popularity=POPULARITY,
    references=None,
):
    """A run directory: config.json and (when complete) results.json; warm = paper + 0.01.
    `references`: {name: values} of more reference rows (`{name}_paper`, `{name}_warm`)."""
    path.mkdir(parents=True)
    config = {
        "seed": seed,
        "data": {"name": dataset},
        "model": {"name": model},
        "method": {"name": method, "mode": mode, "c1": c1},
        "train": {"num_epochs": 3},
        "eval": {"ks": list(ks)},
    }
    (path / "config.json").write_text(json.dumps(config))
    rankers = {"popularity": popularity, **(references or {})}
    if random:
        rankers["random"] = RANDOM
    test = {"paper": metrics(paper, ks=ks), "warm": metrics(shifted(paper, 0.01), ks=ks)}
    for name, values in rankers.items():
        test |= {f"{name}_paper": metrics(values, ks=ks), f"{name}_warm": metrics(values, ks=ks)}
    results = {
        "best_epoch": 2,
        "epochs_run": 3,
        "test": test,
        "test_last": test,
        "valid": metrics(paper, ks=ks),
        "selection_metric": f"recall@{ks[-1]}",
        "seed": seed,
    }
    if complete:
        (path / "results.json").write_text(json.dumps(results))


@pytest.fixture
def runs_dir(tmp_path):
    root = tmp_path / "runs"
    mc = root / "modcloth"
    write_run(mc / "gmf-normal-0", "modcloth", "gmf", "normal", 0, (0.06, 0.20, 0.04, 0.08))
    write_run(mc / "gmf-normal-1", "modcloth", "gmf", "normal", 1, (0.08, 0.24, 0.05, 0.10))
    write_run(mc / "gmf-dpi-0", "modcloth", "gmf", "dpi", 0, (0.07, 0.26, 0.06, 0.09))
    write_run(mc / "gmf-dpi-1", "modcloth", "gmf", "dpi", 1, (0.07, 0.26, 0.04, 0.11))
    write_run(mc / "deep" / "er" / "dvae", "modcloth", "gmf", "dvae", 0, (0.05, 0.2, 0.03, 0.07))
    write_run(mc / "dpi-dp", "modcloth", "gmf", "dpi", 0, (0.01, 0.1, 0.01, 0.05), mode="dp")
    write_run(mc / "dvae-dn", "modcloth", "gmf", "dvae", 0, (0.01, 0.1, 0.01, 0.05), mode="dn")
    write_run(
        mc / "neumf-rce", "modcloth", "neumf", "rce", 0, (0.02, 0.1, 0.02, 0.06), random=False
    )
    write_run(
        mc / "neumf-tce", "modcloth", "neumf", "tce", 0, (0.03, 0.1, 0.02, 0.06), random=False
    )
    write_run(mc / "unfinished", "modcloth", "gmf", "wbpr", 0, (0.9,) * 4, complete=False)
    write_run(root / "syn" / "r", "synthetic", "mf", "normal", 0, (0.3, 0.4, 0.2, 0.3))
    return root


def rows_of(markdown, title):
    """{method: cells} of the table under `title`, and the method order."""
    block = markdown.split(f"### {title}\n", 1)[1].split("\n\n", 1)[0]
    lines = [line for line in block.splitlines() if line.startswith("|")][2:]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    return {c[0]: c[1:] for c in cells}, [c[0] for c in cells]


def test_method_label():
    assert report.method_label({"name": "dpi", "mode": "alternate"}) == "DPI"
    assert report.method_label({"name": "tce", "mode": "alternate"}) == "T-CE"
    assert report.method_label({"name": "dvae", "mode": "dn"}) == "DVAE-DN"
    assert report.method_label({"name": "rce", "mode": "dp"}) == "R-CE-DP"


def test_summary_means_and_stds(runs_dir):
    table = report.summarize(report.find_runs(runs_dir), METRICS)
    key = ["dataset", "view", "model", "method", "metric"]
    by = table.set_index(key)
    normal = by.loc[("modcloth", "paper", "gmf", "Normal", "recall@20")]
    assert normal["mean"] == pytest.approx(0.22)
    assert normal["std"] == pytest.approx(0.02)  # population std of 0.20 and 0.24
    assert normal["n"] == 2
    dpi = by.loc[("modcloth", "warm", "gmf", "DPI", "ndcg@5")]
    assert (dpi["mean"], dpi["std"], dpi["n"]) == pytest.approx((0.06, 0.01, 2))
    popularity = by.loc[("modcloth", "paper", "gmf", "Popularity", "recall@20")]
    assert (popularity["mean"], popularity["std"], popularity["n"]) == pytest.approx((0.27, 0, 7))
    assert ("modcloth", "paper", "neumf", "Random", "recall@5") not in by.index
    assert ("modcloth", "paper", "gmf", "WBPR", "recall@5") not in by.index  # incomplete run
    assert table.duplicated(key).sum() == 0


def test_markdown_layout_bold_and_marks(runs_dir):
    table = report.summarize(report.find_runs(runs_dir), METRICS)
    markdown = report.markdown_report(table, METRICS)
    rows, order = rows_of(markdown, "modcloth, all test users (paper protocol)")
    assert order == ["Normal", "T-CE", "R-CE", "DPI", "DVAE", "DPI-DP", "DVAE-DN"] + [
        "Popularity",
        "Random",
    ]
    header = markdown.split("### modcloth, all test users (paper protocol)\n\n", 1)[1]
    assert header.splitlines()[0] == (
        "| method | GMF R@5 | GMF R@20 | GMF N@5 | GMF N@20 | GMF n"
        " | NeuMF R@5 | NeuMF R@20 | NeuMF N@5 | NeuMF N@20 | NeuMF n |"
    )
    # Popularity (0.10, 0.27, 0.07, 0.12) beats every trained mean of GMF and NeuMF: it is
    # bold in every column, and every trained cell is marked below it.
    assert rows["Normal"][:5] == [
        "0.0700 ± 0.0100 ↓",
        "0.2200 ± 0.0200 ↓",
        "0.0450 ± 0.0050 ↓",
        "0.0900 ± 0.0100 ↓",
        "2",
    ]
    assert rows["DPI"][:5] == [
        "0.0700 ± 0.0000 ↓",
        "0.2600 ± 0.0000 ↓",
        "0.0500 ± 0.0100 ↓",
        "0.1000 ± 0.0100 ↓",
        "2",
    ]
    # n: the runs read (7 GMF runs, 2 NeuMF runs); ± only where they disagree (they do not).
    assert rows["Popularity"] == ["**0.1000**", "**0.2700**", "**0.0700**", "**0.1200**", "7"] + [
        "**0.1000**",
        "**0.2700**",
        "**0.0700**",
        "**0.1200**",
        "2",
    ]
    assert rows["Random"][:5] == ["0.0100", "0.0200", "0.0050", "0.0100", "7"]
    assert rows["Random"][5:] == ["–"] * 5  # the NeuMF runs report no random ranker
    assert rows["Normal"][5:] == ["–"] * 5
    # One run: its value, no "± 0.0000".
    assert rows["T-CE"][5:] == ["0.0300 ↓", "0.1000 ↓", "0.0200 ↓", "0.0600 ↓", "1"]
    assert rows["R-CE"][5] == "0.0200 ↓"
    assert rows["DVAE"][:5] == ["0.0500 ↓", "0.2000 ↓", "0.0300 ↓", "0.0700 ↓", "1"]
    warm, _ = rows_of(markdown, "modcloth, warm users")
    assert warm["Normal"][1] == "0.2300 ± 0.0200 ↓"
    # synthetic: the one trained run beats Popularity everywhere: bold, unmarked, no ±.
    synthetic, order = rows_of(markdown, "synthetic, all test users (paper protocol)")
    assert order == ["Normal", "Popularity", "Random"]
    assert synthetic["Normal"] == ["**0.3000**", "**0.4000**", "**0.2000**", "**0.3000**", "1"]
    assert synthetic["Popularity"] == ["0.1000", "0.2700", "0.0700", "0.1200", "1"]
    assert "↓: a trained method below the best reference row of its column" in markdown
    assert "reference rows included" in markdown


def test_best_trained_rows_tie_in_bold_above_the_references(tmp_path):
    low = (0.01, 0.02, 0.01, 0.02)
    write_run(tmp_path / "a", "d", "gmf", "normal", 0, (0.07, 0.2, 0.05, 0.1), popularity=low)
    write_run(tmp_path / "b", "d", "gmf", "dpi", 0, (0.07, 0.3, 0.04, 0.1), popularity=low)
    table = report.summarize(report.find_runs(tmp_path), METRICS, views=("paper",))
    rows, _ = rows_of(report.markdown_report(table, METRICS), "d, all test users (paper protocol)")
    assert rows["Normal"] == ["**0.0700**", "0.2000", "**0.0500**", "**0.1000**", "1"]
    assert rows["DPI"] == ["**0.0700**", "**0.3000**", "0.0400", "**0.1000**", "1"]
    assert rows["Popularity"] == ["0.0100", "0.0200", "0.0100", "0.0200", "2"]
    assert rows["Random"] == ["0.0100", "0.0200", "0.0050", "0.0100", "2"]


def test_every_reference_entry_is_a_row_and_the_best_is_bold(tmp_path):
    """EASE beats the trained run and Popularity in R@5 and R@20: bold there, trained marked."""
    ease, itemknn = (0.5, 0.6, 0.01, 0.02), (0.01, 0.02, 0.01, 0.02)
    paper = (0.2, 0.3, 0.2, 0.3)
    references = {"ease": ease, "itemknn": itemknn}
    write_run(tmp_path / "r", "d", "gmf", "dpi", 0, paper, references=references)
    table = report.summarize(report.find_runs(tmp_path), METRICS)
    markdown = report.markdown_report(table, METRICS)
    rows, order = rows_of(markdown, "d, all test users (paper protocol)")
    assert order == ["DPI", "Popularity", "ItemKNN", "EASE", "Random"]  # names.py order
    assert rows["EASE"] == ["**0.5000**", "**0.6000**", "0.0100", "0.0200", "1"]
    # DPI: below EASE in R@5 and R@20; the best of N@5 and N@20 (Popularity 0.07, 0.12).
    assert rows["DPI"] == ["0.2000 ↓", "0.3000 ↓", "**0.2000**", "**0.3000**", "1"]
    kinds = table.drop_duplicates("method").set_index("method")["kind"].to_dict()
    assert kinds == {
        "DPI": "trained",
        "Popularity": "reference",
        "ItemKNN": "reference",
        "EASE": "reference",
        "Random": "reference",
    }


def test_two_settings_of_one_method_are_two_groups(tmp_path, capsys):
    write_run(tmp_path / "c1=10,s=0", "d", "gmf", "dpi", 0, (0.1, 0.2, 0.1, 0.2), c1=10.0)
    write_run(tmp_path / "c1=10,s=1", "d", "gmf", "dpi", 1, (0.3, 0.4, 0.3, 0.4), c1=10.0)
    write_run(tmp_path / "c1=100,s=0", "d", "gmf", "dpi", 0, (0.5, 0.6, 0.5, 0.6), c1=100.0)
    write_run(tmp_path / "normal", "d", "gmf", "normal", 0, (0.2, 0.3, 0.2, 0.3))
    table = report.summarize(report.find_runs(tmp_path), METRICS, views=("paper",))
    err = capsys.readouterr().err
    assert "report: warning: 2 groups of 1 method(s) differ in settings" in err
    by = table.set_index(["method", "setting", "metric"])
    assert tuple(by.loc[("DPI", "c1=10", "recall@5"), ["mean", "std", "n"]]) == pytest.approx(
        (0.2, 0.1, 2)
    )
    assert tuple(by.loc[("DPI", "c1=100", "recall@5"), ["mean", "std", "n"]]) == pytest.approx(
        (0.5, 0.0, 1)
    )
    assert by.loc[("Normal", "", "recall@5"), "n"] == 1  # one setting: no settings in its label
    markdown = report.markdown_report(table, METRICS)
    rows, order = rows_of(markdown, "d, all test users (paper protocol)")
    assert order == ["Normal", "DPI (c1=10)", "DPI (c1=100)", "Popularity", "Random"]
    assert rows["DPI (c1=10)"][0] == "0.2000 ± 0.1000"
    assert rows["DPI (c1=100)"] == ["**0.5000**", "**0.6000**", "**0.5000**", "**0.6000**", "1"]


def test_a_folder_mixing_k_values_reports_both(tmp_path, capsys):
    write_run(tmp_path / "a0", "d", "gmf", "normal", 0, (0.1, 0.3, 0.05, 0.1))
    write_run(tmp_path / "a1", "d", "gmf", "normal", 1, (0.3, 0.5, 0.15, 0.2))
    write_run(tmp_path / "b0", "d", "gmf", "normal", 0, (0.2, 0.6, 0.1, 0.3), ks=(10, 50))
    assert report.main([str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert "2 groups of 1 method(s) differ in settings" in err
    assert out.splitlines()[-1] == f"wrote {tmp_path / 'report.md'} and {tmp_path / 'report.csv'}"
    title = "d, all test users (paper protocol)"
    header = out.split(f"### {title}\n\n", 1)[1].splitlines()[0]
    assert header == (
        "| method | GMF R@5 | GMF R@10 | GMF R@20 | GMF R@50"
        " | GMF N@5 | GMF N@10 | GMF N@20 | GMF N@50 | GMF n |"
    )
    rows, order = rows_of(out, title)
    assert order == ["Normal (ks=[5, 20])", "Normal (ks=[10, 50])", "Popularity", "Random"]
    dash = "–"
    # Each group beats Popularity (0.10, 0.27, 0.07, 0.12 at either pair of K): all bold.
    k5 = ["0.2000 ± 0.1000", dash, "0.4000 ± 0.1000", dash, "0.1000 ± 0.0500", dash]
    k5 += ["0.1500 ± 0.0500", dash]
    assert rows["Normal (ks=[5, 20])"] == [bold(c) for c in k5] + ["2"]
    k10 = [dash, "0.2000", dash, "0.6000", dash, "0.1000", dash, "0.3000"]
    assert rows["Normal (ks=[10, 50])"] == [bold(c) for c in k10] + ["1"]
    # Popularity reports R@5 in two runs and R@10 in one: n is the most runs of any cell.
    assert rows["Popularity"] == ["0.1000", "0.1000", "0.2700", "0.2700"] + [
        "0.0700",
        "0.0700",
        "0.1200",
        "0.1200",
        "2",
    ]
    # A metric only some groups report: dashes for the others, never an error.
    assert report.main([str(tmp_path), "--metrics", "recall@50"]) == 0
    rows, _ = rows_of(capsys.readouterr().out, title)
    assert rows["Normal (ks=[5, 20])"] == [dash, dash]
    assert rows["Normal (ks=[10, 50])"] == ["**0.6000**", "1"]
    # A metric no run reports: one line naming those they do.
    assert report.main([str(tmp_path), "--metrics", "recall@30"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "report: error: no run reports recall@30; the runs have recall@5, recall@10, "
        "recall@20, recall@50, ndcg@5, ndcg@10, ndcg@20, ndcg@50"
    ]


def bold(cell):
    return cell if cell == "–" else f"**{cell}**"


def test_cells_of_one_run_have_no_plus_minus(runs_dir):
    table = report.summarize(report.find_runs(runs_dir), METRICS)
    markdown = report.markdown_report(table, METRICS)
    for title in ("modcloth, all test users (paper protocol)", "modcloth, warm users"):
        rows, _ = rows_of(markdown, title)
        for method in ("T-CE", "R-CE", "DVAE", "DPI-DP", "DVAE-DN"):  # n = 1 wherever reported
            assert not any("±" in cell for cell in rows[method]), (title, method, rows[method])
        assert all("±" in cell for cell in rows["Normal"][:4])  # n = 2


def test_cli_writes_markdown_and_csv(runs_dir, capsys):
    assert report.main([str(runs_dir), "--metrics", "recall@20,ndcg@20"]) == 0
    printed = capsys.readouterr().out
    markdown, wrote = printed.rsplit("\n", 2)[0] + "\n", printed.splitlines()[-1]
    assert (runs_dir / "report.md").read_text() == markdown
    assert wrote == f"wrote {runs_dir / 'report.md'} and {runs_dir / 'report.csv'}"
    assert "GMF R@20 | GMF N@20 | GMF n" in printed and "R@5" not in printed
    csv = pd.read_csv(runs_dir / "report.csv", keep_default_na=False)
    assert list(csv.columns) == [
        *("dataset", "view", "model", "method", "setting", "kind"),
        *("metric", "mean", "std", "n", "collapsed"),
    ]
    assert set(csv["metric"]) == {"recall@20", "ndcg@20"}
    first = csv.iloc[0]
    assert list(first[:7]) == ["modcloth", "paper", "gmf", "Normal", "", "trained", "recall@20"]
    assert (first["mean"], first["std"], first["n"]) == pytest.approx((0.22, 0.02, 2))
    kinds = csv.groupby("method")["kind"].agg(set).to_dict()
    assert kinds["Popularity"] == kinds["Random"] == {"reference"}
    assert kinds["DPI"] == kinds["T-CE"] == {"trained"}
    # modcloth: 2 views × (gmf: 5 methods + 2 rankers, neumf: 2 + popularity) × 2 metrics;
    # synthetic: 2 views × (1 method + 2 rankers) × 2 metrics.
    assert len(csv) == 2 * 10 * 2 + 2 * 3 * 2
    assert not [p for p in runs_dir.iterdir() if p.name.startswith(".")]  # no temporary files


def test_out_prefix(runs_dir, tmp_path, capsys):
    prefix = tmp_path / "tables" / "table2"
    assert report.main([str(runs_dir), "--out", str(prefix)]) == 0
    assert (tmp_path / "tables" / "table2.md").is_file()
    assert (tmp_path / "tables" / "table2.csv").is_file()
    assert not (runs_dir / "report.md").exists()


def test_repeated_seed_warning(runs_dir, capsys):
    path = runs_dir / "modcloth" / "gmf-normal-0-again"
    write_run(path, "modcloth", "gmf", "normal", 0, (0.06, 0.20, 0.04, 0.08))
    report.summarize(report.find_runs(runs_dir), METRICS)
    err = capsys.readouterr().err
    assert "modcloth/gmf/Normal has 3 runs but seeds [0, 0, 1]" in err  # in path order
    assert "differ in settings" not in err  # the same setting: one group of three runs


def test_unknown_metric_is_an_error(runs_dir, capsys):
    assert report.main([str(runs_dir), "--metrics", "recall@50"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "recall@50" in err


def test_no_complete_run_exits_2(tmp_path):
    write_run(tmp_path / "r", "modcloth", "gmf", "dpi", 0, (0.1,) * 4, complete=False)
    for target in (tmp_path, tmp_path / "missing"):
        proc = subprocess.run(
            [sys.executable, "-m", "dprec.tools.report", str(target)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 2
        assert len(proc.stderr.strip().splitlines()) == 1
        assert proc.stderr.startswith("report: error:")
    assert not (tmp_path / "report.md").exists()


def test_last_epoch_table_reads_test_last(tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    metrics = {"recall@20": 0.5, "users": 3}
    (run / "config.json").write_text(
        json.dumps(
            {"seed": 0, "data": {"name": "d"}, "model": {"name": "gmf"}, "method": {"name": "dpi"}}
        )
    )
    (run / "results.json").write_text(
        json.dumps(
            {
                "test": {"paper": {"recall@20": 0.1}, "warm": {"recall@20": 0.1}},
                "test_last": {"paper": metrics, "warm": metrics},
            }
        )
    )
    table = report.summarize(report.find_runs(tmp_path), ["recall@20"], epoch="last")
    assert set(table["mean"]) == {0.5}
    assert report.main([str(tmp_path), "--epoch", "last", "--metrics", "recall@20"]) == 0
    assert "the last epoch" in (tmp_path / "report.md").read_text()


# ---------------------------------------------------------------------------------------------
# dprec.runs.finished: the one reader of finished run directories


def test_read_run_and_its_helpers(tmp_path):
    write_run(tmp_path / "r", "modcloth", "gmf", "dvae", 3, (0.1, 0.2, 0.3, 0.4), mode="dn")
    run = finished.read_run(tmp_path / "r")
    assert (run.dataset, run.model, run.method) == ("modcloth", "gmf", "dvae")
    assert (run.method_label, run.seed) == ("DVAE-DN", 3)
    assert run.metric("paper", "recall@20") == 0.2
    assert run.metric("warm", "ndcg@5") == pytest.approx(0.31)
    assert run.test("popularity_paper")["recall@5"] == POPULARITY[0]
    assert run.metric("paper", "recall@50") is None and run.test("cold") is None
    assert run.flat_config["method.c1"] == 10.0
    # The setting key: the config but its seed.
    write_run(tmp_path / "seed4", "modcloth", "gmf", "dvae", 4, (0.5,) * 4, mode="dn")
    write_run(tmp_path / "c1", "modcloth", "gmf", "dvae", 3, (0.1,) * 4, mode="dn", c1=100.0)
    assert finished.read_run(tmp_path / "seed4").setting_key == run.setting_key
    assert finished.read_run(tmp_path / "c1").setting_key != run.setting_key
    assert "seed" not in json.loads(run.setting_key)
    # --epoch last reads test_last; a null on disk (a non-finite value) reads as NaN.
    results = json.loads((tmp_path / "r" / "results.json").read_text())
    results["test_last"] = {"paper": {"recall@5": None, "recall@20": 0.9}}
    (tmp_path / "r" / "results.json").write_text(json.dumps(results))
    run = finished.read_run(tmp_path / "r")
    assert math.isnan(run.metric("paper", "recall@5", epoch="last"))
    assert run.metric("paper", "recall@20", epoch="last") == 0.9


def test_read_run_of_no_finished_run_is_one_line(tmp_path):
    write_run(tmp_path / "unfinished", "d", "gmf", "dpi", 0, (0.1,) * 4, complete=False)
    (tmp_path / "results-only").mkdir()
    (tmp_path / "results-only" / "results.json").write_text("{}")
    cases = {
        "unfinished": "has no results.json: the run has not finished",
        "results-only": "has no config.json: not a run directory",
        "missing": "is not a directory",
    }
    for name, message in cases.items():
        with pytest.raises(finished.NotAFinishedRun, match=message) as info:
            finished.read_run(tmp_path / name)
        assert isinstance(info.value, UserInputError) and "\n" not in str(info.value)


def test_iter_runs_skips_an_unreadable_results_json_with_a_warning(tmp_path, capsys):
    write_run(tmp_path / "a-broken", "d", "gmf", "dpi", 0, (0.1,) * 4)
    (tmp_path / "a-broken" / "results.json").write_text('{"test": ')  # cut short
    write_run(tmp_path / "b" / "nested", "d", "gmf", "dpi", 1, (0.1,) * 4)
    write_run(tmp_path / "c-unfinished", "d", "gmf", "dpi", 2, (0.1,) * 4, complete=False)
    (tmp_path / "d-no-config").mkdir()
    (tmp_path / "d-no-config" / "results.json").write_text("{}")
    write_run(tmp_path / "e", "d", "gmf", "dpi", 3, (0.1,) * 4)
    runs = list(finished.iter_runs(tmp_path))
    assert [run.path for run in runs] == [tmp_path / "b" / "nested", tmp_path / "e"]
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: skipped a run: cannot read ")
    assert str(tmp_path / "a-broken" / "results.json") in lines[0]
    # Only the direct subdirectories; the root itself when it is a run.
    names = [run.path.name for run in finished.iter_runs(tmp_path, recursive=False)]
    assert names == ["e"]
    assert [run.path for run in finished.iter_runs(tmp_path / "e")] == [tmp_path / "e"]
    with pytest.raises(finished.NotAFinishedRun, match="is not a directory"):
        finished.iter_runs(tmp_path / "missing")


def test_the_sweep_readers_go_through_finished(tmp_path, capsys):
    """report, grid --select and tune read runs with `dprec.runs.finished`: each skips an
    unreadable results.json with its warning (noise_bench and plots: their own test files)."""
    root = tmp_path / "grid"
    write_run(root / "seed=0", "d", "gmf", "normal", 0, (0.1, 0.2, 0.3, 0.4))
    write_run(root / "seed=1", "d", "gmf", "normal", 1, (0.5,) * 4)
    (root / "seed=1" / "results.json").write_text("{")
    broken = str(root / "seed=1" / "results.json")

    def warned_once():
        lines = capsys.readouterr().err.strip().splitlines()
        return (
            len(lines) == 1 and lines[0].startswith("warning: skipped a run") and broken in lines[0]
        )

    assert [run.path.name for run in report.find_runs(root)] == ["seed=0"] and warned_once()
    assert [run["name"] for run in grid.load_runs(root)] == ["seed=0"] and warned_once()
    plan = grid.Plan("c", root, {}, {"seed=0": {"seed": "0"}, "seed=1": {"seed": "1"}})
    summary = tune.seed_summary(plan, "recall@20")
    assert list(summary["runs"]) == ["seed=0"] and warned_once()
    assert summary["test_paper"] == {"mean": 0.2, "std": 0.0}


def test_collapsed_runs_are_marked(tmp_path):
    """Two seeds of one setting, one of them flagged by the collapse guard: its cell's n says so
    and the legend explains the mark."""
    for seed, status in ((0, "ok"), (1, "collapsed")):
        run = tmp_path / f"s{seed}"
        write_run(run, "modcloth", "gmf", "normal", seed, (0.1, 0.2, 0.05, 0.08))
        results = json.loads((run / "results.json").read_text())
        results["health"] = {"status": status, "epoch": 3, "reasons": [], "advice": ""}
        (run / "results.json").write_text(json.dumps(results))
    table = report.summarize(report.find_runs(tmp_path), ["recall@20"])
    assert set(table.loc[table["kind"] == "trained", "collapsed"]) == {1}
    markdown = report.markdown_report(table, ["recall@20"])
    assert "2 ⚠1 |" in markdown
    assert "⚠k after n: k of the cell's runs collapsed" in markdown
