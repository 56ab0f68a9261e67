"""The epoch function's compiler options: in-place table updates on CPU, same numbers."""

import re

import jax
import numpy as np
import optax
import pytest

from dprec import steps, train
from dprec.config.presets import build_config
from dprec.config.run_config import run_spec_from_config
from dprec.data.registry import load_dataset


@pytest.fixture(scope="module")
def neumf_setup():
    config = build_config("model=neumf,method=normal")
    # The paper's L2 rule: a dense term over every row each step, whose update XLA:CPU copies
    # the tables for without the option (the "batch" rule reads a batch's rows only).
    config.train.l2_rule = "paper"
    config.data.synthetic.n_users = 500
    config.data.synthetic.n_items = 200
    config.train.batch_size = 256
    spec = run_spec_from_config(config)
    data = load_dataset(spec.data)
    setup = train.create_setup(spec, data)
    optimizer = optax.adam(spec.train.learning_rate)
    step = setup.method.make_train_step(spec, setup.roles, optimizer, n_users=data.n_users)
    return setup, step


def table_copies(epoch_fn, setup, batches) -> int:
    """Copies of carried `[n_users, D]` arrays (user tables, their moments) in the compiled
    epoch: copies of a loop-state element. (Copies of a zeros broadcast, the buffer a step's
    gradient scatter-adds into, are the gradient's own and stay.)"""
    text = epoch_fn.lower(setup.initial_state, batches, setup.graph).compile().as_text()
    pattern = rf"= f32\[{setup.data.n_users},\d+\]\S* copy\(%get-tuple-element"
    return len(re.findall(pattern, text))


def test_an_option_the_compiler_rejects_is_skipped():
    """A compiler that does not know an option errors out on it (as GPU and TPU do on the XLA:CPU
    options): the probe drops the set instead; a platform without options gets none."""
    rejected = {"cpu": {"xla_cpu_no_such_option_for_this_test": True}}
    assert steps.epoch_options("cpu", rejected) == {}
    assert steps.epoch_options("tpu", steps.EPOCH_COMPILER_OPTIONS) == {}
    assert steps.epoch_options("no_such_platform", {"no_such_platform": {"x": 1}}) == {}


def test_the_option_removes_the_table_copies_and_keeps_the_numbers(neumf_setup):
    setup, step = neumf_setup
    batches = setup.batches(0)
    with_option = steps.make_epoch_fn(step)  # the default: the platform's options
    without = steps.make_epoch_fn(step, compiler_options={})
    assert table_copies(without, setup, batches) > 0
    assert table_copies(with_option, setup, batches) == 0

    def two_epochs(epoch_fn):
        state = jax.tree.map(lambda x: x.copy(), setup.initial_state)
        for epoch in range(2):
            state, logs = epoch_fn(state, setup.batches(epoch), setup.graph)
        return jax.device_get((state.params, state.opt_state, logs))

    jax.tree.map(np.testing.assert_array_equal, two_epochs(with_option), two_epochs(without))
