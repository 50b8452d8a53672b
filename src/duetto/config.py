"""Hyperparameter dataclasses: defaults with their sources, ranges, and validation.

An algorithm's config is a frozen dataclass whose fields are declared with `hp(...)`: the default,
a one-line meaning (with units and the source of the default), and the valid range. The CLI
derives its flags from these fields, and `build_config` checks user input against them.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from duetto.errors import DuettoError, did_you_mean


def hp(
    default: Any,
    doc: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    choices: tuple[Any, ...] | None = None,
    sweep: bool = False,
    before: Any = None,
) -> Any:
    """A hyperparameter field: `low`/`high` bound it (inclusive unless `low_open`). `sweep`
    marks a number the algorithm reads from its state's `hparams` (a traced value), so that the
    fused loop can vmap over several values of it in one program. `before`: the value runs
    made before this hyperparameter existed ran with, when it is not the default (their
    config.json lacks it; analysis/curves.py reads them as having it)."""
    meta = {
        "before": before,
        "doc": doc,
        "low": low,
        "high": high,
        "low_open": low_open,
        "choices": choices,
        "sweep": sweep,
    }
    return dataclasses.field(default=default, metadata=meta)


def weight_init_hp() -> Any:
    """The `weight_init` hyperparameter of the off-policy algorithms (SAC, TD3, DDPG, DSAC-T,
    MDPO): PyTorch's nn.Linear initialisation by default, as SB3, CleanRL and the reference codes
    use. With Flax's LeCun normal, 36 % of SAC's initial mean actions on HalfCheetah observations
    are saturated (|tanh μ| > 0.9), against none with PyTorch's (tests/test_heads.py)."""
    return hp(
        "torch",
        "initial weights of actor and critics: torch (PyTorch's nn.Linear default, weights and "
        "biases uniform in ±1/√fan_in, as SB3, CleanRL and the reference codes initialise) or "
        "lecun (Flax's LeCun normal, zero biases)",
        choices=("torch", "lecun"),
        before="lecun",  # duetto's default until issue 14
    )


def encoder_hp() -> Any:
    """The `encoder` hyperparameter: how a network reads image observations (nets/encoder.py).
    Observations other than images are read as SB3 reads them whatever it is."""
    return hp(
        "nature",
        "CNN of image observations: nature (Nature-CNN, Mnih et al. 2015, as SB3's NatureCNN; "
        "images of at least 36x36), minatar (MinAtar's one 3x3 convolution, Young & Tian 2019, "
        "for small images; it also reads 3-D Box observations such as gymnax's MinAtar grids as "
        "images), or flatten (pixels scaled to [0, 1] into the MLP) [SB3: NatureCNN]",
        choices=("nature", "minatar", "flatten"),
    )


def cnn_features_hp() -> Any:
    """The `cnn_features` hyperparameter: the width of the CNN's last (dense) layer."""
    return hp(
        0,
        "width of the CNN's dense output layer; 0 = the CNN's own: 512 for nature [Mnih et al. "
        "2015; SB3 NatureCNN], 256 for nature on an image in a Dict [SB3 CombinedExtractor], "
        "128 for minatar [Young & Tian 2019]",
        low=0,
    )


def sweepable(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls) if f.metadata.get("sweep")]


def hparams_of(config: Any) -> dict[str, Any]:
    """The sweepable hyperparameters as float32 scalars (they live in the algorithm's state)."""
    import jax.numpy as jnp

    return {
        name: jnp.asarray(getattr(config, name), jnp.float32) for name in sweepable(type(config))
    }


def check_sweep(cls: type, algo: str, sweep: dict[str, Any]) -> dict[str, list[float]]:
    """{name: values} checked: known, sweepable, each value valid; returns floats."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    out: dict[str, list[float]] = {}
    can = sweepable(cls)
    for name, values in sweep.items():
        if name not in fields:
            raise DuettoError(
                f"{algo}: unknown hyperparameter '{name}' in the sweep.{did_you_mean(name, fields)}"
            )
        if name not in can:
            raise DuettoError(
                f"{algo}: '{name}' cannot be swept in one program (it shapes or switches the "
                f"program); sweepable: {', '.join(can)}. Run one job per value instead."
            )
        if isinstance(values, str | int | float):
            values = [values]
        values = [_coerce(fields[name], v, algo) for v in values]
        if not values or len(set(values)) != len(values):
            raise DuettoError(f"{algo}: sweep of '{name}' needs distinct values, got {values}.")
        for v in values:
            validate_field(fields[name], v, algo)
        out[name] = [float(v) for v in values]
    return out


def describe_range(field: dataclasses.Field) -> str:
    m = field.metadata
    if m.get("choices"):
        return "one of " + ", ".join(repr(c) for c in m["choices"])
    lo, hi = m.get("low"), m.get("high")
    if lo is None and hi is None:
        return ""
    left = "(" if m.get("low_open") else "["
    lo_s = "-inf" if lo is None else f"{lo:g}"
    hi_s = "inf" if hi is None else f"{hi:g}"
    return f"in {left}{lo_s}, {hi_s}]"


def _coerce(field: dataclasses.Field, value: Any, algo: str) -> Any:
    """Convert `value` to the field's type (CLI strings included), or raise a clear error."""
    kind = type(field.default)
    name = field.name
    original = value
    try:
        if kind is bool:
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError
            return bool(value)
        if kind is int:
            if isinstance(value, str):
                value = float(value)
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if kind is float:
            return float(value)
        if kind is tuple:
            if isinstance(value, str):
                value = [v for v in value.replace(",", " ").split() if v]
            return tuple(int(v) for v in value)
        if kind is str:
            return str(value)
    except (TypeError, ValueError):
        pass
    else:
        return value
    expected = {
        int: "an integer",
        float: "a number",
        bool: "true or false",
        tuple: "a list of integers such as 256,256",
        str: "a string",
    }.get(kind, str(kind))
    raise DuettoError(f"{algo}: hyperparameter '{name}' must be {expected}, got {original!r}.")


def validate_field(field: dataclasses.Field, value: Any, algo: str) -> None:
    m = field.metadata
    name = field.name
    if m.get("choices") and value not in m["choices"]:
        raise DuettoError(
            f"{algo}: hyperparameter '{name}' is {value!r}; it must be {describe_range(field)}."
        )
    values = value if isinstance(value, tuple) else (value,)
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | float):
            continue
        lo, hi = m.get("low"), m.get("high")
        bad = math.isnan(v)
        bad |= lo is not None and (v <= lo if m.get("low_open") else v < lo)
        bad |= hi is not None and v > hi
        if bad:
            raise DuettoError(
                f"{algo}: hyperparameter '{name}' is {value!r}; it must be {describe_range(field)}."
            )


def build_config(cls: type, algo: str, preset: dict[str, Any], overrides: dict[str, Any]) -> Any:
    """The config `cls(**preset, **overrides)`, with unknown keys and bad values rejected."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for source in (preset, overrides):
        for key, value in source.items():
            if key not in fields:
                from duetto.sb3 import sb3_name

                if (answer := sb3_name(key)) is not None:
                    raise DuettoError(f"{algo}: {answer}")
                raise DuettoError(
                    f"{algo}: unknown hyperparameter '{key}'.{did_you_mean(key, fields)} "
                    f"Run 'duetto train {algo} --help' for the list."
                )
            values[key] = _coerce(fields[key], value, algo)
    config = cls(**values)
    for f in fields.values():
        validate_field(f, getattr(config, f.name), algo)
    return config


def preset_config(algo: Any, preset: str | None, overrides: dict[str, Any]) -> Any:
    """An algorithm's config: its preset (by name; None: the defaults), then `overrides`."""
    values = {}
    if preset is not None:
        if preset not in algo.PRESETS:
            raise DuettoError(
                f"{algo.NAME}: unknown preset '{preset}'.{did_you_mean(preset, algo.PRESETS)}"
                f" Available: {', '.join(algo.PRESETS)}."
            )
        values = algo.PRESETS[preset]
    return build_config(algo.CONFIG, algo.NAME, values, overrides)


def config_to_dict(config: Any) -> dict[str, Any]:
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
