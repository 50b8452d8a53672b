"""PPO: Proximal Policy Optimization with the clipped surrogate (Schulman et al., 2017).

On-policy actor-critic. A rollout of `n_steps` vector steps is collected with the current policy;
GAE(γ, λ) turns it into advantages and value targets; `n_epochs` passes over shuffled minibatches
minimise

    L = −E[min(ρ·Â, clip(ρ, 1 − ε, 1 + ε)·Â)] + c_v·L_V − c_e·H[π],   ρ = π(a|s) / π_old(a|s),

with the value loss L_V = ½·E[(V − R)²], or its clipped form ½·E[max((V − R)², (V_old +
clip(V − V_old, −ε_v, ε_v) − R)²)]. Advantages are normalised per minibatch. The actor and the
critic are separate 64-64 tanh networks with orthogonal initialisation, trained by one Adam
(ε 1e-5) with global gradient-norm clipping, as in SB3 and CleanRL.

The actor, the critic, their normalisation and GAE are the on-policy actor-critic that PPO
shares with on-policy MDPO (duetto/actor_critic.py).
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

__all__ = [
    "action_shape",
    "act",
    "exploration_noise",
    "explore",
    "observe",
]  # the interface, shared

NAME = "ppo"
ACTION_SPACES = ("box", "discrete", "multi_discrete", "binary")
LOOP = "onpolicy"
# The scalar metrics `update` returns (the loops sum them without tracing update to learn it).
METRICS = (
    "policy_loss",
    "value_loss",
    "entropy",
    "approx_kl",
    "clip_fraction",
    "explained_variance",
    "learning_rate",
)


@dataclass(frozen=True)
class PPOConfig(ActorCriticConfig):
    """PPO hyperparameters. Defaults: SB3's PPO (which match CleanRL's `ppo_continuous_action`
    unless noted) [SB3 = stable_baselines3.PPO; CleanRL = cleanrl/ppo_continuous_action.py]."""

    n_steps: int = override(2048, "SB3, CleanRL")
    batch_size: int = override(64, "SB3; CleanRL: 2048 / 32 minibatches")
    n_epochs: int = override(10, "SB3, CleanRL")
    clip_range: float = hp(
        0.2, "ε of the clipped surrogate [SB3, CleanRL]", low=0, low_open=True, sweep=True
    )
    ent_coef: float = hp(0.0, "entropy bonus c_e [SB3, CleanRL continuous]", low=0, sweep=True)
    vf_coef: float = hp(
        0.5,
        "value-loss weight c_v on ½·E[(V − R)²] [CleanRL; SB3's 0.5 on E[(V − R)²] is 1.0 here]",
        low=0,
        sweep=True,
    )
    normalize_advantage: bool = hp(True, "normalise advantages per minibatch [SB3, CleanRL]")
    anneal_steps: int = hp(
        0,
        "env steps over which the learning rate decays linearly to 0; 0 = constant "
        "[SB3: constant; CleanRL anneals over its whole budget; RL-Zoo 'lin_' schedules]",
        low=0,
    )
    anneal_clip: bool = hp(False, "anneal ε with the learning rate [RL-Zoo 'clip_range: lin_0.2']")


CONFIG = PPOConfig

PRESETS: dict[str, dict[str, Any]] = {
    # RL-Zoo hyperparams/ppo.yml, CartPole-v1 (8 envs, 1e5 steps). lin_0.001 and lin_0.2 are
    # linear decays over the budget; SB3's value loss is unhalved, hence vf_coef 1.0 here.
    "cartpole": {
        "n_steps": 32,
        "batch_size": 256,
        "gae_lambda": 0.8,
        "gamma": 0.98,
        "n_epochs": 20,
        "ent_coef": 0.0,
        "learning_rate": 1e-3,
        "anneal_steps": 100_000,
        "anneal_clip": True,
        "vf_coef": 1.0,
    },
    # RL-Zoo hyperparams/ppo.yml, Pendulum-v1 (4 envs, 1e5 steps) without gSDE, which duetto
    # does not have: plain Gaussian exploration instead of sde_sample_freq 4.
    "pendulum": {
        "n_steps": 1024,
        "gae_lambda": 0.95,
        "gamma": 0.9,
        "n_epochs": 10,
        "ent_coef": 0.0,
        "learning_rate": 1e-3,
        "clip_range": 0.2,
        "vf_coef": 1.0,
    },
    # CleanRL ppo.py for classic control (4 envs x 128 steps, 4 epochs x 4 minibatches,
    # 500k steps), which is also PureJaxRL's ppo.py default config: the throughput anchor.
    "classic": {
        "n_steps": 128,
        "batch_size": 128,
        "n_epochs": 4,
        "learning_rate": 2.5e-4,
        "anneal_steps": 500_000,
        "ent_coef": 0.01,
        "clip_range_vf": 0.2,
    },
    # CleanRL ppo_continuous_action.py (1 env, 1M steps): clipped value loss, normalisation.
    "cleanrl": {
        "clip_range_vf": 0.2,
        "anneal_steps": 1_000_000,
        "normalize_obs": True,
        "normalize_reward": True,
    },
}
PRESET_STEPS = {"cartpole": 100_000, "pendulum": 200_000, "classic": 500_000, "cleanrl": 1_000_000}
PRESET_ENVS = {"cartpole": 8, "pendulum": 4, "classic": 4, "cleanrl": 1}


PPOState = ActorCriticState


def _optimizer(config: PPOConfig) -> optax.GradientTransformation:
    """Clip, then Adam's direction; the (scheduled) step size is applied in `update`.

    Over all parameters as one vector (`optax.flatten`): the same elementwise arithmetic as
    per array, in a few operations instead of a few per array, which is most of the cost of a
    minibatch step for networks this small (fused CartPole: 7 % more env steps/s)."""
    return optax.flatten(
        optax.chain(
            optax.clip_by_global_norm(config.max_grad_norm),
            optax.scale_by_adam(eps=config.adam_eps),
        )
    )


def init(key: jax.Array, spec: EnvSpec, config: PPOConfig, n_envs: int = 1) -> PPOState:
    return init_state(key, spec, config, n_envs, _optimizer(config).init)


def policy_loss(
    log_prob: jnp.ndarray,
    old_log_prob: jnp.ndarray,
    advantage: jnp.ndarray,
    clip: float | jnp.ndarray,
) -> tuple[jnp.ndarray, jnp.ndarray]:
    """−E[min(ρ·Â, clip(ρ, 1 − ε, 1 + ε)·Â)] and the fraction of clipped ratios: [B] -> []."""
    ratio = jnp.exp(log_prob - old_log_prob)
    surrogate = jnp.minimum(ratio * advantage, jnp.clip(ratio, 1.0 - clip, 1.0 + clip) * advantage)
    return -surrogate.mean(), (jnp.abs(ratio - 1.0) > clip).mean()


def update(
    state: PPOState, rollout: Rollout, env_steps: jax.Array
) -> tuple[PPOState, dict[str, jnp.ndarray]]:
    """One PPO update on a rollout [T, N, ...]: GAE, then n_epochs over shuffled minibatches;
    `env_steps` counts the env steps including this rollout's (the schedules' clock)."""
    cfg, spec, h = state.config, state.spec, state.hparams
    n_steps, n_envs = rollout.reward.shape
    total = n_steps * n_envs
    n_minibatches = total // cfg.batch_size
    _, critic = networks(cfg, spec)
    prepared = prepare(state, rollout)
    obs, advantage, returns, v_old = prepared[:4]

    # Linear decay as in SB3's schedules: progress counts the env steps including this rollout.
    if cfg.anneal_steps > 0:
        steps = jnp.asarray(env_steps).astype(jnp.float32)
        frac = jnp.clip(1.0 - steps / cfg.anneal_steps, 0.0, 1.0)
    else:
        frac = jnp.ones((), jnp.float32)
    lr = h["learning_rate"] * frac
    clip = h["clip_range"] * frac if cfg.anneal_clip else h["clip_range"]

    flat = jax.tree.map(
        lambda x: x.reshape((total, *x.shape[2:])),
        (obs, rollout.action, rollout.log_prob, advantage, returns, v_old),
    )
    tx = _optimizer(cfg)

    def objective(params: Any, batch: tuple) -> tuple[jnp.ndarray, dict]:
        b_obs, b_action, b_log_prob, b_adv, b_ret, b_v_old = batch
        dist = distribution(state, params, b_obs)
        log_prob, entropy = log_prob_entropy(spec, dist, b_action)
        if cfg.normalize_advantage:
            b_adv = (b_adv - b_adv.mean()) / (b_adv.std() + 1e-8)
        pg, clip_frac = policy_loss(log_prob, b_log_prob, b_adv, clip)
        v = critic.apply(params["critic"], b_obs)[..., 0]
        vf = value_loss(v, b_v_old, b_ret, cfg.clip_range_vf)
        ent = entropy.mean()
        log_ratio = log_prob - b_log_prob
        metrics = {
            "policy_loss": pg,
            "value_loss": vf,
            "entropy": ent,
            "approx_kl": jnp.mean(jnp.exp(log_ratio) - 1.0 - log_ratio),
            "clip_fraction": clip_frac,
        }
        return pg + h["vf_coef"] * vf - h["ent_coef"] * ent, metrics

    def minibatch_step(carry: tuple, batch: tuple) -> tuple[tuple, dict]:
        params, opt_state = carry
        grads, metrics = jax.grad(objective, has_aux=True)(params, batch)
        direction, opt_state = tx.update(grads, opt_state, params)
        params = jax.tree.map(lambda p, d: p - lr * d, params, direction)
        return (params, opt_state), metrics

    def epoch(carry: tuple, key: jax.Array) -> tuple[tuple, dict]:
        order = jax.random.permutation(key, total)
        batches = jax.tree.map(
            lambda x: x[order].reshape((n_minibatches, cfg.batch_size, *x.shape[1:])), flat
        )
        return jax.lax.scan(minibatch_step, carry, batches)

    key, k_epochs = jax.random.split(state.key)
    (params, opt_state), metrics = jax.lax.scan(
        epoch, (state.params, state.opt_state), jax.random.split(k_epochs, cfg.n_epochs)
    )
    metrics = jax.tree.map(jnp.mean, metrics)
    metrics["explained_variance"] = explained_variance(returns, v_old)
    metrics["learning_rate"] = lr
    return finish(state, rollout, prepared, params, opt_state, key), metrics
