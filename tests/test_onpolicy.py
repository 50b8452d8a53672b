"""PPO on the host loop: learning, exact resume mid-rollout, one compilation per program, and
the bad inputs of the on-policy loop."""

import numpy as np
import pytest

import duetto
from duetto.errors import DuettoError

SEEDS = [0, 1, 2, 3, 4]


def test_ppo_host_solves_cartpole_by_100k_on_4_of_5_seeds():
    """RL-Zoo preset (RL-Zoo: 500 ± 0 at 100k); stops at the first evaluation of 500."""
    solved = []
    for seed in SEEDS:
        agent = duetto.PPO("CartPole-v1", seed=seed, preset="cartpole", run_dir=False)
        agent.learn(100_000, eval_every=10_000, stop_at_return=500)
        solved.append(agent.last_eval["return_mean"] >= 500)
    assert sum(solved) >= 4, solved


def test_ppo_discrete_and_box_actions_reach_the_env_in_its_terms():
    agent = duetto.PPO("CartPole-v1", seed=0, run_dir=False, n_steps=16, batch_size=16)
    action, _ = agent.predict(np.zeros(4))
    assert action.shape == () and action.dtype == np.int64 and action in (0, 1)
    agent = duetto.PPO("Pendulum-v1", seed=0, run_dir=False, n_steps=16, batch_size=16)
    actions, _ = agent.predict(np.zeros((5, 3)), deterministic=False)
    assert actions.shape == (5, 1) and np.all(np.abs(actions) <= 2.0)


def test_each_ppo_program_compiles_once():
    agent = duetto.PPO("CartPole-v1", seed=0, run_dir=False, n_steps=8, batch_size=8, n_envs=2)
    agent.learn(100, eval_every=40)
    for program in agent.loop.programs:
        assert program.cache_size() == 1


def test_minibatch_that_does_not_divide_the_rollout_is_refused():
    with pytest.raises(
        DuettoError, match="does not divide the rollout of n_steps × n_envs = 100 × 2 = 200"
    ):
        duetto.PPO("CartPole-v1", n_steps=100, batch_size=64, n_envs=2, run_dir=False)


def test_seeds_need_a_jax_env_and_cannot_be_given_twice():
    with pytest.raises(DuettoError, match="needs a JAX-native env such as 'gymnax:CartPole-v1'"):
        duetto.PPO("CartPole-v1", seeds=[0, 1], run_dir=False)
    with pytest.raises(DuettoError, match="seeds given twice"):
        duetto.PPO("gymnax:CartPole-v1", seed=0, seeds=[0, 1], run_dir=False)


def test_async_envs_step_as_sync_ones_and_resume_exactly(tmp_path):
    """Sub-envs in subprocesses give the same run as in-process ones, and a checkpoint of an
    async run holds the sub-envs' states (fetched from the workers), so resume is exact."""
    import jax

    hp = dict(n_steps=16, batch_size=16, n_envs=2, run_dir=False)
    sync = duetto.PPO("CartPole-v1", seed=4, **hp)
    sync.learn(96, eval_every=1000)
    first = duetto.PPO("CartPole-v1", seed=4, vectorization="async", **hp)
    first.learn(40, eval_every=1000)
    first.save(tmp_path / "a.ckpt")
    first.close()
    resumed = duetto.load(tmp_path / "a.ckpt")
    assert resumed.loop.vectorization == "async"
    resumed.learn(56, eval_every=1000)
    for a, b in zip(
        jax.tree.leaves(sync.loop.state), jax.tree.leaves(resumed.loop.state), strict=True
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    resumed.close()
    with pytest.raises(DuettoError, match="vectorization must be one of sync, async"):
        duetto.PPO("CartPole-v1", vectorization="threads", run_dir=False)
