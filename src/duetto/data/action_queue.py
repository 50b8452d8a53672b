"""An open-loop action queue per sub-env, for policies that choose chunks or sequences of
actions (QC/DQC §6, SRL §7; control.md "shared building blocks" B1).

Each env plays the actions of its current chunk one per step; when its chunk is used up, or
its episode ended (the queue is cleared on reset, as `main_online.py` of `ColinQiyangLi/qc`
does), the policy chooses a new chunk at the env's next observation. A loop's step is then:

    needed = queue_needs_chunk(queue)                  # choose chunks only if any(needed)
    action, queue = queue_pop(queue, chunk)            # chunk [n_envs, h, act_dim]
    ... env step ...
    queue = queue_clear(queue, done)

Pure functions over a small pytree, for the host and the fused loops alike.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp


class ActionQueue(NamedTuple):
    """actions [n_envs, h, act_dim]: each env's current chunk; position [n_envs] (int32): the
    index of its next action, h when the chunk is used up (or cleared)."""

    actions: jnp.ndarray
    position: jnp.ndarray

    @property
    def horizon(self) -> int:
        return self.actions.shape[1]


def queue_init(n_envs: int, horizon: int, act_dim: int) -> ActionQueue:
    """Every env's queue empty: the first step chooses a chunk for each."""
    return ActionQueue(
        actions=jnp.zeros((n_envs, horizon, act_dim), jnp.float32),
        position=jnp.full((n_envs,), horizon, jnp.int32),
    )


def queue_needs_chunk(queue: ActionQueue) -> jnp.ndarray:
    """[n_envs] bool: the envs whose next action comes from a new chunk."""
    return queue.position >= queue.horizon


def queue_pop(queue: ActionQueue, chunk: jnp.ndarray) -> tuple[jnp.ndarray, ActionQueue]:
    """The next action of each env [n_envs, act_dim] and the queue after it: the first action of
    `chunk` [n_envs, h, act_dim] (chosen at this step's observation) for the envs that need a
    chunk, whose rest is queued; the next queued action for the others (their row of `chunk`
    is ignored)."""
    needed = queue_needs_chunk(queue)
    actions = jnp.where(needed[:, None, None], chunk.astype(queue.actions.dtype), queue.actions)
    position = jnp.where(needed, 0, queue.position)
    action = jnp.take_along_axis(actions, position[:, None, None], axis=1)[:, 0]
    return action, ActionQueue(actions, position + 1)


def queue_clear(queue: ActionQueue, done: jnp.ndarray) -> ActionQueue:
    """The queue after an env step: emptied for the envs whose episode ended (`done` [n_envs],
    terminated or truncated), so their next observation, a reset one, chooses a new chunk."""
    return queue._replace(position=jnp.where(done > 0, queue.horizon, queue.position))
