"""The off-policy host loop (see loops/host.py for what the host loops share).

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

from types import ModuleType
from typing import Any

import flax
import gymnasium as gym
import jax
import jax.numpy as jnp

from duetto.data.replay import Replay, Transition, replay_add, replay_init, replay_sample
from duetto.envs.spec import EnvSpec
from duetto.loops.compiled import ONCE_OPTIONS, Program
from duetto.loops.host import HostLoop, Programs


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
    build = jax.jit(lambda k: _build_state(algo, k, spec, config, n_envs))
    return Program(build, ONCE_OPTIONS)(key)  # runs once: no LLVM optimisation to wait for


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
    return OffPolicyState(
        algo=algo_state,
        replay=replay,
        key=k_loop,
        last_obs=jnp.zeros((n_envs, spec.obs_dim), jnp.float32),
        last_action=jnp.zeros((n_envs, spec.action_dim), jnp.float32),
        env_steps=jnp.zeros((), jnp.int32),
        metric_sums={k: jnp.zeros((), jnp.float32) for k in algo.METRICS},
        metric_count=jnp.zeros((), jnp.int32),
    )


def gradient_steps(
    algo: ModuleType, config: Any, algo_state: Any, replay: Replay, key: jax.Array
) -> tuple[Any, dict[str, jnp.ndarray]]:
    """`config.gradient_steps` updates on uniform replay samples, as one `lax.scan`; returns the
    state and each metric's mean over the steps (the host and fused loops both call this)."""

    def gradient_step(state: Any, k: jax.Array) -> tuple[Any, dict]:
        return algo.update(state, replay_sample(replay, k, config.batch_size))

    keys = jax.random.split(key, config.gradient_steps)
    algo_state, metrics = jax.lax.scan(gradient_step, algo_state, keys)
    return algo_state, jax.tree.map(jnp.mean, metrics)


def make_programs(algo: ModuleType, config: Any, n_envs: int) -> Programs:
    """start, collect (store, uniform random action) and train (store, `gradient_steps`
    updates, policy action), over the structured state; not yet compiled."""

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
        done: jnp.ndarray,
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
        done: jnp.ndarray,
        obs: jnp.ndarray,
    ) -> OffPolicyState:
        replay = store(ls, reward, next_obs, terminated)
        key, k_sample, k_act = jax.random.split(ls.key, 3)
        algo_state, metrics = gradient_steps(algo, config, ls.algo, replay, k_sample)
        return ls.replace(
            algo=algo_state,
            replay=replay,
            key=key,
            last_obs=obs,
            last_action=algo.act(algo_state, obs, k_act, False),
            env_steps=ls.env_steps + n_envs,
            metric_sums=jax.tree.map(lambda s, m: s + m, ls.metric_sums, metrics),
            metric_count=ls.metric_count + 1,
        )

    return Programs(start, collect, train)


class OffPolicyLoop(HostLoop):
    """The off-policy host loop: `collect` until `learning_starts` env steps, then `train`."""

    big = "replay"  # updated in place, kept out of the packing

    def __init__(
        self, algo: ModuleType, config: Any, vec: gym.vector.VectorEnv, state: OffPolicyState
    ):
        self.config = config
        self.warmup = max(config.learning_starts, 1)
        super().__init__(make_programs(algo, config, vec.num_envs), vec, state)

    def use_train(self, env_steps: int) -> bool:
        return env_steps + self.n_envs >= self.warmup
