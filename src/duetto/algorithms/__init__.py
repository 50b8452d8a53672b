"""The algorithms, each a module of pure functions: init, act, update (duetto/contract.py).

`register` checks a module against the contract and makes its facade class (`duetto.SAC`,
...); `AGENTS` and `ALGORITHMS` are what registering built, the only registry there is. A new
algorithm is a module here and one line in MODULES.
"""

from __future__ import annotations

from types import ModuleType

from duetto.agent import Agent
from duetto.algorithms import ddpg, dsac_t, mdpo, mdpo_off, ppo, sac, td3
from duetto.contract import Algorithm, check_module
from duetto.errors import DuettoError, did_you_mean

MODULES: tuple[ModuleType, ...] = (sac, td3, ddpg, dsac_t, ppo, mdpo, mdpo_off)

ALGORITHMS: dict[str, Algorithm] = {}
AGENTS: dict[str, type[Agent]] = {}


def class_name(module: ModuleType) -> str:
    """The facade class's name: the module's CLASS_NAME, or its NAME upper-cased without
    dashes ('dsac-t' -> 'DSACT')."""
    return getattr(module, "CLASS_NAME", None) or module.NAME.upper().replace("-", "")


def register(module: ModuleType) -> type[Agent]:
    """Check `module` against the contract (one DuettoError listing every problem) and make
    its facade class, a subclass of Agent bound to it."""
    check_module(module)
    algo: Algorithm = module  # type: ignore[assignment]
    if algo.NAME in ALGORITHMS and ALGORITHMS[algo.NAME] is not module:
        raise DuettoError(f"two algorithms are named '{algo.NAME}'.")
    cls = type(
        class_name(module),
        (Agent,),
        {"algorithm": module, "__doc__": module.__doc__, "__module__": "duetto"},
    )
    ALGORITHMS[algo.NAME] = algo
    AGENTS[algo.NAME] = cls
    return cls


for _module in MODULES:
    register(_module)


def get_algorithm(name: str) -> Algorithm:
    key = name.lower().replace("_", "-")
    if key not in ALGORITHMS:
        raise DuettoError(
            f"unknown algorithm '{name}'.{did_you_mean(key, ALGORITHMS)} "
            f"Available: {', '.join(sorted(ALGORITHMS))}."
        )
    return ALGORITHMS[key]


def PRESET_BUDGET(algo: Algorithm, preset: str | None) -> int:  # noqa: N802
    """The env steps a preset is meant to train for (20,000 without a preset)."""
    return algo.PRESET_STEPS.get(preset, 20_000) if preset else 20_000
