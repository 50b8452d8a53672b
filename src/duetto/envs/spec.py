"""What an algorithm needs to know about an environment."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class EnvSpec:
    """obs_dim: length of the flat observation; action_dim: length of the action, which the
    agent produces in [-1, 1] (rescaled to the env's bounds at the edge); discrete: the action
    space is Discrete (action_dim then counts the choices); action_log_scale:
    Σ_k log((high_k − low_k)/2) of a Box, the log-Jacobian from [-1, 1] to the env's bounds (0
    for ±1 bounds), which turns a density of the policy's action into one of the env's."""

    obs_dim: int
    action_dim: int
    discrete: bool = False
    action_log_scale: float = 0.0


def log_scale(low: np.ndarray, high: np.ndarray) -> float:
    """Σ_k log((high_k − low_k)/2), in float64 (then a Python float, a static constant)."""
    return float(np.sum(np.log((np.asarray(high, np.float64) - np.asarray(low, np.float64)) / 2)))
