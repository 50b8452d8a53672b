"""MDPO, on-policy: Mirror Descent Policy Optimization (Tomar, Shani, Efroni, Ghavamzadeh, ICLR
2022; official code: manantomar/Mirror-Descent-Policy-Optimization, TF1 on stable-baselines).

Each update approximately solves the mirror-descent trust-region problem of iteration k,

    L(θ) = −E[(π_θ(a|s) / π_θk(a|s))·Â(s, a)] + (1/t_k)·E_s[KL(π_θ(·|s) ‖ π_θk(·|s))],

by a fixed number m of full-batch gradient steps (no line search, no clipping), where π_θk is
the policy that collected the rollout and the KL is the closed-form one of two Gaussians (or
categoricals, or of independent categoricals or bits, summed), in the reverse direction
(new ‖ old). The step size t_k = 1 − k/K shrinks over
the K iterations of the run, so the KL weight 1/t_k grows from 1 [code]. Then the value network
is fitted: `n_epochs` passes of minibatches of `batch_size` on the clipped value loss (ε_v 0.2).
Advantages are GAE(γ, λ), standardised over the rollout.

The actor, the critic, their normalisation and GAE are the on-policy actor-critic shared with
PPO (duetto/actor_critic.py); the official code runs with VecNormalize on observations and
rewards, as the defaults here do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import optax

from duetto.actor_critic import (
    ActorCriticConfig,
    ActorCriticState,
    act,
    action_shape,
    distribution,
    explained_variance,
    exploration_noise,
    explore,
    finish,
    init_state,
    log_prob_entropy,
    networks,
    observe,
    prepare,
    value_loss,
)
from duetto.config import hp
from duetto.contract import override
from duetto.data.rollout import Rollout
from duetto.envs.spec import EnvSpec
from duetto.losses import gaussian_kl
from duetto.nets import bernoulli_kl, categorical_kl, multi_categorical_kl

__all__ = [
    "action_shape",
    "act",
    "exploration_noise",
    "explore",
    "observe",
]  # the interface, shared

NAME = "mdpo"
ACTION_SPACES = ("box", "discrete", "multi_discrete", "binary")
LOOP = "onpolicy"
METRICS = ("policy_loss", "kl", "kl_weight", "value_loss", "entropy", "explained_variance")


@dataclass(frozen=True)
class MDPOConfig(ActorCriticConfig):
    """On-policy MDPO hyperparameters. Defaults: the official code's on-policy script and
    README example [code], on stable-baselines' MlpPolicy (64-64 tanh) [SB]."""

    n_steps: int = override(2048, "code")
    batch_size: int = override(128, "code", "minibatch size of the value fit")
    n_epochs: int = override(5, "code", "passes of the value fit over each rollout")
    normalize_obs: bool = override(True, "code: VecNormalize")
    normalize_reward: bool = override(True, "code: VecNormalize")
    clip_range_vf: float = override(0.2, "code", "ε_v of the clipped value loss")
    policy_steps: int = hp(
        10, "m: full-batch gradient steps on the policy loss per iteration [code README]", low=1
    )
    schedule_steps: int = hp(
        1_000_000,
        "env steps K·(n_steps·n_envs) over which t_k = 1 − k/K falls to 1/K (the KL weight "
        "1/t_k grows from 1) [code: t_k over the run's iterations; duetto: the MuJoCo budget]",
        low=1,
    )
    kl_scale: float = hp(
        1.0,
        "multiplies the KL weight 1/t_k; 0 drops the trust region (an ablation) [paper: 1]",
        low=0,
        sweep=True,
    )


CONFIG = MDPOConfig

PRESETS: dict[str, dict[str, Any]] = {
    # The official MuJoCo setting (1 env, 2048 steps), with the schedule over RL-Zoo's 1M.
    "mujoco": {},
    # Classic control with a short schedule, as PPO's cartpole preset budgets it.
    "cartpole": {
        "n_steps": 32,
        "batch_size": 64,
        "n_epochs": 10,
        "policy_steps": 10,
        "gamma": 0.98,
        "gae_lambda": 0.8,
        "learning_rate": 1e-3,
        "normalize_obs": False,
        "normalize_reward": False,
        "schedule_steps": 100_000,
    },
}
PRESET_STEPS = {"mujoco": 1_000_000, "cartpole": 100_000}
PRESET_ENVS = {"mujoco": 1, "cartpole": 8}

MDPOState = ActorCriticState


def _optimizer(config: MDPOConfig) -> optax.GradientTransformation:
    """Clip, then Adam's direction (the step size is applied in `update`): grad-norm 0.5 and
    Adam ε 1e-5 [code], one for the policy and one for the value network."""
    return optax.flatten(
        optax.chain(
            optax.clip_by_global_norm(config.max_grad_norm),
            optax.scale_by_adam(eps=config.adam_eps),
        )
    )


def init(key: jax.Array, spec: EnvSpec, config: MDPOConfig, n_envs: int = 1) -> MDPOState:
    tx = _optimizer(config)
    return init_state(
        key,
        spec,
        config,
        n_envs,
        lambda params: {"actor": tx.init(params["actor"]), "critic": tx.init(params["critic"])},
    )


def step_size(env_steps: jnp.ndarray, rollout_steps: int, schedule_steps: int) -> jnp.ndarray:
    """t_k = 1 − k/K for iteration k (0 for the first rollout) of K = schedule_steps /
    rollout_steps iterations, held at 1/K after them; `env_steps` includes this rollout."""
    iterations = max(schedule_steps // rollout_steps, 1)
    k = jnp.asarray(env_steps).astype(jnp.float32) / rollout_steps - 1.0
    return jnp.maximum(1.0 - k / iterations, 1.0 / iterations)


def kl_divergence(spec: EnvSpec, dist: Any, old: Any) -> jnp.ndarray:
    """KL(π_θ(·|s) ‖ π_θk(·|s)) [B] in closed form: diagonal Gaussians (log σ state-independent,
    broadcast), categoricals, or independent categoricals or bits (their KLs summed)."""
    if spec.action_kind == "discrete":
        return categorical_kl(dist, old)
    if spec.action_kind == "multi_discrete":
        return multi_categorical_kl(dist, old, spec.nvec)
    if spec.action_kind == "binary":
        return bernoulli_kl(dist, old)
    (mean, log_std), (old_mean, old_log_std) = dist, old
    return gaussian_kl(
        mean,
        jnp.broadcast_to(log_std, mean.shape),
        old_mean,
        jnp.broadcast_to(old_log_std, mean.shape),
    )


def policy_loss(
    log_prob: jnp.ndarray,
    old_log_prob: jnp.ndarray,
    advantage: jnp.ndarray,
    kl: jnp.ndarray,
    kl_weight: jnp.ndarray,
) -> jnp.ndarray:
    """−E[ρ·Â] + (1/t_k)·E[KL(π_θ ‖ π_θk)], ρ = π_θ(a|s)/π_θk(a|s): [B] -> []."""
    return -jnp.mean(jnp.exp(log_prob - old_log_prob) * advantage) + kl_weight * jnp.mean(kl)


def update(
    state: MDPOState, rollout: Rollout, env_steps: jax.Array
) -> tuple[MDPOState, dict[str, jnp.ndarray]]:
    """One MDPO iteration on a rollout [T, N, ...]: GAE, m full-batch policy steps on the
    mirror-descent loss, then the value fit; `env_steps` counts the env steps including this
    rollout (the clock of t_k)."""
    cfg, spec, h = state.config, state.spec, state.hparams
    n_steps, n_envs = rollout.reward.shape
    total = n_steps * n_envs
    _, critic = networks(cfg, spec)
    tx = _optimizer(cfg)
    lr = h["learning_rate"]
    prepared = prepare(state, rollout)
    flat = jax.tree.map(
        lambda x: x.reshape((total, *x.shape[2:])),
        (prepared.obs, rollout.action, prepared.advantage, prepared.returns, prepared.v_old),
    )
    obs, action, advantage, returns, v_old = flat
    advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
    old = jax.lax.stop_gradient(distribution(state, state.params, obs))
    old_log_prob = log_prob_entropy(spec, old, action)[0]
    kl_weight = h["kl_scale"] / step_size(env_steps, total, cfg.schedule_steps)

    def policy_objective(actor_params: Any) -> tuple[jnp.ndarray, dict]:
        dist = distribution(state, {"actor": actor_params}, obs)
        log_prob, entropy = log_prob_entropy(spec, dist, action)
        kl = kl_divergence(spec, dist, old)
        loss = policy_loss(log_prob, old_log_prob, advantage, kl, kl_weight)
        return loss, {"policy_loss": loss, "kl": kl.mean(), "entropy": entropy.mean()}

    def policy_step(carry: tuple, _: Any) -> tuple[tuple, dict]:
        params, opt_state = carry
        grads, metrics = jax.grad(policy_objective, has_aux=True)(params)
        direction, opt_state = tx.update(grads, opt_state, params)
        return (jax.tree.map(lambda p, d: p - lr * d, params, direction), opt_state), metrics

    (actor_params, actor_opt), policy_metrics = jax.lax.scan(
        policy_step,
        (state.params["actor"], state.opt_state["actor"]),
        None,
        length=cfg.policy_steps,
    )

    n_minibatches = total // cfg.batch_size

    def value_objective(critic_params: Any, batch: tuple) -> jnp.ndarray:
        b_obs, b_returns, b_v_old = batch
        v = critic.apply(critic_params, b_obs)[..., 0]
        return value_loss(v, b_v_old, b_returns, cfg.clip_range_vf)

    def value_step(carry: tuple, batch: tuple) -> tuple[tuple, jnp.ndarray]:
        params, opt_state = carry
        loss, grads = jax.value_and_grad(value_objective)(params, batch)
        direction, opt_state = tx.update(grads, opt_state, params)
        return (jax.tree.map(lambda p, d: p - lr * d, params, direction), opt_state), loss

    def epoch(carry: tuple, key: jax.Array) -> tuple[tuple, jnp.ndarray]:
        order = jax.random.permutation(key, total)
        batches = jax.tree.map(
            lambda x: x[order].reshape((n_minibatches, cfg.batch_size, *x.shape[1:])),
            (obs, returns, v_old),
        )
        return jax.lax.scan(value_step, carry, batches)

    key, k_epochs = jax.random.split(state.key)
    (critic_params, critic_opt), value_losses = jax.lax.scan(
        epoch,
        (state.params["critic"], state.opt_state["critic"]),
        jax.random.split(k_epochs, cfg.n_epochs),
    )
    metrics = {k: v[-1] for k, v in policy_metrics.items()}  # after the m steps' last
    metrics["kl_weight"] = kl_weight
    metrics["value_loss"] = value_losses.mean()
    metrics["explained_variance"] = explained_variance(returns, v_old)
    params = {"actor": actor_params, "critic": critic_params}
    opt_state = {"actor": actor_opt, "critic": critic_opt}
    return finish(state, rollout, prepared, params, opt_state, key), metrics
