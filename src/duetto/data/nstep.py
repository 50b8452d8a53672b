"""n-step returns from the replay (control.md, "shared building blocks" B2).

For sampled rows t, the discounted rewards of the same env's next n transitions and the
discount of the bootstrap after them: y = Σ_{k<m} γ^k r_{t+k} + γ^m (1 − d_{t+m−1}) V(s_{t+m}).
The loops write one row per sub-env per vector step, so one env's consecutive transitions are
`stride` = n_envs rows apart, around the ring. A window of n steps is cut to its first m:
- after a row whose episode ended (`done`): a termination does not bootstrap, a truncation
  bootstraps from that row's next_obs (the true final observation) with γ^m;
- at the write pointer: only rows written after row t are read (past the pointer a row is
  not yet written, or holds older data the ring has not overwritten yet); the window
  bootstraps from the last of them.

`done` [capacity] is 1.0 where a row's episode ended for any reason (terminated or
truncated); it has the layout of `replay.data.reward` and is passed beside the replay. The
windows are also the chunks and sequences of data/chunks.py.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from duetto.data.replay import Replay


class Window(NamedTuple):
    """The steps of one env from sampled rows t on: rows [B, n] (step k's row, t + k·stride
    around the ring), valid [B, n] (1.0 for the steps kept: step 0, then step k while the
    episode did not end at step k − 1 and its row was written after row t), last [B] (the row
    of the last valid step) and steps [B] (int32, the number m ≥ 1 of valid steps)."""

    rows: jnp.ndarray
    valid: jnp.ndarray
    last: jnp.ndarray
    steps: jnp.ndarray


class NStepTransition(NamedTuple):
    """A batch for the backup y = reward + discount·V(next_obs): obs [B, obs_dim], action
    [B, act_dim], reward [B] (Σ_{k<m} γ^k r_{t+k}), next_obs [B, obs_dim] (s_{t+m}, the true
    final observation where the episode ended) and discount [B] (γ^m·(1 − terminated_{t+m−1});
    with n = 1 it is γ(1 − d) and the batch is the 1-step transition)."""

    obs: jnp.ndarray
    action: jnp.ndarray
    reward: jnp.ndarray
    next_obs: jnp.ndarray
    discount: jnp.ndarray


def window(replay: Replay, done: jnp.ndarray, rows: jnp.ndarray, n: int, stride: int) -> Window:
    """The n-step windows of filled `rows` [B] of one run's replay (the fused loop vmaps its
    runs), with `stride` rows between an env's consecutive transitions (n_envs)."""
    capacity = replay.capacity
    offsets = jnp.arange(n) * stride
    # Rows written after row t: the ones a window may read (the ring overwrites the oldest).
    written_after = (replay.ptr - 1 - rows) % capacity
    step_rows = (rows[:, None] + offsets) % capacity
    written = offsets <= written_after[:, None]
    ended = (done[step_rows] > 0).astype(jnp.int32)
    ended_before = (jnp.cumsum(ended, axis=1) - ended) > 0
    valid = written & ~ended_before
    steps = valid.sum(axis=1)
    last = jnp.take_along_axis(step_rows, (steps - 1)[:, None], axis=1)[:, 0]
    return Window(step_rows, valid.astype(jnp.float32), last, steps)


def window_backup(
    replay: Replay, win: Window, gamma: jnp.ndarray | float
) -> tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray]:
    """(Σ_{k<m} γ^k r_{t+k} [B], s_{t+m} [B, obs_dim], γ^m·(1 − terminated_{t+m−1}) [B]) of
    the windows `win`: the return and the bootstrap of an n-step or chunk backup."""
    data = replay.data
    powers = jnp.power(gamma, jnp.arange(win.rows.shape[1], dtype=jnp.float32))
    reward = jnp.sum(data.reward[win.rows] * win.valid * powers, axis=1)
    discount = jnp.power(gamma, win.steps.astype(jnp.float32)) * (1.0 - data.terminated[win.last])
    return reward, data.next_obs[win.last], discount


def nstep_batch(
    replay: Replay,
    done: jnp.ndarray,
    rows: jnp.ndarray,
    n: int,
    stride: int,
    gamma: jnp.ndarray | float,
) -> NStepTransition:
    """The n-step transitions of sampled `rows` [B] (from data/replay.py's `uniform_rows`, a
    prioritised or a fading sampler): [B, ...]."""
    reward, next_obs, discount = window_backup(replay, window(replay, done, rows, n, stride), gamma)
    return NStepTransition(
        replay.data.obs[rows], replay.data.action[rows], reward, next_obs, discount
    )
