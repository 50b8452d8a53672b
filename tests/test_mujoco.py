"""MuJoCo (Gymnasium v5): checkpoints hold the whole simulation, so resume is exact; smoke runs."""

import pickle

import gymnasium as gym
import jax
import numpy as np
import pytest

import duetto
from duetto.envs.gym import EnvCopy


@pytest.mark.parametrize("env_id", ["HalfCheetah-v5", "Ant-v5"])
def test_a_pickled_mujoco_env_steps_on_as_the_original(env_id):
    """Gymnasium's MuJoCo envs pickle as constructor arguments (a fresh env); EnvCopy adds the
    mjData (state and the derived quantities rewards read) and the RNG."""
    env = gym.make(env_id)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(7):
        env.step(rng.uniform(-0.4, 0.4, env.action_space.shape))
    plain = pickle.loads(pickle.dumps(env))
    copy = pickle.loads(pickle.dumps(EnvCopy(env))).env
    differs = False
    for _ in range(30):
        a = rng.uniform(-0.4, 0.4, env.action_space.shape)
        r1, r2, r3 = env.step(a), copy.step(a), plain.step(a)
        np.testing.assert_array_equal(r1[0], r2[0])
        assert r1[1:4] == r2[1:4]
        differs |= not np.array_equal(r1[0], r3[0])
    assert differs  # the plain pickle would not have resumed exactly


def test_sac_on_halfcheetah_resumes_exactly(tmp_path):
    hp = dict(hidden=(32, 32), batch_size=32, learning_starts=64, buffer_size=1_000)
    full = duetto.SAC("HalfCheetah-v5", seed=1, run_dir=False, **hp)
    full.learn(200, eval_every=1_000, eval_episodes=1)
    half = duetto.SAC("HalfCheetah-v5", seed=1, run_dir=False, **hp)
    half.learn(90, eval_every=1_000, eval_episodes=1)
    half.save(tmp_path / "h.ckpt")
    resumed = duetto.load(tmp_path / "h.ckpt")
    resumed.learn(110, eval_every=1_000, eval_episodes=1)
    for a, b in zip(
        jax.tree.leaves(full.loop.state), jax.tree.leaves(resumed.loop.state), strict=True
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("algo", ["TD3", "DSACT", "PPO"])
def test_smoke_on_hopper(algo):
    hp = {
        "TD3": dict(hidden=(32, 32), batch_size=32, learning_starts=64),
        "DSACT": dict(hidden=(32, 32), batch_size=32, learning_starts=64),
        "PPO": dict(n_steps=32, batch_size=32),
    }[algo]
    agent = getattr(duetto, algo)("Hopper-v5", seed=0, run_dir=False, **hp)
    agent.learn(128, eval_every=1_000, eval_episodes=1)
    assert agent.predict(np.zeros(11))[0].shape == (3,)
