"""Search spaces over an algorithm's typed config: what a sweep tries.

A space maps hyperparameter names (fields of the algorithm's config dataclass) to a value, a
list of values (every one is tried: a grid), or a distribution (`Uniform`, `LogUniform`,
`RandInt`, sampled by random search or proposed by a model-based searcher). Every value and
both ends of every distribution are checked against the field's type and range before anything
runs. On the command line each hyperparameter flag of `duetto sweep` takes the same forms as
text: `0.99`, `0.98,0.99` (a list), `uniform:0.9:0.99`, `loguniform:1e-4:1e-3`, `randint:1:4`;
a list-valued field (`hidden`) separates its values by '/': `64,64/256,256`.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from duetto.config import _coerce, validate_field
from duetto.errors import DuettoError, did_you_mean


@dataclass(frozen=True)
class Uniform:
    """A number uniform in [low, high]."""

    low: float
    high: float


@dataclass(frozen=True)
class LogUniform:
    """A positive number whose logarithm is uniform in [log low, log high] (learning rates)."""

    low: float
    high: float


@dataclass(frozen=True)
class RandInt:
    """An integer uniform in [low, high], both ends included."""

    low: int
    high: int


Distribution = Uniform | LogUniform | RandInt
KINDS: dict[str, type] = {"uniform": Uniform, "loguniform": LogUniform, "randint": RandInt}


@dataclass(frozen=True)
class Space:
    """A checked search space: `fixed` values every trial takes, `grid` lists whose every
    combination is tried, `dists` distributions (by field name)."""

    algo: str
    fixed: dict[str, Any]
    grid: dict[str, list[Any]]
    dists: dict[str, Distribution]

    def grid_settings(self) -> list[dict[str, Any]]:
        """Every combination of the grid's values (one empty setting without a grid)."""
        names = list(self.grid)
        return [
            dict(zip(names, combo, strict=True)) for combo in itertools.product(*self.grid.values())
        ]

    def random_settings(self, samples: int, seed: int) -> list[dict[str, Any]]:
        """`samples` draws of the distributions (seeded by `seed`, so a resumed or repeated
        sweep draws the same), each crossed with the whole grid."""
        rng = np.random.default_rng(seed)
        settings = []
        for _ in range(samples):
            drawn = {name: _draw(d, rng) for name, d in self.dists.items()}
            settings += [{**drawn, **g} for g in self.grid_settings()]
        return settings

    def to_json(self) -> dict[str, Any]:
        return {
            "fixed": _jsonable(self.fixed),
            "grid": _jsonable(self.grid),
            "dists": {
                k: {"kind": _kind_name(d), **dataclasses.asdict(d)} for k, d in self.dists.items()
            },
        }


def _kind_name(d: Distribution) -> str:
    return next(name for name, cls in KINDS.items() if isinstance(d, cls))


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    return obj


def _draw(d: Distribution, rng: np.random.Generator) -> float | int:
    if isinstance(d, RandInt):
        return int(rng.integers(d.low, d.high + 1))
    if isinstance(d, LogUniform):
        return float(math.exp(rng.uniform(math.log(d.low), math.log(d.high))))
    return float(rng.uniform(d.low, d.high))


def build_space(algo: Any, items: dict[str, Any]) -> Space:
    """A Space for `algo` (a registered algorithm) from {name: value | list | distribution |
    text}, each checked against the config field's type and range."""
    fields = {f.name: f for f in dataclasses.fields(algo.CONFIG)}
    fixed: dict[str, Any] = {}
    grid: dict[str, list[Any]] = {}
    dists: dict[str, Distribution] = {}
    for name, given in items.items():
        if name not in fields:
            raise DuettoError(
                f"{algo.NAME}: unknown hyperparameter '{name}' in the search space."
                f"{did_you_mean(name, fields)} Run 'duetto train {algo.NAME} --help' for the list."
            )
        field = fields[name]
        if isinstance(given, str):
            given = _parse_text(field, given, algo.NAME)
        if isinstance(field.default, tuple) and isinstance(given, list | tuple):
            if all(isinstance(v, int | np.integer) for v in given):
                given = tuple(given)  # one value of a list field (as sweep.json keeps it)
            else:
                given = list(given)
        if isinstance(given, Uniform | LogUniform | RandInt):
            dists[name] = _check_dist(field, given, algo.NAME)
        elif isinstance(given, list) or (
            isinstance(given, tuple) and not isinstance(field.default, tuple)
        ):  # a list of values
            values = [_checked(field, v, algo.NAME) for v in given]
            if not values or len(set(map(repr, values))) != len(values):
                raise DuettoError(
                    f"{algo.NAME}: the values of '{name}' in the search space must be distinct "
                    f"and at least one, got {list(given)!r}."
                )
            if len(values) == 1:
                fixed[name] = values[0]
            else:
                grid[name] = values
        else:
            fixed[name] = _checked(field, given, algo.NAME)
    return Space(algo.NAME, fixed, grid, dists)


def _checked(field: dataclasses.Field, value: Any, algo: str) -> Any:
    value = _coerce(field, value, algo)
    validate_field(field, value, algo)
    return value


def _parse_text(field: dataclasses.Field, text: str, algo: str) -> Any:
    """'0.99' -> '0.99'; '0.98,0.99' -> a list; 'loguniform:1e-4:1e-3' -> LogUniform; list
    fields: '64,64' -> one value, '64,64/256,256' -> a list."""
    kind, sep, rest = text.partition(":")
    if sep and kind.strip().lower() in KINDS:
        lo, sep2, hi = rest.partition(":")
        cls = KINDS[kind.strip().lower()]
        try:
            cast = int if cls is RandInt else float
            low, high = cast(float(lo)), cast(float(hi))
            if not sep2 or (cls is RandInt and (float(lo) != low or float(hi) != high)):
                raise ValueError
        except ValueError:
            whole = "whole numbers " if cls is RandInt else ""
            raise DuettoError(
                f"{algo}: '{field.name}={text}' must look like {kind}:LOW:HIGH with {whole}"
                f"LOW <= HIGH (e.g. {kind}:1:4)."
            ) from None
        return cls(low, high)
    if isinstance(field.default, tuple):
        parts = [p for p in text.split("/") if p.strip()]
        return parts if len(parts) > 1 else text
    parts = [p for p in text.split(",") if p.strip()]
    return parts if len(parts) > 1 else text


def _check_dist(field: dataclasses.Field, d: Distribution, algo: str) -> Distribution:
    kind = type(field.default)
    name = field.name
    if kind not in (int, float) or isinstance(field.default, bool):
        raise DuettoError(
            f"{algo}: '{name}' is not a number; search it with a list of values instead of "
            f"{_kind_name(d)}."
        )
    if isinstance(d, RandInt) and kind is not int:
        raise DuettoError(f"{algo}: '{name}' is a real number; use uniform or loguniform.")
    if not isinstance(d, RandInt) and kind is int:
        raise DuettoError(f"{algo}: '{name}' is an integer; use randint:LOW:HIGH.")
    if not d.low < d.high:
        raise DuettoError(
            f"{algo}: the range of '{name}' must have LOW < HIGH, got {d.low:g} and {d.high:g}."
        )
    if isinstance(d, LogUniform) and d.low <= 0:
        raise DuettoError(f"{algo}: loguniform '{name}' needs LOW > 0, got {d.low:g}.")
    for end in (d.low, d.high):
        validate_field(field, end, algo)
    return d


def setting_tag(setting: dict[str, Any]) -> str:
    """'learning_rate=0.001-gamma=0.99-' for a setting ('' for none): the prefix of its runs'
    directory names, as the fused loop names the runs of a sweep."""
    return "".join(f"{k}={_short(v)}-" for k, v in setting.items())


def _short(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list | tuple):
        return "x".join(map(str, v))
    return str(v)
