"""The method registry: every method's roles, phase roles, fields and names come from it."""

import dataclasses

import pytest

from dprec import models
from dprec.config import presets
from dprec.config.run_config import run_spec_from_config
from dprec.errors import ConfigError
from dprec.methods import METHOD_NAMES, all_methods, get_method
from dprec.methods.cards import CARDS, MethodCard
from dprec.methods.denoising import NOISE_ROLE
from dprec.specs import MethodSpec
from dprec.tools import report


def spec_of(method, model="gmf"):
    return run_spec_from_config(presets.build_config(f"model={model},method={method}"))


def test_unknown_method_is_an_error():
    with pytest.raises(ConfigError, match="method.name='dfc' is not one of normal, wbpr"):
        get_method("dfc")
    with pytest.raises(ConfigError, match="unknown method 'dfc'"):
        presets.build_config("method=dfc")


def test_name_lists_come_from_the_registry():
    assert presets.METHODS == METHOD_NAMES == tuple(CARDS)
    assert {name: report.METHOD_LABELS[name] for name in METHOD_NAMES} == {
        name: method.label for name, method in all_methods().items()
    }
    # The JAX-free lists the config layer reads agree with the registries that own them.
    assert presets.MODELS == models.MODEL_NAMES
    assert {name: method.card for name, method in all_methods().items()} == CARDS


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_a_spec_holds_every_field_of_a_card_at_its_default(name):
    spec = MethodSpec(name=name)
    for field, declared in CARDS[name].fields.items():
        assert getattr(spec, field) == declared.default, field
    assert get_method(name).config_fields == tuple(CARDS[name].fields)


def test_shared_fields_are_declared_once():
    """DCF reads T-CE's schedule and DVAE DPI's C1, C2, α, mode and h: the same `Field`
    objects, so one default, range and tune space."""
    for shared, reader in (("tce", "dcf"), ("dpi", "dvae")):
        common = set(CARDS[shared].fields) & set(CARDS[reader].fields)
        assert common, (shared, reader)
        for field in common:
            assert CARDS[shared].fields[field] is CARDS[reader].fields[field], field
    assert {"drop_rate", "num_gradual"} <= set(CARDS["dcf"].fields)
    assert {"c1", "c2", "alpha", "mode", "noise"} <= set(CARDS["dvae"].fields)


def test_method_spec_is_frozen_hashable_and_keeps_replace():
    spec = MethodSpec(name="dpi", c1=10.0)
    assert (spec.c1, spec.c2, spec.aux.name) == (10.0, 10.0, "mf")  # c2 and g: defaults
    assert hash(spec) == hash(MethodSpec(name="dpi", c1=10.0)) and spec != MethodSpec("dpi")
    changed = dataclasses.replace(spec, mode="dp")
    assert (changed.name, changed.mode, changed.c1) == ("dpi", "dp", 10.0)  # c1 is kept
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.c1 = 1.0
    with pytest.raises(TypeError, match="no field 'c3'"):
        MethodSpec(name="dpi", c3=1.0)
    with pytest.raises(AttributeError, match="no field 'c3'"):
        _ = spec.c3
    assert spec.to_dict()["aux"]["name"] == "mf" and spec.to_dict()["c1"] == 10.0


@pytest.mark.parametrize(
    ("method", "field", "value", "message"),
    [
        ("dpi", "alpha", 1.5, r"method\.alpha \(α\) must be in \[0, 1\], got 1\.5"),
        ("tce", "drop_rate", 0.5, r"method\.drop_rate \(ε_max\) must be in \[0, 0\.5\), got 0\.5"),
        ("dcf", "drop_rate", 0.5, r"method\.drop_rate \(ε_max\) must be in \[0, 0\.5\)"),
        ("dcf", "co_lambda", -1.0, r"method\.co_lambda \(DCF's σ²\) must be >= 0, got -1\.0"),
        ("dcf", "dcf_window", 0, "method.dcf_window must be a positive integer, got 0"),
        ("dvae", "prior_init", "own", "method.prior_init='own' is not one of seed, copy"),
        ("dvae", "c2", -1.0, r"method\.c1 and method\.c2 \(C1, C2\) must be >= 0"),
        ("crossdenoise", "factor_lower", 2.0, "got α=2.0, β=1.0"),
    ],
)
def test_a_card_checks_its_own_fields(tiny_config, method, field, value, message):
    tiny_config.method.name = method
    tiny_config.method[field] = value
    with pytest.raises(ConfigError, match=message) as err:
        run_spec_from_config(tiny_config)
    assert "\n" not in str(err.value)


def test_a_method_ignores_the_fields_of_other_methods(tiny_config):
    tiny_config.method.name = "normal"
    tiny_config.method.drop_rate = 0.9  # T-CE's field: out of its range, unread by normal
    assert run_spec_from_config(tiny_config).method.drop_rate == 0.9
    tiny_config.method.c1 = float("nan")  # but every float field must be finite
    with pytest.raises(ConfigError, match="method.c1 must be a finite number"):
        run_spec_from_config(tiny_config)


@pytest.mark.parametrize(
    ("name", "trained", "frozen"),
    [
        ("normal", {"target"}, set()),
        ("wbpr", {"target"}, set()),
        ("tce", {"target"}, set()),
        ("rce", {"target"}, set()),
        ("dpi", {"target", "aux", "noise_dp", "noise_dn"}, set()),
        ("dvae", {"target", "noise_dp", "noise_dn"}, {"prior"}),
        ("dcf", {"target"}, set()),
        ("crossdenoise", {"target"}, set()),
    ],
)
def test_roles_of_each_method(name, trained, frozen):
    method, spec = get_method(name), spec_of(name)
    assert set(method.role_models(spec)) == trained
    assert set(method.frozen_role_models(spec)) == frozen
    assert dict(method.phase_roles) == (NOISE_ROLE if name in ("dpi", "dvae") else {})
    assert method.is_denoising == (name in ("dpi", "dvae", "dcf", "crossdenoise"))
    assert method.has_method_state == (name in ("dcf", "crossdenoise"))


def test_graph_need_follows_every_role_model():
    dpi = get_method("dpi")
    spec = spec_of("dpi")
    assert not dpi.uses_graph(spec)
    with_graph_aux = dataclasses.replace(
        spec,
        method=dataclasses.replace(spec.method, aux=dataclasses.replace(spec.model, name="cdae")),
    )
    assert dpi.uses_graph(with_graph_aux)  # g alone reads the adjacency
    assert get_method("dvae").uses_graph(spec_of("dvae", model="lightgcn"))


def test_only_wbpr_changes_the_negative_sampler():
    class Data:
        def item_popularity(self):
            import numpy as np

            return np.array([1.0, 3.0, 0.0, 4.0])

    for name in METHOD_NAMES:
        probs = get_method(name).negative_probs(spec_of(name), Data())
        if name == "wbpr":
            assert probs.shape == (4,) and abs(probs.sum() - 1.0) < 1e-9
            assert probs[3] > probs[1] > probs[0]
        else:
            assert probs is None


def test_a_new_method_is_one_class(monkeypatch, tiny_config):
    """A method defined outside the library trains through the unchanged loop: its loss (and
    only its loss) is what the step minimises."""
    from dprec import methods, train
    from dprec.data.registry import load_dataset
    from dprec.methods.normal import Normal, make_normal_loss

    class PositivesTwice(Normal):
        card = MethodCard("twice", "Twice")

        def make_loss(self, spec, roles, regularizer):
            normal = make_normal_loss(roles.score["target"], regularizer)

            def loss_fn(trainable, frozen, batch, graph, rng, step):
                loss, logs = normal(trainable, frozen, batch, graph, rng, step)
                loss = loss + logs["pos_loss"]
                return loss, {**logs, "loss": loss, "twice": logs["pos_loss"]}

            return loss_fn

    monkeypatch.setitem(methods.METHODS, "twice", PositivesTwice())
    tiny_config.method.name = "twice"
    tiny_config.train.num_epochs = 1
    spec = run_spec_from_config(tiny_config)
    records = []
    train.fit(spec, load_dataset(spec.data), on_epoch=records.append)
    (record,) = records
    assert record["loss"] > record["pos_loss"] + record["neg_loss"]
    assert record["twice"] == record["pos_loss"]
