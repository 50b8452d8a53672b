"""What an algorithm needs to know about an environment."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from duetto.envs.spaces import Layout

ACTION_KINDS = ("box", "discrete", "multi_discrete", "binary")


@dataclass(frozen=True)
class EnvSpec:
    """obs_dim: length of the flat observation (envs/spaces.py); action_dim: length of the
    action, which the agent produces in [-1, 1] for a Box (rescaled to the env's bounds at the
    edge), the number of choices of a Discrete action, the number of sub-actions of a
    MultiDiscrete one (`nvec` their choices) or of bits of a MultiBinary one (`binary`);
    action_log_scale: Σ_k log((high_k − low_k)/2) of a Box, the log-Jacobian from [-1, 1] to the
    env's bounds (0 for ±1 bounds), which turns a density of the policy's action into one of the
    env's; obs_layout: the parts of the actor's observation (empty: one flat Box);
    privileged_dim: the width of a privileged observation for an asymmetric critic, appended
    after the actor's (0: none), so that the flat observation is [actor_dim + privileged_dim]."""

    obs_dim: int
    action_dim: int
    discrete: bool = False
    action_log_scale: float = 0.0
    nvec: tuple[int, ...] = ()
    binary: bool = False
    obs_layout: Layout = ()
    privileged_dim: int = 0

    @property
    def actor_dim(self) -> int:
        """The width of the observation the actor reads (all of it without privileged part)."""
        return self.obs_dim - self.privileged_dim

    @property
    def action_kind(self) -> str:
        """One of ACTION_KINDS."""
        if self.discrete:
            return "discrete"
        if self.nvec:
            return "multi_discrete"
        return "binary" if self.binary else "box"

    @property
    def logits_dim(self) -> int:
        """Logits of a categorical-family policy: n choices, Σ nvec, or one per bit."""
        return sum(self.nvec) if self.nvec else self.action_dim


def log_scale(low: np.ndarray, high: np.ndarray) -> float:
    """Σ_k log((high_k − low_k)/2), in float64 (then a Python float, a static constant)."""
    return float(np.sum(np.log((np.asarray(high, np.float64) - np.asarray(low, np.float64)) / 2)))
