"""Defaults that learn on every dataset (issue 30): one loss scale for every method, one meaning
for λ0 whatever the number of users, and a collapse guard that says when a model did not learn."""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import REPO

from dprec import specs, train
from dprec.config.presets import build_config
from dprec.evaluation import health
from dprec.methods import dcf as dcf_method
from dprec.methods import get_method
from dprec.methods.common import make_batch_l2
from dprec.methods.normal import make_normal_loss
from dprec.methods.rce import make_rce_loss
from dprec.methods.tce import make_tce_loss
from dprec.models import ScoreFns, init_model
from dprec.objectives import dcf
from dprec.specs import MethodSpec, ModelSpec

TABLE_TARGET = ScoreFns(
    encode=lambda params, graph, rng: None,
    pair=lambda params, encoded, users, items: params["table"][users, items],
    all_items=None,
)
NO_L2 = lambda params, batch: 0.0  # noqa: E731


def softplus(x):
    return float(np.log1p(np.exp(x)))


def planted_batch():
    """4 positives (logits 2, −1, −3, 0.5) and one negative each (−1, 0, 1, −2), 1 padding row."""
    table = jnp.zeros((5, 5))
    table = table.at[jnp.arange(4), jnp.arange(4)].set(jnp.array([2.0, -1.0, -3.0, 0.5]))
    table = table.at[:, 4].set(jnp.array([-1.0, 0.0, 1.0, -2.0, 7.0]))
    batch = {
        "users": jnp.arange(5),
        "pos_items": jnp.array([0, 1, 2, 3, 0]),
        "neg_items": jnp.full((5, 1), 4),
        "mask": jnp.array([1.0, 1.0, 1.0, 1.0, 0.0]),
        "index": jnp.array([0, 1, 2, 3, 0]),
    }
    return {"target": {"table": table}}, batch


POS = [softplus(-x) for x in (2.0, -1.0, -3.0, 0.5)]  # BCE of the positives
NEG = [softplus(x) for x in (-1.0, 0.0, 1.0, -2.0)]  # BCE of the negatives


def loss_of(loss_fn, step=0, *state):
    params, batch = planted_batch()
    return float(loss_fn(params, {}, batch, None, None, step, *state)[0])


def test_normal_loss_is_a_positive_mean_plus_a_negative_mean():
    expected = np.mean(POS) + np.mean(NEG)
    assert loss_of(make_normal_loss(TABLE_TARGET, NO_L2)) == pytest.approx(expected, rel=1e-6)


def test_tce_without_drops_is_normal_training_and_drops_keep_the_scale():
    no_drop = make_tce_loss(TABLE_TARGET, NO_L2, max_drop_rate=0.25, num_gradual=10)
    assert loss_of(no_drop, 0) == pytest.approx(np.mean(POS) + np.mean(NEG), rel=1e-6)
    # Rate 0.25 of 8 valid examples: 6 kept; negatives rank as 0, so the two largest-loss
    # positives (logits −3 and −1) go; the rest is a mean over 2 positives + a mean over 4
    # negatives (the original T-CE would divide all six by 6).
    full = make_tce_loss(TABLE_TARGET, NO_L2, max_drop_rate=0.25, num_gradual=1)
    expected = (softplus(-2.0) + softplus(-0.5)) / 2 + np.mean(NEG)
    assert loss_of(full, 5) == pytest.approx(expected, rel=1e-6)


def test_rce_with_beta_zero_is_normal_training():
    loss = make_rce_loss(TABLE_TARGET, NO_L2, beta=0.0)
    assert loss_of(loss) == pytest.approx(np.mean(POS) + np.mean(NEG), rel=1e-6)


def test_dcf_without_drops_is_normal_training():
    spec = MethodSpec(name="dcf", drop_rate=0.0, num_gradual=1, relabel_ratio=0.0, co_lambda=0.0)
    state = dcf_method.DCFState(
        history=dcf.init_history(4, window=2), epoch=jnp.zeros((), jnp.int32), variance=0.0
    )
    loss = dcf_method.make_dcf_loss(TABLE_TARGET, NO_L2, spec)
    assert loss_of(loss, 0, state) == pytest.approx(np.mean(POS) + np.mean(NEG), rel=1e-6)


# --- the "batch" L2 rule -----------------------------------------------------------------------


def test_batch_l2_charges_each_example_the_rows_it_reads():
    spec = ModelSpec(name="gmf", embed_dim=3, init_std=0.5)
    _, params = init_model(spec, 6, 5, jax.random.key(0))
    batch = {
        "users": jnp.array([0, 2, 2, 5]),
        "pos_items": jnp.array([1, 1, 3, 0]),
        "neg_items": jnp.array([[4, 2], [0, 0], [1, 4], [3, 3]]),
        "mask": jnp.array([1.0, 1.0, 1.0, 0.0]),
    }
    penalty = make_batch_l2({"user_embedding": "user", "item_embedding": "item"}, lambda0=0.3)
    p = np.asarray(params["user_embedding"]["embedding"], np.float64)
    q = np.asarray(params["item_embedding"]["embedding"], np.float64)
    shared = sum(np.sum(np.asarray(x, np.float64) ** 2) for x in jax.tree.leaves(params["predict"]))
    per_example = [
        2 * np.sum(p[u] ** 2) + np.sum(q[i] ** 2) + np.mean([np.sum(q[j] ** 2) for j in negs])
        for u, i, negs in zip([0, 2, 2], [1, 1, 3], [[4, 2], [0, 0], [1, 4]], strict=True)
    ]
    expected = 0.3 * 0.5 * (np.mean(per_example) + 2 * shared)
    assert float(penalty(params, batch)) == pytest.approx(expected, rel=1e-5)


def gradient_terms(copies: int, rule: str) -> tuple[np.ndarray, np.ndarray]:
    """(L2 gradient, data gradient) of GMF's user and item tables, on a batch of `copies`
    copies of one small batch over `copies` copies of its users (the same items): the same
    rows per user, `copies` times the users. Rows `[copies · 6 + 5, D]`, users then items."""
    n_users, n_items = 6, 5
    spec = ModelSpec(name="gmf", embed_dim=3, init_std=0.5)
    graphdef, base = init_model(spec, n_users, n_items, jax.random.key(0))
    params = jax.tree.map(lambda x: x, base)
    params["user_embedding"]["embedding"] = jnp.tile(
        base["user_embedding"]["embedding"], (copies, 1)
    )
    one = {
        "users": jnp.array([0, 2, 2, 5, 1]),
        "pos_items": jnp.array([1, 1, 3, 0, 4]),
        "neg_items": jnp.array([[4], [0], [1], [3], [2]]),
    }
    batch = {
        "users": jnp.concatenate([one["users"] + n_users * c for c in range(copies)]),
        "pos_items": jnp.tile(one["pos_items"], copies),
        "neg_items": jnp.tile(one["neg_items"], (copies, 1)),
        "mask": jnp.ones(5 * copies),
    }
    from dprec.methods.common import make_regularizer
    from dprec.models import make_score_fns

    score = make_score_fns(graphdef)
    data_loss = make_normal_loss(score, NO_L2)
    l2 = make_regularizer("gmf", rule=rule, lambda0=0.3, n_users=n_users * copies)

    def tables(grads):
        return np.concatenate(
            [
                np.asarray(grads["user_embedding"]["embedding"]),
                np.asarray(grads["item_embedding"]["embedding"]),
            ]
        )

    data_grad = jax.grad(lambda p: data_loss({"target": p}, {}, batch, None, None, 0)[0])(params)
    l2_grad = jax.grad(lambda p: l2(p, batch))(params)
    return tables(l2_grad), tables(data_grad)


def test_lambda0_means_the_same_with_ten_times_the_users():
    """Same rows per user, 10× the users (a batch of ten copies of one batch): under the batch
    rule every row's L2 gradient keeps its ratio to the data gradient, so λ0 regularises the
    same; under the paper's rule (λ0/n_users) the item rows' L2 is ten times weaker."""
    ratios = {}
    for rule in ("batch", "paper"):
        for copies in (1, 10):
            l2_grad, data_grad = gradient_terms(copies, rule)
            users = l2_grad[[0, 1, 2, 5]] / data_grad[[0, 1, 2, 5]]  # the batch's (first copy)
            items = l2_grad[-5:] / data_grad[-5:]
            ratios[rule, copies] = (users, items)
    for one, ten in zip(ratios["batch", 1], ratios["batch", 10], strict=True):
        np.testing.assert_allclose(ten, one, rtol=1e-4)
    np.testing.assert_allclose(ratios["paper", 10][1], ratios["paper", 1][1] / 10, rtol=1e-4)


# --- the collapse guard ------------------------------------------------------------------------


def records(losses, valids, sizes):
    return [
        {"epoch": e + 1, "loss": loss, "valid": {"recall@20": v}, "target_rms": s}
        for e, (loss, v, s) in enumerate(zip(losses, valids, sizes, strict=True))
    ]


def judge(history, **kw):
    return health.check(history, "recall@20", l2=0.1, learning_rate=1e-3, **kw)


def test_a_healthy_run_is_ok():
    history = records([1.38, 1.2, 1.0, 0.9], [0.10, 0.15, 0.18, 0.19], [0.01, 0.012, 0.02, 0.03])
    verdict = judge(history)
    assert verdict.status == "ok" and verdict.line() == ""


def test_shrinking_parameters_and_falling_validation_are_a_collapse():
    history = records(
        [0.6933, 0.6932, 0.6931, 0.6931, 0.6931],
        [0.13, 0.18, 0.05, 0.05, 0.05],
        [0.01, 0.008, 0.002, 0.0005, 0.0004],
    )
    verdict = judge(history)
    assert verdict.collapsed and verdict.epoch == 3
    assert len(verdict.reasons) == 2
    assert verdict.reasons[0].startswith("the target's parameters shrank to 4.0%")
    assert "fell from its peak 0.1800 to 0.0500" in verdict.reasons[1]
    line = verdict.line()
    assert line.startswith("health: collapsed at epoch 3: ") and "\n" not in line
    assert "lower --config.train.l2 (now 0.1, e.g. 0.01)" in line
    assert health.Health.from_dict(verdict.to_dict()) == verdict


def test_a_loss_that_never_moves_is_a_collapse():
    history = records([0.6931] * 4, [0.05, 0.04, 0.05, 0.05], [0.01] * 4)
    verdict = judge(history)
    assert verdict.collapsed and verdict.reasons == ("the loss stayed at 0.6931 (epoch 1: 0.6931)",)


def test_stop_waits_for_validation_to_stay_low():
    falling = records([1.0] * 4, [0.2, 0.3, 0.1, 0.1], [0.01] * 4)
    assert (
        judge(falling).collapsed
        and health.stop_now(falling, "recall@20", l2=0.1, learning_rate=1e-3) is None
    )
    low = falling + records([1.0] * 5, [0.1] * 5, [0.01] * 5)[:5]
    for i, record in enumerate(low):
        record["epoch"] = i + 1
    assert health.stop_now(low, "recall@20", l2=0.1, learning_rate=1e-3).collapsed


def synthetic_run(**train_fields):
    """GMF normal training on the synthetic default (3,000 users), 12 epochs, no references."""
    config = build_config("dataset=synthetic,model=gmf,method=normal")
    config.eval.references = ()
    config.train.update({"num_epochs": 12, **train_fields})
    return train.train_and_evaluate(config, None)


def test_the_guard_fires_on_a_large_lambda0_and_stays_silent_by_default(caplog):
    healthy = synthetic_run()
    assert healthy["health"]["status"] == "ok"
    collapsed = synthetic_run(l2=0.05)  # 50× the default: the rows shrink to nothing
    assert collapsed["health"]["status"] == "collapsed"
    assert collapsed["health"]["reasons"][0].startswith("the target's parameters shrank")
    assert any(r.message.startswith("health: collapsed at epoch") for r in caplog.records)


def test_stop_on_collapse_ends_the_run_early():
    results = synthetic_run(l2=0.05, stop_on_collapse=True, num_epochs=40)
    assert results["health"]["status"] == "collapsed"
    assert results["epochs_run"] < 40


# --- the defaults matrix ----------------------------------------------------------------------


@pytest.mark.slow
def test_the_tiny_matrix_learns_with_every_method(tmp_path):
    """CI's small matrix: every method's loss falls and no run is flagged collapsed."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "dprec.sweeps.defaults_matrix",
            "--tiny",
            "--jobs",
            "2",
            "--out",
            str(tmp_path / "m"),
            "--page",
            str(tmp_path / "page.md"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    page = (tmp_path / "page.md").read_text()
    assert page.startswith("# Defaults matrix") and "- command: `" in page
    for method in get_method("normal").card.name, "tce", "dcf", "dpi", "dvae":
        assert f"| {method} | " in page


def test_the_matrix_goal_checks_on_a_constructed_table():
    from dprec.sweeps.defaults_matrix import goal_checks

    rows = [
        {
            "dataset": "d",
            "model": "gmf",
            "method": "normal",
            "n": 3,
            "selected": [0.30, 0.32, 0.31],
            "last": [0.30, 0.31, 0.30],
            "popularity": 0.25,
            "collapsed": [],
        },
        {
            "dataset": "d",
            "model": "gmf",
            "method": "tce",
            "n": 3,
            "selected": [0.20, 0.21, 0.22],
            "last": [0.05, 0.05, 0.05],
            "popularity": 0.25,
            "collapsed": [1],
        },
    ]
    lines = goal_checks(rows)
    assert lines == [
        "- d gmf tce: collapsed (seeds [1])",
        "- d gmf tce: last epoch 0.0500 < 0.9 × selected 0.2100",
        "- d gmf tce: below popularity (0.2500)",
        "- d gmf tce: 0.2100 more than one std below normal (0.3100 ± 0.0082)",
    ]


def test_paper_datasets_keep_the_paper_rule_and_others_the_batch_rule():
    for dataset, rule in (
        ("modcloth", "paper"),
        ("electronics", "paper"),
        ("adressa", "paper"),
        ("ml-100k", "batch"),
        ("table", "batch"),
        ("synthetic", "batch"),
    ):
        assert build_config(f"dataset={dataset}").train.l2_rule == rule, dataset
    assert specs.TrainSpec().l2_rule == "batch"


def test_a_generated_page_names_the_command_a_reader_reruns(tmp_path):
    from pathlib import Path as P

    import dprec
    from dprec.runs import pages

    package = P(dprec.__file__).parent
    module = [str(package / "sweeps" / "defaults_matrix.py"), "--out", "m"]
    assert pages.this_command(module) == [
        "python",
        "-m",
        "dprec.sweeps.defaults_matrix",
        "--out",
        "m",
    ]
    assert pages.this_command([str(package / "__main__.py"), "report"])[:3] == [
        "python",
        "-m",
        "dprec",
    ]
    assert pages.this_command(["/venv/bin/dprec-report", "runs"]) == ["dprec-report", "runs"]
    page = pages.write_page(tmp_path / "p.md", "Title", "body", command=["dprec-report", "runs"])
    lines = page.read_text().splitlines()
    assert lines[0] == "# Title" and "- command: `dprec-report runs`" in lines
    assert lines[-1] == "body"


def test_a_method_page_says_where_its_defaults_stand(tmp_path):
    from dprec.sweeps.defaults_matrix import METHOD_BLOCK, method_summary, write_method_pages

    def row(dataset, method, selected, last=None, collapsed=()):
        return {
            "dataset": dataset,
            "model": "gmf",
            "method": method,
            "n": len(selected),
            "selected": selected,
            "last": last or selected,
            "popularity": 0.25,
            "collapsed": list(collapsed),
        }

    rows = [
        row("a", "normal", [0.30, 0.34]),  # 0.32 ± 0.02
        row("a", "tce", [0.33]),  # within one std of normal
        row("b", "normal", [0.30]),
        row("b", "tce", [0.20], last=[0.10], collapsed=[0]),  # below both, falls, collapsed
    ]
    lines = [line for line in method_summary(rows, "tce").splitlines() if line.startswith("- ")]
    assert lines == [
        "- a, GMF: test recall@20 0.3300 (1 seed): within one std of normal; above popularity "
        "(0.2500)",
        "- b, GMF: test recall@20 0.2000 (1 seed): below normal (-33.3 %); **below** popularity "
        "(0.2500); ⚠ collapsed in 1 of 1 runs; the last epoch falls to 0.1000",
    ]
    page = tmp_path / "tce.md"
    page.write_text(f"# T-CE\n<!-- {METHOD_BLOCK}:start -->\nold\n<!-- {METHOD_BLOCK}:end -->\n")
    (tmp_path / "normal.md").write_text("# Normal, no block\n")
    assert write_method_pages(rows, tmp_path) == [page]
    assert lines[1] in page.read_text() and "old" not in page.read_text()
    assert (tmp_path / "normal.md").read_text() == "# Normal, no block\n"
