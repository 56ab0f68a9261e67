"""Epoch selection by validation loss (`eval.selection`): the losses against a hand computation,
the fixed validation negatives, the planted best epoch, the run files, and the sweeps' rules."""

import dataclasses
import json
import math

import jax.numpy as jnp
import numpy as np
import pytest
from conftest import run_main

from dprec.config.run_config import run_spec_from_config
from dprec.config.templates.tiny import get_config
from dprec.data.dataset import InteractionData, Interactions
from dprec.errors import ConfigError
from dprec.evaluation import valid_loss
from dprec.models import ScoreFns
from dprec.sweeps import grid, noise_bench, tune


def interactions(pairs):
    pairs = np.asarray(pairs, np.int32).reshape(-1, 2)
    return Interactions(users=pairs[:, 0], items=pairs[:, 1])


def make_data(train, valid, valid_clean, n_users, n_items):
    empty = interactions([])
    return InteractionData(
        n_users=n_users,
        n_items=n_items,
        train=interactions(train),
        valid=interactions(valid),
        valid_clean=interactions(valid_clean),
        test=empty,
        test_clean=empty,
        user_ids=np.arange(n_users),
        item_ids=np.arange(n_items),
    )


def table_scores():
    """Scoring functions whose logit of (u, i) is params["table"][u, i]."""

    def pair(params, encoded, users, items):
        del encoded
        return params["table"][users, items]

    def all_items(params, encoded, users):
        del encoded
        return params["table"][users]

    return ScoreFns(
        encode=lambda params, graph, rng, users=None: None, pair=pair, all_items=all_items
    )


def softplus(x):
    return math.log1p(math.exp(x))


# Ten validation positives of three users, 30 items; the two of user 2 get logits −3 and −4,
# the highest losses of all, so a 20 % trim drops exactly those two.
N_USERS, N_ITEMS = 3, 30
TRAIN = [(0, 0), (0, 1), (1, 2), (1, 3), (2, 4), (2, 5)]
VALID = [(0, 10), (0, 11), (0, 12), (0, 13), (1, 14), (1, 15), (1, 16), (1, 17), (2, 18), (2, 19)]
POSITIVE_LOGITS = [1.0, 2.0, 0.5, 1.5, 3.0, 0.25, 2.5, 0.75, -3.0, -4.0]


def planted_table(negative_logit):
    """Logits: the validation positives' planted ones, `negative_logit(u, i)` elsewhere."""
    table = np.array(
        [[negative_logit(u, i) for i in range(N_ITEMS)] for u in range(N_USERS)], np.float32
    )
    for (user, item), logit in zip(VALID, POSITIVE_LOGITS, strict=True):
        table[user, item] = logit
    return table


@pytest.mark.parametrize("chunk", [3, 4, 100])  # padded chunks (3 × 4 = 12 ≥ 10) or one chunk
def test_validation_losses_match_a_hand_computation(chunk):
    data = make_data(TRAIN, VALID, VALID, N_USERS, N_ITEMS)
    table = planted_table(lambda u, i: 0.1 * (i % 7) - 0.2 * u)
    task = valid_loss.make_validation_loss_task(data, "noisy", 2, seed=3, chunk=chunk)
    assert task.n_positives == 10 and int(task.n_kept) == 8
    negatives = np.asarray(task.negatives).reshape(-1, 2)[:10]  # the real rows, in data order

    positive = [softplus(-x) for x in POSITIVE_LOGITS]
    negative = [
        softplus(table[u, j]) for (u, _), row in zip(VALID, negatives, strict=True) for j in row
    ]
    assert len(negative) == 20
    expected_loss = (sum(positive) + sum(negative)) / 30
    # dropped: user 2's two positives (logits −3, −4); kept: the other 8 and all 20 negatives
    expected_trimmed = (sum(positive[:8]) + sum(negative)) / 28

    loss, trimmed = valid_loss.make_validation_loss_fn(table_scores())({"table": table}, None, task)
    assert float(loss) == pytest.approx(expected_loss, rel=1e-5)
    assert float(trimmed) == pytest.approx(expected_trimmed, rel=1e-5)
    assert float(trimmed) < float(loss)  # here: the dropped positives' losses are far above


def test_kept_positives_is_the_floor_of_the_kept_share():
    assert valid_loss.kept_positives(10, 0.2) == 8  # the re-evaluation's int(10 * 0.8)
    assert valid_loss.kept_positives(7, 0.2) == 5  # ⌊5.6⌋
    assert valid_loss.kept_positives(10, 0.9) == 1  # (1 − 0.9) · 10 = 0.999…: still 1
    assert valid_loss.kept_positives(10, 0.0) == 10
    assert valid_loss.kept_positives(1, 0.5) == 0


def test_no_trim_and_one_negative_is_the_mean_of_both_means():
    """With r = 0 the trimmed loss is the loss; with one negative each, the pooled mean is
    the average of the positive mean and the negative mean."""
    data = make_data(TRAIN, VALID, VALID, N_USERS, N_ITEMS)
    table = planted_table(lambda u, i: 0.3)
    task = valid_loss.make_validation_loss_task(data, "noisy", 1, seed=0, chunk=4, trim_rate=0.0)
    params = {"table": jnp.asarray(table)}  # unjitted: lax.map still traces the chunks
    loss, trimmed = valid_loss.validation_losses(table_scores(), params, None, task)
    positive_mean = np.mean([softplus(-x) for x in POSITIVE_LOGITS])
    assert float(loss) == pytest.approx((positive_mean + softplus(0.3)) / 2, rel=1e-5)
    assert float(trimmed) == pytest.approx(float(loss), rel=1e-6)


def test_the_clean_set_gives_its_positives_and_none_when_empty():
    data = make_data(TRAIN, VALID, VALID[:5], N_USERS, N_ITEMS)
    task = valid_loss.make_validation_loss_task(data, "clean", 1, seed=0, chunk=8)
    assert task.n_positives == 5 and int(task.n_kept) == 4
    empty = make_data(TRAIN, VALID, [], N_USERS, N_ITEMS)
    assert valid_loss.make_validation_loss_task(empty, "clean", 1, seed=0, chunk=8) is None


def test_negatives_are_fixed_by_the_seed_and_never_a_seen_item():
    # User 0 has seen items 0..4 (train 0-2, valid 3-4); only item 5 is left to draw. The
    # clean set lists (0, 3) only: (0, 4), a noisy validation item, must not be drawn either.
    train = [(0, 0), (0, 1), (0, 2), (1, 0)]
    valid = [(0, 3), (0, 4), (1, 1)]
    data = make_data(train, valid, [(0, 3), (1, 1)], 2, 6)
    first = valid_loss.make_validation_loss_task(data, "clean", 4, seed=7, chunk=8)
    again = valid_loss.make_validation_loss_task(data, "clean", 4, seed=7, chunk=8)
    np.testing.assert_array_equal(first.negatives, again.negatives)
    negatives = np.asarray(first.negatives).reshape(-1, 4)
    np.testing.assert_array_equal(negatives[0], [5, 5, 5, 5])
    assert not set(negatives[1]) & {0, 1}  # user 1's train and valid items

    big = make_data(TRAIN, VALID, VALID, N_USERS, N_ITEMS)
    seen = {(u, i) for u, i in TRAIN + VALID}
    one = valid_loss.make_validation_loss_task(big, "noisy", 3, seed=1, chunk=4)
    other = valid_loss.make_validation_loss_task(big, "noisy", 3, seed=2, chunk=4)
    users = np.asarray(one.users)[..., None].repeat(3, axis=-1)[np.asarray(one.real)]
    drawn = np.asarray(one.negatives)[np.asarray(one.real)]
    pairs = zip(users.ravel(), drawn.ravel(), strict=True)
    assert not {(int(u), int(i)) for u, i in pairs} & seen
    assert not np.array_equal(one.negatives, other.negatives)  # another seed, other pairs


def test_improves_keeps_the_higher_metric_or_the_lower_loss():
    from dprec import train

    empty, best = train.Best(), train.Best(epoch=2, value=0.5, params={"target": {}})
    assert train.improves("loss", 0.9, empty)  # the first finite value wins
    assert train.improves("loss", 0.4, best) and not train.improves("loss", 0.6, best)
    assert train.improves("trimmed_loss", 0.4, best)
    assert train.improves("metric", 0.6, best) and not train.improves("metric", 0.4, best)
    assert not train.improves("loss", 0.5, best)  # a tie keeps the earlier epoch
    assert not train.improves("loss", None, empty) and not train.improves("loss", math.nan, empty)


def tiny_spec(**eval_fields):
    config = get_config("method=normal")
    config.train.num_epochs = 4
    config.eval.references = ("popularity",)
    for key, value in eval_fields.items():
        setattr(config.eval, key, value)
    return run_spec_from_config(config)


# Planted per-epoch losses: the loss is lowest at epoch 2, the trimmed loss at epoch 3.
PLANTED = {1: (0.9, 0.8), 2: (0.5, 0.9), 3: (0.7, 0.3), 4: (0.6, 0.4)}


@pytest.fixture(scope="module")
def planted_fits():
    """A 4-epoch tiny fit per rule, with the validation losses replaced by `PLANTED` (the
    real function still runs, to record the pairs each epoch scores)."""
    from dprec import train
    from dprec.data.registry import load_dataset

    seen_tasks = []
    real = train.Setup.validation_losses

    def planted(self, params):
        real(self, params)
        seen_tasks.append(jax_to_host(self.valid_loss_task))
        epoch = (len(seen_tasks) - 1) % 4 + 1  # each fit runs epochs 1..4
        loss, trimmed = PLANTED[epoch]
        return {"valid_loss": loss, "valid_trimmed_loss": trimmed}

    train.Setup.validation_losses = planted
    try:
        fits = {}
        for rule in ("metric", "loss", "trimmed_loss"):
            spec = tiny_spec(selection=rule)
            fits[rule] = train.fit(spec, load_dataset(spec.data))
    finally:
        train.Setup.validation_losses = real
    return fits, seen_tasks


def jax_to_host(task):
    return {field.name: np.asarray(getattr(task, field.name)) for field in dataclasses.fields(task)}


def test_the_best_epoch_is_the_planted_loss_minimum(planted_fits):
    fits, _ = planted_fits
    loss, trimmed = fits["loss"].results, fits["trimmed_loss"].results
    assert loss["best_epoch"] == 2 and loss["selection"] == "loss"
    assert loss["selected_value"] == 0.5 and loss["valid_loss"] == 0.5
    assert loss["valid_trimmed_loss"] == 0.9  # the best epoch's other loss
    assert trimmed["best_epoch"] == 3 and trimmed["selected_value"] == 0.3
    assert trimmed["valid_loss"] == 0.7
    metric = fits["metric"].results
    assert metric["selection"] == "metric"
    assert metric["selected_value"] == metric["valid"][metric["selection_metric"]]
    assert metric["valid_loss"] == PLANTED[metric["best_epoch"]][0]  # logged, not selecting


def test_every_epoch_and_run_of_one_seed_scores_the_same_pairs(planted_fits):
    _, tasks = planted_fits
    assert len(tasks) == 12  # 3 runs × 4 epochs, one seed
    for task in tasks[1:]:
        for name, values in task.items():
            np.testing.assert_array_equal(values, tasks[0][name])


@pytest.mark.slow
def test_a_resumed_run_keeps_the_planted_best_epoch(tmp_path, monkeypatch):
    """Killed after epoch 2's checkpoint, resumed: epoch 3 (0.3) must beat the restored best
    (epoch 1, 0.8) and epoch 4 (0.4) must not beat epoch 3, as in the uninterrupted run."""
    from conftest import kill_after_checkpoint

    from dprec import train

    current = {}
    real_batches = train.Setup.batches

    def batches(self, epoch):
        current["epoch"] = epoch
        return real_batches(self, epoch)

    def planted(self, params):
        loss, trimmed = PLANTED[current["epoch"]]
        return {"valid_loss": loss, "valid_trimmed_loss": trimmed}

    monkeypatch.setattr(train.Setup, "batches", batches)
    monkeypatch.setattr(train.Setup, "validation_losses", planted)
    config = get_config("method=normal")
    config.train.num_epochs, config.train.checkpoint_every = 4, 1
    config.eval.references = ("popularity",)
    config.eval.selection = "trimmed_loss"
    straight = train.train_and_evaluate(config, str(tmp_path / "straight"))
    kill_after_checkpoint(monkeypatch, config, tmp_path / "resumed", epoch=2)
    resumed = train.train_and_evaluate(config, str(tmp_path / "resumed"))
    keys = ("best_epoch", "selected_value", "valid_loss", "valid_trimmed_loss", "valid", "test")
    assert {k: resumed[k] for k in keys} == {k: straight[k] for k in keys}
    assert resumed["best_epoch"] == 3 and resumed["valid_loss"] == 0.7


def test_selection_and_trim_rate_are_checked():
    with pytest.raises(ConfigError, match="eval.selection"):
        tiny_spec(selection="lowest")
    for rate in (1.0, -0.1):
        with pytest.raises(ConfigError, match="eval.trim_rate"):
            tiny_spec(trim_rate=rate)
    assert tiny_spec(selection="trimmed_loss", trim_rate=0.0).eval.trim_rate == 0.0


def check_run_files(workdir):
    """metrics.jsonl logs both losses every epoch, results.json the trimmed-loss selection,
    TensorBoard both losses under valid/."""
    from test_cli import read_events

    records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    for record in records:
        assert isinstance(record["valid_loss"], float) and record["valid_loss"] > 0
        # (not always below the loss: the pooled mean then weighs the negatives more)
        assert isinstance(record["valid_trimmed_loss"], float) and record["valid_trimmed_loss"] > 0
    results = json.loads((workdir / "results.json").read_text())
    best = min(records, key=lambda r: r["valid_trimmed_loss"])
    assert results["selection"] == "trimmed_loss"
    assert results["best_epoch"] == best["epoch"]
    assert results["selected_value"] == best["valid_trimmed_loss"]
    assert results["valid_loss"] == best["valid_loss"]
    tags = {tag for tag, _, _ in read_events(workdir / "tensorboard")}
    assert {"valid/loss", "valid/trimmed_loss"} <= tags


def test_a_run_logs_the_losses_and_records_its_selection(tmp_path):
    from dprec import train

    config = get_config("method=normal")
    config.train.num_epochs = 2
    config.eval.references = ("popularity",)
    config.eval.selection = "trimmed_loss"
    train.train_and_evaluate(config, str(tmp_path / "run"))
    check_run_files(tmp_path / "run")


@pytest.mark.slow
def test_a_cli_run_logs_the_losses_and_records_its_selection(tmp_path):
    workdir = tmp_path / "run"
    proc = run_main(
        "--config=configs/tiny.py:method=normal",
        f"--workdir={workdir}",
        "--config.eval.selection=trimmed_loss",
        "--config.train.num_epochs=2",
        "--config.eval.references=popularity",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    check_run_files(workdir)


# --- the sweeps


def finished_run(directory, name, valid, **losses):
    run = directory / name
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"seed": 0, "method": {"name": "normal"}}))
    results = {"best_epoch": 2, "valid": valid, "test": {}, **losses}
    (run / "results.json").write_text(json.dumps(results))


def test_grid_selects_by_the_lowest_loss(tmp_path, capsys):
    finished_run(tmp_path, "a", {"recall@20": 0.3}, valid_loss=0.50, valid_trimmed_loss=0.40)
    finished_run(tmp_path, "b", {"recall@20": 0.1}, valid_loss=0.45, valid_trimmed_loss=0.42)
    finished_run(tmp_path, "c", {"recall@20": 0.2}, valid_loss=None, valid_trimmed_loss=0.40)
    runs = grid.load_runs(tmp_path)
    assert grid.select_best(runs, "recall@20")["name"] == "a"  # the default: the metric
    assert grid.select_best(runs, "recall@20", "loss")["name"] == "b"
    assert [r["name"] for r in grid.rank_runs(runs, "recall@20", "loss")] == ["b", "a", "c"]
    assert grid.select_best(runs, "recall@20", "trimmed_loss")["name"] == "a"  # tie: name
    assert grid.main(["--select", str(tmp_path), "--by", "trimmed_loss"]) == 0
    out = capsys.readouterr().out
    assert "best by valid trimmed_loss: a" in out and "valid trimmed_loss" in out
    finished_run(tmp_path, "old", {"recall@20": 0.9})  # made before the losses were logged
    with pytest.raises(grid.GridError, match="valid_loss"):
        grid.select_best(grid.load_runs(tmp_path), "recall@20", "loss")


def tune_args(tmp_path, *extra):
    return tune.build_parser().parse_args(
        ["--config", "configs/tiny.py:method=normal", "--trials", "2", "--out", str(tmp_path)]
        + list(extra)
    )


def test_tune_minimises_the_selected_loss(tmp_path):
    plain, plain_settings, _, _ = tune.setup(tune_args(tmp_path / "a"))
    assert plain.direction == "maximize" and "selection" not in plain_settings
    assert "eval.selection" not in plain.fixed  # the default run commands are unchanged
    record = {"valid": {"recall@20": 0.2}, "valid_loss": 0.6, "valid_trimmed_loss": 0.5}
    assert plain.value_of(record["valid"], record) == 0.2

    chosen, settings, _, _ = tune.setup(tune_args(tmp_path / "b", "--select", "trimmed_loss"))
    assert chosen.direction == "minimize" and settings["selection"] == "trimmed_loss"
    assert chosen.fixed["eval.selection"] == "trimmed_loss"
    assert chosen.value_of(record["valid"], record) == 0.5
    assert chosen.value_of({"recall@20": 0.2}, {}) is None  # a record without the loss
    command = grid.command(chosen.plan("0000", {"train.learning_rate": 0.01}), "0000")
    assert "--config.eval.selection=trimmed_loss" in command

    optuna = pytest.importorskip("optuna")
    (tmp_path / "b").mkdir()
    study = tune.open_study(chosen, settings, 1, 0, "none")
    assert study.direction == optuna.study.StudyDirection.MINIMIZE
    plain.out = tmp_path / "b"  # a metric tune cannot reopen the loss study
    with pytest.raises(tune.TuneError, match="selection"):
        tune.open_study(plain, plain_settings, 1, 0, "none")


def test_noise_bench_passes_the_rule_on(tmp_path):
    def command(*flags):
        args = noise_bench.build_parser().parse_args(["--out", str(tmp_path), *flags])
        return noise_bench.combo_command(args, "normal", tmp_path / "d.csv", tmp_path / "c", {})

    assert "--select" not in command("--tune", "2")
    assert "eval.selection=loss" not in command()
    tuned = command("--tune", "2", "--selection", "loss")
    assert tuned[tuned.index("--select") + 1] == "loss"
    assert "eval.selection=trimmed_loss" in command("--selection", "trimmed_loss")
    with pytest.raises(SystemExit):
        command("--selection", "lowest")
