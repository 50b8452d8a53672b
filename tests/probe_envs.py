"""Small environments that each isolate one behaviour of the loops."""

import gymnasium as gym
import numpy as np


class CountingEnv(gym.Env):
    """obs = [t, episode]: t counts steps within the episode. The episode terminates at
    t == terminate_at (if given); wrap it in TimeLimit to truncate instead."""

    def __init__(self, terminate_at: int | None = None):
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
        self.action_space = gym.spaces.Box(-2.0, 2.0, (1,), np.float32)
        self.terminate_at = terminate_at
        self.t = 0
        self.episode = -1

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        self.episode += 1
        return self._obs(), {}

    def step(self, action):
        assert self.action_space.contains(np.asarray(action, np.float32)), action
        self.t += 1
        terminated = self.terminate_at is not None and self.t >= self.terminate_at
        return self._obs(), float(action[0]), terminated, False, {}

    def _obs(self):
        return np.array([self.t, self.episode], np.float32)


class NaNEnv(CountingEnv):
    """Like CountingEnv, but its observation turns NaN at step 5."""

    def _obs(self):
        obs = super()._obs()
        return obs * np.nan if self.t >= 5 else obs
