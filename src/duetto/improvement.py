"""Policy-improvement steps that several algorithms share.

`reparameterised_step` is one gradient step of a tanh-Gaussian actor on an objective of
reparameterised samples ã = tanh(μ_θ(s) + σ_θ(s)·ε): the algorithm supplies the objective as a
function (SAC's E[α log π − min Q], MDPO's KL-regularised one, DSAC-T's on critic means), so
that the step itself, the sampling and the change of variables exist once. `temperature_step`
is SAC's automatic entropy tuning, on the log-probabilities of those samples.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from duetto.losses import temperature_loss
from duetto.nets import sample_squashed


class Sample(NamedTuple):
    """Reparameterised samples ã = tanh(u), u = μ + σ·ε: action [B, A] in (-1, 1), log_prob [B]
    (in the env's units, see `squashed_samples`), mean and log_std [B, A] of the pre-tanh
    Gaussian, and u [B, A] (to evaluate another policy's density at the same ã)."""

    action: jnp.ndarray
    log_prob: jnp.ndarray
    mean: jnp.ndarray
    log_std: jnp.ndarray
    u: jnp.ndarray


# objective(obs, sample) -> scalar loss, differentiable in the actor's parameters through the
# sample.
Objective = Callable[[jnp.ndarray, Sample], jnp.ndarray]


class Samples(NamedTuple):
    """What a policy step's samples were: log π(ã|s) [B] (no gradient) and the loss value."""

    loss: jnp.ndarray
    log_prob: jnp.ndarray


def squashed_samples(
    actor: nn.Module, params: Any, obs: jnp.ndarray, key: jax.Array, log_scale: float
) -> Sample:
    """ã ~ π_θ(·|s) reparameterised, with log π(ã|s) of the action in the env's units: the
    tanh-Gaussian's log-density minus Σ_k log(scale_k) when the bounds are not ±1 (as the
    official DSAC-T code and CleanRL count it)."""
    mean, log_std = actor.apply(params, obs)
    action, log_prob = sample_squashed(key, mean, log_std)
    u = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)  # its pre-tanh value
    if log_scale:
        log_prob = log_prob - log_scale
    return Sample(action, log_prob, mean, log_std, u)


def squashed_action(
    actor: nn.Module, params: Any, obs: jnp.ndarray, key: jax.Array | None, deterministic: bool
) -> jnp.ndarray:
    """A tanh-Gaussian actor's action for obs [B, obs_dim]: the mean action tanh(μ(s)) when
    deterministic, else a sample tanh(μ + σ·ε); [B, A] in (-1, 1)."""
    mean, log_std = actor.apply(params, obs)
    if deterministic:
        return jnp.tanh(mean)
    assert key is not None
    return sample_squashed(key, mean, log_std)[0]


def reparameterised_step(
    actor: nn.Module,
    objective: Objective,
    params: Any,
    opt_state: Any,
    tx: optax.GradientTransformation,
    key: jax.Array,
    obs: jnp.ndarray,
    log_scale: float = 0.0,
) -> tuple[Any, Any, Samples]:
    """One step of `tx` on `objective` at samples ã ~ π_θ(·|s) for obs [B, obs_dim]; returns
    the new parameters, optimiser state and the samples' loss and log π."""

    def loss_of(p: Any) -> tuple[jnp.ndarray, jnp.ndarray]:
        sample = squashed_samples(actor, p, obs, key, log_scale)
        return objective(obs, sample), sample.log_prob

    (loss, log_prob), grads = jax.value_and_grad(loss_of, has_aux=True)(params)
    step, opt_state = tx.update(grads, opt_state)
    params = optax.apply_updates(params, step)
    return params, opt_state, Samples(loss, jax.lax.stop_gradient(log_prob))


def temperature_step(
    log_alpha: jnp.ndarray,
    opt_state: Any,
    tx: optax.GradientTransformation,
    log_prob: jnp.ndarray,
    target_entropy: float,
) -> tuple[jnp.ndarray, Any, jnp.ndarray]:
    """One step of log α on `temperature_loss` at the samples' log π [B]."""
    loss, grad = jax.value_and_grad(temperature_loss)(log_alpha, log_prob, target_entropy)
    step, opt_state = tx.update(grad, opt_state)
    return optax.apply_updates(log_alpha, step), opt_state, loss
