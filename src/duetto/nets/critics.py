"""Ensembles of Q-functions evaluated as one batched network (twin critics are N=2)."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp

from duetto.nets.mlp import MLP


class CriticEnsemble(nn.Module):
    """Q_1..Q_N(s, a): obs [B, obs_dim], action [B, act_dim] -> [N, B].

    The N critics are vmapped, so each layer is one batched matmul rather than N small ones;
    their parameters are stacked on a leading axis of size N and initialised independently.
    """

    hidden: Sequence[int]
    n: int = 2
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, obs: jnp.ndarray, action: jnp.ndarray) -> jnp.ndarray:
        ensemble = nn.vmap(
            MLP,
            variable_axes={"params": 0},
            split_rngs={"params": True},
            in_axes=None,
            out_axes=0,
            axis_size=self.n,
        )
        q = ensemble(hidden=self.hidden, out=1, dtype=self.dtype)(
            jnp.concatenate([obs, action], axis=-1)
        )
        return q[..., 0]
