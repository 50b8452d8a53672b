"""Policy heads."""

from __future__ import annotations

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from duetto.nets.mlp import MLP

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def squashed_gaussian_log_prob(
    u: jnp.ndarray, mean: jnp.ndarray, log_std: jnp.ndarray
) -> jnp.ndarray:
    """log π(tanh u) for u ~ N(mean, exp(log_std)²): [..., A] -> [...].

    The change of variables subtracts log(1 − tanh²u) = 2·(log 2 − u − softplus(−2u)), the
    stable form (SAC paper, appendix C), which stays finite where tanh saturates.
    """
    log_det = 2.0 * (jnp.log(2.0) - u - jax.nn.softplus(-2.0 * u))
    return gaussian_log_prob(u, mean, log_std) - jnp.sum(log_det, axis=-1)


class SquashedGaussianActor(nn.Module):
    """obs [B, obs_dim] -> (mean [B, A], log_std [B, A]) of the pre-tanh Gaussian."""

    hidden: Sequence[int]
    action_dim: int
    log_std_min: float = -20.0
    log_std_max: float = 2.0
    dtype: jnp.dtype = jnp.float32
    activation: str = "relu"
    weight_init: str = "lecun"

    @nn.compact
    def __call__(self, obs: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
        mlp = MLP(self.hidden, 2 * self.action_dim, self.dtype, self.activation, self.weight_init)
        out = mlp(obs)
        mean, log_std = jnp.split(out, 2, axis=-1)
        return mean, jnp.clip(log_std, self.log_std_min, self.log_std_max)


def sample_squashed(
    key: jax.Array, mean: jnp.ndarray, log_std: jnp.ndarray
) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Reparameterised a = tanh(mean + std·ε) in (-1, 1) and its log-probability."""
    u = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)
    return jnp.tanh(u), squashed_gaussian_log_prob(u, mean, log_std)


class CategoricalActor(nn.Module):
    """obs [B, obs_dim] -> logits [B, n] of a categorical policy (or of several independent
    categoricals side by side, or of independent bits)."""

    hidden: Sequence[int]
    n: int
    activation: str = "tanh"
    weight_init: str = "orthogonal"

    @nn.compact
    def __call__(self, obs: jnp.ndarray) -> jnp.ndarray:
        return MLP(
            self.hidden,
            self.n,
            activation=self.activation,
            weight_init=self.weight_init,
            out_gain=0.01,
        )(obs)


class GaussianActor(nn.Module):
    """obs [B, obs_dim] -> (mean [B, A], log_std [A]) of a diagonal Gaussian whose log σ is a
    learned parameter, independent of the state (PPO's continuous policy; log σ starts at
    `log_std_init`)."""

    hidden: Sequence[int]
    action_dim: int
    activation: str = "tanh"
    weight_init: str = "orthogonal"
    log_std_init: float = 0.0

    @nn.compact
    def __call__(self, obs: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
        mean = MLP(
            self.hidden,
            self.action_dim,
            activation=self.activation,
            weight_init=self.weight_init,
            out_gain=0.01,
        )(obs)
        log_std = self.param(
            "log_std", nn.initializers.constant(self.log_std_init), (self.action_dim,)
        )
        return mean, log_std


def gaussian_log_prob(x: jnp.ndarray, mean: jnp.ndarray, log_std: jnp.ndarray) -> jnp.ndarray:
    """log N(x; mean, exp(log_std)²) summed over the last axis: [..., A] -> [...]."""
    z = (x - mean) / jnp.exp(log_std)
    return jnp.sum(-0.5 * jnp.square(z) - log_std - _HALF_LOG_2PI, axis=-1)


def gaussian_entropy(log_std: jnp.ndarray) -> jnp.ndarray:
    """Entropy of a diagonal Gaussian: Σ (log σ + ½ log 2πe) over the last axis."""
    return jnp.sum(log_std + _HALF_LOG_2PI + 0.5, axis=-1)


def categorical_log_prob(logits: jnp.ndarray, action: jnp.ndarray) -> jnp.ndarray:
    """log softmax(logits)[action]: logits [..., n], action [...] (int) -> [...]."""
    log_p = jax.nn.log_softmax(logits, axis=-1)
    return jnp.take_along_axis(log_p, action[..., None].astype(jnp.int32), axis=-1)[..., 0]


def categorical_entropy(logits: jnp.ndarray) -> jnp.ndarray:
    """−Σ p log p over the last axis."""
    log_p = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.sum(jnp.exp(log_p) * log_p, axis=-1)


def categorical_kl(logits: jnp.ndarray, other: jnp.ndarray) -> jnp.ndarray:
    """KL(p ‖ q) = Σ p (log p − log q) of the categoricals with logits [..., n] -> [...]."""
    log_p, log_q = jax.nn.log_softmax(logits, axis=-1), jax.nn.log_softmax(other, axis=-1)
    return jnp.sum(jnp.exp(log_p) * (log_p - log_q), axis=-1)


def split_logits(logits: jnp.ndarray, nvec: Sequence[int]) -> list[jnp.ndarray]:
    """The logits [..., Σ nvec] of independent categoricals, one [..., n_i] per dimension."""
    return jnp.split(logits, np.cumsum(nvec)[:-1].tolist(), axis=-1)


def multi_categorical_log_prob(
    logits: jnp.ndarray, action: jnp.ndarray, nvec: Sequence[int]
) -> jnp.ndarray:
    """log π(a) = Σ_i log softmax(logits_i)[a_i], independent categoricals (SB3's
    MultiCategoricalDistribution): logits [..., Σ nvec], action [..., len(nvec)] -> [...]."""
    parts = split_logits(logits, nvec)
    terms = [categorical_log_prob(part, action[..., i]) for i, part in enumerate(parts)]
    return jnp.stack(terms, axis=-1).sum(axis=-1)


def multi_categorical_entropy(logits: jnp.ndarray, nvec: Sequence[int]) -> jnp.ndarray:
    """Σ_i H[softmax(logits_i)]: [..., Σ nvec] -> [...]."""
    terms = [categorical_entropy(part) for part in split_logits(logits, nvec)]
    return jnp.stack(terms, axis=-1).sum(axis=-1)


def multi_categorical_kl(
    logits: jnp.ndarray, other: jnp.ndarray, nvec: Sequence[int]
) -> jnp.ndarray:
    """Σ_i KL of the i-th categoricals: [..., Σ nvec] -> [...]."""
    pairs = zip(split_logits(logits, nvec), split_logits(other, nvec), strict=True)
    return jnp.stack([categorical_kl(p, q) for p, q in pairs], axis=-1).sum(axis=-1)


def multi_categorical_mode(logits: jnp.ndarray, nvec: Sequence[int]) -> jnp.ndarray:
    """argmax of each categorical: [..., Σ nvec] -> int [..., len(nvec)]."""
    parts = split_logits(logits, nvec)
    return jnp.stack([jnp.argmax(part, axis=-1) for part in parts], axis=-1)


def bernoulli_log_prob(logits: jnp.ndarray, action: jnp.ndarray) -> jnp.ndarray:
    """log π(a) = Σ_k a_k log σ(l_k) + (1 − a_k) log σ(−l_k), independent bits (SB3's
    BernoulliDistribution): logits [..., K], action [..., K] in {0, 1} -> [...]."""
    a = action.astype(logits.dtype)
    return -jnp.sum(a * jax.nn.softplus(-logits) + (1.0 - a) * jax.nn.softplus(logits), axis=-1)


def bernoulli_entropy(logits: jnp.ndarray) -> jnp.ndarray:
    """Σ_k −p log p − (1 − p) log(1 − p) = Σ_k softplus(l) − p·l, p = σ(l): [..., K] -> [...]."""
    return jnp.sum(jax.nn.softplus(logits) - jax.nn.sigmoid(logits) * logits, axis=-1)


def bernoulli_kl(logits: jnp.ndarray, other: jnp.ndarray) -> jnp.ndarray:
    """Σ_k p (log p − log q) + (1 − p)(log(1 − p) − log(1 − q)): [..., K] -> [...]."""
    p = jax.nn.sigmoid(logits)
    log_p, log_q = -jax.nn.softplus(-logits), -jax.nn.softplus(-other)
    log_1p, log_1q = -jax.nn.softplus(logits), -jax.nn.softplus(other)
    return jnp.sum(p * (log_p - log_q) + (1.0 - p) * (log_1p - log_1q), axis=-1)


class DeterministicActor(nn.Module):
    """obs [B, obs_dim] -> action tanh(MLP(obs)) [B, A] in (-1, 1) (TD3, DDPG)."""

    hidden: Sequence[int]
    action_dim: int
    dtype: jnp.dtype = jnp.float32
    weight_init: str = "lecun"
    activation: str = "relu"

    @nn.compact
    def __call__(self, obs: jnp.ndarray) -> jnp.ndarray:
        mlp = MLP(
            self.hidden,
            self.action_dim,
            dtype=self.dtype,
            activation=self.activation,
            weight_init=self.weight_init,
        )
        return jnp.tanh(mlp(obs))
