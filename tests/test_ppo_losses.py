"""PPO's pieces against hand computations: GAE, the clipped losses, the running statistics,
the Gaussian and categorical heads."""

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from duetto.algorithms import ppo
from duetto.data.normalize import normalize, stats_init, stats_update
from duetto.data.rollout import discounted_returns, gae
from duetto.nets import (
    categorical_entropy,
    categorical_log_prob,
    gaussian_entropy,
    gaussian_log_prob,
)


def test_gae_cuts_at_episode_ends_and_bootstraps_truncation_only():
    """One env, 4 steps: step 1 truncates (bootstrap from V(final obs) = 5), step 2 terminates
    (no bootstrap); written out by hand with γ = 0.9, λ = 0.8."""
    g, lam = 0.9, 0.8
    r = np.array([1.0, 2.0, 3.0, 4.0])
    v = np.array([0.5, 1.0, 1.5, 2.0])
    v_next = np.array([1.0, 5.0, 7.0, 3.0])  # V of the obs each step reached (final at ends)
    term = np.array([0.0, 0.0, 1.0, 0.0])
    done = np.array([0.0, 1.0, 1.0, 0.0])
    d3 = 4 + g * 3 - 2.0
    d2 = 3 + 0.0 - 1.5  # terminated: no bootstrap
    d1 = 2 + g * 5 - 1.0  # truncated: bootstraps from the final observation
    d0 = 1 + g * 1 - 0.5
    a3 = d3
    a2 = d2  # the trace is cut after step 2 (done)
    a1 = d1  # ... and after step 1
    a0 = d0 + g * lam * a1
    adv, ret = gae(*(jnp.asarray(x)[:, None] for x in (r, v, v_next, term, done)), g, lam)
    np.testing.assert_allclose(adv[:, 0], [a0, a1, a2, a3], rtol=1e-6)
    np.testing.assert_allclose(ret[:, 0], np.array([a0, a1, a2, a3]) + v, rtol=1e-6)


def test_discounted_returns_reset_after_each_episode():
    acc = jnp.array([10.0])
    r = jnp.array([[1.0], [2.0], [3.0]])
    done = jnp.array([[0.0], [1.0], [0.0]])
    acc_out, ret = discounted_returns(acc, r, done, 0.5)
    np.testing.assert_allclose(ret[:, 0], [6.0, 5.0, 3.0])
    np.testing.assert_allclose(acc_out, [3.0])


def test_policy_loss_clips_the_ratio_in_the_pessimistic_direction():
    old = jnp.log(jnp.array([0.5, 0.5, 0.5, 0.5]))
    new = jnp.log(jnp.array([0.8, 0.8, 0.2, 0.2]))  # ρ = 1.6, 1.6, 0.4, 0.4
    adv = jnp.array([1.0, -1.0, 1.0, -1.0])
    loss, frac = ppo.policy_loss(new, old, adv, 0.2)
    # min(ρA, clip(ρ)A): 1.2 (clipped), −1.6, 0.4, −0.8 (clipped)
    np.testing.assert_allclose(loss, -np.mean([1.2, -1.6, 0.4, -0.8]), rtol=1e-6)
    np.testing.assert_allclose(frac, 1.0)


def test_value_loss_plain_and_clipped():
    v = jnp.array([2.0, 0.0])
    old = jnp.array([1.0, 1.0])
    ret = jnp.array([3.0, 0.5])
    np.testing.assert_allclose(ppo.value_loss(v, old, ret, 0.0), 0.5 * np.mean([1.0, 0.25]))
    # clipped predictions: 1.2 and 0.8 -> errors 1.8² and 0.3²; max with 1² and 0.5²
    expected = 0.5 * np.mean([max(1.0, 1.8**2), max(0.25, 0.3**2)])
    np.testing.assert_allclose(ppo.value_loss(v, old, ret, 0.2), expected, rtol=1e-6)


def test_running_stats_match_numpy_over_batches():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, size=(300, 4)).astype(np.float32)
    s = stats_init((4,), epsilon=0.0 + 1e-12)
    for chunk in np.split(x, [7, 100, 101]):
        s = stats_update(s, jnp.asarray(chunk))
    np.testing.assert_allclose(s.mean, x.mean(0), rtol=1e-5)
    np.testing.assert_allclose(s.var, x.var(0), rtol=1e-4)
    z = normalize(s, jnp.asarray(x), clip=10.0)
    np.testing.assert_allclose(np.asarray(z).mean(0), 0.0, atol=1e-5)
    assert float(jnp.abs(normalize(s, jnp.asarray(x) * 1e6, clip=5.0)).max()) == 5.0


def test_gaussian_and_categorical_heads_match_scipy():
    x = np.array([[0.3, -1.2]])
    mean = np.array([[0.1, 0.4]])
    log_std = np.array([-0.5, 0.7])
    expected = stats.norm(mean, np.exp(log_std)).logpdf(x).sum()
    np.testing.assert_allclose(gaussian_log_prob(x, mean, log_std), [expected], rtol=1e-5)
    np.testing.assert_allclose(
        gaussian_entropy(jnp.asarray(log_std)),
        stats.norm(0, np.exp(log_std)).entropy().sum(),
        rtol=1e-5,
    )
    logits = jnp.array([[1.0, 2.0, 0.5]])
    p = np.exp(logits[0]) / np.exp(logits[0]).sum()
    np.testing.assert_allclose(
        categorical_log_prob(logits, jnp.array([1])), np.log(p[1]), rtol=1e-5
    )
    np.testing.assert_allclose(categorical_entropy(logits), -(p * np.log(p)).sum(), rtol=1e-5)


def test_first_update_ratio_is_one_and_loss_decreases():
    """On the first epoch's first minibatch the policy is the one that collected the data, so
    nothing is clipped; after the update the surrogate on the same data has improved."""
    from duetto.config import build_config
    from duetto.data.rollout import Rollout
    from duetto.envs.spec import EnvSpec

    spec = EnvSpec(obs_dim=3, action_dim=2)
    cfg = build_config(ppo.PPOConfig, "ppo", {}, {"n_steps": 16, "batch_size": 32, "n_epochs": 1})
    state = ppo.init(jax.random.PRNGKey(0), spec, cfg, n_envs=2)
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(1), 3)
    obs = jax.random.normal(k1, (16, 2, 3))
    noise = ppo.exploration_noise(state, k2, (32,))
    action, log_prob = ppo.explore(state, obs.reshape(32, 3), noise)
    reward = jax.random.normal(k3, (16, 2))
    zeros = jnp.zeros((16, 2))
    rollout = Rollout(
        obs, action.reshape(16, 2, 2), log_prob.reshape(16, 2), reward, obs, zeros, zeros
    )
    new_state, metrics = ppo.update(state, rollout, 32)
    assert float(metrics["clip_fraction"]) == 0.0
    assert float(metrics["approx_kl"]) < 1e-6
    changed = jax.tree.leaves(
        jax.tree.map(lambda a, b: jnp.any(a != b), state.params, new_state.params)
    )
    assert all(bool(c) for c in changed)
    assert int(new_state.updates) == 1


def test_declared_metrics_are_what_update_returns():
    """The loops size their metric sums from METRICS; update must return exactly those (an
    off-policy update adds the per-sample |δ| that the loop pops for prioritised replay)."""
    from duetto.algorithms import sac
    from duetto.config import build_config
    from duetto.contract import TD_ERROR
    from duetto.data.replay import Batch
    from duetto.data.rollout import Rollout
    from duetto.envs.spec import EnvSpec

    spec = EnvSpec(obs_dim=3, action_dim=1)
    cfg = build_config(ppo.PPOConfig, "ppo", {}, {"n_steps": 4, "batch_size": 4})
    state = ppo.init(jax.random.PRNGKey(0), spec, cfg, n_envs=1)
    z = jnp.zeros((4, 1))
    rollout = Rollout(jnp.zeros((4, 1, 3)), jnp.zeros((4, 1, 1)), z, z, jnp.zeros((4, 1, 3)), z, z)
    assert set(jax.eval_shape(ppo.update, state, rollout, 4)[1]) == set(ppo.METRICS)
    cfg = build_config(sac.SACConfig, "sac", {}, {})
    state = sac.init(jax.random.PRNGKey(0), spec, cfg)
    batch = Batch(jnp.zeros((2, 3)), jnp.zeros((2, 1)), jnp.zeros(2), jnp.zeros((2, 3)), z[:2, 0])
    metrics = jax.eval_shape(sac.update, state, batch, 0)[1]
    assert set(metrics) == {*sac.METRICS, TD_ERROR} and metrics[TD_ERROR].shape == (2,)
