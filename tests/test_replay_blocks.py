"""The replay's building blocks against hand computations: n-step windows, chunks and
sequences (data/nstep.py, data/chunks.py), the open-loop action queue, Symphony's fading
sampler and tiling (data/fading.py) and proportional prioritised replay (data/prioritised.py).

The hand-built replays interleave 2 envs as the loops write them: env 0 on the even rows of a
vector step, env 1 on the odd ones, so one env's consecutive transitions are 2 rows apart."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from duetto.data.action_queue import queue_clear, queue_init, queue_needs_chunk, queue_pop
from duetto.data.chunks import chunk_batch, sequence_batch
from duetto.data.fading import fading_rows, fading_weight, tile_fill
from duetto.data.nstep import nstep_batch
from duetto.data.prioritised import (
    annealed_beta,
    priorities_add,
    priorities_init,
    priorities_set,
    priorities_update,
    prioritised_rows,
)
from duetto.data.replay import Transition, replay_add, replay_init

GAMMA = 0.5
N_ENVS = 2
nstep = jax.jit(nstep_batch, static_argnums=(3, 4))
chunks = jax.jit(chunk_batch, static_argnums=(3, 4))


def _interleaved(capacity, rewards, terminated, truncated):
    """A replay written one vector step (a row per env) at a time, and its `done` ring.
    rewards etc. are [steps, n_envs]; obs of env e at step k is 100·e + k, next_obs that + 0.5,
    the action −obs."""
    replay = replay_init(capacity, obs_dim=1, act_dim=1, done=True)
    for k, (r, term, trunc) in enumerate(zip(rewards, terminated, truncated, strict=True)):
        obs = jnp.asarray([[100.0 * e + k] for e in range(N_ENVS)])
        term, ended = jnp.asarray(term), jnp.maximum(jnp.asarray(term), jnp.asarray(trunc))
        step = Transition(obs, -obs, jnp.asarray(r, jnp.float32), obs + 0.5, term, ended)
        replay = replay_add(replay, step)
    return replay, replay.data.done


def _blank(n):
    """n rows of zeros."""
    column, zero = jnp.zeros((n, 1)), jnp.zeros(n)
    return Transition(column, column, zero, column, zero, zero)


def _episodes():
    """6 vector steps into a ring of 16 (rows 0..11 written, ptr 12). Env 0 (rows 0, 2, .., 10)
    earns 1..6 and its episode is terminated at step 2 (row 4); env 1 (rows 1, 3, .., 11)
    earns 10..60 and its episode is truncated by the time limit at step 1 (row 3)."""
    rewards = [[1, 10], [2, 20], [3, 30], [4, 40], [5, 50], [6, 60]]
    terminated = [[0, 0], [0, 0], [1, 0], [0, 0], [0, 0], [0, 0]]
    truncated = [[0, 0], [0, 1], [0, 0], [0, 0], [0, 0], [0, 0]]
    return _interleaved(16, rewards, terminated, truncated)


def test_nstep_stops_at_termination_and_truncation_and_the_write_pointer():
    replay, done = _episodes()
    rows = jnp.asarray([0, 2, 6, 8, 10, 1, 3, 11])
    got = nstep(replay, done, rows, 3, N_ENVS, GAMMA)
    want_reward = [
        1 + 0.5 * 2 + 0.25 * 3,  # row 0: the termination is the window's last step
        2 + 0.5 * 3,  # row 2: terminated after 2 steps
        4 + 0.5 * 5 + 0.25 * 6,  # row 6: the new episode, whole
        5 + 0.5 * 6,  # row 8: row 12 is not written yet
        6,  # row 10: env 0's newest row
        10 + 0.5 * 20,  # row 1: truncated after 2 steps
        20,  # row 3: the truncated step itself
        60,  # row 11: env 1's newest row
    ]
    np.testing.assert_allclose(got.reward, want_reward)
    # γ^m after a truncation or at the write pointer, 0 after a termination
    np.testing.assert_allclose(got.discount, [0, 0, 0.125, 0.25, 0.5, 0.25, 0.5, 0.5])
    # s_{t+m}: the true final observation (next_obs) of the window's last row
    np.testing.assert_allclose(got.next_obs[:, 0], [2.5, 2.5, 5.5, 5.5, 5.5, 101.5, 101.5, 105.5])
    np.testing.assert_allclose(got.obs[:, 0], [0, 1, 3, 4, 5, 100, 101, 105])
    np.testing.assert_allclose(got.action[:, 0], [0, -1, -3, -4, -5, -100, -101, -105])


def test_one_step_window_is_the_one_step_transition():
    replay, done = _episodes()
    rows = jnp.arange(12)
    got = nstep(replay, done, rows, 1, N_ENVS, GAMMA)
    np.testing.assert_allclose(got.reward, replay.data.reward[:12])
    np.testing.assert_allclose(got.next_obs, replay.data.next_obs[:12])
    np.testing.assert_allclose(got.discount, GAMMA * (1 - replay.data.terminated[:12]))


def test_nstep_on_a_wrapped_ring_never_reads_overwritten_rows():
    # 5 vector steps (write index j = 0..9, reward j, obs of env e = 100·e + step) into a ring
    # of 7: slot s holds j = s + 7 for s < 3 and j = s otherwise; ptr 3, slot 3 (j = 3) oldest.
    rewards = [[2.0 * k, 2.0 * k + 1] for k in range(5)]
    zeros = [[0, 0]] * 5
    replay, done = _interleaved(7, rewards, zeros, zeros)
    assert int(replay.ptr) == 3 and int(replay.size) == 7
    slots = jnp.asarray([4, 6, 1, 5, 3, 2])
    got = nstep(replay, done, slots, 3, N_ENVS, GAMMA)
    want_reward = [
        4 + 0.5 * 6 + 0.25 * 8,  # j 4, 6, 8 (slots 4, 6, 1: around the end of the ring)
        6 + 0.5 * 8,  # j 6, 8; j 10 is not written, its slot 3 holds env 1's oldest row
        8,  # j 8: env 0's newest
        5 + 0.5 * 7 + 0.25 * 9,  # j 5, 7, 9
        3 + 0.5 * 5 + 0.25 * 7,  # j 3: the oldest row
        9,  # j 9: env 1's newest
    ]
    np.testing.assert_allclose(got.reward, want_reward)
    np.testing.assert_allclose(got.discount, [0.125, 0.25, 0.5, 0.125, 0.125, 0.5])
    # next_obs of j 8 (env 0, step 4), 8, 8, 9 (env 1, step 4), 7 (env 1, step 3), 9
    np.testing.assert_allclose(got.next_obs[:, 0], [4.5, 4.5, 4.5, 104.5, 103.5, 104.5])


def test_chunks_carry_actions_masks_and_the_bootstrap_discount():
    replay, done = _episodes()
    rows = jnp.asarray([0, 2, 6, 8, 1])
    got = chunks(replay, done, rows, 3, N_ENVS, GAMMA)
    valid = [[1, 1, 1], [1, 1, 0], [1, 1, 1], [1, 1, 0], [1, 1, 0]]
    np.testing.assert_array_equal(got.valid, valid)
    # a_{t:t+3}, 0 where not valid (the action of env e at step k is −(100·e + k))
    actions = [[0, -1, -2], [-1, -2, 0], [-3, -4, -5], [-4, -5, 0], [-100, -101, 0]]
    np.testing.assert_allclose(got.actions[..., 0], actions)
    assert got.actions.shape == (5, 3, 1)
    np.testing.assert_allclose(got.reward, [2.75, 3.5, 8, 8, 20])
    # γ^h for a whole chunk, 0 after a termination (even on the chunk's last step, where QC
    # keeps the chunk: valid[-1] = 1, mask 0), γ^m after a truncation or the write pointer
    np.testing.assert_allclose(got.discount, [0, 0, 0.125, 0.25, 0.25])
    np.testing.assert_allclose(got.next_obs[:, 0], [2.5, 2.5, 5.5, 5.5, 101.5])
    np.testing.assert_allclose(got.obs[:, 0], [0, 1, 3, 4, 100])


def test_sequences_hold_each_step_up_to_the_episode_end():
    replay, done = _episodes()
    steps, valid = jax.jit(sequence_batch, static_argnums=(3, 4))(
        replay, done, jnp.asarray([2, 1]), 3, N_ENVS
    )
    np.testing.assert_array_equal(valid, [[1, 1, 0], [1, 1, 0]])
    np.testing.assert_allclose(steps.obs[..., 0], [[1, 2, 0], [100, 101, 0]])
    np.testing.assert_allclose(steps.reward, [[2, 3, 0], [10, 20, 0]])
    np.testing.assert_allclose(steps.terminated, [[0, 1, 0], [0, 0, 0]])
    np.testing.assert_allclose(steps.next_obs[..., 0], [[1.5, 2.5, 0], [100.5, 101.5, 0]])


def test_action_queue_plays_chunks_open_loop_and_clears_on_episode_end():
    queue = queue_init(n_envs=2, horizon=3, act_dim=1)
    never = jnp.full((2, 3, 1), -1.0)  # rows of envs that do not need a chunk: unused

    def chunk(env0, env1):
        return jnp.asarray([env0, env1], jnp.float32)[..., None]

    np.testing.assert_array_equal(queue_needs_chunk(queue), [True, True])
    action, queue = queue_pop(queue, chunk([1, 2, 3], [10, 20, 30]))
    np.testing.assert_array_equal(action[:, 0], [1, 10])
    action, queue = queue_pop(queue, never)
    np.testing.assert_array_equal(action[:, 0], [2, 20])
    queue = queue_clear(queue, jnp.asarray([0.0, 1.0]))  # env 1's episode ended
    np.testing.assert_array_equal(queue_needs_chunk(queue), [False, True])
    action, queue = queue_pop(queue, chunk([-1, -1, -1], [40, 50, 60]))
    np.testing.assert_array_equal(action[:, 0], [3, 40])
    np.testing.assert_array_equal(queue_needs_chunk(queue), [True, False])
    action, queue = queue_pop(queue, chunk([4, 5, 6], [-1, -1, -1]))
    np.testing.assert_array_equal(action[:, 0], [4, 50])


def test_action_queue_runs_inside_a_scan():
    def step(queue, t):
        chunk = (10.0 * t + jnp.arange(3.0))[None, :, None]  # chosen at step t: 10t, 10t + 1, ..
        action, queue = queue_pop(queue, chunk)
        return queue_clear(queue, (t == 4)[None].astype(jnp.float32)), action[0, 0]

    _, actions = jax.lax.scan(step, queue_init(1, 3, 1), jnp.arange(8))
    # chunks chosen at steps 0 and 3, cleared after step 4, so chosen again at 5
    np.testing.assert_array_equal(actions, [0, 1, 2, 30, 31, 50, 51, 52])


def test_fading_weights_rise_with_age_and_match_the_official_formula():
    capacity = 512_000  # Symphony's buffer: 10,240 exploration steps × 50
    age = jnp.arange(capacity, dtype=jnp.float32)
    w = np.asarray(fading_weight(age, capacity), np.float64)
    # rising with age, up to the rounding of float32 tanh near 1 (a few ulps of 6e-8)
    assert w[0] == 0.0 and np.diff(w).min() > -1e-6 and w[-1] > 0.999999
    assert np.all(np.diff(w[: capacity // 2 : 1000]) > 0)  # strictly, where w < 1
    # tanh((π·x)^e) at age fractions x = 0.1, 0.25, 0.5 (by hand)
    quarter = np.asarray([capacity // 10, capacity // 4, capacity // 2])
    np.testing.assert_allclose(w[quarter], [0.0429383, 0.4766116, 0.9978310], rtol=1e-5)
    p = w / w.sum()
    # The spec's "about 70 % of the mass in the newest 70 %" does not hold for this formula:
    # the newest 70 % hold 91.6 % and the oldest 30 % 8.4 % ("fades out the oldest 30 %").
    newest = p[int(0.3 * capacity) :].sum()
    assert abs(newest - 0.9156) < 1e-3
    assert abs(w.mean() - 0.7460) < 1e-3  # the acceptance rate of the sampler's candidates


@pytest.mark.parametrize("written", [10 + 4, 6])  # a wrapped ring (ptr 4) and a partial one
def test_fading_sampler_draws_rows_by_their_weight(written):
    capacity, draws = 10, 200_000
    replay = replay_init(capacity, obs_dim=1, act_dim=1)
    replay = replay_add(replay, _blank(written))
    size, ptr = int(replay.size), int(replay.ptr)
    rows = np.asarray(jax.jit(fading_rows, static_argnums=2)(replay, jax.random.PRNGKey(0), draws))
    assert rows.min() >= 0 and rows.max() < size
    age = (rows - (ptr - size)) % capacity  # 0 the oldest
    freq = np.bincount(age, minlength=size) / draws
    w = np.tanh((np.pi * np.arange(size) / size) ** np.e)
    assert freq[0] == 0.0  # the oldest row's weight is 0
    np.testing.assert_allclose(freq, w / w.sum(), atol=0.004)


def test_tiling_fills_the_buffer_as_symphony_does():
    replay, _ = _interleaved(12, [[1, 2], [3, 4]], [[0, 0]] * 2, [[0, 0]] * 2)
    filled = jax.jit(tile_fill)(replay)
    assert int(filled.size) == 12 and int(filled.ptr) == 0  # the next write evicts row 0
    # capacity = 3 × 4 rows: torch's repeat(3, 1) of the exploration rows, as norm_fill does
    np.testing.assert_array_equal(filled.data.reward, np.tile([1, 2, 3, 4], 3))
    np.testing.assert_array_equal(filled.data.obs[:, 0], np.tile([0, 100, 1, 101], 3))
    # not a multiple: the newest rows end with the newest exploration row, the partial copy
    # sits at the oldest rows
    replay, _ = _interleaved(10, [[1, 2], [3, 4]], [[0, 0]] * 2, [[0, 0]] * 2)
    np.testing.assert_array_equal(tile_fill(replay).data.reward, [3, 4, 1, 2, 3, 4, 1, 2, 3, 4])
    # a full (wrapped) replay is left as it is
    wrapped, _ = _interleaved(4, [[1, 2], [3, 4], [5, 6]], [[0, 0]] * 3, [[0, 0]] * 3)
    same = tile_fill(wrapped)
    assert int(same.ptr) == int(wrapped.ptr) == 2
    np.testing.assert_array_equal(same.data.reward, wrapped.data.reward)


def _tree_is_consistent(priorities, leaves):
    sums, mins = np.asarray(priorities.sums), np.asarray(priorities.mins)
    for node in range(1, leaves):
        assert np.isclose(sums[node], sums[2 * node] + sums[2 * node + 1], rtol=1e-5)
        assert mins[node] == min(mins[2 * node], mins[2 * node + 1])


def test_sum_tree_holds_the_sum_and_minimum_after_random_updates():
    capacity = 13  # rounded up to 16 leaves
    priorities = priorities_init(capacity)
    assert priorities.sums.shape == (32,)
    update = jax.jit(priorities_set)
    rng = np.random.default_rng(0)
    held = np.zeros(capacity)
    for _ in range(20):
        rows = rng.integers(0, capacity, size=5)
        p = rng.uniform(0.1, 3.0, size=5)
        priorities = update(priorities, jnp.asarray(rows), jnp.asarray(p, jnp.float32))
        for r in set(rows.tolist()):
            held[r] = p[rows == r].max()  # a row drawn twice keeps the larger priority
    twice = jnp.asarray([3, 3, 7, 7, 7])  # the first of row 3 and the last of row 7 the larger
    priorities = update(priorities, twice, jnp.asarray([5.0, 0.5, 0.2, 0.1, 0.3]))
    held[3], held[7] = 5.0, 0.3
    np.testing.assert_allclose(priorities.sums[16 : 16 + capacity], held, rtol=1e-6)
    assert np.isclose(float(priorities.sums[1]), held.sum(), rtol=1e-5)
    assert float(priorities.mins[1]) == pytest.approx(held[held > 0].min())
    _tree_is_consistent(priorities, 16)


def test_new_rows_get_the_largest_priority_and_updates_follow_td_errors():
    replay = replay_init(8, obs_dim=1, act_dim=1)
    priorities = priorities_add(priorities_init(8), replay, 2)  # rows 0 and 1 at 1.0
    np.testing.assert_allclose(priorities.sums[8:10], [1.0, 1.0])
    # p = (|δ| + ε)^α: δ = −3, 0 with ε = 1, α = 0.5 -> 2, 1
    priorities = priorities_update(
        priorities, jnp.asarray([0, 1]), jnp.asarray([-3.0, 0.0]), 0.5, 1.0
    )
    np.testing.assert_allclose(priorities.sums[8:10], [2.0, 1.0])
    assert float(priorities.max_priority) == 2.0
    replay = replay_add(replay, _blank(7))
    priorities = priorities_add(priorities, replay, 2)  # ptr 7: rows 7 and 0 (the ring wraps)
    np.testing.assert_allclose(priorities.sums[8:16], [2, 1, 0, 0, 0, 0, 0, 2])
    assert float(priorities.sums[1]) == 5.0 and float(priorities.mins[1]) == 1.0


def test_prioritised_draws_are_stratified_and_follow_the_priorities():
    priorities = priorities_set(priorities_init(5), jnp.arange(4), jnp.asarray([1.0, 1, 1, 1]))
    # 4 equal segments of 4 equal priorities: one draw from each row, in order
    rows, weights = prioritised_rows(priorities, jax.random.PRNGKey(1), 4, 0.4)
    np.testing.assert_array_equal(rows, [0, 1, 2, 3])
    np.testing.assert_allclose(weights, 1.0)

    p = np.asarray([1.0, 2.0, 3.0, 4.0, 0.5])
    priorities = priorities_set(priorities_init(6), jnp.arange(5), jnp.asarray(p, jnp.float32))
    draw = jax.jit(jax.vmap(prioritised_rows, in_axes=(None, 0, None, None)), static_argnums=2)
    rows, weights = draw(priorities, jax.random.split(jax.random.PRNGKey(0), 4000), 32, 0.5)
    rows = np.asarray(rows).ravel()
    assert rows.max() < 5  # row 5 was never given a priority
    freq = np.bincount(rows, minlength=5) / rows.size
    # 128,000 draws: a binomial s.d. of at most 0.0014 per frequency
    np.testing.assert_allclose(freq, p / p.sum(), atol=0.005)
    # w = (N·P(i))^−β / max_j w_j with N = 5, P(i) = p_i / 10.5: by hand for β = 0.5
    want = {0: (0.5 / 1.0) ** 0.5, 1: (0.5 / 2.0) ** 0.5, 3: 0.5**0.5 / 2, 4: 1.0}
    for row, w in want.items():
        np.testing.assert_allclose(np.asarray(weights).ravel()[rows == row], w, rtol=1e-6)


def test_prioritised_draws_never_reach_a_row_without_priority():
    # A root above the sum of its leaves, as float32 rounding can leave it (exaggerated here):
    # draws past the left leaf's sum stay on the left rather than reach row 1, never given one.
    leaves = priorities_init(2)._replace(sums=jnp.asarray([0.0, 1.5, 1.0, 0.0]))
    rows, _ = prioritised_rows(leaves, jax.random.PRNGKey(0), 64, 0.4)
    np.testing.assert_array_equal(rows, 0)


def test_beta_is_annealed_to_one():
    np.testing.assert_allclose(
        [annealed_beta(s, 1000) for s in (0, 500, 1000, 5000)], [0.4, 0.7, 1.0, 1.0]
    )
