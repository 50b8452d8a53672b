"""Deterministic evaluation on a separate vector env: one episode per sub-env."""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np

from duetto.envs.gym import ActionEdge, check_finite


def evaluate_policy(
    policy: Callable[[np.ndarray], np.ndarray],
    vec: gym.vector.VectorEnv,
    seed: int,
) -> dict[str, float | list[float]]:
    """Run one episode in each of vec's sub-envs (sub-env i seeded seed + i) with `policy`
    (obs [n, obs_dim] -> policy actions, see ActionEdge); returns the returns and their stats."""
    n = vec.num_envs
    edge = ActionEdge(vec.single_action_space)
    obs, _ = vec.reset(seed=seed)
    returns = np.zeros(n)
    lengths = np.zeros(n, dtype=np.int64)
    running = np.ones(n, dtype=bool)
    while running.any():
        action = edge(policy(np.asarray(obs, np.float32).reshape(n, -1)), n)
        obs, reward, terminated, truncated, _ = vec.step(action)
        check_finite(int(lengths.max()), observation=obs, reward=reward)
        returns += np.where(running, reward, 0.0)
        lengths += running
        running &= ~(terminated | truncated)
    return {
        "return_mean": float(returns.mean()),
        "return_std": float(returns.std()),
        "length_mean": float(lengths.mean()),
        "returns": returns.tolist(),
    }
