"""The ladder's page from constructed run directories: reference rows, trained rows over seeds,
bold best cells, ↓ on trained cells below the best reference, and the goal's verdict."""

import json

import pytest

from dprec.errors import UserInputError
from dprec.sweeps import ladder


def _write_run(folder, test, **extra):
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"seed": extra.pop("seed", 0)}))
    (folder / "results.json").write_text(json.dumps({"test": test, **extra}))


def _metrics(recall, ndcg):
    return {"recall@20": recall, "ndcg@20": ndcg}


def _build(out):
    """ml-100k: popularity 0.20, EASE 0.40 (all users); GMF normal over 2 seeds at 0.42 and
    0.44 (mean 0.43, +7.5 % over EASE), MF BPR 0.30 (below EASE)."""
    _write_run(
        out / "ml-100k" / "references",
        {
            "paper": _metrics(0.1, 0.05),  # the 1-epoch GMF of the reference run: not a row
            "popularity_paper": _metrics(0.20, 0.10),
            "popularity_warm": _metrics(0.21, 0.11),
            "ease_paper": _metrics(0.40, 0.20),
            "ease_warm": _metrics(0.45, 0.22),
        },
        reference_settings={"ease": {"hyper": {"l2": 500.0}}},
    )
    for seed, recall in ((0, 0.42), (1, 0.44)):
        _write_run(
            out / "ml-100k" / "gmf" / "normal" / "best" / f"seed{seed}",
            {"paper": _metrics(recall, 0.25), "warm": _metrics(0.40, 0.21)},
            best_epoch=7 + seed,
            seed=seed,
        )
    (out / "ml-100k" / "gmf" / "normal" / "tune.json").write_text(
        json.dumps(
            {
                "best": {"params": {"train.learning_rate": 0.003}},
                "trials": {},
                "trials_requested": 8,
                "max_epochs": 30,
                "seeds": [0, 1],
            }
        )
    )
    _write_run(
        out / "ml-100k" / "mf" / "bpr" / "best" / "seed0",
        {"paper": _metrics(0.30, 0.15), "warm": _metrics(0.31, 0.16)},
        best_epoch=3,
    )
    # MF BPR asked for three seeds and has one: a partial row.
    (out / "ml-100k" / "mf" / "bpr" / "tune.json").write_text(
        json.dumps({"trials_requested": 8, "max_epochs": 30, "seeds": [0, 1, 2]})
    )


def test_rows_must_name_a_model_and_a_method():
    assert ladder.parse_rows("gmf:normal, mf:bpr") == [
        ladder.Row("gmf", "normal"),
        ladder.Row("mf", "bpr"),
    ]
    for bad in ("gmf", "gmf:nope", "xmf:normal", ","):
        with pytest.raises(UserInputError):
            ladder.parse_rows(bad)


def test_the_table_marks_the_best_cells_and_trained_cells_below_the_references(tmp_path):
    _build(tmp_path)
    rows = ladder.parse_rows("gmf:normal,mf:bpr,neumf:normal")  # neumf not run: no row
    entries = ladder.collect(tmp_path, ["ml-100k"], rows)
    labels = [entry["label"] for entry in entries]
    assert labels == ["Popularity", "EASE", "GMF Normal", "MF BPR"]
    gmf = entries[2]
    assert gmf["values"][("paper", "recall@20")] == [0.42, 0.44]
    assert gmf["epochs"] == [7, 8]
    lines = ladder.dataset_table(entries).splitlines()
    gmf_line = next(line for line in lines if line.startswith("| GMF Normal"))
    bpr_line = next(line for line in lines if line.startswith("| MF BPR"))
    ease_line = next(line for line in lines if line.startswith("| EASE"))
    # R@20 all: GMF (0.43) is the best; warm: EASE (0.45) is, and GMF's 0.40 is below it.
    assert "**0.4300 ± 0.0100**" in gmf_line
    assert "0.4000 ± 0.0000 ↓" in gmf_line and "**0.4500**" in ease_line
    assert "learning_rate=0.003" in gmf_line and "| 7, 8 |" in gmf_line
    assert bpr_line.count(ladder.BELOW) == 4  # every column of MF BPR is below EASE
    assert "l2=500" in ease_line
    # Trained rows are ordered by all-users R@20, after the references.
    assert lines.index(gmf_line) < lines.index(bpr_line)


def test_the_budget_is_the_one_the_tunes_recorded(tmp_path):
    _build(tmp_path)
    entries = ladder.collect(tmp_path, ["ml-100k"], ladder.parse_rows("gmf:normal,mf:bpr"))
    text = ladder.budget_text(entries)
    assert "budgets differ: GMF Normal: 8 trials of at most 30 epochs" in text
    assert "MF BPR: 8 trials of at most 30 epochs, the best setting rerun over seeds 0,1,2" in text
    only_gmf = [e for e in entries if e["label"] != "MF BPR"]
    assert "(8 trials of at most 30 epochs, the best setting rerun over seeds 0,1; " in (
        ladder.budget_text(only_gmf)
    )
    assert "train.l2 {0.001, 0.01, 0.1, 1, 10, 100, 1000}" in ladder.budget_text(only_gmf)


def test_the_goal_compares_the_best_trained_and_reference_rows(tmp_path):
    _build(tmp_path)
    entries = ladder.collect(tmp_path, ["ml-100k"], ladder.parse_rows("gmf:normal,mf:bpr"))
    ml, modcloth = ladder.goal_lines(entries)
    assert "GMF Normal R@20 0.4300 vs best reference EASE 0.4000: +7.5 %" in ml
    assert "meets" in ml
    assert "not measured" in modcloth
    rows = ladder.parse_rows("gmf:normal,neumf:normal")
    assert ladder.missing_rows(tmp_path, ["ml-100k"], rows, 2) == ["ml-100k: NeuMF Normal"]
    assert ladder.missing_rows(tmp_path, ["ml-100k"], rows, 3) == [
        "ml-100k: GMF Normal (2 of 3 seeds)",
        "ml-100k: NeuMF Normal",
    ]
    assert "ml-100k: NeuMF Normal." in ladder.markdown(
        entries, "budget.", ["ml-100k: NeuMF Normal"]
    )
    # A partial row (MF BPR: 1 of 3 seeds) is left out of the goal even where it is best.
    for entry in entries:
        if entry["label"] == "MF BPR":
            entry["values"][("paper", "recall@20")] = [0.9]
    assert "GMF Normal" in ladder.goal_lines(entries)[0]
    # Below the margin: 0.41 / 0.40 is +2.5 % and misses.
    for entry in entries:
        if entry["label"] == "GMF Normal":
            entry["values"][("paper", "recall@20")] = [0.41]
    assert "misses" in ladder.goal_lines(entries)[0]


def test_the_readme_headline_lists_every_row_against_the_best_reference(tmp_path):
    _build(tmp_path)
    entries = ladder.collect(tmp_path, ["ml-100k"], ladder.parse_rows("gmf:normal,mf:bpr"))
    text = ladder.headline(entries, "budget.", "stamp")
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    # Ordered by ML-100k all-users R@20; Modcloth (warm) has no runs here.
    assert lines[1] == "| GMF Normal | tuned | 0.4300 ± 0.0100 | +7.5 % | – | – |"
    assert lines[2] == "| EASE | reference | 0.4000 | +0.0 % | – | – |"
    assert lines[3] == "| MF BPR | tuned | 0.3000 | -25.0 % | – | – |"
    assert lines[4] == "| Popularity | reference | 0.2000 | -50.0 % | – | – |"
    assert text.endswith("stamp")
    with_missing = ladder.headline(entries, "budget.", "stamp", ["modcloth: GMF Normal"])
    assert "Asked for but not finished: modcloth: GMF Normal." in with_missing


def test_the_headline_replaces_only_the_readme_block(tmp_path):
    from dprec.runs import pages

    _build(tmp_path / "runs")
    entries = ladder.collect(tmp_path / "runs", ["ml-100k"], ladder.parse_rows("gmf:normal"))
    text = ladder.headline(entries, "budget.", "stamp")
    readme = tmp_path / "README.md"
    block = ladder.HEADLINE_BLOCK
    readme.write_text(f"# x\n<!-- {block}:start -->\nold\n<!-- {block}:end -->\nend\n")
    pages.replace_block(readme, block, text)
    written = readme.read_text()
    assert "old" not in written and "| GMF Normal |" in written and written.endswith("end\n")
    readme.write_text("# no markers\n")
    with pytest.raises(UserInputError, match="add the two markers"):
        pages.replace_block(readme, block, text)
    assert readme.read_text() == "# no markers\n"


def test_a_ladder_without_finished_runs_says_so(tmp_path, capsys):
    status = ladder.main(["--out", str(tmp_path), "--datasets", "ml-100k", "--no-train"])
    assert status == 2
    assert "no finished ladder runs" in capsys.readouterr().err


def test_rows_still_improving_at_the_epoch_cap_are_named(tmp_path):
    """GMF Normal selected epochs 7 and 8 of a 30-epoch cap: not capped; at 28 and 30 it is
    (within 2 of the cap on every seed); one seed at 27 is not."""
    _build(tmp_path)
    entries = ladder.collect(tmp_path, ["ml-100k"], ladder.parse_rows("gmf:normal,mf:bpr"))
    assert ladder.capped_rows(entries) == []
    assert "epoch cap" not in ladder.markdown(entries, "budget.")
    (gmf,) = [e for e in entries if e["label"] == "GMF Normal"]
    gmf["epochs"] = [28, 30]
    assert ladder.capped_rows(entries) == ["ml-100k: GMF Normal"]
    assert "still improving when its budget ended): ml-100k: GMF Normal." in ladder.markdown(
        entries, "budget."
    )
    assert "Still improving at the epoch cap: ml-100k: GMF Normal." in ladder.headline(
        entries, "budget.", "stamp"
    )
    gmf["epochs"] = [27, 30]
    assert ladder.capped_rows(entries) == []
