"""dprec.tools.report on hand-made run directories: means, stds, bold, row order, CSV, errors."""

import json
import subprocess
import sys

import pandas as pd
import pytest
from conftest import REPO

from dprec.tools import report

METRICS = ("recall@5", "recall@20", "ndcg@5", "ndcg@20")
POPULARITY = (0.10, 0.27, 0.07, 0.12)
RANDOM = (0.01, 0.02, 0.005, 0.01)


def metrics(values, users=10):
    return {**dict(zip(METRICS, values, strict=True)), "users": users}


def shifted(values, delta):
    return tuple(v + delta for v in values)


def write_run(
    path, dataset, model, method, seed, paper, *, mode="alternate", random=True, complete=True
):
    """A run directory: config.json and (when complete) results.json; warm = paper + 0.01."""
    path.mkdir(parents=True)
    config = {
        "seed": seed,
        "data": {"name": dataset},
        "model": {"name": model},
        "method": {"name": method, "mode": mode, "c1": 10.0},
        "train": {"num_epochs": 3},
        "eval": {"ks": [5, 20]},
    }
    (path / "config.json").write_text(json.dumps(config))
    test = {
        "paper": metrics(paper),
        "warm": metrics(shifted(paper, 0.01)),
        "popularity_paper": metrics(POPULARITY),
        "popularity_warm": metrics(POPULARITY),
    }
    if random:
        test |= {"random_paper": metrics(RANDOM), "random_warm": metrics(RANDOM)}
    results = {
        "best_epoch": 2,
        "epochs_run": 3,
        "test": test,
        "test_last": test,
        "valid": metrics(paper),
        "selection_metric": "recall@20",
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


def test_markdown_layout_and_bold(runs_dir):
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
    # GMF R@5: Normal and DPI tie at 0.07 (both bold); the rest: DPI is best.
    assert rows["Normal"][:5] == [
        "**0.0700 ± 0.0100**",
        "0.2200 ± 0.0200",
        "0.0450 ± 0.0050",
        "0.0900 ± 0.0100",
        "2",
    ]
    assert rows["DPI"][:5] == [
        "**0.0700 ± 0.0000**",
        "**0.2600 ± 0.0000**",
        "**0.0500 ± 0.0100**",
        "**0.1000 ± 0.0100**",
        "2",
    ]
    # Popularity beats every method but is never bold; Random is absent for NeuMF.
    assert rows["Popularity"] == ["0.1000", "0.2700", "0.0700", "0.1200", "–"] * 2
    assert rows["Random"][:5] == ["0.0100", "0.0200", "0.0050", "0.0100", "–"]
    assert rows["Random"][5:] == ["–"] * 5
    assert rows["Normal"][5:] == ["–"] * 5
    assert rows["T-CE"][5:] == ["**0.0300 ± 0.0000**", "**0.1000 ± 0.0000**"] + [
        "**0.0200 ± 0.0000**",
        "**0.0600 ± 0.0000**",
        "1",
    ]
    assert rows["R-CE"][5] == "0.0200 ± 0.0000"
    warm, _ = rows_of(markdown, "modcloth, warm users")
    assert warm["Normal"][1] == "0.2300 ± 0.0200"
    synthetic, order = rows_of(markdown, "synthetic, all test users (paper protocol)")
    assert order == ["Normal", "Popularity", "Random"]
    assert synthetic["Normal"] == ["**0.3000 ± 0.0000**", "**0.4000 ± 0.0000**"] + [
        "**0.2000 ± 0.0000**",
        "**0.3000 ± 0.0000**",
        "1",
    ]


def test_cli_writes_markdown_and_csv(runs_dir, capsys):
    assert report.main([str(runs_dir), "--metrics", "recall@20,ndcg@20"]) == 0
    printed = capsys.readouterr().out
    assert (runs_dir / "report.md").read_text() == printed
    assert "GMF R@20 | GMF N@20 | GMF n" in printed and "R@5" not in printed
    csv = pd.read_csv(runs_dir / "report.csv")
    assert list(csv.columns) == ["dataset", "view", "model", "method", "metric", "mean", "std", "n"]
    assert set(csv["metric"]) == {"recall@20", "ndcg@20"}
    first = csv.iloc[0]
    assert list(first[:5]) == ["modcloth", "paper", "gmf", "Normal", "recall@20"]
    assert (first["mean"], first["std"], first["n"]) == pytest.approx((0.22, 0.02, 2))
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
    assert "modcloth/gmf/Normal has 3 runs" in capsys.readouterr().err


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
    table = report.summarize(report.find_runs(tmp_path), ["recall@20"], key="test_last")
    assert set(table["mean"]) == {0.5}
    assert report.main([str(tmp_path), "--epoch", "last", "--metrics", "recall@20"]) == 0
    assert "the last epoch" in (tmp_path / "report.md").read_text()
