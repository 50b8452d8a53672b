"""DDPG: Deep Deterministic Policy Gradient (Lillicrap et al., 2016), in the minimal form of
"OurDDPG" in the TD3 paper and CleanRL's ddpg_continuous_action.py.

One critic regressing on y = r + γ(1 − d)·Q̄(s', π̄(s')) with no target smoothing; the
deterministic tanh actor maximises Q(s, π(s)); Gaussian exploration N(0, 0.1²). It is TD3's
module with other defaults (n_critics 1, target_noise 0, policy_delay as CleanRL's 2): the
functions are TD3's, not a copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from duetto.algorithms import td3
from duetto.algorithms.td3 import TD3Config, act, init, update  # noqa: F401 - the interface
from duetto.contract import override

NAME = "ddpg"
ACTION_SPACES = td3.ACTION_SPACES
LOOP = td3.LOOP
METRICS = td3.METRICS


@dataclass(frozen=True)
class DDPGConfig(TD3Config):
    """DDPG hyperparameters: TD3's fields; defaults from CleanRL's ddpg_continuous_action.py
    [CleanRL] unless noted."""

    n_critics: int = override(1, "DDPG", "Q-functions: one")
    target_noise: float = override(
        0.0, "DDPG, CleanRL", "σ̃ of target smoothing noise: none in DDPG"
    )
    policy_delay: int = override(
        2, "CleanRL policy_frequency", "critic steps per actor and target step"
    )


CONFIG = DDPGConfig

# RL-Zoo's DDPG settings are SB3's DDPG, which steps the actor and the targets after every
# critic step (policy_delay 1) without target smoothing; TD3's presets otherwise.
PRESETS: dict[str, dict[str, Any]] = {
    "zoo": {**td3.PRESETS["zoo"], "policy_delay": 1},  # RL-Zoo ddpg.yml, Pendulum-v1: 20k steps
    "fast": dict(td3.PRESETS["fast"]),
    "mujoco": {**td3.PRESETS["mujoco"], "policy_delay": 1},  # RL-Zoo ddpg.yml MuJoCo
}
PRESET_STEPS = {name: td3.PRESET_STEPS[name] for name in PRESETS}
