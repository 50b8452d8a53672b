"""Running mean and variance, for observation and reward normalisation (part of the state).

The update merges a batch's moments into the running ones with the parallel algorithm of Chan
et al. (1979), as SB3's RunningMeanStd and Gymnasium's NormalizeObservation do, so a batch of
n rows moves the statistics exactly as n single updates would.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp


class RunningStats(NamedTuple):
    mean: jnp.ndarray  # [*shape]
    var: jnp.ndarray  # [*shape]
    count: jnp.ndarray  # type: ignore[assignment]  # float32 [], starts at a tiny ε as in SB3 (so the first batch dominates)


def stats_init(shape: tuple[int, ...], epsilon: float = 1e-4) -> RunningStats:
    return RunningStats(
        mean=jnp.zeros(shape, jnp.float32),
        var=jnp.ones(shape, jnp.float32),
        count=jnp.asarray(epsilon, jnp.float32),
    )


def stats_update(stats: RunningStats, x: jnp.ndarray) -> RunningStats:
    """Merge the rows of x [n, *shape] into the statistics."""
    batch_mean = x.mean(axis=0)
    batch_var = x.var(axis=0)
    n = jnp.asarray(x.shape[0], jnp.float32)
    total = stats.count + n
    delta = batch_mean - stats.mean
    mean = stats.mean + delta * n / total
    m2 = stats.var * stats.count + batch_var * n + jnp.square(delta) * stats.count * n / total
    return RunningStats(mean=mean, var=m2 / total, count=total)


def normalize(stats: RunningStats, x: jnp.ndarray, clip: float, eps: float = 1e-8) -> jnp.ndarray:
    """(x − mean) / √(var + eps), clipped to ±clip."""
    return jnp.clip((x - stats.mean) / jnp.sqrt(stats.var + eps), -clip, clip)


def scale(stats: RunningStats, x: jnp.ndarray, clip: float, eps: float = 1e-8) -> jnp.ndarray:
    """x / √(var + eps), clipped to ±clip (reward scaling keeps the reward's sign and zero)."""
    return jnp.clip(x / jnp.sqrt(stats.var + eps), -clip, clip)
