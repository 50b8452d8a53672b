"""Losses that several algorithms share, written as the equations (control.md, "shared
building blocks"): the soft Bellman target, critic regression, the temperature loss and the
closed-form KL between diagonal Gaussians. An algorithm's own loss stays in its module."""

from __future__ import annotations

import jax.numpy as jnp


def soft_target(
    reward: jnp.ndarray,
    discount: jnp.ndarray,
    next_q: jnp.ndarray,
    next_log_prob: jnp.ndarray,
    alpha: jnp.ndarray | float,
) -> jnp.ndarray:
    """y = r + γ(1 − d)(min_j Q̄_j(s', a') − α log π(a'|s')): reward, discount [B] (γ(1 − d),
    or γ^m(1 − d) after the n-step return of a `Batch`), next_q [N, B] -> y [B].

    With α = 0 it is TD3's clipped double-Q target; with N = 1 and α = 0 DDPG's."""
    return reward + discount * (next_q.min(axis=0) - alpha * next_log_prob)


def critic_regression(
    q: jnp.ndarray, y: jnp.ndarray, weight: jnp.ndarray | None = None
) -> jnp.ndarray:
    """Σ_i ½·E[w·(Q_i(s, a) − y)²]: q [N, B], y [B], weight [B] (importance weights of a
    prioritised batch; None: every w = 1) -> []."""
    error = jnp.square(q - y)
    if weight is not None:
        error = weight * error
    return 0.5 * error.mean(axis=1).sum()


def td_error(q: jnp.ndarray, y: jnp.ndarray) -> jnp.ndarray:
    """|δ| per sample for prioritised replay: max_i |Q_i(s, a) − y|, q [N, B], y [B] -> [B]
    (the larger of the twin critics' errors, as in the PER-TD3 code of Fujimoto, Meger and
    Precup, "An Equivalence between Loss Functions and Non-Uniform Sampling", 2020)."""
    return jnp.abs(q - y).max(axis=0)


def temperature_loss(
    log_alpha: jnp.ndarray, log_prob: jnp.ndarray, target_entropy: float
) -> jnp.ndarray:
    """E[−log α·(log π(a|s) + H̄)], minimised in log α: log_prob [B] -> []."""
    return -log_alpha * jnp.mean(log_prob + target_entropy)


def gaussian_kl(
    mean: jnp.ndarray, log_std: jnp.ndarray, ref_mean: jnp.ndarray, ref_log_std: jnp.ndarray
) -> jnp.ndarray:
    """KL(N(mean, σ²) ‖ N(ref_mean, σ_ref²)) of diagonal Gaussians, summed over the last axis:
    Σ_k [log σ_ref − log σ + (σ² + (μ − μ_ref)²)/(2σ_ref²) − ½]. [..., A] -> [...]."""
    var, ref_var = jnp.exp(2.0 * log_std), jnp.exp(2.0 * ref_log_std)
    per_dim = ref_log_std - log_std + (var + jnp.square(mean - ref_mean)) / (2.0 * ref_var) - 0.5
    return jnp.sum(per_dim, axis=-1)
