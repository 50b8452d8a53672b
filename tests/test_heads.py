"""The tanh-squashed Gaussian's log-density against a numerical density."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import norm

from duetto.nets.heads import sample_squashed, squashed_gaussian_log_prob


def test_log_prob_matches_probability_of_small_interval():
    """p(a) ≈ P(a − h < tanh u < a + h) / 2h, computed from the Gaussian CDF."""
    mean, std = 0.3, 0.8
    h = 1e-4
    for a in [-0.95, -0.5, 0.0, 0.4, 0.9, 0.999]:
        lo, hi = np.arctanh(a - h), np.arctanh(min(a + h, 1 - 1e-12))
        numeric = (norm.cdf(hi, mean, std) - norm.cdf(lo, mean, std)) / (2 * h)
        u = jnp.array([[np.arctanh(a)]], jnp.float32)
        logp = squashed_gaussian_log_prob(u, jnp.array([[mean]]), jnp.log(jnp.array([[std]])))
        np.testing.assert_allclose(float(jnp.exp(logp[0])), numeric, rtol=2e-3)


def test_log_prob_sums_over_action_dimensions():
    u = jnp.array([[0.2, -1.0]])
    mean, log_std = jnp.array([[0.0, 0.5]]), jnp.array([[-0.3, 0.1]])
    joint = squashed_gaussian_log_prob(u, mean, log_std)
    parts = [
        squashed_gaussian_log_prob(u[:, i : i + 1], mean[:, i : i + 1], log_std[:, i : i + 1])
        for i in range(2)
    ]
    np.testing.assert_allclose(joint, parts[0] + parts[1], rtol=1e-6)


def test_log_prob_stays_finite_where_tanh_saturates():
    u = jnp.array([[30.0], [-30.0]])
    logp = squashed_gaussian_log_prob(u, jnp.zeros((2, 1)), jnp.zeros((2, 1)))
    assert np.all(np.isfinite(logp))


def test_sampled_density_integrates_to_one():
    a = np.linspace(-0.9999, 0.9999, 200_001)
    u = jnp.asarray(np.arctanh(a)[:, None], jnp.float32)
    p = np.exp(
        np.asarray(squashed_gaussian_log_prob(u, jnp.full_like(u, 0.5), jnp.full_like(u, -0.5)))
    )
    assert abs(np.trapezoid(p, a) - 1.0) < 2e-3


def test_samples_lie_in_open_interval_and_match_log_prob():
    key = jax.random.PRNGKey(0)
    mean, log_std = jnp.zeros((1000, 2)), jnp.zeros((1000, 2))
    a, logp = sample_squashed(key, mean, log_std)
    assert np.all(np.abs(a) <= 1.0)
    u = jnp.arctanh(jnp.clip(a, -1 + 1e-6, 1 - 1e-6))
    np.testing.assert_allclose(logp, squashed_gaussian_log_prob(u, mean, log_std), atol=5e-3)


def test_torch_weight_init_is_pytorch_linear_default():
    from duetto.nets.mlp import MLP

    params = MLP((400, 300), 3, weight_init="torch").init(jax.random.PRNGKey(0), jnp.ones((1, 11)))
    for name, fan_in in (("Dense_0", 11), ("Dense_1", 400), ("Dense_2", 300)):
        layer = params["params"][name]
        bound = 1.0 / np.sqrt(fan_in)
        for leaf in (layer["kernel"], layer["bias"]):
            w = np.asarray(leaf)
            assert np.abs(w).max() <= bound  # U(±1/√fan_in), weights and biases alike
            assert np.all(w != 0)
        assert np.abs(layer["kernel"]).max() > 0.99 * bound
        # uniform: std = bound/√3 (the kernel has enough entries to check it)
        np.testing.assert_allclose(np.std(layer["kernel"]), bound / np.sqrt(3), rtol=0.1)
    lecun = MLP((400, 300), 3).init(jax.random.PRNGKey(0), jnp.ones((1, 11)))
    assert not np.any(lecun["params"]["Dense_1"]["bias"])  # Flax's default: zero biases
    with pytest.raises(ValueError, match="weight_init must be one of"):
        MLP((8,), 1, weight_init="xavier").init(jax.random.PRNGKey(0), jnp.ones((1, 3)))
