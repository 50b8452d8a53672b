"""D^3S, dynamic dual-level down-sampling (Wang et al., arXiv 2509.22115; spec §7.3).

Many rollouts and tokens carry little gradient signal. Sample level: keep the subset of each
group's rollouts that maximises the variance of their advantages (the paper bounds the
policy-gradient norm by it). Token level: keep the tokens with the largest |A_{i,t}| * H_{i,t},
H the policy's entropy at that position. A schedule starts with aggressive down-sampling and
relaxes to the full batch.

The selection rules and the schedule's shape are the spec's reconstruction [recon]: a size-k
subset of maximal variance always consists of the j smallest and the k - j largest values for
some j (moving an inner value outwards never lowers the spread), so one sort and a scan over j
find it; tests/test_lm_d3s.py checks it against brute force.
"""

from __future__ import annotations

import functools
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

from duetto.errors import DuettoError


def max_variance_mask(advantages: jax.Array, k: int) -> jax.Array:
    """Per group, the size-k subset of maximal (population) variance: advantages [P, G] ->
    bool [P, G] with exactly k True per row."""
    if not 1 <= k <= advantages.shape[1]:
        raise DuettoError(f"the subset size k must be in [1, {advantages.shape[1]}], got {k}")
    return _max_variance_mask(advantages, k)


@functools.partial(jax.jit, static_argnums=1)
def _max_variance_mask(advantages: jax.Array, k: int) -> jax.Array:
    p, g = advantages.shape
    order = jnp.argsort(advantages, axis=1)
    ordered = jnp.take_along_axis(advantages, order, axis=1)
    zero = jnp.zeros((p, 1), advantages.dtype)
    cs = jnp.concatenate([zero, jnp.cumsum(ordered, axis=1)], axis=1)  # [P, G + 1]
    cs2 = jnp.concatenate([zero, jnp.cumsum(ordered**2, axis=1)], axis=1)
    j = jnp.arange(k + 1)  # j smallest and k - j largest
    total, total2 = cs[:, -1:], cs2[:, -1:]
    s = cs[:, j] + total - cs[:, g - k + j]
    s2 = cs2[:, j] + total2 - cs2[:, g - k + j]
    variance = s2 / k - (s / k) ** 2
    best = jnp.argmax(variance, axis=1)[:, None]  # [P, 1]
    rank = jnp.arange(g)[None, :]
    keep_sorted = (rank < best) | (rank >= g - k + best)
    # back from sorted order to the group's order
    return jnp.zeros((p, g), bool).at[jnp.arange(p)[:, None], order].set(keep_sorted)


def top_token_mask(
    advantages: jax.Array, entropy: jax.Array, mask: jax.Array, fraction: float | jax.Array
) -> jax.Array:
    """The tokens with the largest |A_{i,t}| * H_{i,t}, a `fraction` of the batch's real tokens
    (rounded up; ties at the threshold are all kept): advantages [B] or [B, T], entropy and mask
    [B, T] -> bool [B, T]. `fraction` may be traced (a schedule inside a compiled update)."""
    if isinstance(fraction, float | int) and not 0.0 < fraction <= 1.0:
        raise DuettoError(f"the kept token fraction must be in (0, 1], got {fraction}")
    a = advantages[:, None] if advantages.ndim == 1 else advantages
    score = jnp.where(mask, jnp.abs(a) * entropy, -jnp.inf)
    n_real = jnp.sum(mask)
    n_keep = jnp.maximum(jnp.ceil(fraction * n_real).astype(jnp.int32), 1)
    ordered = jnp.sort(score.ravel())[::-1]
    threshold = ordered[jnp.minimum(n_keep, ordered.size) - 1]
    return mask & (score >= threshold)


def categorical_entropy(logits: jax.Array) -> jax.Array:
    """H(softmax(logits)) over the last axis, in nats."""
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.sum(jnp.exp(logp) * logp, axis=-1)


def schedule(
    progress: float,
    start: float,
    ramp: float = 0.6,
    shape: Literal["linear", "cosine"] = "linear",
) -> float:
    """The kept fraction at `progress` in [0, 1] of training: `start` at 0, rising to 1 at
    `ramp` (spec §7.3: from 0.5 (samples) or 0.3 (tokens) to 1 over the first 50-70 %)."""
    if not 0.0 < start <= 1.0 or not 0.0 < ramp <= 1.0:
        raise DuettoError(f"start and ramp must be in (0, 1], got {start} and {ramp}")
    x = float(np.clip(progress / ramp, 0.0, 1.0))
    if shape == "cosine":
        x = 0.5 - 0.5 * float(np.cos(np.pi * x))
    elif shape != "linear":
        raise DuettoError(f"shape must be 'linear' or 'cosine', got {shape!r}")
    return start + (1.0 - start) * x
