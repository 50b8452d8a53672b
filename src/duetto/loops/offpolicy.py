"""The off-policy host loop (see loops/host.py for what the host loops share).

Each vector-env step makes one compiled call: `collect` until `learning_starts` env steps
(store the transition in the device-resident replay, choose a warm-up action: uniform, or the
current policy's when `warmup_actions` is "policy"), then `train` (store; on every
`env_steps_per_update`-th vector step run `gradient_steps` updates as a `lax.scan` of sample +
update; choose the next action with the policy). The host only moves observations in and
actions out. Training metrics are summed on the device and read every `log_every` steps.

A sample is a `Batch` (data/replay.py): 1-step transitions, or n-step backups (`n_step`,
data/nstep.py) over each env's rows, which the loop writes `n_envs` apart. With `prioritised`
the replay carries priority trees (data/prioritised.py, updated in place in the donated
replay): new rows get the largest priority so far, rows are drawn by priority with importance
weights (β annealed over `per_beta_steps`), and the update's per-sample |δ| sets the drawn rows'
priorities before the next gradient step.

The loop knows an algorithm only by the contract (duetto/contract.py): its module interface
(init, act, update) and the loop fields of `OffPolicyConfig`.
"""

from __future__ import annotations

import os
from typing import Any

import flax
import jax
import jax.numpy as jnp

from duetto.contract import TD_ERROR, Algorithm, OffPolicyConfig
from duetto.data.nstep import nstep_batch
from duetto.data.prioritised import (
    annealed_beta,
    priorities_add,
    priorities_init,
    priorities_update,
    prioritised_rows,
)
from duetto.data.replay import (
    Batch,
    Replay,
    Transition,
    one_step_batch,
    replay_add,
    replay_init,
    uniform_rows,
)
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
    # obs, next_obs, action, reward, terminated (done with n-step); prioritised: two float32
    # trees of 2P < 4·buffer_size nodes
    floats = 2 * spec.obs_dim + spec.action_dim + 2 + (config.n_step > 1)
    row = 4 * floats + (32 if config.prioritised else 0)
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


def empty_replay(config: OffPolicyConfig, spec: EnvSpec) -> Replay:
    """A run's empty replay, with each row's `done` when `n_step` > 1 and priority trees when
    `prioritised`."""
    # Only n-step windows read `done`: without them the replay keeps none, so that the default
    # programs are those of before (a written `done` changes how XLA fuses the fused loop's
    # env step, and with it the last bits of its results).
    replay = replay_init(config.buffer_size, spec.obs_dim, spec.action_dim, config.n_step > 1)
    if config.prioritised:
        replay = replay._replace(priorities=priorities_init(config.buffer_size))
    return replay


def store(replay: Replay, transitions: Transition) -> Replay:
    """`transitions` [n_envs, ...] written at the replay's pointer; with priorities, their
    rows first given the largest priority so far (Schaul et al. 2016, Algorithm 1)."""
    if replay.priorities is not None:
        n = transitions.reward.shape[0]
        replay = replay._replace(priorities=priorities_add(replay.priorities, replay, n))
    return replay_add(replay, transitions)


def build_state(
    algo: Algorithm, key: jax.Array, spec: EnvSpec, config: OffPolicyConfig, n_envs: int
) -> OffPolicyState:
    """A fresh run state (traced)."""
    k_algo, k_loop = jax.random.split(key)
    algo_state = algo.init(k_algo, spec, config, n_envs)
    replay = empty_replay(config, spec)
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


def sample(
    config: OffPolicyConfig,
    replay: Replay,
    key: jax.Array,
    gamma: jnp.ndarray,
    env_steps: jnp.ndarray,
    n_envs: int,
) -> tuple[jnp.ndarray, Batch]:
    """(rows [B], the batch of their backups): rows drawn uniformly, or by priority with
    importance weights; 1-step transitions, or `n_step` backups over each env's rows."""
    if replay.priorities is None:
        rows, weight = uniform_rows(replay, key, config.batch_size), None
    else:
        beta = annealed_beta(env_steps, config.per_beta_steps, config.per_beta0)
        rows, weight = prioritised_rows(replay.priorities, key, config.batch_size, beta)
    if config.n_step == 1:
        batch = one_step_batch(jax.tree.map(lambda column: column[rows], replay.data), gamma)
    else:
        assert replay.data.done is not None  # kept with n_step > 1 (`empty_replay`)
        batch = nstep_batch(replay, replay.data.done, rows, config.n_step, n_envs, gamma)
    return rows, batch._replace(weight=weight)


def gradient_steps(
    algo: Algorithm,
    config: OffPolicyConfig,
    algo_state: Any,
    replay: Replay,
    key: jax.Array,
    env_steps: jax.Array,
    n_envs: int,
) -> tuple[Any, Any, dict[str, jnp.ndarray]]:
    """`config.gradient_steps` updates on replay samples, as one `lax.scan`, each told the loop
    clock `env_steps`; returns the state, the replay's priorities (None without) after each
    step set the priorities of its rows from the update's |δ|, and each metric's mean over
    the steps (the host and fused loops both call this)."""

    def gradient_step(carry: tuple, k: jax.Array) -> tuple[tuple, dict]:
        state, priorities = carry
        rows, batch = sample(
            config,
            replay._replace(priorities=priorities),
            k,
            state.hparams["gamma"],
            env_steps,
            n_envs,
        )
        state, metrics = algo.update(state, batch, env_steps)
        metrics = dict(metrics)
        td_error = metrics.pop(TD_ERROR, None)
        if priorities is not None:
            if td_error is None:
                raise DuettoError(
                    f"{algo.NAME} cannot use prioritised replay: its update returns no "
                    f"per-sample |δ| ('{TD_ERROR}' in its metrics). Run it with prioritised=False."
                )
            priorities = priorities_update(
                priorities, rows, td_error, config.per_alpha, config.per_eps
            )
        return (state, priorities), metrics

    keys = jax.random.split(key, config.gradient_steps)
    (algo_state, priorities), metrics = jax.lax.scan(
        gradient_step, (algo_state, replay.priorities), keys
    )
    return algo_state, priorities, jax.tree.map(jnp.mean, metrics)


def maybe_gradient_steps(
    algo: Algorithm,
    config: OffPolicyConfig,
    algo_state: Any,
    replay: Replay,
    key: jax.Array,
    ready: jnp.ndarray,
    env_steps: jnp.ndarray,
    n_envs: int,
) -> tuple[Any, Replay, dict[str, jnp.ndarray], jnp.ndarray]:
    """`gradient_steps` when `ready` (the warm-up is over) and the vector steps taken including
    this one (`env_steps` // n_envs) are a multiple of `env_steps_per_update`; otherwise the
    state unchanged and zero metrics. Returns (state, replay with its priorities updated,
    metrics, 1.0 if it updated else 0.0)."""
    every = config.env_steps_per_update
    due = ready if every == 1 else ready & ((env_steps // n_envs) % every == 0)

    def learn(carry: tuple) -> tuple[tuple, dict]:
        algo_state, priorities = carry
        algo_state, priorities, metrics = gradient_steps(
            algo, config, algo_state, replay._replace(priorities=priorities), key, env_steps, n_envs
        )
        return (algo_state, priorities), metrics

    def wait(carry: tuple) -> tuple[tuple, dict]:
        return carry, {k: jnp.zeros((), jnp.float32) for k in algo.METRICS}

    (algo_state, priorities), metrics = jax.lax.cond(
        due, learn, wait, (algo_state, replay.priorities)
    )
    return algo_state, replay._replace(priorities=priorities), metrics, due.astype(jnp.float32)


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

    def store_step(
        ls: OffPolicyState,
        reward: jnp.ndarray,
        next_obs: jnp.ndarray,
        terminated: jnp.ndarray,
        done: jnp.ndarray,
    ) -> Replay:
        step = Transition(ls.last_obs, ls.last_action, reward, next_obs, terminated, done)
        return store(ls.replay, step)

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
            replay=store_step(ls, reward, next_obs, terminated, done),
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
        replay = store_step(ls, reward, next_obs, terminated, done)
        key, k_sample, k_act = jax.random.split(ls.key, 3)
        env_steps = ls.env_steps + n_envs
        ready = jnp.ones((), bool)  # the host calls `train` only after the warm-up
        algo_state, replay, metrics, updated = maybe_gradient_steps(
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
        if self.config.curriculum:
            raise DuettoError(
                f"curriculum '{self.config.curriculum}' runs inside the compiled program of the "
                "fused loop: train on a JAX-native env (e.g. duetto:Quadrotor-v0), or set "
                "curriculum=''."
            )
        check_replay_memory(self.config, self.spec)
        return build_state(self.algo, key, self.spec, self.config, self.n_envs)

    def use_train(self, env_steps: int) -> bool:
        return env_steps + self.n_envs >= max(self.config.learning_starts, 1)


HostKind.loops["offpolicy"] = OffPolicyLoop
