"""Target networks."""

from __future__ import annotations

import jax
import optax


def polyak(online: optax.Params, target: optax.Params, tau: float | jax.Array) -> optax.Params:
    """θ̄ ← τ·θ + (1 − τ)·θ̄, leaf by leaf."""
    return jax.tree.map(lambda o, t: tau * o + (1.0 - tau) * t, online, target)
