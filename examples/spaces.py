"""Spaces beyond vectors: a Dict observation (an image, a Discrete cue, a Box) and MultiDiscrete
actions, trained with PPO, saved, loaded and asked for actions with dict observations; then
gymnax's FrozenLake, whose Discrete observations are read one-hot, in one compiled program.

.venv/bin/python examples/spaces.py [steps]
"""

import sys

import gymnasium as gym
import numpy as np

import duetto


class Signal(gym.Env):
    """A 36×36 picture lit on its left or right half and a cue of 3 (beside a Box of noise);
    the action (side, cue) pays ½ for each part right, over episodes of 8 steps. A policy that
    does not read the observation returns 3.3 (as a random one); a perfect one 8."""

    observation_space = gym.spaces.Dict(
        {
            "pixels": gym.spaces.Box(0, 255, (36, 36, 1), np.uint8),
            "cue": gym.spaces.Discrete(3),
            "noise": gym.spaces.Box(-1, 1, (2,), np.float32),
        }
    )
    action_space = gym.spaces.MultiDiscrete([2, 3])

    def _observe(self):
        self.side, self.cue = int(self.np_random.integers(2)), int(self.np_random.integers(3))
        pixels = np.zeros((36, 36, 1), np.uint8)
        pixels[:, 18 * self.side : 18 * (self.side + 1)] = 255
        noise = self.np_random.uniform(-1, 1, 2).astype(np.float32)
        return {"pixels": pixels, "cue": self.cue, "noise": noise}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._observe(), {}

    def step(self, action):
        reward = 0.5 * (action[0] == self.side) + 0.5 * (action[1] == self.cue)
        self.t += 1
        return self._observe(), float(reward), False, self.t >= 8, {}


steps = int(sys.argv[1]) if len(sys.argv) > 1 else 1_024
# The image goes through the Nature CNN (scaled to [0, 1]), the cue one-hot, the noise as it is;
# each network has its own encoder. Small images: encoder="minatar" (or "flatten").
model = duetto.PPO(
    Signal(),
    seed=0,
    run_dir=False,
    n_envs=4,
    n_steps=32,
    batch_size=64,
    n_epochs=4,
    learning_rate=3e-3,
    gamma=0.0,
)
model.learn(steps, eval_every=steps, eval_episodes=20)
print(f"Dict observations, MultiDiscrete actions: return {model.last_eval['return_mean']:.1f} of 8")

model = duetto.load(model.save("signal.ckpt"))
obs, _ = Signal().reset(seed=1)
action, _ = model.predict(obs)  # one dict observation -> one action [side, cue]
side = obs["pixels"][0, 30, 0] // 255
print(f"loaded model's action {action.tolist()} for side {side}, cue {obs['cue']}")

lake = duetto.PPO(
    "gymnax:FrozenLake-misc",
    seed=0,
    run_dir=False,
    n_envs=16,
    n_steps=64,
    batch_size=256,
    n_epochs=4,
    learning_rate=3e-3,
    ent_coef=0.01,
)
lake.learn(20 * steps, eval_every=20 * steps, eval_episodes=200)
success = lake.last_eval["return_mean"]
print(f"gymnax FrozenLake (slippery), positions one-hot: success {success:.2f}")
