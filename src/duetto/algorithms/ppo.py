"""PPO: Proximal Policy Optimization with the clipped surrogate (Schulman et al., 2017).

On-policy actor-critic. A rollout of `n_steps` vector steps is collected with the current policy;
GAE(γ, λ) turns it into advantages and value targets; `n_epochs` passes over shuffled minibatches
minimise

    L = −E[min(ρ·Â, clip(ρ, 1 − ε, 1 + ε)·Â)] + c_v·L_V − c_e·H[π],   ρ = π(a|s) / π_old(a|s),

with the value loss L_V = ½·E[(V − R)²], or its clipped form ½·E[max((V − R)², (V_old +
clip(V − V_old, −ε_v, ε_v) − R)²)]. Advantages are normalised per minibatch. The actor and the
critic are separate 64-64 tanh networks with orthogonal initialisation, trained by one Adam
(ε 1e-5) with global gradient-norm clipping, as in SB3 and CleanRL.

Discrete actions use a categorical policy; Box actions a diagonal Gaussian with a learned,
state-independent log σ, sampled unbounded and clipped to [-1, 1] at the env's edge (the stored
action, and so the log-probability, is the unclipped one, as in SB3 and CleanRL).

Observation and reward normalisation (SB3's VecNormalize, CleanRL's wrappers) keep running
statistics in the state, so they are checkpointed: observations are normalised with the
statistics of the rollouts before the current one (they are refreshed after each update, so
collection and update see the same normalisation); rewards are divided by the running standard
deviation of the discounted return, refreshed with the rollout before the update.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax

from duetto.config import hp, hparams_of
from duetto.data.normalize import RunningStats, normalize, scale, stats_init, stats_update
from duetto.data.rollout import Rollout, discounted_returns, gae
from duetto.envs.spec import EnvSpec
from duetto.errors import DuettoError
from duetto.nets import (
    MLP,
    CategoricalActor,
    GaussianActor,
    categorical_entropy,
    categorical_log_prob,
    gaussian_entropy,
    gaussian_log_prob,
)

NAME = "ppo"
ACTION_SPACES = ("box", "discrete")
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
class PPOConfig:
    """PPO hyperparameters. Defaults: SB3's PPO (which match CleanRL's `ppo_continuous_action`
    unless noted) [SB3 = stable_baselines3.PPO; CleanRL = cleanrl/ppo_continuous_action.py]."""

    learning_rate: float = hp(
        3e-4, "Adam step size [SB3, CleanRL]", low=0, low_open=True, sweep=True
    )
    n_steps: int = hp(2048, "vector steps per rollout, per sub-env [SB3, CleanRL]", low=1)
    batch_size: int = hp(
        64,
        "minibatch size; must divide n_steps × n_envs [SB3; CleanRL: 2048 / 32 minibatches]",
        low=1,
    )
    n_epochs: int = hp(10, "passes over each rollout [SB3, CleanRL]", low=1)
    gamma: float = hp(0.99, "discount factor [SB3, CleanRL]", low=0, high=1, sweep=True)
    gae_lambda: float = hp(0.95, "GAE λ [SB3, CleanRL]", low=0, high=1, sweep=True)
    clip_range: float = hp(
        0.2, "ε of the clipped surrogate [SB3, CleanRL]", low=0, low_open=True, sweep=True
    )
    clip_range_vf: float = hp(
        0.0,
        "ε_v of the clipped value loss; 0 = unclipped [SB3: None; CleanRL: clip_vloss with 0.2]",
        low=0,
    )
    ent_coef: float = hp(0.0, "entropy bonus c_e [SB3, CleanRL continuous]", low=0, sweep=True)
    vf_coef: float = hp(
        0.5,
        "value-loss weight c_v on ½·E[(V − R)²] [CleanRL; SB3's 0.5 on E[(V − R)²] is 1.0 here]",
        low=0,
        sweep=True,
    )
    max_grad_norm: float = hp(0.5, "global gradient-norm clip [SB3, CleanRL]", low=0, low_open=True)
    normalize_advantage: bool = hp(True, "normalise advantages per minibatch [SB3, CleanRL]")
    anneal_steps: int = hp(
        0,
        "env steps over which the learning rate decays linearly to 0; 0 = constant "
        "[SB3: constant; CleanRL anneals over its whole budget; RL-Zoo 'lin_' schedules]",
        low=0,
    )
    anneal_clip: bool = hp(False, "anneal ε with the learning rate [RL-Zoo 'clip_range: lin_0.2']")
    normalize_obs: bool = hp(
        False, "normalise observations by running statistics [SB3 VecNormalize; CleanRL on]"
    )
    normalize_reward: bool = hp(
        False, "scale rewards by the running std of the discounted return [VecNormalize]"
    )
    obs_clip: float = hp(
        10.0, "clip of normalised observations [SB3, CleanRL]", low=0, low_open=True
    )
    reward_clip: float = hp(10.0, "clip of scaled rewards [SB3, CleanRL]", low=0, low_open=True)
    hidden: tuple = hp((64, 64), "hidden widths of actor and critic [SB3, CleanRL]", low=1)
    activation: str = hp("tanh", "hidden activation [SB3, CleanRL]", choices=("tanh", "relu"))
    log_std_init: float = hp(0.0, "initial log σ of a Gaussian policy [SB3, CleanRL]")
    adam_eps: float = hp(1e-5, "Adam ε [SB3, CleanRL]", low=0, low_open=True)


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


@flax.struct.dataclass
class PPOState:
    params: Any  # {"actor": ..., "critic": ...}
    opt_state: Any
    obs_stats: RunningStats
    return_stats: RunningStats
    return_acc: jnp.ndarray  # [n_envs], running discounted return for reward scaling
    hparams: dict[str, jnp.ndarray]  # the sweepable hyperparameters, traced (see config.hp)
    key: jax.Array
    updates: jnp.ndarray  # int32 [], updates (rollouts) done
    config: PPOConfig = flax.struct.field(pytree_node=False)
    spec: EnvSpec = flax.struct.field(pytree_node=False)


def _networks(config: PPOConfig, spec: EnvSpec) -> tuple[Any, MLP]:
    if spec.discrete:
        actor = CategoricalActor(config.hidden, spec.action_dim, activation=config.activation)
    else:
        actor = GaussianActor(
            config.hidden,
            spec.action_dim,
            activation=config.activation,
            log_std_init=config.log_std_init,
        )
    critic = MLP(
        config.hidden, 1, activation=config.activation, weight_init="orthogonal", out_gain=1.0
    )
    return actor, critic


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
    actor, critic = _networks(config, spec)
    k_actor, k_critic, k_state = jax.random.split(key, 3)
    obs = jnp.zeros((1, spec.obs_dim))
    params = {"actor": actor.init(k_actor, obs), "critic": critic.init(k_critic, obs)}
    return PPOState(
        params=params,
        opt_state=_optimizer(config).init(params),
        obs_stats=stats_init((spec.obs_dim,)),
        return_stats=stats_init(()),
        return_acc=jnp.zeros((n_envs,), jnp.float32),
        hparams=hparams_of(config),
        key=k_state,
        updates=jnp.zeros((), jnp.int32),
        config=config,
        spec=spec,
    )


def action_shape(spec: EnvSpec) -> tuple[tuple[int, ...], Any]:
    """Shape and dtype of one action as the policy produces it."""
    return ((), jnp.int32) if spec.discrete else ((spec.action_dim,), jnp.float32)


def _observe(state: PPOState, obs: jnp.ndarray) -> jnp.ndarray:
    if state.config.normalize_obs:
        return normalize(state.obs_stats, obs, state.config.obs_clip)
    return obs


def _distribution(state: PPOState, params: Any, obs: jnp.ndarray) -> tuple:
    actor, _ = _networks(state.config, state.spec)
    return actor.apply(params["actor"], obs)


def _log_prob_entropy(spec: EnvSpec, dist: Any, action: jnp.ndarray) -> tuple:
    if spec.discrete:
        return categorical_log_prob(dist, action), categorical_entropy(dist)
    mean, log_std = dist
    return gaussian_log_prob(action, mean, log_std), gaussian_entropy(log_std) * jnp.ones(
        mean.shape[:-1]
    )


def act(state: PPOState, obs: jnp.ndarray, key: jax.Array, deterministic: bool) -> jnp.ndarray:
    """obs [B, obs_dim] -> action [B] (Discrete) or [B, A] (Box, unclipped); the mode when
    deterministic."""
    if deterministic:
        dist = _distribution(state, state.params, _observe(state, obs))
        return jnp.argmax(dist, axis=-1) if state.spec.discrete else dist[0]
    return explore(state, obs, exploration_noise(state, key, obs.shape[:-1]))[0]


def exploration_noise(state: PPOState, key: jax.Array, batch: tuple[int, ...]) -> jnp.ndarray:
    """The randomness of `explore` for a batch of observations, drawn ahead: Gumbel noise
    [*batch, n] for n discrete actions, standard normal [*batch, A] for a Box. A loop can draw
    a whole rollout's at once (one call of the random generator instead of one per step)."""
    spec = state.spec
    if spec.discrete:
        return jax.random.gumbel(key, (*batch, spec.action_dim))
    return jax.random.normal(key, (*batch, spec.action_dim))


def explore(
    state: PPOState, obs: jnp.ndarray, noise: jnp.ndarray
) -> tuple[jnp.ndarray, jnp.ndarray]:
    """A sampled action and its log-probability under the current policy: obs [B, obs_dim],
    noise from `exploration_noise` for [B]. Discrete: argmax(logits + Gumbel), a sample of the
    categorical (the same bits as `jax.random.categorical` with the noise's key); Box:
    mean + σ·noise."""
    dist = _distribution(state, state.params, _observe(state, obs))
    if state.spec.discrete:
        action = jnp.argmax(dist + noise, axis=-1)
    else:
        mean, log_std = dist
        action = mean + jnp.exp(log_std) * noise
    return action, _log_prob_entropy(state.spec, dist, action)[0]


def value(state: PPOState, obs: jnp.ndarray) -> jnp.ndarray:
    """V(s): obs [..., obs_dim] -> [...]."""
    _, critic = _networks(state.config, state.spec)
    return critic.apply(state.params["critic"], _observe(state, obs))[..., 0]


def policy_loss(
    log_prob: jnp.ndarray, old_log_prob: jnp.ndarray, advantage: jnp.ndarray, clip: float
) -> tuple[jnp.ndarray, jnp.ndarray]:
    """−E[min(ρ·Â, clip(ρ, 1 − ε, 1 + ε)·Â)] and the fraction of clipped ratios: [B] -> []."""
    ratio = jnp.exp(log_prob - old_log_prob)
    surrogate = jnp.minimum(ratio * advantage, jnp.clip(ratio, 1.0 - clip, 1.0 + clip) * advantage)
    return -surrogate.mean(), (jnp.abs(ratio - 1.0) > clip).mean()


def value_loss(
    v: jnp.ndarray, old_v: jnp.ndarray, returns: jnp.ndarray, clip: float
) -> jnp.ndarray:
    """½·E[(V − R)²], or with clip > 0 ½·E[max((V − R)², (V_old + clip(V − V_old, ±ε_v) − R)²)]."""
    loss = jnp.square(v - returns)
    if clip > 0:
        clipped = old_v + jnp.clip(v - old_v, -clip, clip)
        loss = jnp.maximum(loss, jnp.square(clipped - returns))
    return 0.5 * loss.mean()


def update(state: PPOState, rollout: Rollout) -> tuple[PPOState, dict[str, jnp.ndarray]]:
    """One PPO update on a rollout [T, N, ...]: GAE, then n_epochs over shuffled minibatches."""
    cfg, spec, h = state.config, state.spec, state.hparams
    n_steps, n_envs = rollout.reward.shape
    total = n_steps * n_envs
    n_minibatches = total // cfg.batch_size
    _, critic = _networks(cfg, spec)

    reward = rollout.reward
    return_acc, return_stats = state.return_acc, state.return_stats
    if cfg.normalize_reward:
        return_acc, returns_seen = discounted_returns(
            state.return_acc, rollout.reward, rollout.done, h["gamma"]
        )
        return_stats = stats_update(state.return_stats, returns_seen.reshape(-1))
        reward = scale(return_stats, reward, cfg.reward_clip)

    obs = _observe(state, rollout.obs)
    v_old = critic.apply(state.params["critic"], obs)[..., 0]
    v_next = critic.apply(state.params["critic"], _observe(state, rollout.next_obs))[..., 0]
    advantage, returns = gae(
        reward, v_old, v_next, rollout.terminated, rollout.done, h["gamma"], h["gae_lambda"]
    )

    # Linear decay as in SB3's schedules: progress counts the env steps including this rollout.
    if cfg.anneal_steps > 0:
        steps = (state.updates + 1).astype(jnp.float32) * total
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
        dist = _distribution(state, params, b_obs)
        log_prob, entropy = _log_prob_entropy(spec, dist, b_action)
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
    metrics["explained_variance"] = 1.0 - jnp.var(returns - v_old) / (jnp.var(returns) + 1e-8)
    metrics["learning_rate"] = lr

    obs_stats = state.obs_stats
    if cfg.normalize_obs:
        obs_stats = stats_update(obs_stats, rollout.obs.reshape(total, -1))
    new_state = state.replace(
        params=params,
        opt_state=opt_state,
        obs_stats=obs_stats,
        return_stats=return_stats,
        return_acc=return_acc,
        key=key,
        updates=state.updates + 1,
    )
    return new_state, metrics


def check(config: PPOConfig, n_envs: int) -> None:
    """Reject a rollout that minibatches cannot split evenly."""
    total = config.n_steps * n_envs
    if total % config.batch_size:
        fits = [b for b in (32, 64, 128, 256, 512, 1024) if total % b == 0 and b <= total]
        hint = f" (e.g. {', '.join(map(str, fits))})" if fits else ""
        raise DuettoError(
            f"ppo: batch_size {config.batch_size} does not divide the rollout of n_steps × n_envs"
            f" = {config.n_steps} × {n_envs} = {total} transitions. Choose a batch_size that "
            f"divides {total}{hint}, or change n_steps."
        )
