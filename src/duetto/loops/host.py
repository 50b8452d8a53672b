"""What the two host loops share: Gymnasium vector envs in Python, everything else compiled.

A host loop holds its run state packed (`data/packing.py`) and makes one compiled call per
vector-env step. It moves observations in and actions out; which program runs at a step
(`collect` or `train`) is decided by the concrete loop from the env-step count alone, so a
resumed run takes the same path as the original.

Programs take `(carry, reward, next_obs, terminated, done, obs)` and return `(carry, action)`:
reward, terminated, done [n_envs]; next_obs the observation each sub-env reached (the true
final one at an episode end); obs the observation the next action is for (after autoreset).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np

from duetto.data.packing import Packing
from duetto.envs.gym import ActionEdge, check_finite, final_observations
from duetto.loops.compiled import ONCE_OPTIONS, Program


class Programs(NamedTuple):
    """start(state, obs) chooses the first action; collect and train take a step's results
    (see the module docstring). Each is a function over the structured loop state."""

    start: Callable
    collect: Callable
    train: Callable


def compile_packed(
    programs: Programs,
    packing: Packing,
    big: str | None,
    options: dict[str, Any],
    identity: str,
) -> Programs:
    """Each program as one jitted call over the packed carry `(big leaf, packed rest)`, donated
    so that large buffers (the replay) are updated in place; it returns the new carry and the
    action to take. `big` names a state field kept out of the packing (or None); `identity`
    names what built `programs` (for the exported-program cache, loops/compiled.py)."""
    layout = f"{packing.treedef}|{packing.shapes}|{packing.groups}|{packing.whole}|{big}"

    def packed(program: Callable, opts: dict[str, Any], name: str) -> Program:
        def run(carry: tuple, *args: Any) -> tuple[tuple, jnp.ndarray]:
            held, rest = carry
            ls = packing.unpack(rest)
            if big is not None:
                ls = ls.replace(**{big: held})
            ls = program(ls, *args)
            held = getattr(ls, big) if big is not None else None
            rest = packing.pack(ls.replace(**{big: None}) if big is not None else ls)
            return (held, rest), ls.last_action

        return Program(run, opts, donate=(0,), identity=f"{name}|{identity}|{layout}")

    start, collect, train = programs
    # start runs once per reset: it gets no LLVM optimisation (see loops/compiled.py).
    return Programs(
        packed(start, ONCE_OPTIONS, "start"),
        packed(collect, options, "collect"),
        packed(train, options, "train"),
    )


class EpisodeTracker:
    """Returns and lengths of the episodes that end, per sub-env, on the host."""

    def __init__(self, n_envs: int):
        self.returns = np.zeros(n_envs)
        self.lengths = np.zeros(n_envs, dtype=np.int64)
        self.finished: list[tuple[float, int]] = []

    def record(self, reward: np.ndarray, done: np.ndarray) -> None:
        self.returns += reward
        self.lengths += 1
        for i in np.flatnonzero(done):
            self.finished.append((float(self.returns[i]), int(self.lengths[i])))
            self.returns[i] = 0.0
            self.lengths[i] = 0

    def drain(self) -> list[tuple[float, int]]:
        out, self.finished = self.finished, []
        return out

    def state(self) -> dict:
        return {"returns": self.returns.tolist(), "lengths": self.lengths.tolist()}

    def restore(self, state: dict) -> None:
        self.returns = np.asarray(state["returns"], dtype=np.float64)
        self.lengths = np.asarray(state["lengths"], dtype=np.int64)


class HostLoop:
    """Drives a vector env with compiled programs. `run(n, hook)` takes at least n env steps
    and calls `hook(env_steps)` after every vector step; the hook returns False to stop early.

    Subclasses give `programs` (over the structured state) with their `identity` (everything
    the programs close over, as a string), `big` (a state field kept out of the packing, or
    None) and `use_train(env_steps)`.
    """

    big: str | None = None
    compile_options: dict[str, Any] = {}  # XLA options of the programs (see loops/compiled.py)

    def __init__(self, programs: Programs, identity: str, vec: gym.vector.VectorEnv, state: Any):
        self.vec = vec
        self.n_envs = vec.num_envs
        self.edge = ActionEdge(vec.single_action_space)
        self.packing = Packing(self._without_big(state))
        self.programs = compile_packed(
            programs, self.packing, self.big, self.compile_options, f"host|{identity}"
        )
        self.state = state
        self.episodes = EpisodeTracker(self.n_envs)
        self.env_steps = int(state.env_steps)
        self._last_sums: dict[str, float] = {}
        self._last_count = 0

    def use_train(self, env_steps: int) -> bool:
        """Whether the step that brings the run from `env_steps` runs `train`."""
        raise NotImplementedError

    def _without_big(self, state: Any) -> Any:
        return state.replace(**{self.big: None}) if self.big is not None else state

    def reset(self, seed: int) -> None:
        """Start the sub-envs (sub-env i gets seed + i) and choose the first action."""
        obs, _ = self.vec.reset(seed=seed)
        check_finite(self.env_steps, observation=obs)
        self.carry, self.action = self.programs.start(
            self.carry, jnp.asarray(obs, jnp.float32).reshape(self.n_envs, -1)
        )

    def run(self, steps: int, hook: Callable[[int], bool | None]) -> None:
        vec, n = self.vec, self.n_envs
        target = self.env_steps + steps
        while self.env_steps < target:
            obs, reward, terminated, truncated, info = vec.step(self.edge(self.action, n))
            done = terminated | truncated
            next_obs = final_observations(obs, done, info)
            check_finite(self.env_steps, observation=next_obs, reward=reward)
            program = (
                self.programs.train if self.use_train(self.env_steps) else self.programs.collect
            )
            self.carry, self.action = program(
                self.carry,
                np.asarray(reward, np.float32),
                np.asarray(next_obs, np.float32).reshape(n, -1),
                np.asarray(terminated, np.float32),
                np.asarray(done, np.float32),
                np.asarray(obs, np.float32).reshape(n, -1),
            )
            self.env_steps += n
            self.episodes.record(reward, done)
            if hook(self.env_steps) is False:
                break

    @property
    def state(self) -> Any:
        """The run state as a pytree (a copy; the loop itself keeps it packed). Packing and
        unpacking on the host compile nothing: as XLA programs they took 0.3–0.4 s each to
        compile, a tenth of a short run."""
        small = self.packing.unpack_host(self.carry[1])
        if self.big is None:
            return small
        return small.replace(**{self.big: jax.device_put(self.carry[0], may_alias=False)})

    @state.setter
    def state(self, state: Any) -> None:
        big = getattr(state, self.big) if self.big is not None else None
        self.carry = (big, self.packing.pack_host(self._without_big(state)))
        self.action = state.last_action

    @property
    def algo_state(self) -> Any:
        """The algorithm's part of the state (a copy), without copying `big` (the replay)."""
        return self.packing.unpack_host(self.carry[1]).algo

    def read_metrics(self) -> dict[str, float]:
        """Mean of each update metric since the last read (empty before learning starts)."""
        # Read on the host at once (no copy back to the device); not the replay.
        state = self.packing.unpack(tuple(np.asarray(b) for b in self.carry[1]))
        sums, count = state.metric_sums, state.metric_count
        count = int(count)
        calls = count - self._last_count
        means = {}
        if calls > 0:
            means = {k: (float(v) - self._last_sums.get(k, 0.0)) / calls for k, v in sums.items()}
        self._last_sums = {k: float(v) for k, v in sums.items()}
        self._last_count = count
        return means
