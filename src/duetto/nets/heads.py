"""Policy heads."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from duetto.nets.mlp import MLP

_HALF_LOG_2PI = 0.5 * jnp.log(2.0 * jnp.pi)


def squashed_gaussian_log_prob(
    u: jnp.ndarray, mean: jnp.ndarray, log_std: jnp.ndarray
) -> jnp.ndarray:
    """log π(tanh u) for u ~ N(mean, exp(log_std)²): [..., A] -> [...].

    The change of variables subtracts log(1 − tanh²u) = 2·(log 2 − u − softplus(−2u)), the
    stable form (SAC paper, appendix C), which stays finite where tanh saturates.
    """
    gaussian = -0.5 * jnp.square((u - mean) / jnp.exp(log_std)) - log_std - _HALF_LOG_2PI
    log_det = 2.0 * (jnp.log(2.0) - u - jax.nn.softplus(-2.0 * u))
    return jnp.sum(gaussian - log_det, axis=-1)


class SquashedGaussianActor(nn.Module):
    """obs [B, obs_dim] -> (mean [B, A], log_std [B, A]) of the pre-tanh Gaussian."""

    hidden: Sequence[int]
    action_dim: int
    log_std_min: float = -20.0
    log_std_max: float = 2.0
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, obs: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
        out = MLP(self.hidden, 2 * self.action_dim, dtype=self.dtype)(obs)
        mean, log_std = jnp.split(out, 2, axis=-1)
        return mean, jnp.clip(log_std, self.log_std_min, self.log_std_max)


def sample_squashed(
    key: jax.Array, mean: jnp.ndarray, log_std: jnp.ndarray
) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Reparameterised a = tanh(mean + std·ε) in (-1, 1) and its log-probability."""
    u = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)
    return jnp.tanh(u), squashed_gaussian_log_prob(u, mean, log_std)
