"""duetto: actor-critic reinforcement learning on JAX.

import duetto
model = duetto.SAC("Pendulum-v1", seed=0, preset="zoo").learn(20_000, progress=True)
print(model.evaluate(episodes=10)["return_mean"])
"""

__version__ = "0.1.0"

import os  # noqa: E402

# A `duetto train --workers` child is pinned to its share of the cores here, before anything
# starts JAX: threads inherit the mask of the thread that creates them, so XLA's whole thread
# pool stays on that share (duetto.cli._train_in_workers sets the variable).
_cores = os.environ.pop("DUETTO_PIN_CORES", "")
if _cores and hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {int(c) for c in _cores.split(",")})

from duetto.compile_cache import enable_persistent_cache  # noqa: E402
from duetto.devices import use_cpu_cores  # noqa: E402

use_cpu_cores()  # after the pinning above: one CPU device per core this process may use
enable_persistent_cache()

from duetto.agent import DDPG, DSACT, PPO, SAC, TD3, Agent, load  # noqa: E402
from duetto.analysis.facade import plot, report  # noqa: E402
from duetto.errors import DuettoError  # noqa: E402

__all__ = [
    "DDPG",
    "DSACT",
    "PPO",
    "SAC",
    "TD3",
    "Agent",
    "DuettoError",
    "load",
    "plot",
    "report",
    "__version__",
]
