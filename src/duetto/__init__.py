"""duetto: actor-critic reinforcement learning on JAX.

import duetto
model = duetto.SAC("Pendulum-v1", seed=0, preset="zoo").learn(20_000, progress=True)
print(model.evaluate(episodes=10)["return_mean"])
"""

__version__ = "0.1.0"

from duetto.compile_cache import enable_persistent_cache  # noqa: E402

enable_persistent_cache()

from duetto.agent import DDPG, DSACT, PPO, SAC, TD3, Agent, load  # noqa: E402
from duetto.errors import DuettoError  # noqa: E402

__all__ = ["DDPG", "DSACT", "PPO", "SAC", "TD3", "Agent", "DuettoError", "load", "__version__"]
