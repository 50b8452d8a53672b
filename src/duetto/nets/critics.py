"""Ensembles of Q-functions evaluated as one batched network (twin critics are N=2)."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from duetto.nets.mlp import MLP


def _ensemble(module: nn.Module, out: int, obs: jnp.ndarray, action: jnp.ndarray) -> jnp.ndarray:
    """N MLPs of (s, a), vmapped so that each layer is one batched matmul rather than N small
    ones; their parameters are stacked on a leading axis of size N and initialised
    independently: [B, ...] -> [N, B, out]."""
    ensemble = nn.vmap(
        MLP,
        variable_axes={"params": 0},
        split_rngs={"params": True},
        in_axes=None,
        out_axes=0,
        axis_size=module.n,
    )
    mlp = ensemble(
        hidden=module.hidden,
        out=out,
        dtype=module.dtype,
        activation=module.activation,
        weight_init=module.weight_init,
    )
    return mlp(jnp.concatenate([obs, action], axis=-1))


class CriticEnsemble(nn.Module):
    """Q_1..Q_N(s, a): obs [B, obs_dim], action [B, act_dim] -> [N, B]."""

    hidden: Sequence[int]
    n: int = 2
    dtype: jnp.dtype = jnp.float32
    activation: str = "relu"
    weight_init: str = "lecun"

    @nn.compact
    def __call__(self, obs: jnp.ndarray, action: jnp.ndarray) -> jnp.ndarray:
        return _ensemble(self, 1, obs, action)[..., 0]


class GaussianCriticEnsemble(nn.Module):
    """N Gaussian return distributions Z_i(s, a) ~ N(Q_i, σ_i²) (DSAC): obs [B, obs_dim],
    action [B, act_dim] -> (Q [N, B], σ [N, B]). Each head outputs (Q, raw); σ = softplus(raw)
    keeps it positive, as the DSAC-T code does."""

    hidden: Sequence[int]
    n: int = 2
    dtype: jnp.dtype = jnp.float32
    activation: str = "relu"
    weight_init: str = "lecun"

    @nn.compact
    def __call__(self, obs: jnp.ndarray, action: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
        out = _ensemble(self, 2, obs, action)
        return out[..., 0], jax.nn.softplus(out[..., 1])
