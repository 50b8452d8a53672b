"""The off-policy host loop: Gymnasium vector envs in Python, everything else compiled.

Each vector-env step makes one compiled call: `collect` until `learning_starts` env steps
(store the transition in the device-resident replay, choose a uniform random action), then
`train` (store, run `gradient_steps` updates as a `lax.scan` of sample + update, choose the next
action with the policy). The host only moves
observations in and actions out. Training metrics are summed on the device and read every
`log_every` steps.

The loop knows nothing of an algorithm but its module interface (init, act, update) and the
off-policy fields of its config (buffer_size, batch_size, learning_starts, gradient_steps).
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any, NamedTuple

import flax
import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np

from duetto.data.packing import Packing
from duetto.data.replay import Replay, Transition, replay_add, replay_init, replay_sample
from duetto.envs.gym import check_finite, final_observations, to_env_action
from duetto.envs.spec import EnvSpec


@flax.struct.dataclass
class OffPolicyState:
    """Everything a run carries between env steps (all of it is checkpointed)."""

    algo: Any  # the algorithm's state
    replay: Replay
    key: jax.Array  # for replay sampling and acting
    last_obs: jnp.ndarray  # [n_envs, obs_dim], the observation `last_action` was chosen for
    last_action: jnp.ndarray  # [n_envs, act_dim] in [-1, 1]
    env_steps: jnp.ndarray  # int32 [], env steps taken (summed over sub-envs)
    metric_sums: dict[str, jnp.ndarray]  # running sums of the update metrics
    metric_count: jnp.ndarray  # int32 [], number of update calls summed


def init_state(
    algo: ModuleType, key: jax.Array, spec: EnvSpec, config: Any, n_envs: int
) -> OffPolicyState:
    """A fresh run state, built by one compiled program (op-by-op it would compile dozens)."""
    return jax.jit(lambda k: _build_state(algo, k, spec, config, n_envs))(key)


def state_shapes(algo: ModuleType, spec: EnvSpec, config: Any, n_envs: int) -> OffPolicyState:
    """The run state's structure, shapes and dtypes, without computing it."""
    return jax.eval_shape(
        lambda k: _build_state(algo, k, spec, config, n_envs), jax.random.PRNGKey(0)
    )


def _build_state(
    algo: ModuleType, key: jax.Array, spec: EnvSpec, config: Any, n_envs: int
) -> OffPolicyState:
    k_algo, k_loop = jax.random.split(key)
    algo_state = algo.init(k_algo, spec, config)
    replay = replay_init(config.buffer_size, spec.obs_dim, spec.action_dim)
    metrics = _metric_shapes(algo, algo_state, replay, config.batch_size)
    return OffPolicyState(
        algo=algo_state,
        replay=replay,
        key=k_loop,
        last_obs=jnp.zeros((n_envs, spec.obs_dim), jnp.float32),
        last_action=jnp.zeros((n_envs, spec.action_dim), jnp.float32),
        env_steps=jnp.zeros((), jnp.int32),
        metric_sums={k: jnp.zeros((), jnp.float32) for k in metrics},
        metric_count=jnp.zeros((), jnp.int32),
    )


def _metric_shapes(algo: ModuleType, algo_state: Any, replay: Replay, batch_size: int) -> dict:
    batch = jax.eval_shape(lambda r: replay_sample(r, jax.random.PRNGKey(0), batch_size), replay)
    return jax.eval_shape(algo.update, algo_state, batch)[1]


class Programs(NamedTuple):
    """The compiled programs of a run; each compiles once.

    start(state, obs): choose the first action.
    collect(state, reward, next_obs, terminated, obs): store the transition, choose a uniform
        random action (before `learning_starts`).
    train(state, reward, next_obs, terminated, obs): store the transition, run `gradient_steps`
        updates, choose the next action with the policy.

    reward, terminated: [n_envs]; next_obs: the observation each sub-env reached (the true final
    one at an episode end); obs: the observation the next action is for (after autoreset).
    """

    start: Callable
    collect: Callable
    train: Callable


def make_programs(algo: ModuleType, config: Any, n_envs: int) -> Programs:
    """The programs over the structured state, not yet compiled (see compile_packed)."""

    def uniform(key: jax.Array, ls: OffPolicyState) -> jnp.ndarray:
        return jax.random.uniform(key, ls.last_action.shape, minval=-1.0, maxval=1.0)

    def start(ls: OffPolicyState, obs: jnp.ndarray) -> OffPolicyState:
        key, k_act = jax.random.split(ls.key)
        if config.learning_starts > 0:
            action = uniform(k_act, ls)
        else:
            action = algo.act(ls.algo, obs, k_act, False)
        return ls.replace(key=key, last_obs=obs, last_action=action)

    def store(
        ls: OffPolicyState, reward: jnp.ndarray, next_obs: jnp.ndarray, terminated: jnp.ndarray
    ) -> Replay:
        return replay_add(
            ls.replay, Transition(ls.last_obs, ls.last_action, reward, next_obs, terminated)
        )

    def collect(
        ls: OffPolicyState,
        reward: jnp.ndarray,
        next_obs: jnp.ndarray,
        terminated: jnp.ndarray,
        obs: jnp.ndarray,
    ) -> OffPolicyState:
        key, k_act = jax.random.split(ls.key)
        return ls.replace(
            replay=store(ls, reward, next_obs, terminated),
            key=key,
            last_obs=obs,
            last_action=uniform(k_act, ls),
            env_steps=ls.env_steps + n_envs,
        )

    def train(
        ls: OffPolicyState,
        reward: jnp.ndarray,
        next_obs: jnp.ndarray,
        terminated: jnp.ndarray,
        obs: jnp.ndarray,
    ) -> OffPolicyState:
        replay = store(ls, reward, next_obs, terminated)
        key, k_sample, k_act = jax.random.split(ls.key, 3)

        def gradient_step(algo_state: Any, k: jax.Array) -> tuple[Any, dict]:
            return algo.update(algo_state, replay_sample(replay, k, config.batch_size))

        keys = jax.random.split(k_sample, config.gradient_steps)
        algo_state, metrics = jax.lax.scan(gradient_step, ls.algo, keys)
        return ls.replace(
            algo=algo_state,
            replay=replay,
            key=key,
            last_obs=obs,
            last_action=algo.act(algo_state, obs, k_act, False),
            env_steps=ls.env_steps + n_envs,
            metric_sums=jax.tree.map(lambda s, m: s + m.mean(), ls.metric_sums, metrics),
            metric_count=ls.metric_count + 1,
        )

    return Programs(start, collect, train)


def compile_packed(programs: Programs, packing: Packing) -> Programs:
    """Each program as one jitted call over the packed carry `(replay, packed rest)`, donated
    so the replay is updated in place; it returns the new carry and the action to take."""

    def packed(program: Callable) -> Callable:
        def run(carry: tuple, *args: Any) -> tuple[tuple, jnp.ndarray]:
            replay, rest = carry
            ls = program(packing.unpack(rest).replace(replay=replay), *args)
            return (ls.replay, packing.pack(ls.replace(replay=None))), ls.last_action

        return jax.jit(run, donate_argnums=0)

    return Programs(*(packed(p) for p in programs))


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


class OffPolicyLoop:
    """Drives a vector env with the compiled programs. `run(n, hook)` takes at least n env steps
    and calls `hook(env_steps)` after every vector step; the hook returns False to stop early."""

    def __init__(
        self, algo: ModuleType, config: Any, vec: gym.vector.VectorEnv, state: OffPolicyState
    ):
        self.config = config
        self.vec = vec
        self.n_envs = vec.num_envs
        self.low = vec.single_action_space.low.astype(np.float64).ravel()
        self.high = vec.single_action_space.high.astype(np.float64).ravel()
        self.packing = Packing(state.replace(replay=None))
        self.programs = compile_packed(make_programs(algo, config, self.n_envs), self.packing)
        self._unpack = jax.jit(lambda carry: self.packing.unpack(carry[1]).replace(replay=carry[0]))
        self.state = state
        self.warmup = max(config.learning_starts, 1)
        self.episodes = EpisodeTracker(self.n_envs)
        self.env_steps = int(state.env_steps)
        self._last_sums: dict[str, float] = {}
        self._last_count = 0

    def reset(self, seed: int) -> None:
        """Start the sub-envs (sub-env i gets seed + i) and choose the first action."""
        obs, _ = self.vec.reset(seed=seed)
        check_finite(self.env_steps, observation=obs)
        self.carry, self.action = self.programs.start(self.carry, jnp.asarray(obs, jnp.float32))

    def run(self, steps: int, hook: Callable[[int], bool | None]) -> None:
        vec, shape = self.vec, self.vec.single_action_space.shape
        target = self.env_steps + steps
        while self.env_steps < target:
            action = np.asarray(self.action)
            env_action = to_env_action(action, self.low, self.high).reshape((self.n_envs, *shape))
            obs, reward, terminated, truncated, info = vec.step(env_action)
            done = terminated | truncated
            next_obs = final_observations(obs, done, info)
            check_finite(self.env_steps, observation=next_obs, reward=reward)
            ready = self.env_steps + self.n_envs >= self.warmup
            program = self.programs.train if ready else self.programs.collect
            self.carry, self.action = program(
                self.carry,
                np.asarray(reward, np.float32),
                np.asarray(next_obs, np.float32).reshape(self.n_envs, -1),
                np.asarray(terminated, np.float32),
                np.asarray(obs, np.float32).reshape(self.n_envs, -1),
            )
            self.env_steps += self.n_envs
            self.episodes.record(reward, done)
            if hook(self.env_steps) is False:
                break

    @property
    def state(self) -> OffPolicyState:
        """The run state as a pytree (a copy; the loop itself keeps it packed)."""
        return self._unpack(self.carry)

    @state.setter
    def state(self, state: OffPolicyState) -> None:
        self.carry = (state.replay, jax.jit(self.packing.pack)(state.replace(replay=None)))
        self.action = state.last_action

    def read_metrics(self) -> dict[str, float]:
        """Mean of each update metric since the last read (empty before learning starts)."""
        state = self.state
        sums, count = jax.device_get((state.metric_sums, state.metric_count))
        count = int(count)
        calls = count - self._last_count
        means = {}
        if calls > 0:
            means = {k: (float(v) - self._last_sums.get(k, 0.0)) / calls for k, v in sums.items()}
        self._last_sums = {k: float(v) for k, v in sums.items()}
        self._last_count = count
        return means
