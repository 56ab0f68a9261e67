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
from dprec.methods import check_method_name
from dprec.metrics import metric_names
from dprec.specs import (
    CLEAN_RULES,
    DATA_FORMATS,
    DENOISING_MODES,
    PRIOR_INITS,
    PROPAGATION_DTYPES,
    SPLIT_KINDS,
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
    values = dict(values)
    aux = _build(ModelSpec, values.pop("aux", {"name": "mf"}), "method.aux")
    noise = _build(ModelSpec, values.pop("noise", {"name": "mf"}), "method.noise")
    return dataclasses.replace(_build(MethodSpec, values, "method"), aux=aux, noise=noise)


def validate_names(spec: RunSpec) -> None:
    """Check the model and method names against lists that import no JAX: the methods'
    registry (its cards, and any method registered at run time) and `presets.MODELS` (a test
    holds it equal to the models' registry)."""
    check_method_name(spec.method.name)
    _one_of(spec.model.name, MODELS, "model.name")
    _one_of(spec.method.aux.name, MODELS, "method.aux.name")
    _one_of(spec.method.noise.name, MODELS, "method.noise.name")


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
    if not 0.0 <= spec.data.max_dropped_fraction <= 1.0:
        raise ConfigError(
            f"data.max_dropped_fraction must be in [0, 1], got {spec.data.max_dropped_fraction}"
        )
    _one_of(spec.eval.valid_set, VALID_SETS, "eval.valid_set")
    _one_of(spec.train.updates, UPDATE_MODES, "train.updates")
    _one_of(spec.method.mode, DENOISING_MODES, "method.mode")
    _one_of(spec.method.prior_init, PRIOR_INITS, "method.prior_init")
    if not 0.0 <= spec.method.alpha <= 1.0:
        raise ConfigError(f"method.alpha (α) must be in [0, 1], got {spec.method.alpha}")
    if not 0.0 <= spec.method.drop_rate < 0.5:
        raise ConfigError(
            f"method.drop_rate (ε_max) must be in [0, 0.5), got {spec.method.drop_rate}"
        )
    _positive_int(spec.method.num_gradual, "method.num_gradual")
    if not 0.0 <= spec.method.relabel_ratio <= 1.0:
        raise ConfigError(
            f"method.relabel_ratio (DCF's r) must be in [0, 1], got {spec.method.relabel_ratio}"
        )
    if spec.method.co_lambda < 0:
        raise ConfigError(f"method.co_lambda (DCF's σ²) must be >= 0, got {spec.method.co_lambda}")
    _positive_int(spec.method.dcf_window, "method.dcf_window")
    low, high = spec.method.factor_lower, spec.method.factor_upper
    if not 0.0 <= low <= high or high <= 0.0:
        raise ConfigError(
            "method.factor_lower and method.factor_upper (CrossDenoise's α ≤ β, β > 0) must "
            f"satisfy 0 <= α <= β, got α={low}, β={high}"
        )
    if spec.method.c1 < 0 or spec.method.c2 < 0:
        raise ConfigError("method.c1 and method.c2 (C1, C2) must be >= 0")
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
    if not isinstance(spec.train.shard_tables, bool):
        raise ConfigError(
            f"train.shard_tables must be True or False, got {spec.train.shard_tables!r}"
        )
    _positive_int(spec.model.embed_dim, "model.embed_dim")
    _one_of(spec.model.propagation_dtype, PROPAGATION_DTYPES, "model.propagation_dtype")
    _positive_int(spec.eval.chunk_size, "eval.chunk_size")
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
