"""Deterministic evaluation on a separate vector env: one episode per sub-env."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from duetto.envs.gym import ActionEdge, check_finite
from duetto.envs.spaces import ObsEdge

# Steps after which an evaluation episode is cut when the env has no time limit of its own
# (an env that never ends would otherwise hang the evaluation).
UNLIMITED_EPISODE_CAP = 10_000


def evaluate_policy(
    policy: Callable[[np.ndarray], np.ndarray],
    vec: gym.vector.VectorEnv,
    seed: int,
    max_steps: int | None = None,
) -> dict[str, Any]:
    """Run one episode in each of vec's sub-envs (sub-env i seeded seed + i) with `policy`
    (flat obs [n, obs_dim] as ObsEdge makes them -> policy actions, see ActionEdge), each to its
    end or for at most `max_steps` steps (None: UNLIMITED_EPISODE_CAP, with a warning when it
    cuts an episode); returns the returns and lengths and their stats."""
    n = vec.num_envs
    cap = max_steps or UNLIMITED_EPISODE_CAP
    edge = ActionEdge(vec.single_action_space)
    obs_edge = ObsEdge(vec.single_observation_space)
    obs, _ = vec.reset(seed=seed)
    returns = np.zeros(n)
    lengths = np.zeros(n, dtype=np.int64)
    running = np.ones(n, dtype=bool)
    while running.any() and lengths.max() < cap:
        action = edge(policy(obs_edge(obs, n)), n)
        obs, reward, terminated, truncated, _ = vec.step(action)
        check_finite(int(lengths.max()), observation=obs_edge(obs, n), reward=reward)
        returns += np.where(running, reward, 0.0)
        lengths += running
        running &= ~(terminated | truncated)
    if running.any() and max_steps is None:
        warnings.warn(
            f"evaluation cut {int(running.sum())} of {n} episodes at {cap} steps: the env has no "
            "time limit. Wrap it in gymnasium.wrappers.TimeLimit to choose the episode length.",
            stacklevel=2,
        )
    return {
        "return_mean": float(returns.mean()),
        "return_std": float(returns.std()),
        "length_mean": float(lengths.mean()),
        "returns": returns.tolist(),
        "lengths": lengths.tolist(),
    }
