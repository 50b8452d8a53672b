"""SAC's losses and update, each against a computation by hand."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from duetto import losses
from duetto.algorithms import sac
from duetto.data.replay import Transition, one_step_batch
from duetto.envs.spec import EnvSpec


def test_soft_target_matches_hand_computation():
    reward = jnp.array([1.0, -2.0, 0.5])
    terminated = jnp.array([0.0, 1.0, 0.0])
    next_q = jnp.array([[3.0, 10.0, -1.0], [2.0, 11.0, -4.0]])  # [N=2, B=3]
    next_log_prob = jnp.array([-1.0, 0.3, 2.0])
    y = losses.soft_target(reward, 0.9 * (1 - terminated), next_q, next_log_prob, alpha=0.2)
    # y = r + γ(1−d)(min Q̄ − α log π)
    expected = [1.0 + 0.9 * (2.0 + 0.2), -2.0, 0.5 + 0.9 * (-4.0 - 0.4)]
    np.testing.assert_allclose(y, expected, rtol=1e-6)


def test_truncated_transition_bootstraps_and_terminated_does_not():
    next_q = jnp.array([[5.0], [6.0]])
    zero = jnp.zeros(1)
    truncated = one_step_batch(_transition(terminated=0.0), 0.99)
    terminated = one_step_batch(_transition(terminated=1.0), 0.99)
    kept = losses.soft_target(truncated.reward, truncated.discount, next_q, zero, 0.0)
    cut = losses.soft_target(terminated.reward, terminated.discount, next_q, zero, 0.0)
    np.testing.assert_allclose(kept, [1.0 + 0.99 * 5.0])
    np.testing.assert_allclose(cut, [1.0])


def test_critic_loss_is_half_mse_summed_over_critics():
    q = jnp.array([[1.0, 2.0], [0.0, 4.0]])
    y = jnp.array([2.0, 2.0])
    # critic 1: ½·mean(1, 0) = 0.25; critic 2: ½·mean(4, 4) = 2.0
    np.testing.assert_allclose(losses.critic_regression(q, y), 2.25, rtol=1e-6)


def test_actor_loss_uses_min_over_critics():
    log_prob = jnp.array([-1.0, 0.5])
    q = jnp.array([[3.0, 1.0], [2.0, 4.0]])
    # mean(α log π − min Q) = mean(0.5·(−1) − 2, 0.5·0.5 − 1) = mean(−2.5, −0.75)
    np.testing.assert_allclose(sac.actor_loss(log_prob, q, 0.5), -1.625, rtol=1e-6)


def test_temperature_gradient_lowers_alpha_when_entropy_is_above_target():
    log_prob = jnp.array([-3.0, -2.0])  # entropy ≈ 2.5 > H̄ = −1
    grad = jax.grad(losses.temperature_loss)(jnp.array(0.0), log_prob, -1.0)
    # dL/dlogα = −mean(log π + H̄) = −(−2.5 − 1) = 3.5 > 0, so descent lowers α
    np.testing.assert_allclose(grad, 3.5, rtol=1e-6)


def _transition(terminated):
    """One time-limit truncation (done, not terminated) or termination, with reward 1."""
    one = jnp.ones(1)
    obs = jnp.zeros((1, 1))
    return Transition(obs, obs, one, obs, terminated * one, one)


def _batch(key, spec, n=64):
    """n 1-step transitions, every 7th terminated, as the loops give them to update (γ 0.99)."""
    k1, k2, k3, k4 = jax.random.split(key, 4)
    terminated = (jnp.arange(n) % 7 == 0).astype(jnp.float32)
    transitions = Transition(
        obs=jax.random.normal(k1, (n, spec.obs_dim)),
        action=jax.random.uniform(k2, (n, spec.action_dim), minval=-1, maxval=1),
        reward=jax.random.normal(k3, (n,)),
        next_obs=jax.random.normal(k4, (n, spec.obs_dim)),
        terminated=terminated,
        done=terminated,
    )
    return transitions, one_step_batch(transitions, 0.99)


def test_update_critic_step_matches_hand_gradient_step():
    """The critic parameters after one update equal one Adam step on the hand-built loss."""
    spec = EnvSpec(obs_dim=3, action_dim=2)
    config = sac.SACConfig(hidden=(16, 16), learning_rate=1e-2)
    state = sac.init(jax.random.PRNGKey(0), spec, config)
    transitions, batch = _batch(jax.random.PRNGKey(1), spec)
    new_state, metrics = sac.update(state, batch, 0)

    actor, critic = sac._networks(config, spec)
    _, k_next, _ = jax.random.split(state.key, 3)
    mean, log_std = actor.apply(state.actor_params, batch.next_obs)
    u = mean + jnp.exp(log_std) * jax.random.normal(k_next, mean.shape)
    a = jnp.tanh(u)
    gauss = -0.5 * ((u - mean) / jnp.exp(log_std)) ** 2 - log_std - 0.5 * jnp.log(2 * jnp.pi)
    log_prob = jnp.sum(gauss - jnp.log(1 - a**2 + 1e-12), -1)
    q_next = critic.apply(state.target_params, batch.next_obs, a)
    y = batch.reward + 0.99 * (1 - transitions.terminated) * (q_next.min(0) - 1.0 * log_prob)

    def loss(params):
        q = critic.apply(params, batch.obs, batch.action)
        return sum(0.5 * jnp.mean((q[i] - y) ** 2) for i in range(2))

    np.testing.assert_allclose(metrics["critic_loss"], loss(state.critic_params), rtol=2e-4)
    grads = jax.grad(loss)(state.critic_params)
    # Adam's first step moves each parameter by −lr·sign(g) (up to ε)
    expected = jax.tree.map(
        lambda p, g: p - 1e-2 * g / (jnp.abs(g) + 1e-8), state.critic_params, grads
    )
    for got, want in zip(
        jax.tree.leaves(new_state.critic_params), jax.tree.leaves(expected), strict=True
    ):
        np.testing.assert_allclose(got, want, atol=2e-5)
    # targets move by τ towards the new critics
    for t, t0, c in zip(
        jax.tree.leaves(new_state.target_params),
        jax.tree.leaves(state.target_params),
        jax.tree.leaves(new_state.critic_params),
        strict=True,
    ):
        np.testing.assert_allclose(t, 0.995 * t0 + 0.005 * c, atol=1e-6)


def test_actor_step_lowers_actor_loss_and_leaves_critics_alone():
    spec = EnvSpec(obs_dim=3, action_dim=2)
    config = sac.SACConfig(hidden=(16, 16), learning_rate=1e-3)
    state = sac.init(jax.random.PRNGKey(2), spec, config)
    _, batch = _batch(jax.random.PRNGKey(3), spec)
    s = state
    losses = []
    for _ in range(30):
        s, m = jax.jit(sac.update)(s, batch, 0)
        losses.append(float(m["actor_loss"]))
    assert losses[-1] < losses[0]
    assert int(s.updates) == 30


@pytest.mark.parametrize("n_critics", [1, 2, 5])
def test_critic_ensemble_members_differ(n_critics):
    spec = EnvSpec(obs_dim=3, action_dim=1)
    state = sac.init(jax.random.PRNGKey(0), spec, sac.SACConfig(n_critics=n_critics))
    _, critic = sac._networks(state.config, spec)
    q = critic.apply(state.critic_params, jnp.ones((4, 3)), jnp.zeros((4, 1)))
    assert q.shape == (n_critics, 4)
    if n_critics > 1:
        assert not np.allclose(q[0], q[1])
