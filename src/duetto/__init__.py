"""duetto: actor-critic reinforcement learning on JAX.

import duetto
model = duetto.SAC("Pendulum-v1", seed=0, preset="zoo").learn(20_000, progress=True)
print(model.evaluate(episodes=10)["return_mean"])

Importing duetto changes nothing in the process; `duetto.configure()` (duetto/runtime.py) sets
up CPU devices and the compilation cache when asked (the CLI asks).
"""

__version__ = "0.1.0"

from duetto.agent import Agent, load  # noqa: E402
from duetto.algorithms import AGENTS  # noqa: E402
from duetto.analysis.facade import plot, report  # noqa: E402
from duetto.distributed.sweep import resume_sweep, sweep  # noqa: E402  (imports Ray when run)
from duetto.envs.privileged import PrivilegedObservation  # noqa: E402
from duetto.errors import DuettoError  # noqa: E402
from duetto.runtime import configure  # noqa: E402

# One facade class per registered algorithm (duetto.SAC, duetto.PPO, ...): made by registering.
globals().update({cls.__name__: cls for cls in AGENTS.values()})

__all__ = [
    *(cls.__name__ for cls in AGENTS.values()),
    "Agent",
    "DuettoError",
    "PrivilegedObservation",
    "configure",
    "load",
    "plot",
    "report",
    "resume_sweep",
    "sweep",
    "__version__",
]
