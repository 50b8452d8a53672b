"""Deterministic evaluation on a separate vector env: one episode per sub-env."""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np

from duetto.envs.gym import check_finite, to_env_action


def evaluate_policy(
    policy: Callable[[np.ndarray], np.ndarray],
    vec: gym.vector.VectorEnv,
    seed: int,
) -> dict[str, float | list[float]]:
    """Run one episode in each of vec's sub-envs (sub-env i seeded seed + i) with `policy`
    (obs [n, obs_dim] -> action [n, act_dim] in [-1, 1]); returns the returns and their stats."""
    n = vec.num_envs
    low = vec.single_action_space.low.astype(np.float64).ravel()
    high = vec.single_action_space.high.astype(np.float64).ravel()
    shape = vec.single_action_space.shape
    obs, _ = vec.reset(seed=seed)
    returns = np.zeros(n)
    lengths = np.zeros(n, dtype=np.int64)
    running = np.ones(n, dtype=bool)
    while running.any():
        action = to_env_action(policy(np.asarray(obs, np.float32).reshape(n, -1)), low, high)
        obs, reward, terminated, truncated, _ = vec.step(action.reshape((n, *shape)))
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
