"""A plain multilayer perceptron."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp


class MLP(nn.Module):
    """x: [..., in] -> [..., out]; ReLU between hidden layers, linear output.

    `dtype` is the matmul precision (parameters stay float32): bfloat16 uses the CPU's AMX units.
    """

    hidden: Sequence[int]
    out: int
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        for width in self.hidden:
            x = nn.relu(nn.Dense(width, dtype=self.dtype)(x))
        return nn.Dense(self.out, dtype=self.dtype)(x).astype(jnp.float32)
