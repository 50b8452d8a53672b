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
truncated): the loops keep it as `replay.data.done` when `n_step` > 1. It is passed beside the
replay, so that a window can also be cut elsewhere. The windows are also the chunks and
sequences of data/chunks.py.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from duetto.data.replay import Batch, Replay


class Window(NamedTuple):
    """The steps of one env from sampled rows t on: rows [B, n] (step k's row, t + k·stride
    around the ring), valid [B, n] (1.0 for the steps kept: step 0, then step k while the
    episode did not end at step k − 1 and its row was written after row t), last [B] (the row
    of the last valid step) and steps [B] (int32, the number m ≥ 1 of valid steps)."""

    rows: jnp.ndarray
    valid: jnp.ndarray
    last: jnp.ndarray
    steps: jnp.ndarray


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
) -> Batch:
    """The n-step backups of sampled `rows` [B] (from data/replay.py's `uniform_rows`, a
    prioritised or a fading sampler): [B, ...], without importance weights. With n = 1 the
    1-step transitions (data/replay.py's `one_step_batch` computes those as γ·(1 − d))."""
    reward, next_obs, discount = window_backup(replay, window(replay, done, rows, n, stride), gamma)
    return Batch(replay.data.obs[rows], replay.data.action[rows], reward, next_obs, discount)
