"""A privileged observation for an asymmetric critic, from a Gymnasium env's info.

`PrivilegedObservation(env, key, dim)` appends `info[key]` (a vector of `dim` values the env
reports at reset and at every step, such as its true state) to the env's flat Box observation.
duetto reads the appended part as privileged (EnvSpec.privileged_dim): the actor never sees it,
and the critics read it when the config's `critic_obs` is "privileged" or "both"
(nets/encoder.py). JAX-native envs give theirs through `privileged_observation` instead
(envs/jaxenv.py).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from duetto.errors import DuettoError


class PrivilegedBox(gym.spaces.Box):
    """A flat Box whose last `privileged_dim` values are privileged (the observation space of
    PrivilegedObservation): vector envs take their spaces from it, so duetto reads the width
    there without calling into the sub-envs."""

    def __init__(self, low: np.ndarray, high: np.ndarray, privileged_dim: int):
        super().__init__(low, high, dtype=np.float32)
        self.privileged_dim = privileged_dim


class PrivilegedObservation(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """The env's observation followed by `info[key]` [dim], at reset and at every step."""

    def __init__(self, env: gym.Env, key: str = "critic_obs", dim: int | None = None):
        space = env.observation_space
        if not (isinstance(space, gym.spaces.Box) and len(space.shape) == 1):
            raise DuettoError(
                f"PrivilegedObservation appends to a flat Box observation; this env's is "
                f"{space}. Flatten it first (gymnasium.wrappers.FlattenObservation)."
            )
        if not isinstance(dim, int | np.integer) or isinstance(dim, bool) or dim < 1:
            raise DuettoError(
                f"PrivilegedObservation needs dim, the length of info['{key}'] (a positive "
                f"integer), got {dim!r}: e.g. PrivilegedObservation(env, key='{key}', dim=28)."
            )
        gym.utils.RecordConstructorArgs.__init__(self, key=key, dim=int(dim))
        gym.Wrapper.__init__(self, env)
        self.key, self.privileged_dim = key, int(dim)
        inf = np.full(self.privileged_dim, np.inf, np.float32)
        self.observation_space = PrivilegedBox(
            np.concatenate([space.low.astype(np.float32), -inf]),
            np.concatenate([space.high.astype(np.float32), inf]),
            self.privileged_dim,
        )

    def _append(self, obs: Any, info: dict[str, Any], when: str) -> np.ndarray:
        if self.key not in info:
            raise DuettoError(
                f"the env's info has no '{self.key}' at {when}; PrivilegedObservation needs it "
                f"at reset and at every step (keys there: {sorted(info) or 'none'})."
            )
        privileged = np.asarray(info[self.key], np.float32).ravel()
        if privileged.size != self.privileged_dim:
            raise DuettoError(
                f"info['{self.key}'] has {privileged.size} values at {when}; "
                f"PrivilegedObservation was told dim={self.privileged_dim}."
            )
        return np.concatenate([np.asarray(obs, np.float32).ravel(), privileged])

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        return self._append(obs, info, "reset"), info

    def step(self, action: Any) -> tuple[np.ndarray, Any, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self._append(obs, info, "a step"), reward, terminated, truncated, info
