"""The on-policy actor-critic that PPO and on-policy MDPO share (and later HNPG and GoRL).

A stochastic policy, categorical for Discrete actions, independent categoricals per dimension
for MultiDiscrete ones (log-probabilities and entropies summed, SB3's
MultiCategoricalDistribution), independent Bernoullis for MultiBinary ones (SB3's
BernoulliDistribution), or a diagonal Gaussian with a learned, state-independent log σ for a
Box (sampled unbounded and clipped to [-1, 1] at the env's edge; the stored action, and so the
log-probability, is the unclipped one, as in SB3 and CleanRL), and a value network: separate
tanh MLPs with orthogonal initialisation (√2 on hidden layers, 0.01 on the policy output, 1 on
the value output), each reading the observation through its own encoder where it needs one
(images, indices: nets/encoder.py; SB3's PPO shares one between them by default).

Observation and reward normalisation (SB3's VecNormalize, CleanRL's wrappers) keep running
statistics in the state, so they are checkpointed. Observations (their Box values; not
indices, bits or pixels) are normalised from the first step, as SB3 and CleanRL do: at each
collected step the statistics take in the step's observations and then normalise them
(`observe`), and the rollout stores the normalised ones, so the update sees what the policy
saw. Rewards are divided by the running standard deviation
of the discounted return, refreshed with the rollout before the update.

The config fields these read are declared once, in `ActorCriticConfig`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import flax
import jax
import jax.numpy as jnp

from duetto.config import cnn_features_hp, encoder_hp, hp, hparams_of
from duetto.contract import OnPolicyConfig
from duetto.data.normalize import RunningStats, normalize, scale, stats_init, stats_update
from duetto.data.rollout import Rollout, discounted_returns, gae
from duetto.envs.spaces import box_columns
from duetto.envs.spec import EnvSpec
from duetto.nets import (
    MLP,
    CategoricalActor,
    GaussianActor,
    bernoulli_entropy,
    bernoulli_log_prob,
    categorical_entropy,
    categorical_log_prob,
    gaussian_entropy,
    gaussian_log_prob,
    multi_categorical_entropy,
    multi_categorical_log_prob,
    multi_categorical_mode,
)
from duetto.nets.encoder import encoded


@dataclass(frozen=True)
class ActorCriticConfig(OnPolicyConfig):
    """The fields of the on-policy actor-critic (defaults: SB3's PPO, which match CleanRL's
    ppo_continuous_action unless noted)."""

    learning_rate: float = hp(
        3e-4, "Adam step size [SB3, CleanRL]", low=0, low_open=True, sweep=True
    )
    gamma: float = hp(0.99, "discount factor [SB3, CleanRL]", low=0, high=1, sweep=True)
    gae_lambda: float = hp(0.95, "GAE λ [SB3, CleanRL]", low=0, high=1, sweep=True)
    clip_range_vf: float = hp(
        0.0,
        "ε_v of the clipped value loss; 0 = unclipped [SB3: None; CleanRL: clip_vloss with 0.2]",
        low=0,
    )
    max_grad_norm: float = hp(0.5, "global gradient-norm clip [SB3, CleanRL]", low=0, low_open=True)
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
    encoder: str = encoder_hp()
    cnn_features: int = cnn_features_hp()


class ActorCriticState(flax.struct.PyTreeNode):
    params: Any  # {"actor": ..., "critic": ...}
    opt_state: Any
    obs_stats: RunningStats
    return_stats: RunningStats
    return_acc: jnp.ndarray  # [n_envs], running discounted return for reward scaling
    hparams: dict[str, jnp.ndarray]  # the sweepable hyperparameters, traced (see config.hp)
    key: jax.Array
    updates: jnp.ndarray  # int32 [], updates (rollouts) done
    config: Any = flax.struct.field(pytree_node=False)
    spec: EnvSpec = flax.struct.field(pytree_node=False)


def networks(config: ActorCriticConfig, spec: EnvSpec) -> tuple[Any, Any]:
    """The actor and the critic, each with its own encoder where the observation needs one."""
    actor: Any
    if spec.action_kind != "box":
        actor = CategoricalActor(config.hidden, spec.logits_dim, activation=config.activation)
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
    # SB3 initialises the feature extractor orthogonally with gain √2 too (ortho_init).
    critic = encoded(critic, spec, config, "orthogonal", role="critic")
    return encoded(actor, spec, config, "orthogonal"), critic


def init_state(
    key: jax.Array, spec: EnvSpec, config: ActorCriticConfig, n_envs: int, optimizer: Any
) -> ActorCriticState:
    """Fresh networks, statistics and counters; `optimizer(params)` gives the opt state."""
    actor, critic = networks(config, spec)
    k_actor, k_critic, k_state = jax.random.split(key, 3)
    obs = jnp.zeros((1, spec.obs_dim))
    params = {"actor": actor.init(k_actor, obs), "critic": critic.init(k_critic, obs)}
    return ActorCriticState(
        params=params,
        opt_state=optimizer(params),
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
    if spec.action_kind == "discrete":
        return (), jnp.int32
    if spec.action_kind == "box":
        return (spec.action_dim,), jnp.float32
    return (spec.action_dim,), jnp.int32


def observe(
    state: ActorCriticState, obs: jnp.ndarray, update: bool
) -> tuple[ActorCriticState, jnp.ndarray]:
    """The observation as the networks see it: with `normalize_obs`, normalised by the running
    statistics, which first take in `obs` when `update` (a collected step: SB3's VecNormalize
    and CleanRL's NormalizeObservation update before normalising, from the first step). Only
    the Box values are normalised: one-hot indices, bits and pixels are read as they are."""
    if not state.config.normalize_obs:
        return state, obs
    if update:
        stats = stats_update(state.obs_stats, obs.reshape(-1, obs.shape[-1]))
        state = state.replace(obs_stats=stats)
    seen = normalize(state.obs_stats, obs, state.config.obs_clip)
    boxes = box_columns(state.spec.obs_layout) if state.spec.obs_layout else None
    return state, seen if boxes is None else jnp.where(boxes, seen, obs)


def distribution(state: ActorCriticState, params: Any, obs: jnp.ndarray) -> Any:
    """Logits [B, spec.logits_dim], or (mean [B, A], log σ [A]), of the policy with `params`."""
    actor, _ = networks(state.config, state.spec)
    return actor.apply(params["actor"], obs)


def log_prob_entropy(spec: EnvSpec, dist: Any, action: jnp.ndarray) -> tuple:
    """log π(a|s) [B] and the entropy [B] of `dist` (see `distribution`)."""
    kind = spec.action_kind
    if kind == "discrete":
        return categorical_log_prob(dist, action), categorical_entropy(dist)
    if kind == "multi_discrete":
        return (
            multi_categorical_log_prob(dist, action, spec.nvec),
            multi_categorical_entropy(dist, spec.nvec),
        )
    if kind == "binary":
        return bernoulli_log_prob(dist, action), bernoulli_entropy(dist)
    mean, log_std = dist
    return gaussian_log_prob(action, mean, log_std), gaussian_entropy(log_std) * jnp.ones(
        mean.shape[:-1]
    )


def mode(spec: EnvSpec, dist: Any) -> jnp.ndarray:
    """The most likely action of `dist`: argmax per categorical, the bits with p > ½ (SB3's
    rounding of p), the Gaussian's mean."""
    kind = spec.action_kind
    if kind == "discrete":
        return jnp.argmax(dist, axis=-1)
    if kind == "multi_discrete":
        return multi_categorical_mode(dist, spec.nvec)
    if kind == "binary":
        return (dist > 0).astype(jnp.int32)
    return dist[0]


def act(
    state: ActorCriticState, obs: jnp.ndarray, key: jax.Array | None, deterministic: bool
) -> jnp.ndarray:
    """obs [B, obs_dim] -> action [B] (Discrete) or [B, A] (Box, unclipped; MultiDiscrete and
    MultiBinary, int); the mode when deterministic."""
    seen = observe(state, obs, False)[1]
    if deterministic:
        return mode(state.spec, distribution(state, state.params, seen))
    assert key is not None
    return explore(state, seen, exploration_noise(state, key, obs.shape[:-1]))[0]


def exploration_noise(
    state: ActorCriticState, key: jax.Array, batch: tuple[int, ...]
) -> jnp.ndarray:
    """The randomness of `explore` for a batch of observations, drawn ahead: Gumbel noise
    [*batch, logits] for categoricals, uniform [*batch, K] for K bits, standard normal
    [*batch, A] for a Box. A loop can draw a whole rollout's at once (one call of the random
    generator instead of one per step)."""
    spec = state.spec
    if spec.action_kind in ("discrete", "multi_discrete"):
        return jax.random.gumbel(key, (*batch, spec.logits_dim))
    if spec.action_kind == "binary":
        return jax.random.uniform(key, (*batch, spec.action_dim))
    return jax.random.normal(key, (*batch, spec.action_dim))


def explore(
    state: ActorCriticState, obs: jnp.ndarray, noise: jnp.ndarray
) -> tuple[jnp.ndarray, jnp.ndarray]:
    """A sampled action and its log-probability under the current policy: obs [B, obs_dim] as
    `observe` returned it, noise from `exploration_noise` for [B]. Discrete: argmax(logits +
    Gumbel), a sample of the categorical (the same bits as `jax.random.categorical` with the
    noise's key), per dimension for MultiDiscrete; MultiBinary: 1 where uniform noise < σ(l);
    Box: mean + σ·noise."""
    spec = state.spec
    dist = distribution(state, state.params, obs)
    if spec.action_kind == "discrete":
        action = jnp.argmax(dist + noise, axis=-1)
    elif spec.action_kind == "multi_discrete":
        action = multi_categorical_mode(dist + noise, spec.nvec)
    elif spec.action_kind == "binary":
        action = (noise < jax.nn.sigmoid(dist)).astype(jnp.int32)
    else:
        mean, log_std = dist
        action = mean + jnp.exp(log_std) * noise
    return action, log_prob_entropy(spec, dist, action)[0]


def value(state: ActorCriticState, obs: jnp.ndarray) -> jnp.ndarray:
    """V(s): obs [..., obs_dim] -> [...]."""
    _, critic = networks(state.config, state.spec)
    return critic.apply(state.params["critic"], observe(state, obs, False)[1])[..., 0]


def value_loss(
    v: jnp.ndarray, old_v: jnp.ndarray, returns: jnp.ndarray, clip: float
) -> jnp.ndarray:
    """½·E[(V − R)²], or with clip > 0 ½·E[max((V − R)², (V_old + clip(V − V_old, ±ε_v) − R)²)]."""
    loss = jnp.square(v - returns)
    if clip > 0:
        clipped = old_v + jnp.clip(v - old_v, -clip, clip)
        loss = jnp.maximum(loss, jnp.square(clipped - returns))
    return 0.5 * loss.mean()


class Prepared(NamedTuple):
    """A rollout made ready for the updates: its observations [T, N, obs_dim] (as observed),
    advantages, returns and values of the collecting critic [T, N], and the reward-scaling
    statistics after it."""

    obs: jnp.ndarray
    advantage: jnp.ndarray
    returns: jnp.ndarray
    v_old: jnp.ndarray
    return_acc: jnp.ndarray
    return_stats: RunningStats


def prepare(state: ActorCriticState, rollout: Rollout) -> Prepared:
    """Scale the rewards (when `normalize_reward`), then GAE(γ, λ) with the critic that
    collected the rollout, bootstrapping truncated episodes from their true final states."""
    cfg, h = state.config, state.hparams
    _, critic = networks(cfg, state.spec)
    reward = rollout.reward
    return_acc, return_stats = state.return_acc, state.return_stats
    if cfg.normalize_reward:
        return_acc, returns_seen = discounted_returns(
            state.return_acc, rollout.reward, rollout.done, h["gamma"]
        )
        return_stats = stats_update(state.return_stats, returns_seen.reshape(-1))
        reward = scale(return_stats, reward, cfg.reward_clip)
    obs = rollout.obs  # stored as the networks saw them (`observe`)
    v_old = critic.apply(state.params["critic"], obs)[..., 0]
    v_next = critic.apply(state.params["critic"], rollout.next_obs)[..., 0]
    advantage, returns = gae(
        reward, v_old, v_next, rollout.terminated, rollout.done, h["gamma"], h["gae_lambda"]
    )
    return Prepared(obs, advantage, returns, v_old, return_acc, return_stats)


def finish(
    state: ActorCriticState,
    rollout: Rollout,
    prepared: Prepared,
    params: Any,
    opt_state: Any,
    key: jax.Array,
) -> ActorCriticState:
    """The state after an update: new parameters, the reward statistics of `prepare`, one more
    update counted."""
    return state.replace(
        params=params,
        opt_state=opt_state,
        return_stats=prepared.return_stats,
        return_acc=prepared.return_acc,
        key=key,
        updates=state.updates + 1,
    )


def explained_variance(returns: jnp.ndarray, v_old: jnp.ndarray) -> jnp.ndarray:
    return 1.0 - jnp.var(returns - v_old) / (jnp.var(returns) + 1e-8)
