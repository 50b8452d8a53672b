"""Action chunks and sequences from the replay (control.md §6, "shared building blocks" B2).

A chunk is h consecutive transitions of one env from a sampled row t, for critics of
Q(s_t, a_{t:t+h}) backed up h steps at a time (Q-chunking, Li, Zhou, Levine 2025; DQC, Li,
Park, Levine 2025). The steps are the n-step windows of data/nstep.py (same stride, episode-end
and write-pointer rules), so a chunk cut by an episode end bootstraps as an n-step return does:
from the true final observation with γ^m, or not at all after a termination. `valid[:, k]` is
0.0 for the steps after the cut. QC's critic loss keeps only whole chunks (weight
`valid[:, -1]`, `sample_sequence` in `ColinQiyangLi/qc` utils/datasets.py); its behaviour
cloning loss masks each step by `valid`.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from duetto.data.nstep import window, window_backup
from duetto.data.replay import Replay, Transition


class Chunk(NamedTuple):
    """A batch of chunks of h steps from rows t: obs [B, obs_dim] (s_t), actions
    [B, h, act_dim] (a_{t:t+h}, 0.0 past the chunk's valid steps), reward [B]
    (Σ_{k<m} γ^k r_{t+k} over the m valid steps), next_obs [B, obs_dim] (s_{t+m}), discount
    [B] (γ^m·(1 − terminated_{t+m−1}): γ^h for a whole chunk, 0.0 after a termination) and
    valid [B, h] (1.0 for the steps of the chunk's episode that were written)."""

    obs: jnp.ndarray
    actions: jnp.ndarray
    reward: jnp.ndarray
    next_obs: jnp.ndarray
    discount: jnp.ndarray
    valid: jnp.ndarray


def chunk_batch(
    replay: Replay,
    done: jnp.ndarray,
    rows: jnp.ndarray,
    horizon: int,
    stride: int,
    gamma: jnp.ndarray | float,
) -> Chunk:
    """The chunks of `horizon` steps from sampled `rows` [B] of one run's replay, with `stride`
    rows between an env's consecutive transitions (n_envs); `done` [capacity] as in
    data/nstep.py."""
    win = window(replay, done, rows, horizon, stride)
    reward, next_obs, discount = window_backup(replay, win, gamma)
    actions = replay.data.action[win.rows] * win.valid[..., None]
    return Chunk(replay.data.obs[rows], actions, reward, next_obs, discount, win.valid)


def sequence_batch(
    replay: Replay, done: jnp.ndarray, rows: jnp.ndarray, length: int, stride: int
) -> tuple[Transition, jnp.ndarray]:
    """The transitions of `length` steps from sampled `rows` [B], step by step: (every field
    [B, length, ...], 0.0 past the valid steps; valid [B, length]), for models trained on
    sequences (a dynamics model rolled out over several steps, SRL's temporal recall)."""
    win = window(replay, done, rows, length, stride)

    def steps(store: jnp.ndarray) -> jnp.ndarray:
        mask = win.valid.reshape(win.valid.shape + (1,) * (store.ndim - 1))
        return store[win.rows] * mask.astype(store.dtype)

    return jax.tree.map(steps, replay.data), win.valid
