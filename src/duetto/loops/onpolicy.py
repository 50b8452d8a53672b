"""The on-policy host loop (see loops/host.py for what the host loops share).

Each vector-env step makes one compiled call: `collect` writes the step into the rollout
buffer (a device array in the state) and samples the next action; on the last step of a rollout,
`train` writes the step, runs the algorithm's whole update (advantages, epochs, minibatches) and
samples the next action with the new policy. So an update costs no extra call.

The loop knows an algorithm only by the contract (duetto/contract.py): the on-policy module
interface (init, exploration_noise, explore, update, action_shape) and the loop fields of
`OnPolicyConfig`.
"""

from __future__ import annotations

from typing import Any

import flax
import jax
import jax.numpy as jnp

from duetto.contract import OnPolicyAlgorithm, OnPolicyConfig
from duetto.data.rollout import Rollout
from duetto.envs.spec import EnvSpec
from duetto.loops.compiled import TRAIN_OPTIONS
from duetto.loops.host import HostKind, HostLoop, Programs


class OnPolicyState(flax.struct.PyTreeNode):
    """Everything a run carries between env steps (all of it is checkpointed)."""

    algo: Any
    rollout: Rollout  # [n_steps, n_envs, ...]
    key: jax.Array
    last_obs: jnp.ndarray  # [n_envs, obs_dim]
    last_action: jnp.ndarray  # [n_envs, ...] as the policy produced it
    last_log_prob: jnp.ndarray  # [n_envs]
    env_steps: jnp.ndarray  # int32 []
    metric_sums: dict[str, jnp.ndarray]
    metric_count: jnp.ndarray  # int32 []


def rollout_init(algo: OnPolicyAlgorithm, spec: EnvSpec, n_steps: int, n_envs: int) -> Rollout:
    shape, dtype = algo.action_shape(spec)
    f32 = jnp.float32
    return Rollout(
        obs=jnp.zeros((n_steps, n_envs, spec.obs_dim), f32),
        action=jnp.zeros((n_steps, n_envs, *shape), dtype),
        log_prob=jnp.zeros((n_steps, n_envs), f32),
        reward=jnp.zeros((n_steps, n_envs), f32),
        next_obs=jnp.zeros((n_steps, n_envs, spec.obs_dim), f32),
        terminated=jnp.zeros((n_steps, n_envs), f32),
        done=jnp.zeros((n_steps, n_envs), f32),
    )


def build_state(
    algo: OnPolicyAlgorithm, key: jax.Array, spec: EnvSpec, config: OnPolicyConfig, n_envs: int
) -> OnPolicyState:
    """A fresh run state (traced)."""
    k_algo, k_loop = jax.random.split(key)
    algo_state = algo.init(k_algo, spec, config, n_envs)
    rollout = rollout_init(algo, spec, config.n_steps, n_envs)
    shape, dtype = algo.action_shape(spec)
    return OnPolicyState(
        algo=algo_state,
        rollout=rollout,
        key=k_loop,
        last_obs=jnp.zeros((n_envs, spec.obs_dim), jnp.float32),
        last_action=jnp.zeros((n_envs, *shape), dtype),
        last_log_prob=jnp.zeros((n_envs,), jnp.float32),
        env_steps=jnp.zeros((), jnp.int32),
        metric_sums={k: jnp.zeros((), jnp.float32) for k in algo.METRICS},
        metric_count=jnp.zeros((), jnp.int32),
    )


def make_programs(algo: OnPolicyAlgorithm, config: OnPolicyConfig, n_envs: int) -> Programs:
    """start, collect (store the step, sample the next action) and train (store the last step,
    update on the full rollout, sample the next action), over the structured state."""
    n_steps = config.n_steps

    def choose(ls: OnPolicyState, obs: jnp.ndarray) -> OnPolicyState:
        """Observe (the algorithm's view: normalisation statistics updated, as SB3 does at
        every step), then sample; the rollout keeps the observation as the networks saw it."""
        key, k_act = jax.random.split(ls.key)
        algo_state, seen = algo.observe(ls.algo, obs, True)
        noise = algo.exploration_noise(algo_state, k_act, obs.shape[:-1])
        action, log_prob = algo.explore(algo_state, seen, noise)
        return ls.replace(
            algo=algo_state, key=key, last_obs=seen, last_action=action, last_log_prob=log_prob
        )

    def store(ls: OnPolicyState, reward, next_obs, terminated, done) -> OnPolicyState:
        t = (ls.env_steps // n_envs) % n_steps
        next_seen = algo.observe(ls.algo, next_obs, False)[1]
        row = Rollout(
            ls.last_obs, ls.last_action, ls.last_log_prob, reward, next_seen, terminated, done
        )
        rollout = jax.tree.map(lambda buf, x: buf.at[t].set(x.astype(buf.dtype)), ls.rollout, row)
        return ls.replace(rollout=rollout, env_steps=ls.env_steps + n_envs)

    def start(ls: OnPolicyState, obs: jnp.ndarray) -> OnPolicyState:
        return choose(ls, obs)

    def collect(ls: OnPolicyState, reward, next_obs, terminated, done, obs) -> OnPolicyState:
        return choose(store(ls, reward, next_obs, terminated, done), obs)

    def train(ls: OnPolicyState, reward, next_obs, terminated, done, obs) -> OnPolicyState:
        ls = store(ls, reward, next_obs, terminated, done)
        algo_state, metrics = algo.update(ls.algo, ls.rollout, ls.env_steps)
        ls = ls.replace(
            algo=algo_state,
            metric_sums=jax.tree.map(lambda s, m: s + m, ls.metric_sums, metrics),
            metric_count=ls.metric_count + 1,
        )
        return choose(ls, obs)

    return Programs(start, collect, train)


class OnPolicyLoop(HostLoop):
    """The on-policy host loop: `collect` each step, `train` on the last step of a rollout."""

    big = "rollout"  # rewritten row by row, kept out of the packing
    compile_options = TRAIN_OPTIONS  # small networks: compile time matters more than LLVM's -O2
    make_programs = staticmethod(make_programs)

    def build_state(self, key: jax.Array) -> OnPolicyState:
        return build_state(self.algo, key, self.spec, self.config, self.n_envs)

    def use_train(self, env_steps: int) -> bool:
        return (env_steps // self.n_envs + 1) % self.config.n_steps == 0


HostKind.loops["onpolicy"] = OnPolicyLoop
