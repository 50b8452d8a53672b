"""The fused loop's env steps: randomness drawn ahead (`step_noise`), autoreset and the time limit
as gymnax's own `step` does them, and PPO's exploration from noise drawn ahead."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from duetto.algorithms import ppo
from duetto.config import build_config
from duetto.envs.jaxenv import CLASSIC, StepNoise, make_jax_env
from duetto.envs.spec import EnvSpec


def cartpole():
    return make_jax_env("gymnax:CartPole-v1", "ppo", ("discrete", "box"))


def test_step_from_autoresets_only_where_an_episode_ends():
    env = cartpole()
    n = 3
    obs, state = env.reset(jax.random.PRNGKey(0), n)
    # env 0 about to fall over (terminates), env 1 at the time limit (truncates), env 2 runs on
    state = state.replace(
        theta=state.theta.at[0].set(0.3),  # past the 12° limit
        time=state.time.at[1].set(env.params.max_steps_in_episode - 1),
    )
    action = jnp.asarray([1, 0, 1])
    noise = env.step_noise(jax.random.PRNGKey(1), (n,))
    new_obs, new_state, reward, terminated, truncated, final = env.step_from(noise, state, action)

    # The dynamics as gymnax steps them (its key does not matter to CartPole's dynamics; its
    # step is compiled on its own here, so the floats agree to rounding).
    keys = jax.random.split(jax.random.PRNGKey(2), n)
    g_obs, g_state, g_reward, g_term, g_trunc, g_info = jax.vmap(
        env.env.step, in_axes=(0, 0, 0, None)
    )(keys, state, action.astype(jnp.int32), env.params)
    np.testing.assert_array_equal(terminated, [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(truncated, np.asarray(g_trunc, np.float32))
    assert truncated[1] == 1.0 and truncated[2] == 0.0
    np.testing.assert_array_equal(reward, np.asarray(g_reward, np.float32))
    np.testing.assert_allclose(final, g_info["final_observation"], rtol=1e-6, atol=1e-7)
    # Ended episodes start again from the noise's fresh episode; the running one goes on.
    np.testing.assert_array_equal(new_obs[:2], noise.reset_obs[:2])
    np.testing.assert_array_equal(new_obs[2], final[2])
    np.testing.assert_allclose(new_obs[2], g_obs[2], rtol=1e-6, atol=1e-7)
    for fresh, stepped, got in zip(
        jax.tree.leaves(noise.reset_state),
        jax.tree.leaves(g_state),
        jax.tree.leaves(new_state),
        strict=True,
    ):
        np.testing.assert_array_equal(got[:2], fresh[:2])
        np.testing.assert_allclose(got[2], stepped[2], rtol=1e-6, atol=1e-7)
        assert got.dtype == stepped.dtype


def random_actions(env, key, n):
    if env.spec.discrete:
        return jax.random.randint(key, (n,), 0, env.spec.action_dim)
    return jax.random.uniform(key, (n, env.spec.action_dim), minval=-1.0, maxval=1.0)


@pytest.mark.parametrize("name", sorted(CLASSIC))
def test_step_from_is_gymnax_step_given_the_same_randomness(name):
    """Every classic-control env, 40 steps of 16 envs with random actions, half of them started
    3 steps before the time limit: step_from, given the keys gymnax's `step` splits for its
    dynamics and its reset, returns what gymnax's `step` returns."""
    env = make_jax_env("gymnax:" + name, "ppo", ("discrete", "box"))
    assert not env.own_step
    n = 16
    _, state = env.reset(jax.random.PRNGKey(0), n)
    state = state.replace(time=state.time.at[: n // 2].set(env.max_steps - 3))
    key, ended, truncations = jax.random.PRNGKey(1), 0, 0

    @jax.jit
    def both(state, k_act, k_step):
        action = random_actions(env, k_act, n)
        keys = jax.random.split(k_step, n)
        pairs = jax.vmap(jax.random.split)(keys)  # gymnax: key_step, key_reset = split(key)
        fresh_obs, fresh = jax.vmap(env.env.reset_env, in_axes=(0, None))(pairs[:, 1], env.params)
        noise = StepNoise(pairs[:, 0], fresh_obs.reshape(n, -1).astype(jnp.float32), fresh)
        ours = env.step_from(noise, state, action)
        theirs = jax.vmap(env.env.step, in_axes=(0, 0, 0, None))(
            keys, state, env.to_env(action), env.params
        )
        return ours, theirs

    for _ in range(40):
        key, k_act, k_step = jax.random.split(key, 3)
        ours, theirs = both(state, k_act, k_step)
        obs, new_state, reward, terminated, truncated, final = ours
        g_obs, g_state, g_reward, g_term, g_trunc, g_info = theirs
        close = {"rtol": 1e-5, "atol": 1e-5}
        np.testing.assert_allclose(obs, g_obs.reshape(n, -1), **close)
        np.testing.assert_allclose(final, g_info["final_observation"].reshape(n, -1), **close)
        np.testing.assert_allclose(reward, g_reward.reshape(n), **close)
        np.testing.assert_array_equal(terminated, g_term.astype(np.float32))
        np.testing.assert_array_equal(truncated, g_trunc.astype(np.float32))
        for ours, theirs in zip(jax.tree.leaves(new_state), jax.tree.leaves(g_state), strict=True):
            assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
            np.testing.assert_allclose(ours, theirs, **close)
        state = new_state
        ended += int(jnp.maximum(terminated, truncated).sum())
        truncations += int(truncated.sum())
    assert truncations >= n // 2 and ended >= truncations  # the time limit was reached


def test_step_noise_for_a_rollout_is_per_step_and_env():
    env = cartpole()
    noise = env.step_noise(jax.random.PRNGKey(0), (5, 4))
    assert noise.keys.shape[:2] == (5, 4) and noise.reset_obs.shape == (5, 4, 4)
    assert all(x.shape[:2] == (5, 4) for x in jax.tree.leaves(noise.reset_state))
    flat = np.asarray(noise.reset_obs).reshape(20, 4)
    assert len(np.unique(flat, axis=0)) == 20  # a different fresh episode for each
    assert np.all(np.abs(flat) <= 0.05)  # CartPole's reset range
    # The keys for the dynamics are not the ones the fresh episodes were drawn from.
    again, _ = jax.vmap(env.env.reset_env, in_axes=(0, None))(
        noise.keys.reshape(20, -1), env.params
    )
    assert not np.any(np.all(np.asarray(again) == flat, axis=1))
    # New-style typed keys work as well.
    typed = env.step_noise(jax.random.key(0), (5, 4))
    assert typed.keys.shape == (5, 4) and typed.reset_obs.shape == (5, 4, 4)


def test_an_env_with_its_own_step_steps_through_it():
    """bsuite's DeepSea overrides gymnax's `step` to count bad episodes across its resets; it
    keeps doing so under duetto."""
    env = make_jax_env("gymnax:DeepSea-bsuite", "ppo", ("discrete", "box"))
    assert env.own_step
    n = 4
    _, state = env.reset(jax.random.PRNGKey(0), n)
    key = jax.random.PRNGKey(1)

    @jax.jit
    def both(state, k_act, k_step):
        action = random_actions(env, k_act, n)
        noise = env.step_noise(k_step, (n,))
        theirs = jax.vmap(env.env.step, in_axes=(0, 0, 0, None))(
            noise.keys, state, env.to_env(action), env.params
        )
        return noise, env.step_from(noise, state, action), theirs

    for _ in range(30):
        key, k_act, k_step = jax.random.split(key, 3)
        noise, (obs, new_state, *_), g = both(state, k_act, k_step)
        assert noise.reset_obs is None
        np.testing.assert_array_equal(obs, g[0].reshape(n, -1))
        for ours, theirs in zip(jax.tree.leaves(new_state), jax.tree.leaves(g[1]), strict=True):
            np.testing.assert_array_equal(ours, theirs)
        state = new_state
    assert int(state.total_bad_episodes.max()) > 0  # carried across the episodes' ends


def test_explore_samples_the_policy_from_noise_drawn_ahead():
    cfg = build_config(ppo.PPOConfig, "ppo", {}, {})
    key = jax.random.PRNGKey(0)
    # Discrete: Gumbel-max, the same draw as jax.random.categorical with the noise's key.
    state = ppo.init(key, EnvSpec(obs_dim=3, action_dim=3, discrete=True), cfg, n_envs=1)
    obs = jax.random.normal(jax.random.PRNGKey(1), (4, 3))
    logits = ppo.distribution(state, state.params, obs)
    k = jax.random.PRNGKey(2)
    action, log_prob = ppo.explore(state, obs, ppo.exploration_noise(state, k, (4,)))
    np.testing.assert_array_equal(action, jax.random.categorical(k, logits, axis=-1))
    np.testing.assert_allclose(
        log_prob, jax.nn.log_softmax(logits)[jnp.arange(4), action], rtol=1e-6
    )
    # ... and its frequencies are the policy's probabilities.
    one = jnp.broadcast_to(obs[:1], (40_000, 3))
    noise = ppo.exploration_noise(state, jax.random.PRNGKey(3), (40_000,))
    counts = np.bincount(np.asarray(ppo.explore(state, one, noise)[0]), minlength=3)
    np.testing.assert_allclose(counts / 40_000, jax.nn.softmax(logits[0]), atol=0.01)
    # Box: mean + σ·noise.
    state = ppo.init(key, EnvSpec(obs_dim=3, action_dim=2), cfg, n_envs=1)
    mean, log_std = ppo.distribution(state, state.params, obs)
    noise = ppo.exploration_noise(state, k, (4,))
    assert noise.shape == (4, 2)
    action, _ = ppo.explore(state, obs, noise)
    np.testing.assert_allclose(action, mean + jnp.exp(log_std) * noise, rtol=1e-6)
