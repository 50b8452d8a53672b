"""The off-policy host loop: transitions under autoreset, seeds, compilations, bad envs."""

import gymnasium as gym
import jax
import numpy as np
import pytest
from probe_envs import CountingEnv, NaNEnv

import duetto
from duetto.errors import DuettoError


def _stored(agent):
    replay = agent.loop.state.replay
    n = int(replay.size)
    return jax.tree.map(lambda x: np.asarray(x)[:n], replay.data)


def test_truncation_keeps_true_final_obs_and_does_not_terminate(tiny):
    env = gym.wrappers.TimeLimit(CountingEnv(), max_episode_steps=4)
    agent = duetto.SAC(env, seed=0, run_dir=False, **{**tiny, "learning_starts": 1000})
    agent.learn(10, eval_every=1000, eval_episodes=1)
    data = _stored(agent)
    # episodes of 4 steps: t goes 0→1→2→3→4 (truncated), then a new episode starts at t=0
    np.testing.assert_array_equal(data.obs[:, 0], [0, 1, 2, 3, 0, 1, 2, 3, 0, 1])
    np.testing.assert_array_equal(data.next_obs[:, 0], [1, 2, 3, 4, 1, 2, 3, 4, 1, 2])
    np.testing.assert_array_equal(data.next_obs[:, 1], [0, 0, 0, 0, 1, 1, 1, 1, 2, 2])
    assert not data.terminated.any()


def test_termination_is_stored_as_terminated(tiny):
    agent = duetto.SAC(
        CountingEnv(terminate_at=3), seed=0, run_dir=False, **{**tiny, "learning_starts": 1000}
    )
    agent.learn(7, eval_every=1000, eval_episodes=1)
    data = _stored(agent)
    np.testing.assert_array_equal(data.obs[:, 0], [0, 1, 2, 0, 1, 2, 0])
    np.testing.assert_array_equal(data.next_obs[:, 0], [1, 2, 3, 1, 2, 3, 1])
    np.testing.assert_array_equal(data.terminated, [0, 0, 1, 0, 0, 1, 0])


def test_actions_are_stored_in_unit_box_and_rescaled_to_env_bounds(tiny):
    agent = duetto.SAC(
        CountingEnv(terminate_at=50), seed=0, run_dir=False, **{**tiny, "learning_starts": 1000}
    )
    agent.learn(40, eval_every=1000, eval_episodes=1)
    data = _stored(agent)
    assert np.all(np.abs(data.action) <= 1.0)
    # reward = env action = 2·stored action (bounds ±2)
    np.testing.assert_allclose(data.reward, 2.0 * data.action[:, 0], rtol=1e-5)
    assert np.abs(data.action).max() > 0.5  # exploration covers the box
    assert np.all(np.abs(agent.predict(np.zeros(2))[0]) <= 2.0)


def test_vector_envs_store_every_sub_env(tiny):
    agent = duetto.SAC(
        CountingEnv(terminate_at=2),
        seed=0,
        n_envs=3,
        run_dir=False,
        **{**tiny, "learning_starts": 1000},
    )
    agent.learn(6, eval_every=1000, eval_episodes=1)
    data = _stored(agent)
    assert agent.env_steps == 6 and len(data.reward) == 6
    np.testing.assert_array_equal(data.terminated, [0, 0, 0, 1, 1, 1])


def _params(agent):
    return [np.asarray(x) for x in jax.tree.leaves(agent.state)]


def test_same_seed_same_result_and_other_seed_differs(tiny):
    runs = [
        duetto.SAC("Pendulum-v1", seed=s, run_dir=False, **tiny).learn(300, eval_every=300)
        for s in (3, 3, 4)
    ]
    a, b, c = (_params(r) for r in runs)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))
    assert runs[0].last_eval["returns"] == runs[1].last_eval["returns"]


def test_each_program_compiles_once_per_run(tiny):
    agent = duetto.SAC("Pendulum-v1", seed=0, run_dir=False, **tiny)
    agent.learn(200, eval_every=100, eval_episodes=2)
    agent.learn(100, eval_every=50, eval_episodes=2)
    agent.predict(np.zeros(3))
    agent.predict(np.zeros((5, 3)))  # another batch size is another program, once
    for program in agent.loop.programs:
        assert program.cache_size() == 1
    assert agent.loop._policy._cache_size() == 3  # evaluation batch 2, predict batches 1 and 5


def test_nan_from_env_is_a_clear_error(tiny):
    agent = duetto.SAC(NaNEnv(), seed=0, run_dir=False, **tiny)
    with pytest.raises(DuettoError, match="non-finite observation.*env step"):
        agent.learn(20)


def test_discrete_env_is_refused_with_a_pointer():
    with pytest.raises(DuettoError, match="continuous \\(Box\\) action space.*Discrete"):
        duetto.SAC("CartPole-v1")


def test_unknown_hyperparameter_suggests_closest():
    with pytest.raises(DuettoError, match="unknown hyperparameter 'learnig_rate'.*'learning_rate'"):
        duetto.SAC("Pendulum-v1", learnig_rate=1e-3)


@pytest.mark.parametrize(
    "key,value,match",
    [
        ("tau", 0.0, "in \\(0, 1\\]"),
        ("gamma", 1.5, "in \\[0, 1\\]"),
        ("batch_size", 0, "in \\[1, inf\\]"),
        ("learning_rate", float("nan"), "learning_rate"),
        ("matmul_dtype", "float16", "one of 'float32', 'bfloat16'"),
        ("batch_size", 2.5, "must be an integer"),
    ],
)
def test_out_of_range_values_are_refused(key, value, match):
    with pytest.raises(DuettoError, match=match):
        duetto.SAC("Pendulum-v1", **{key: value})


def test_unknown_preset_and_env():
    with pytest.raises(DuettoError, match="unknown preset 'zo'.*'zoo'"):
        duetto.SAC("Pendulum-v1", preset="zo")
    with pytest.raises(DuettoError, match="unknown environment 'Pendulum-v0'.*'Pendulum-v1'"):
        duetto.SAC("Pendulum-v0")
