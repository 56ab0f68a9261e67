"""dprec-plots: the four figures from tiny trained runs and a hand-made grid; one-line errors."""

import json
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import REPO

from dprec.errors import UserInputError
from dprec.tools import plots
from dprec.tools.run_loading import load_run

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
EPOCHS = 3


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two tiny runs of the same synthetic data: DPI and normal training, test every epoch."""
    from dprec import train
    from dprec.config.presets import build_config

    root = tmp_path_factory.mktemp("runs")
    for method in ("dpi", "normal"):
        config = build_config(f"method={method}")
        config.data.synthetic.n_users = 300
        config.data.synthetic.n_items = 80
        config.train.num_epochs = EPOCHS
        config.train.batch_size = 256
        config.eval.test_every_epoch = True
        train.train_and_evaluate(config, str(root / method))
    return {"dpi": root / "dpi", "normal": root / "normal"}


def assert_png(path):
    data = path.read_bytes()
    assert len(data) > len(PNG_SIGNATURE) and data.startswith(PNG_SIGNATURE)
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]  # atomic write


def metrics_records(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def sigmoid_predictions(run, users, items):
    """I(σ(y) ≥ .5) recomputed in NumPy from the run's target logits (all pairs at once)."""
    logits = np.asarray(run.target_logits(users, items), dtype=np.float64)
    return 1.0 / (1.0 + np.exp(-logits)) >= 0.5


# ---------------------------------------------------------------------------------------------
# Figures of trained runs


@pytest.mark.parametrize("split, key", [("test", "test_paper"), ("valid", "valid")])
def test_curves_draw_one_line_per_run_with_every_epoch(trained, tmp_path, split, key):
    runs = [trained["dpi"], trained["normal"]]
    figure = plots.curves_figure(runs, "ndcg@20", split)
    lines = figure.axes[0].get_lines()
    assert [line.get_label() for line in lines] == ["dpi (gmf)", "normal (gmf)"]
    for line, run_dir in zip(lines, runs, strict=True):
        expected = [record[key]["ndcg@20"] for record in metrics_records(run_dir)]
        np.testing.assert_array_equal(line.get_xdata(), np.arange(1, EPOCHS + 1))
        np.testing.assert_allclose(line.get_ydata(), expected)
    assert_png(plots.save_figure(figure, tmp_path / "curves.png"))


def test_curves_and_real_positive_cli_write_pngs(trained, tmp_path, capsys):
    out = tmp_path / "fig3.png"
    assert (
        plots.main(["curves", str(trained["dpi"]), str(trained["normal"]), "--out", str(out)]) == 0
    )
    assert_png(out)
    out = tmp_path / "fig5.png"
    assert plots.main(["real-positive", str(trained["dpi"]), "--out", str(out)]) == 0
    assert_png(out)
    assert f"wrote {out}" in capsys.readouterr().out


def test_real_positive_bars_are_the_interpretation_means(trained):
    by_rating = json.loads((trained["dpi"] / "results.json").read_text())["interpretation"][
        "by_rating"
    ]
    figure = plots.real_positive_figure([trained["dpi"]])
    axes = figure.axes[0]
    heights = [patch.get_height() for patch in axes.patches]
    levels = [tick.get_text() for tick in axes.get_xticklabels()]
    assert levels == sorted(by_rating, key=float)
    np.testing.assert_allclose(heights, [by_rating[level]["mean"] for level in levels])


def test_disagreement_equals_numpy_recomputation(trained, tmp_path, capsys):
    out = tmp_path / "fig2.png"
    argv = ["disagreement", str(trained["dpi"]), str(trained["normal"]), "--out", str(out)]
    assert plots.main(argv) == 0
    assert_png(out)
    printed = capsys.readouterr().out
    result = plots.disagreement(trained["dpi"], trained["normal"], (4, 5), (1, 2))

    run_a, run_b = load_run(trained["dpi"]), load_run(trained["normal"])
    train = run_a.data.train
    differs = sigmoid_predictions(run_a, train.users, train.items) != sigmoid_predictions(
        run_b, train.users, train.items
    )
    clean, noisy = np.isin(train.ratings, (4, 5)), np.isin(train.ratings, (1, 2))
    assert 0.0 <= result.clean <= 1.0 and 0.0 <= result.noisy <= 1.0
    assert result.clean == pytest.approx(differs[clean].mean())
    assert result.noisy == pytest.approx(differs[noisy].mean())
    assert (result.n_clean, result.n_noisy) == (clean.sum(), noisy.sum())
    assert f"clean {result.clean:.4f} over {result.n_clean}" in printed
    assert f"noisy {result.noisy:.4f} over {result.n_noisy}" in printed
    bars = [patch.get_height() for patch in plots.disagreement_figure(result).axes[0].patches]
    assert bars == [result.clean, result.noisy]


def test_a_run_never_disagrees_with_itself(trained):
    result = plots.disagreement(trained["dpi"], trained["dpi"])
    assert (result.clean, result.noisy) == (0.0, 0.0)


def test_disagreement_counts_sign_differences_per_group(monkeypatch, tmp_path):
    """Fixed logits: the tiny trained runs disagree everywhere, so check fractions here."""
    ratings = np.array([5, 5, 4, 4, 1, 1, 2, 3])
    logits = {
        "a": np.array([1.0, -1.0, 2.0, 0.0, -3.0, 1.0, 0.5, 9.0], np.float32),
        "b": np.array([1.0, 1.0, 2.0, -1e-3, -3.0, -1.0, 0.2, -9.0], np.float32),
    }
    train = SimpleNamespace(users=np.arange(8), items=np.arange(8), ratings=ratings, truth=None)

    def fake_load_run(name):
        return SimpleNamespace(
            path=tmp_path / name,
            data=SimpleNamespace(train=train, n_users=8, n_items=8),
            training_logits=lambda: logits[name],
        )

    monkeypatch.setattr(plots, "load_run", fake_load_run)
    result = plots.disagreement("a", "b", (4, 5), (1, 2))
    # clean: rows 0-3 differ at 1 (−1 vs 1) and 3 (0 counts as σ = .5 ≥ .5); noisy: row 5.
    assert (result.clean, result.noisy) == (0.5, 1 / 3)
    assert (result.n_clean, result.n_noisy) == (4, 3)


def test_positive_groups_by_rating_then_truth_else_error():
    rated = SimpleNamespace(ratings=np.array([5, 1, 4, 3]), truth=np.array([1, 0, 0, 1]))
    clean, noisy = plots.positive_groups(rated, (4, 5), (1, 2))
    assert clean.tolist() == [True, False, True, False]
    assert noisy.tolist() == [False, True, False, False]
    truth_only = SimpleNamespace(ratings=None, truth=np.array([1, 0, 0, 1]))
    clean, noisy = plots.positive_groups(truth_only, (4, 5), (1, 2))
    assert clean.tolist() == [True, False, False, True] and noisy.tolist() == [0, 1, 1, 0]
    with pytest.raises(UserInputError, match="neither ratings nor a truth"):
        plots.positive_groups(SimpleNamespace(ratings=None, truth=None), (4, 5), (1, 2))
    with pytest.raises(UserInputError, match="--noisy 9"):
        plots.positive_groups(rated, (4, 5), (9,))


def test_runs_of_different_data_are_refused():
    def run(items, path):
        train = SimpleNamespace(users=np.array([0, 1]), items=np.array(items))
        return SimpleNamespace(data=SimpleNamespace(train=train, n_users=2, n_items=3), path=path)

    plots.check_same_data(run([0, 2], "a"), run([0, 2], "b"))
    with pytest.raises(UserInputError, match="different data"):
        plots.check_same_data(run([0, 2], "a"), run([1, 2], "b"))


# ---------------------------------------------------------------------------------------------
# Heat map of a hand-made grid

# (c1, c2, alpha) → (valid recall@20, test paper recall@20)
GRID = {
    (1, 1, 0): (0.1, 0.01),
    (1, 1, 1): (0.3, 0.03),
    (1, 10, 0): (0.25, 0.025),
    (100, 1, 0): (0.4, 0.04),
}


@pytest.fixture
def grid_dir(tmp_path):
    """grid.json with five runs, four finished (config.json and results.json), one not started."""
    root = tmp_path / "grid"
    runs = {}
    for (c1, c2, alpha), (valid, test) in GRID.items():
        name = f"c1={c1},c2={c2},alpha={alpha},seed=0"
        runs[name] = {"method.c1": str(c1), "method.c2": str(c2), "method.alpha": str(alpha)}
        run_dir = root / name
        run_dir.mkdir(parents=True)
        config = {"seed": 0, "method": {"name": "dpi", "c1": c1, "c2": c2, "alpha": alpha}}
        (run_dir / "config.json").write_text(json.dumps(config))
        results = {"valid": {"recall@20": valid}, "test": {"paper": {"recall@20": test}}}
        (run_dir / "results.json").write_text(json.dumps(results))
    runs["c1=1000,c2=1,alpha=0,seed=0"] = {"method.c1": "1000", "method.c2": "1"}
    (root / "grid.json").write_text(json.dumps({"config": "c", "set": {}, "runs": runs}))
    return root


def test_heatmap_averages_over_alpha(grid_dir):
    heat = plots.heatmap_matrix(grid_dir, "recall@20", "valid")
    assert (heat.c1, heat.c2) == ((1.0, 100.0), (1.0, 10.0))
    np.testing.assert_allclose(heat.values, [[0.2, 0.25], [0.4, np.nan]])
    assert heat.counts.tolist() == [[2, 1], [1, 0]]
    assert heat.averaged == ("method.alpha",)
    assert heat.skipped == ("c1=1000,c2=1,alpha=0,seed=0",)


def test_heatmap_fixed_key_and_test_split(grid_dir):
    heat = plots.heatmap_matrix(grid_dir, "recall@20", "test", {"alpha": "0"})
    np.testing.assert_allclose(heat.values, [[0.01, 0.025], [0.04, np.nan]])
    assert heat.averaged == ()
    heat = plots.heatmap_matrix(grid_dir, "recall@20", "valid", {"method.alpha": "1.0"})
    assert (heat.c1, heat.c2) == ((1.0,), (1.0,))
    np.testing.assert_allclose(heat.values, [[0.3]])


def test_heatmap_reads_grid_runs_with_read_run(grid_dir):
    """A listed run whose results.json is unreadable, or that has no config.json, is the one
    line of `dprec.runs.finished.read_run`."""
    run_dir = grid_dir / "c1=1,c2=1,alpha=0,seed=0"
    (run_dir / "results.json").write_text("{")
    with pytest.raises(UserInputError, match="cannot read .*alpha=0,seed=0/results.json"):
        plots.heatmap_matrix(grid_dir)
    (run_dir / "results.json").write_text(json.dumps({"valid": {"recall@20": 0.1}}))
    (run_dir / "config.json").unlink()
    with pytest.raises(UserInputError, match="has no config.json: not a run directory"):
        plots.heatmap_matrix(grid_dir)


def test_heatmap_figure_annotates_every_cell(grid_dir):
    figure = plots.heatmap_figure(plots.heatmap_matrix(grid_dir))
    texts = [text.get_text() for text in figure.axes[0].texts]
    assert texts == ["0.2000", "0.2500", "0.4000", "–"]


def test_heatmap_cli_as_module_writes_png(grid_dir, tmp_path):
    out = tmp_path / "heat.png"
    command = [
        sys.executable,
        "-m",
        "dprec.tools.plots",
        "heatmap",
        str(grid_dir),
        "--out",
        str(out),
    ]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert f"wrote {out}" in done.stdout
    assert_png(out)


# ---------------------------------------------------------------------------------------------
# Bad input: one line on stderr, exit status 2


def fake_run(run_dir, records, results=None):
    """A hand-made run directory: metrics.jsonl records and optionally results.json."""
    run_dir.mkdir(parents=True)
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    if results is not None:
        (run_dir / "results.json").write_text(json.dumps(results))
    return run_dir


@pytest.fixture
def bad_inputs(tmp_path, grid_dir):
    """{name: (argv, a fragment of the expected error line)}."""
    valid_only = fake_run(
        tmp_path / "valid_only",
        [{"epoch": 1, "valid": {"recall@20": 0.1}}],
        {"valid": {"recall@20": 0.1}, "test": {}},
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    out = ["--out", str(tmp_path / "x.png")]
    return {
        "missing run dir": (["curves", str(tmp_path / "nope"), *out], "is not a directory"),
        "no metrics.jsonl": (["curves", str(empty), *out], "metrics.jsonl not found"),
        "no per-epoch test": (["curves", str(valid_only), *out], "test_every_epoch=true"),
        "unknown curve metric": (
            ["curves", str(valid_only), "--split", "valid", "--metric", "mrr@3", *out],
            "no metric 'mrr@3'",
        ),
        "no results.json": (["real-positive", str(empty), *out], "results.json not found"),
        "no interpretation": (["real-positive", str(valid_only), *out], "interpretation"),
        "not a run": (["disagreement", str(empty), str(empty), *out], "not a run directory"),
        "bad levels": (
            ["disagreement", str(empty), str(empty), "--clean", "high", *out],
            "bad --clean",
        ),
        "no grid.json": (["heatmap", str(empty), *out], "grid.json not found"),
        "unknown heatmap metric": (
            ["heatmap", str(grid_dir), "--metric", "ndcg@5", *out],
            "no metric 'ndcg@5'",
        ),
        "unknown fixed key": (["heatmap", str(grid_dir), "--fixed", "gamma=0", *out], "gamma"),
        "bad fixed": (["heatmap", str(grid_dir), "--fixed", "alpha", *out], "bad --fixed"),
        "nothing fixed matches": (
            ["heatmap", str(grid_dir), "--fixed", "alpha=7", *out],
            "matches --fixed",
        ),
        "out dir missing": (
            ["curves", str(valid_only), "--out", str(tmp_path / "no" / "x.png")],
            "is not a directory",
        ),
    }


def test_bad_inputs_print_one_line_and_exit_2(bad_inputs, tmp_path, capsys):
    for name, (argv, fragment) in bad_inputs.items():
        assert plots.main(argv) == 2, name
        captured = capsys.readouterr()
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("plots: error:"), (name, captured.err)
        assert fragment in lines[0], (name, lines[0])
        assert captured.out == "", name
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("argv", [[], ["pie", "--out", "x.png"], ["curves", "run"]])
def test_bad_command_lines_exit_2_with_one_line(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        plots.main(argv)
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("plots: error:")
