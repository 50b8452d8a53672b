"""The off-policy host loop (see loops/host.py for what the host loops share).

Each vector-env step makes one compiled call: `collect` until `learning_starts` env steps
(store the transition in the device-resident replay, choose a warm-up action: uniform, or the
current policy's when `warmup_actions` is "policy"), then `train` (store; on every
`env_steps_per_update`-th vector step run `gradient_steps` updates as a `lax.scan` of sample +
update; choose the next action with the policy). The host only moves observations in and
actions out. Training metrics are summed on the device and read every `log_every` steps.

The loop knows an algorithm only by the contract (duetto/contract.py): its module interface
(init, act, update) and the loop fields of `OffPolicyConfig`.
"""

from __future__ import annotations

import os
from typing import Any

import flax
import jax
import jax.numpy as jnp

from duetto.contract import Algorithm, OffPolicyConfig
from duetto.data.replay import Replay, Transition, replay_add, replay_init, replay_sample
from duetto.envs.spec import EnvSpec
from duetto.errors import DuettoError
from duetto.loops.host import HostKind, HostLoop, Programs


class OffPolicyState(flax.struct.PyTreeNode):
    """Everything a run carries between env steps (all of it is checkpointed)."""

    algo: Any  # the algorithm's state
    replay: Replay
    key: jax.Array  # for replay sampling and acting
    last_obs: jnp.ndarray  # [n_envs, obs_dim], the observation `last_action` was chosen for
    last_action: jnp.ndarray  # [n_envs, act_dim] in [-1, 1]
    env_steps: jnp.ndarray  # int32 [], env steps taken (summed over sub-envs)
    metric_sums: dict[str, jnp.ndarray]  # running sums of the update metrics
    metric_count: jnp.ndarray  # int32 [], number of update calls summed


def memory_bytes() -> int | None:
    """The memory the replays live in: the accelerators' together, or this machine's (CPU
    devices share it); None when it cannot be told."""
    devices = jax.devices()
    if devices[0].platform != "cpu":
        stats = devices[0].memory_stats() or {}
        return int(stats["bytes_limit"]) * len(devices) if "bytes_limit" in stats else None
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_replay_memory(config: OffPolicyConfig, spec: EnvSpec, n_runs: int = 1) -> None:
    """One DuettoError, before anything is allocated, when the replays of `n_runs` runs cannot
    fit in memory: they are preallocated, with observations as float32 vectors (images too:
    a 1M-transition replay of 84×84×3 pixels is 170 GB)."""
    row = 4 * (2 * spec.obs_dim + spec.action_dim + 2)  # obs, next_obs, action, reward, terminated
    need, have = n_runs * config.buffer_size * row, memory_bytes()
    if have is None or need <= have:
        return
    fits = max(have // (2 * n_runs * row), 1)
    runs = f" for each of {n_runs} runs" if n_runs > 1 else ""
    raise DuettoError(
        f"a replay of buffer_size={config.buffer_size:,} transitions of {spec.obs_dim:,} "
        f"observation values{runs} needs {need / 2**30:,.1f} GiB, more than the "
        f"{have / 2**30:,.1f} GiB of memory here: lower buffer_size (e.g. buffer_size={fits:,})."
    )


def build_state(
    algo: Algorithm, key: jax.Array, spec: EnvSpec, config: OffPolicyConfig, n_envs: int
) -> OffPolicyState:
    """A fresh run state (traced)."""
    k_algo, k_loop = jax.random.split(key)
    algo_state = algo.init(k_algo, spec, config, n_envs)
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
    algo: Algorithm,
    config: OffPolicyConfig,
    algo_state: Any,
    replay: Replay,
    key: jax.Array,
    env_steps: jax.Array,
) -> tuple[Any, dict[str, jnp.ndarray]]:
    """`config.gradient_steps` updates on uniform replay samples, as one `lax.scan`, each told
    the loop clock `env_steps`; returns the state and each metric's mean over the steps (the
    host and fused loops both call this)."""

    def gradient_step(state: Any, k: jax.Array) -> tuple[Any, dict]:
        return algo.update(state, replay_sample(replay, k, config.batch_size), env_steps)

    keys = jax.random.split(key, config.gradient_steps)
    algo_state, metrics = jax.lax.scan(gradient_step, algo_state, keys)
    return algo_state, jax.tree.map(jnp.mean, metrics)


def maybe_gradient_steps(
    algo: Algorithm,
    config: OffPolicyConfig,
    algo_state: Any,
    replay: Replay,
    key: jax.Array,
    ready: jnp.ndarray,
    env_steps: jnp.ndarray,
    n_envs: int,
) -> tuple[Any, dict[str, jnp.ndarray], jnp.ndarray]:
    """`gradient_steps` when `ready` (the warm-up is over) and the vector steps taken including
    this one (`env_steps` // n_envs) are a multiple of `env_steps_per_update`; otherwise the
    state unchanged and zero metrics. Returns (state, metrics, 1.0 if it updated else 0.0)."""
    every = config.env_steps_per_update
    due = ready if every == 1 else ready & ((env_steps // n_envs) % every == 0)

    def learn(algo_state: Any) -> tuple[Any, dict]:
        return gradient_steps(algo, config, algo_state, replay, key, env_steps)

    def wait(algo_state: Any) -> tuple[Any, dict]:
        return algo_state, {k: jnp.zeros((), jnp.float32) for k in algo.METRICS}

    algo_state, metrics = jax.lax.cond(due, learn, wait, algo_state)
    return algo_state, metrics, due.astype(jnp.float32)


def warmup_action(
    algo: Algorithm,
    config: OffPolicyConfig,
    algo_state: Any,
    obs: jnp.ndarray,
    key: jax.Array,
    action_dim: int,
) -> jnp.ndarray:
    """The action during the first `learning_starts` env steps: uniform in [-1, 1], or the
    current (untrained) policy's when `warmup_actions` is "policy" (DSAC-T's code does that)."""
    if config.warmup_actions == "policy":
        return algo.act(algo_state, obs, key, False)
    shape = (obs.shape[0], action_dim)
    return jax.random.uniform(key, shape, minval=-1.0, maxval=1.0)


def make_programs(algo: Algorithm, config: OffPolicyConfig, n_envs: int) -> Programs:
    """start, collect (store, warm-up action) and train (store, `gradient_steps` updates when
    due, policy action), over the structured state; not yet compiled."""

    def start(ls: OffPolicyState, obs: jnp.ndarray) -> OffPolicyState:
        key, k_act = jax.random.split(ls.key)
        if config.learning_starts > 0:
            action = warmup_action(algo, config, ls.algo, obs, k_act, ls.last_action.shape[-1])
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
            last_action=warmup_action(algo, config, ls.algo, obs, k_act, ls.last_action.shape[-1]),
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
            algo, config, ls.algo, replay, k_sample, ready, env_steps, n_envs
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
    make_programs = staticmethod(make_programs)

    def build_state(self, key: jax.Array) -> OffPolicyState:
        check_replay_memory(self.config, self.spec)
        return build_state(self.algo, key, self.spec, self.config, self.n_envs)

    def use_train(self, env_steps: int) -> bool:
        return env_steps + self.n_envs >= max(self.config.learning_starts, 1)


HostKind.loops["offpolicy"] = OffPolicyLoop
