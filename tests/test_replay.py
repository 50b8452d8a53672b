"""The device replay: ring-buffer writes and sampling from filled rows only."""

import jax
import jax.numpy as jnp
import numpy as np

from duetto.data.replay import Transition, replay_add, replay_init, replay_sample


def _rows(start, n):
    v = jnp.arange(start, start + n, dtype=jnp.float32)
    return Transition(
        obs=v[:, None],
        action=-v[:, None],
        reward=v,
        next_obs=v[:, None] + 0.5,
        terminated=jnp.zeros(n),
        done=jnp.zeros(n),
    )


def test_ring_buffer_wraps_around_and_overwrites_oldest():
    replay = replay_init(capacity=5, obs_dim=1, act_dim=1)
    replay = replay_add(replay, _rows(0, 2))
    replay = replay_add(replay, _rows(2, 2))
    assert int(replay.size) == 4 and int(replay.ptr) == 4
    replay = replay_add(replay, _rows(4, 3))  # rows 4, then 5 and 6 wrap to slots 0 and 1
    assert int(replay.size) == 5 and int(replay.ptr) == 2
    np.testing.assert_array_equal(replay.data.reward, [5, 6, 2, 3, 4])
    np.testing.assert_array_equal(replay.data.action[:, 0], [-5, -6, -2, -3, -4])
    np.testing.assert_array_equal(replay.data.next_obs[:, 0], [5.5, 6.5, 2.5, 3.5, 4.5])


def test_sampling_reads_only_filled_rows():
    replay = replay_init(capacity=100, obs_dim=1, act_dim=1)
    replay = replay_add(replay, _rows(1, 3))
    batch = jax.jit(replay_sample, static_argnums=2)(replay, jax.random.PRNGKey(0), 500)
    assert set(np.unique(batch.reward).tolist()) == {1.0, 2.0, 3.0}
    # each sampled row is a whole transition, not a mix of rows
    np.testing.assert_array_equal(batch.obs[:, 0], batch.reward)
    np.testing.assert_array_equal(batch.next_obs[:, 0], batch.reward + 0.5)
