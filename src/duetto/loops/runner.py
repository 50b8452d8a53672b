"""The loop protocol: what the facade (duetto/agent.py) drives, whatever the loop.

A runner owns a run's data collection and its state (one run, or several vmapped together):
the host loops over Gymnasium vector envs (loops/host.py) and the fused loop over a JAX-native
env (loops/fused.py). The facade adds, once for all of them: logs, evaluations, checkpoints,
progress, callbacks and the run directory. A runner kind is registered in `RUNNERS` under the
name its checkpoints carry ("loop" in their meta), which is how `duetto.load` finds it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np

from duetto.contract import Algorithm, Config
from duetto.envs.spaces import ObsEdge


class Runner(Protocol):
    """One kind of loop, as the facade sees it."""

    kind: ClassVar[str]  # the name in RUNNERS and in checkpoints ("loop")
    runs_have_dirs: ClassVar[bool]  # each run writes a sub-directory of the run directory
    default_log_every: ClassVar[int]  # env steps between training-log rows by default
    runs: list[dict[str, Any]]  # [{"seed": s, "hparams": {swept name: value}}], in state order
    n_envs: int
    env_id: str

    @property
    def env_steps(self) -> int:
        """Env steps per run (summed over its sub-envs); every run has taken the same."""
        ...

    @property
    def state(self) -> Any:
        """The whole loop state (what a checkpoint holds), on the host or the devices."""
        ...

    @property
    def algo_state(self) -> Any:
        """The algorithm's state: one run's, or the runs' stacked on a leading axis."""
        ...

    @property
    def obs_edge(self) -> ObsEdge:
        """What turns the env's observations into the flat vectors [n, obs_dim] that `act`
        takes (envs/spaces.py)."""
        ...

    def advance(self, steps: int, chunk: int, hook: Callable[[int], bool]) -> None:
        """Train every run for at least `steps` more env steps, calling `hook(env_steps)` at
        each point where the facade may log, evaluate, checkpoint or stop (after every vector
        step, or every compiled chunk of about `chunk` env steps); it returns False to stop."""
        ...

    def prepare_evaluation(self, episodes: int) -> None:
        """Evaluations of `episodes` episodes are coming (a runner may compile for them now)."""
        ...

    def planned(self, steps: int) -> int:
        """The env steps `advance(steps, ...)` takes (whole iterations)."""
        ...

    def read_train(self) -> list[dict[str, float]]:
        """Per run, the mean of each update metric and the training episodes that ended since
        the last read (episode_return, episode_length)."""
        ...

    def evaluate(self, episodes: int, seed: int | None) -> tuple[np.ndarray, np.ndarray]:
        """Returns and lengths [n_runs, episodes] of deterministic episodes on fresh envs;
        seed None: the run's own evaluation seed at this step (a resumed run evaluates as the
        original would)."""
        ...

    def act(self, run: int, obs: np.ndarray, key: Any) -> np.ndarray:
        """Run `run`'s policy actions for flat obs [n, obs_dim] in the env's terms; key None:
        deterministic."""
        ...

    def identity(self) -> dict[str, Any]:
        """What the run is, beyond algorithm, env and config (config.json and checkpoints)."""
        ...

    def progress(self) -> dict[str, Any]:
        """Host-side counters a checkpoint keeps besides the state."""
        ...

    @property
    def time_limit(self) -> int | None:
        """The env's episode length limit (None: it has none): evaluations report the share
        of episodes that lasted it."""
        ...

    def saved_envs(self) -> list:
        """The envs a checkpoint keeps (Gymnasium sub-envs; none for a JAX env)."""
        ...

    def close(self) -> None: ...


class RunnerKind(Protocol):
    """How a runner is made: for a new run, or from a checkpoint."""

    def create(
        self,
        algo: Algorithm,
        env: Any,
        seeds: Sequence[int],
        config: Config,
        n_envs: int,
        sweep: dict[str, list[float]],
        vectorization: str,
    ) -> Runner: ...

    def restore(
        self,
        algo: Algorithm,
        config: Config,
        meta: dict[str, Any],
        ckpt: Path,
        arrays: dict[str, np.ndarray] | list[np.ndarray],
        envs: list,
        env: Any,
    ) -> Runner: ...
