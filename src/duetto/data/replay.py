"""A ring-buffer replay memory as preallocated device arrays (part of the loop state pytree).

Adding and sampling are pure functions that run inside compiled programs; no per-sample Python.
Rows are written from 0 upwards until the ring wraps, so the rows at or past `size` are the
zeros `replay_init` made: a checkpoint stores the filled rows only (runs/checkpoint.py).

An off-policy update learns from a `Batch`: the backup y = reward + discount·V(next_obs) of
1-step transitions (`one_step_batch`) or of n-step windows (data/nstep.py), with importance
weights where the rows were drawn by priority (data/prioritised.py).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp


class Transition(NamedTuple):
    """One batch of transitions: obs [B, obs_dim], action [B, act_dim] in [-1, 1], reward [B],
    next_obs [B, obs_dim] (the true final observation at an episode end), terminated [B]
    (1.0 only for a true termination; time-limit truncation is 0.0 and keeps bootstrapping)
    and done [B] (1.0 where the episode ended for any reason: n-step windows stop there), or
    None in a replay that keeps no `done` (1-step targets do not read it)."""

    obs: jnp.ndarray
    action: jnp.ndarray
    reward: jnp.ndarray
    next_obs: jnp.ndarray
    terminated: jnp.ndarray
    done: jnp.ndarray | None = None


class Batch(NamedTuple):
    """What an off-policy update learns from, for the backup y = reward + discount·V(next_obs):
    obs [B, obs_dim], action [B, act_dim], reward [B] (Σ_{k<m} γ^k r_{t+k}), next_obs
    [B, obs_dim] (s_{t+m}), discount [B] (γ^m·(1 − terminated_{t+m−1}); γ(1 − d) for m = 1)
    and weight [B] (the importance weights of rows drawn by priority), or None (drawn
    uniformly: every weight 1)."""

    obs: jnp.ndarray
    action: jnp.ndarray
    reward: jnp.ndarray
    next_obs: jnp.ndarray
    discount: jnp.ndarray
    weight: jnp.ndarray | None = None


class Replay(NamedTuple):
    """One run's replay, or several stacked (the fused loop's runs): then every leaf has the
    leading [runs] axes of `size`, before the capacity axis of `data`."""

    data: Transition  # every field with a [capacity] axis, the first after those of `size`
    ptr: jnp.ndarray  # int32 [], next row to write
    size: jnp.ndarray  # int32 [], rows filled so far (≤ capacity)
    priorities: Any = None  # data/prioritised.py's Priorities with prioritised replay

    @property
    def capacity(self) -> int:
        return self.data.reward.shape[self.rows_axis]

    @property
    def rows_axis(self) -> int:
        """The capacity axis of the data leaves: 0, or after the stacked runs' axes."""
        return len(self.size.shape)


def replay_init(capacity: int, obs_dim: int, act_dim: int, done: bool = False) -> Replay:
    """An empty replay; with `done`, it keeps each row's `done` (for n-step windows)."""
    f32 = jnp.float32
    data = Transition(
        obs=jnp.zeros((capacity, obs_dim), f32),
        action=jnp.zeros((capacity, act_dim), f32),
        reward=jnp.zeros((capacity,), f32),
        next_obs=jnp.zeros((capacity, obs_dim), f32),
        terminated=jnp.zeros((capacity,), f32),
        done=jnp.zeros((capacity,), f32) if done else None,
    )
    return Replay(data=data, ptr=jnp.zeros((), jnp.int32), size=jnp.zeros((), jnp.int32))


def replay_add(replay: Replay, batch: Transition) -> Replay:
    """Write a batch of n rows at ptr, wrapping around the end: [n, ...] rows (their `done`
    dropped where the replay keeps none)."""
    n = batch.reward.shape[0]
    if replay.data.done is None:
        batch = batch._replace(done=None)
    capacity = replay.capacity
    rows = write_rows(replay, n)
    data = jax.tree.map(
        lambda store, new: store.at[rows].set(new.astype(store.dtype)), replay.data, batch
    )
    return replay._replace(
        data=data,
        ptr=(replay.ptr + n) % capacity,
        size=jnp.minimum(replay.size + n, capacity),
    )


def write_rows(replay: Replay, n: int) -> jnp.ndarray:
    """The rows the next `replay_add` of n rows writes: int32 [n]."""
    return (replay.ptr + jnp.arange(n)) % replay.capacity


def uniform_rows(replay: Replay, key: jax.Array, batch_size: int) -> jnp.ndarray:
    """Rows drawn uniformly with replacement from the filled ones: int32 [batch_size]."""
    return jax.random.randint(key, (batch_size,), 0, jnp.maximum(replay.size, 1))


def replay_sample(replay: Replay, key: jax.Array, batch_size: int) -> Transition:
    """Uniform sample with replacement from the filled rows: [batch_size, ...]."""
    rows = uniform_rows(replay, key, batch_size)
    return jax.tree.map(lambda store: store[rows], replay.data)


def one_step_batch(transitions: Transition, gamma: jnp.ndarray | float) -> Batch:
    """The 1-step backup of `transitions` [B, ...]: discount γ(1 − terminated), no weights."""
    t = transitions
    return Batch(t.obs, t.action, t.reward, t.next_obs, gamma * (1.0 - t.terminated))
