"""The config boundary: a ConfigDict (or nested mapping) → a validated, frozen `RunSpec`.

Names are checked against lists that import no JAX: the methods' registry (`dprec.methods`,
its cards) and `presets.MODELS`; metric names against `metrics.metric_names`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from dprec.config.presets import MODELS
from dprec.errors import ConfigError
from dprec.methods import check_method_name, get_card, is_method, method_fields
from dprec.metrics import metric_names
from dprec.references.names import check_reference_names
from dprec.specs import (
    CLEAN_RULES,
    DATA_FORMATS,
    L2_RULES,
    PROPAGATION_DTYPES,
    SELECTIONS,
    SPLIT_KINDS,
    TRAIN_TRUTHS,
    UPDATE_MODES,
    VALID_SETS,
    ColumnSpec,
    DataSpec,
    EvalSpec,
    MethodSpec,
    ModelSpec,
    RunSpec,
    SyntheticSpec,
    TrainSpec,
)


def _section(config: Any, name: str) -> Mapping[str, Any]:
    section = config.get(name) if hasattr(config, "get") else None
    if section is None:
        return {}
    return section.to_dict() if hasattr(section, "to_dict") else dict(section)


def _build(cls: type, values: Mapping[str, Any], where: str) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown config field {where}.{unknown[0]}; valid fields: {', '.join(sorted(fields))}"
        )
    kwargs = {}
    for key, value in values.items():
        default = getattr(cls(), key)
        if isinstance(default, tuple) and isinstance(value, (list, tuple)):
            value = tuple(value)
        if isinstance(default, float) or (
            isinstance(default, tuple) and default and isinstance(default[0], float)
        ):
            _check_finite(value, f"{where}.{key}")
        kwargs[key] = value
    return cls(**kwargs)


def _check_finite(value: Any, name: str) -> None:
    """A float field (or tuple of floats) must hold finite numbers: NaN passes every `x <= 0`
    check and then trains to a NaN loss."""
    for number in value if isinstance(value, tuple) else (value,):
        if (
            isinstance(number, bool)
            or not isinstance(number, (int, float))
            or not math.isfinite(number)
        ):
            raise ConfigError(
                f"{name} must be a finite number, got {number!r}; set --config.{name}=VALUE"
            )


def _positive_int(value: Any, name: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}; set --config.{name}")


def _one_of(value: str, choices: tuple[str, ...], name: str) -> None:
    if value not in choices:
        raise ConfigError(
            f"{name}={value!r} is not one of {', '.join(choices)}; set --config.{name}"
        )


def run_spec_from_config(config: Any) -> RunSpec:
    """Unpack and validate a config (ConfigDict or nested mapping) into a `RunSpec`, without
    importing JAX: the command line checks every field before JAX starts.

    Raises:
      ConfigError: a value is missing, unknown or out of range; the message names the field.
    """
    data_values = dict(_section(config, "data"))
    columns = _build(ColumnSpec, data_values.pop("columns", {}), "data.columns")
    synthetic = _build(SyntheticSpec, data_values.pop("synthetic", {}), "data.synthetic")
    data = dataclasses.replace(
        _build(DataSpec, data_values, "data"), columns=columns, synthetic=synthetic
    )
    spec = RunSpec(
        seed=int(config.get("seed", 0)),
        data=data,
        model=_build(ModelSpec, _section(config, "model"), "model"),
        method=_method_spec(_section(config, "method")),
        train=_build(TrainSpec, _section(config, "train"), "train"),
        eval=_build(EvalSpec, _section(config, "eval"), "eval"),
    )
    validate_run_spec(spec)
    validate_names(spec)
    # Metrics are reported by increasing K whatever order the cut-offs were given in.
    return dataclasses.replace(
        spec, eval=dataclasses.replace(spec.eval, ks=tuple(sorted(spec.eval.ks)))
    )


def _method_spec(values: Mapping[str, Any]) -> MethodSpec:
    """The `method` section: `name` and the fields of every registered method's card (a float
    field must be finite; a field with a spec default, e.g. `aux`, is built as that spec)."""
    values = dict(values)
    name = values.pop("name", MethodSpec.name)
    declared = method_fields()
    unknown = sorted(set(values) - set(declared))
    if unknown:
        raise ConfigError(
            f"unknown config field method.{unknown[0]}; valid fields: "
            f"{', '.join(sorted(['name', *declared]))}"
        )
    fields = {}
    for key, value in values.items():
        default, where = declared[key].default, f"method.{key}"
        if dataclasses.is_dataclass(default) and not dataclasses.is_dataclass(value):
            value = _build(type(default), value, where)
        elif isinstance(default, tuple) and isinstance(value, list):
            value = tuple(value)
        if isinstance(default, float):
            _check_finite(value, where)
        fields[key] = value
    return MethodSpec(name=name, **fields)


def _model_sections(method: MethodSpec) -> dict[str, ModelSpec]:
    """Config name → value of the method fields that are models (`method.aux`, ...)."""
    return {
        f"method.{key}": getattr(method, key)
        for key, field in method_fields().items()
        if isinstance(field.default, ModelSpec)
    }


def validate_names(spec: RunSpec) -> None:
    """Check the model and method names against lists that import no JAX: the methods'
    registry (its cards, and any method registered at run time) and `presets.MODELS` (a test
    holds it equal to the models' registry)."""
    check_method_name(spec.method.name)
    _one_of(spec.model.name, MODELS, "model.name")
    for where, model in _model_sections(spec.method).items():
        _one_of(model.name, MODELS, f"{where}.name")


def validate_run_spec(spec: RunSpec) -> None:
    """Check ranges and choices that do not depend on the data or a registry."""
    _one_of(spec.data.split, SPLIT_KINDS, "data.split")
    _one_of(spec.data.format, DATA_FORMATS, "data.format")
    if len(spec.data.split_names) not in (3, 4):
        raise ConfigError(
            "data.split_names must name train, valid, test (and optionally a clean-test-only "
            f"part), got {list(spec.data.split_names)}"
        )
    for field in ("n_users", "n_items"):
        value = getattr(spec.data, field)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ConfigError(f"data.{field} must be an integer >= 0 (0 = from the data)")
    _one_of(spec.data.clean_rule, CLEAN_RULES, "data.clean_rule")
    _one_of(spec.data.train_truth, TRAIN_TRUTHS, "data.train_truth")
    if not 0.0 <= spec.data.max_dropped_fraction <= 1.0:
        raise ConfigError(
            f"data.max_dropped_fraction must be in [0, 1], got {spec.data.max_dropped_fraction}"
        )
    _one_of(spec.eval.valid_set, VALID_SETS, "eval.valid_set")
    _one_of(spec.eval.selection, SELECTIONS, "eval.selection")
    if not 0.0 <= spec.eval.trim_rate < 1.0:  # 1 would drop every validation positive
        raise ConfigError(f"eval.trim_rate must be in [0, 1), got {spec.eval.trim_rate}")
    _one_of(spec.train.updates, UPDATE_MODES, "train.updates")
    _one_of(spec.train.l2_rule, L2_RULES, "train.l2_rule")
    if is_method(spec.method.name):  # an unknown name is `validate_names`'s error
        get_card(spec.method.name).check(spec.method)  # the method's own fields' ranges
    if len(spec.data.split_ratios) != 3 or any(r < 0 for r in spec.data.split_ratios):
        raise ConfigError(
            "data.split_ratios must be three non-negative numbers, e.g. (0.8, 0.1, 0.1)"
        )
    if abs(sum(spec.data.split_ratios) - 1.0) > 1e-6:
        raise ConfigError(f"data.split_ratios must sum to 1, got {spec.data.split_ratios}")
    _positive_int(spec.train.batch_size, "train.batch_size")
    _positive_int(spec.train.num_epochs, "train.num_epochs")
    _positive_int(spec.train.num_negatives, "train.num_negatives")
    every = spec.train.checkpoint_every
    if not isinstance(every, int) or isinstance(every, bool) or every < 0:
        raise ConfigError(
            f"train.checkpoint_every must be an integer >= 0 (0 = by time), got {every!r}"
        )
    for flag in ("shard_tables", "stop_on_collapse"):
        if not isinstance(getattr(spec.train, flag), bool):
            raise ConfigError(
                f"train.{flag} must be True or False, got {getattr(spec.train, flag)!r}"
            )
    _positive_int(spec.model.embed_dim, "model.embed_dim")
    _one_of(spec.model.propagation_dtype, PROPAGATION_DTYPES, "model.propagation_dtype")
    _positive_int(spec.eval.chunk_size, "eval.chunk_size")
    check_reference_names(spec.eval.references)
    if not spec.eval.ks:
        raise ConfigError("eval.ks is empty; give at least one cut-off, e.g. --config.eval.ks=5,20")
    for k in spec.eval.ks:
        _positive_int(k, "eval.ks")
    repeated = sorted({k for k in spec.eval.ks if spec.eval.ks.count(k) > 1})
    if repeated:
        raise ConfigError(
            f"eval.ks lists K={repeated[0]} more than once; give each cut-off once, e.g. "
            "--config.eval.ks=5,20"
        )
    if spec.train.learning_rate <= 0:
        raise ConfigError(f"train.learning_rate must be > 0, got {spec.train.learning_rate}")
    if spec.train.l2 < 0:
        raise ConfigError(f"train.l2 (λ0) must be >= 0, got {spec.train.l2}")
    metric = spec.eval.selection_metric
    valid_metrics = set(metric_names(spec.eval.ks))
    if metric not in valid_metrics:
        raise ConfigError(
            f"eval.select_metric={metric!r} is not computed; use one of {sorted(valid_metrics)}"
        )
