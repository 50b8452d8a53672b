"""DDPG: Deep Deterministic Policy Gradient (Lillicrap et al., 2016), in the minimal form of
"OurDDPG" in the TD3 paper and CleanRL's ddpg_continuous_action.py.

One critic regressing on y = r + γ(1 − d)·Q̄(s', π̄(s')) with no target smoothing; the
deterministic tanh actor maximises Q(s, π(s)); Gaussian exploration N(0, 0.1²). It is TD3's
module with other defaults (n_critics 1, target_noise 0, policy_delay as CleanRL's 2): the
functions are TD3's, not a copy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from duetto.algorithms import td3
from duetto.algorithms.td3 import TD3Config, act, init, update  # noqa: F401 - the interface

NAME = "ddpg"
ACTION_SPACES = td3.ACTION_SPACES
LOOP = td3.LOOP
METRICS = td3.METRICS


def _default(name: str, value: Any, doc: str) -> Any:
    """TD3's field `name` with another default and its source."""
    base = TD3Config.__dataclass_fields__[name]
    return field(default=value, metadata={**base.metadata, "doc": doc})


@dataclass(frozen=True)
class DDPGConfig(TD3Config):
    """DDPG hyperparameters: TD3's fields; defaults from CleanRL's ddpg_continuous_action.py
    [CleanRL] unless noted."""

    n_critics: int = _default("n_critics", 1, "Q-functions: one [DDPG]")
    target_noise: float = _default(
        "target_noise", 0.0, "σ̃ of target smoothing noise: none in DDPG [DDPG, CleanRL]"
    )
    policy_delay: int = _default(
        "policy_delay", 2, "critic steps per actor and target step [CleanRL policy_frequency]"
    )


CONFIG = DDPGConfig

PRESETS: dict[str, dict[str, Any]] = {
    # RL-Zoo hyperparams/ddpg.yml, Pendulum-v1: 20k steps.
    "zoo": dict(td3.PRESETS["zoo"]),
    "fast": dict(td3.PRESETS["fast"]),
    "mujoco": dict(td3.PRESETS["mujoco"]),  # RL-Zoo ddpg.yml MuJoCo: as TD3's
}
PRESET_STEPS = dict(td3.PRESET_STEPS)
