"""The off-policy host loop (see loops/host.py for what the host loops share).

Each vector-env step makes one compiled call: `collect` until `learning_starts` env steps
(store the transition in the device-resident replay, choose a warm-up action: uniform, or the
current policy's when `warmup_actions` is "policy"), then `train` (store; on every
`env_steps_per_update`-th vector step run `gradient_steps` updates as a `lax.scan` of sample +
update; choose the next action with the policy). The host only moves observations in and
actions out. Training metrics are summed on the device and read every `log_every` steps.

The loop knows nothing of an algorithm but its module interface (init, act, update) and the
off-policy fields of its config (buffer_size, batch_size, learning_starts, gradient_steps,
env_steps_per_update, warmup_actions).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import flax
import gymnasium as gym
import jax
import jax.numpy as jnp

from duetto.compile_cache import module_tag
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
    build = Program(
        lambda k: _build_state(algo, k, spec, config, n_envs),
        ONCE_OPTIONS,
        identity=f"init|{__name__}|{module_tag(algo)}|{config!r}|{spec!r}|{n_envs}",
    )
    return build(key)  # runs once: no LLVM optimisation to wait for


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


def maybe_gradient_steps(
    algo: ModuleType,
    config: Any,
    algo_state: Any,
    replay: Replay,
    key: jax.Array,
    ready: jnp.ndarray,
    vector_steps: jnp.ndarray,
) -> tuple[Any, dict[str, jnp.ndarray], jnp.ndarray]:
    """`gradient_steps` when `ready` (the warm-up is over) and `vector_steps`, the vector steps
    taken including this one, is a multiple of `env_steps_per_update`; otherwise the state
    unchanged and zero metrics. Returns (state, metrics, 1.0 if it updated else 0.0)."""
    every = config.env_steps_per_update
    due = ready if every == 1 else ready & (vector_steps % every == 0)

    def learn(algo_state: Any) -> tuple[Any, dict]:
        return gradient_steps(algo, config, algo_state, replay, key)

    def wait(algo_state: Any) -> tuple[Any, dict]:
        return algo_state, {k: jnp.zeros((), jnp.float32) for k in algo.METRICS}

    algo_state, metrics = jax.lax.cond(due, learn, wait, algo_state)
    return algo_state, metrics, due.astype(jnp.float32)


def warmup_action(
    algo: ModuleType, config: Any, algo_state: Any, obs: jnp.ndarray, key: jax.Array
) -> jnp.ndarray:
    """The action during the first `learning_starts` env steps: uniform in [-1, 1], or the
    current (untrained) policy's when `warmup_actions` is "policy" (DSAC-T's code does that)."""
    if config.warmup_actions == "policy":
        return algo.act(algo_state, obs, key, False)
    shape = (obs.shape[0], algo_state.spec.action_dim)
    return jax.random.uniform(key, shape, minval=-1.0, maxval=1.0)


def make_programs(algo: ModuleType, config: Any, n_envs: int) -> Programs:
    """start, collect (store, warm-up action) and train (store, `gradient_steps` updates when
    due, policy action), over the structured state; not yet compiled."""

    def start(ls: OffPolicyState, obs: jnp.ndarray) -> OffPolicyState:
        key, k_act = jax.random.split(ls.key)
        if config.learning_starts > 0:
            action = warmup_action(algo, config, ls.algo, obs, k_act)
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
            last_action=warmup_action(algo, config, ls.algo, obs, k_act),
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
        env_steps = ls.env_steps + n_envs
        ready = jnp.ones((), bool)  # the host calls `train` only after the warm-up
        algo_state, metrics, updated = maybe_gradient_steps(
            algo, config, ls.algo, replay, k_sample, ready, env_steps // n_envs
        )
        return ls.replace(
            algo=algo_state,
            replay=replay,
            key=key,
            last_obs=obs,
            last_action=algo.act(algo_state, obs, k_act, False),
            env_steps=env_steps,
            metric_sums=jax.tree.map(lambda s, m: s + m, ls.metric_sums, metrics),
            metric_count=ls.metric_count + updated.astype(jnp.int32),
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
        n = vec.num_envs
        identity = f"{type(self).__name__}|{module_tag(algo)}|{config!r}|{n}"
        super().__init__(make_programs(algo, config, n), identity, vec, state)

    def use_train(self, env_steps: int) -> bool:
        return env_steps + self.n_envs >= self.warmup
