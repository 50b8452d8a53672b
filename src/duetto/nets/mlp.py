"""A plain multilayer perceptron."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

# "gelu" is the exact (erf) GELU, PyTorch's nn.GELU default, as the DSAC-T code uses.
WEIGHT_INITS = ("lecun", "orthogonal", "torch")
ACTIVATIONS = {"relu": nn.relu, "tanh": nn.tanh, "gelu": partial(nn.gelu, approximate=False)}


def layer_init(weight_init: str, gain: float | jax.Array, fan_in: int) -> dict[str, Any]:
    """The initialisers of a dense or convolutional layer with `fan_in` inputs per output (a
    convolution's: kernel height × width × input channels), as keywords of nn.Dense or nn.Conv
    (see MLP for the choices; `gain` is the orthogonal one's)."""
    if weight_init not in WEIGHT_INITS:
        raise ValueError(f"weight_init must be one of {WEIGHT_INITS}, not {weight_init!r}.")
    if weight_init == "orthogonal":
        return {"kernel_init": nn.initializers.orthogonal(gain)}
    if weight_init == "torch":
        bound = 1.0 / fan_in**0.5

        def bias_init(key: jax.Array, shape: tuple, dtype: jnp.dtype = jnp.float32) -> jax.Array:
            return jax.random.uniform(key, shape, dtype, -bound, bound)

        kernel_init = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")
        return {"kernel_init": kernel_init, "bias_init": bias_init}
    return {}


class MLP(nn.Module):
    """x: [..., in] -> [..., out]; `activation` between hidden layers, linear output.

    `dtype` is the matmul precision (parameters stay float32). `weight_init` chooses the initial
    weights and biases:
    - "lecun": Flax's defaults, LeCun normal weights (std 1/√fan_in) and zero biases;
    - "orthogonal": orthogonal weights with gain √2 on hidden layers and `out_gain` on the output
      layer, zero biases (the PPO implementation detail of Engstrom et al. 2020, used by CleanRL
      and SB3);
    - "torch": PyTorch's `nn.Linear` default, weights and biases uniform in ±1/√fan_in (what
      SB3, CleanRL and the reference SAC, TD3 and DSAC-T code get).
    """

    hidden: Sequence[int]
    out: int
    dtype: jnp.dtype = jnp.float32
    activation: str = "relu"
    weight_init: str = "lecun"
    out_gain: float = 1.0

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        if self.weight_init not in WEIGHT_INITS:
            raise ValueError(
                f"MLP weight_init must be one of {WEIGHT_INITS}, not {self.weight_init!r}."
            )
        act = ACTIVATIONS[self.activation]

        def dense(width: int, gain: float | jax.Array, fan_in: int) -> nn.Dense:
            return nn.Dense(width, dtype=self.dtype, **layer_init(self.weight_init, gain, fan_in))

        for width in self.hidden:
            x = act(dense(width, jnp.sqrt(2.0), x.shape[-1])(x))
        return dense(self.out, self.out_gain, x.shape[-1])(x).astype(jnp.float32)
