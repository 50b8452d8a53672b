"""What an algorithm needs to know about an environment."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EnvSpec:
    """obs_dim: length of the flat observation; action_dim: length of the action, which the agent
    produces in [-1, 1] (rescaled to the env's bounds at the edge); discrete: the action space is
    Discrete (action_dim then counts the choices)."""

    obs_dim: int
    action_dim: int
    discrete: bool = False
