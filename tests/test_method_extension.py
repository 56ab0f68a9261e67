"""A method defined outside the library, with a field of its own: once registered, the config
boundary, `--config_help`, the tuner and the training loop see its card, and no library file
changes. A module of `dprec.methods` named after its method is found by that name alone."""

import importlib
import math
import sys

import pytest

from dprec import methods
from dprec.config import presets, usage
from dprec.config.run_config import run_spec_from_config
from dprec.config.templates.tiny import get_config as tiny_config
from dprec.errors import ConfigError
from dprec.methods.cards import MethodCard
from dprec.methods.fields import Field, Float, Range
from dprec.sweeps import tune

NEG_WEIGHT = Field(
    1.0,
    "weight of the sampled negatives' BCE",
    check=Range(low=0.0, low_open=True),
    space=Float(0.1, 10.0, log=True),
)


def weighted_negatives_class():
    """Normal training with the negatives' BCE weighted by `spec.method.neg_weight`. Built
    inside a function: `dprec.methods.normal` imports JAX, which the config tests need not."""
    from dprec.methods.normal import Normal, make_normal_loss

    class WeightedNegatives(Normal):
        card = MethodCard("weighted_negatives", "Weighted negatives", {"neg_weight": NEG_WEIGHT})

        def make_loss(self, spec, roles, regularizer):
            normal = make_normal_loss(roles.score["target"], regularizer)
            weight = spec.method.neg_weight

            def loss_fn(trainable, frozen, batch, graph, rng, step):
                _, logs = normal(trainable, frozen, batch, graph, rng, step)
                loss = logs["pos_loss"] + weight * logs["neg_loss"] + logs["l2"]
                return loss, {**logs, "loss": loss}

            return loss_fn

    return WeightedNegatives


@pytest.fixture
def registered():
    method = methods.register(weighted_negatives_class()())
    yield method
    del methods.METHODS[method.name]


def test_the_config_boundary_reads_its_card(registered):
    config = presets.build_config("method=weighted_negatives")  # the method section has it
    assert config.method.name == "weighted_negatives" and config.method.neg_weight == 1.0
    config.method.neg_weight = 2.0
    spec = run_spec_from_config(config)
    assert spec.method.name == "weighted_negatives" and spec.method.neg_weight == 2.0
    assert spec.method.c1 == 1000.0  # the built-in fields keep their defaults
    for bad, shown in ((-1.0, "-1.0"), (0.0, "0.0")):
        config.method.neg_weight = bad
        with pytest.raises(ConfigError) as err:
            run_spec_from_config(config)
        assert str(err.value) == (
            f"method.neg_weight must be > 0, got {shown}; set --config.method.neg_weight"
        )
    config.method.neg_weight = math.inf
    with pytest.raises(ConfigError, match="method.neg_weight must be a finite number"):
        run_spec_from_config(config)
    help_line = "  method.neg_weight = 1.0  # weight of the sampled negatives' BCE"
    assert help_line in usage.config_help().splitlines()


def test_the_tuner_searches_its_field(registered):
    space = tune.method_space("weighted_negatives")
    assert space == {**tune.COMMON, "method.neg_weight": Float(0.1, 10.0, log=True)}
    with pytest.raises(tune.TuneError, match="knows normal, .*, pld, weighted_negatives$"):
        tune.method_space("nope")


def test_a_method_is_unknown_until_registered():
    with pytest.raises(ConfigError, match="unknown method 'weighted_negatives'"):
        presets.build_config("method=weighted_negatives")
    assert "neg_weight" not in methods.method_fields()


def test_it_trains_and_its_loss_reads_its_field(registered):
    from dprec import train
    from dprec.data.registry import load_dataset

    config = tiny_config("method=weighted_negatives")
    config.method.neg_weight = 2.0
    config.train.num_epochs = 2
    spec = run_spec_from_config(config)
    records = []
    train.fit(spec, load_dataset(spec.data), on_epoch=records.append)
    assert [record["epoch"] for record in records] == [1, 2]
    for record in records:  # epoch means of per-step logs: the identity holds for them too
        weighted = record["pos_loss"] + 2.0 * record["neg_loss"] + record["l2"]
        assert record["loss"] == pytest.approx(weighted, rel=1e-5)
        assert record["loss"] > record["pos_loss"] + record["neg_loss"] + record["l2"] + 0.1


def test_register_refuses_a_clashing_field():
    from dprec.methods.normal import Normal

    class OwnDropRate(Normal):  # T-CE declares drop_rate with another default and range
        card = MethodCard("own_drop_rate", "Own", {"drop_rate": Field(0.3)})

    class Reserved(Normal):
        card = MethodCard("reserved", "Reserved", {"values": Field(1.0)})

    with pytest.raises(ValueError, match="'drop_rate' is already declared by method 'tce'"):
        methods.register(OwnDropRate())
    with pytest.raises(ValueError, match="'values' is reserved"):
        methods.register(Reserved())
    assert "own_drop_rate" not in methods.METHODS and "reserved" not in methods.METHODS


MODULE = """
from dprec.methods.cards import MethodCard
from dprec.methods.fields import Field, Range
from dprec.methods.normal import Normal


class Found(Normal):
    card = MethodCard("found_by_name", "Found", {"found_weight": Field(3.0, check=Range(0.0))})


METHOD = Found()
"""


def test_a_module_of_the_package_is_found_by_its_name(monkeypatch, tmp_path):
    """A method module dropped into dprec/methods (here: a folder added to the package's
    path) is a method of the command line with no other file changed."""
    (tmp_path / "found_by_name.py").write_text(MODULE)
    importlib.invalidate_caches()
    monkeypatch.setattr(methods, "__path__", [*methods.__path__, str(tmp_path)])
    try:
        config = presets.build_config("method=found_by_name")
        assert config.method.found_weight == 3.0
        config.method.found_weight = -1.0
        with pytest.raises(ConfigError, match=r"method.found_weight must be >= 0, got -1.0"):
            run_spec_from_config(config)
        assert "method.found_weight" not in tune.method_space("found_by_name")  # no space
    finally:
        methods.METHODS.pop("found_by_name", None)
        sys.modules.pop("dprec.methods.found_by_name", None)
