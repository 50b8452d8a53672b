"""The algorithms, each a module of pure functions: init, act, update (see DESIGN.md)."""

from __future__ import annotations

from types import ModuleType

from duetto.algorithms import ddpg, dsac_t, ppo, sac, td3
from duetto.errors import DuettoError, did_you_mean

ALGORITHMS: dict[str, ModuleType] = {m.NAME: m for m in (sac, td3, ddpg, dsac_t, ppo)}


def get_algorithm(name: str) -> ModuleType:
    key = name.lower().replace("_", "-")
    if key not in ALGORITHMS:
        raise DuettoError(
            f"unknown algorithm '{name}'.{did_you_mean(key, ALGORITHMS)} "
            f"Available: {', '.join(sorted(ALGORITHMS))}."
        )
    return ALGORITHMS[key]


def PRESET_BUDGET(algo: ModuleType, preset: str | None) -> int:  # noqa: N802
    """The env steps a preset is meant to train for (20,000 without a preset)."""
    return algo.PRESET_STEPS.get(preset, 20_000) if preset else 20_000
