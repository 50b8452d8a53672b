"""A plain multilayer perceptron."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import flax.linen as nn
import jax.numpy as jnp

# "gelu" is the exact (erf) GELU, PyTorch's nn.GELU default, as the DSAC-T code uses.
ACTIVATIONS = {"relu": nn.relu, "tanh": nn.tanh, "gelu": partial(nn.gelu, approximate=False)}


class MLP(nn.Module):
    """x: [..., in] -> [..., out]; `activation` between hidden layers, linear output.

    `dtype` is the matmul precision (parameters stay float32). `orthogonal` initialises the
    weights orthogonally, with gain √2 on hidden layers and `out_gain` on the output layer, and
    the biases at 0 (the PPO implementation detail of Engstrom et al. 2020, used by CleanRL and
    SB3); otherwise Flax's defaults (LeCun normal).
    """

    hidden: Sequence[int]
    out: int
    dtype: jnp.dtype = jnp.float32
    activation: str = "relu"
    orthogonal: bool = False
    out_gain: float = 1.0

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        act = ACTIVATIONS[self.activation]

        def dense(width: int, gain: float) -> nn.Dense:
            if not self.orthogonal:
                return nn.Dense(width, dtype=self.dtype)
            init = nn.initializers.orthogonal(gain)
            return nn.Dense(width, dtype=self.dtype, kernel_init=init)

        for width in self.hidden:
            x = act(dense(width, jnp.sqrt(2.0))(x))
        return dense(self.out, self.out_gain)(x).astype(jnp.float32)
