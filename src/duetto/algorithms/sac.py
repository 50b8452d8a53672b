"""SAC: Soft Actor-Critic (Haarnoja et al., "Soft Actor-Critic Algorithms and Applications", 2018).

Off-policy maximum-entropy RL. Twin soft Q-functions regress on a clipped double-Q soft Bellman
target computed with Polyak-averaged target critics; a tanh-squashed Gaussian actor minimises
E[α·log π(ã|s) − min_j Q_j(s, ã)] by reparameterisation; the temperature α is tuned so that the
policy's entropy stays near H̄ = −|A|. Evaluation acts with the mean action tanh(μ(s)).

One `update` is: critic step, actor step (against the freshly updated critics), temperature
step, Polyak step, in the order of the paper's Algorithm 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax

from duetto.config import cnn_features_hp, encoder_hp, hp, hparams_of, weight_init_hp
from duetto.contract import TD_ERROR, OffPolicyConfig, override
from duetto.data.replay import Batch
from duetto.envs.spec import EnvSpec
from duetto.improvement import (
    Sample,
    reparameterised_step,
    squashed_action,
    squashed_samples,
    temperature_step,
)
from duetto.losses import critic_regression, soft_target, td_error
from duetto.nets import CriticEnsemble, SquashedGaussianActor
from duetto.nets.encoder import encoded
from duetto.nets.targets import polyak

NAME = "sac"
ACTION_SPACES = ("box",)
LOOP = "offpolicy"
# The scalar metrics `update` returns (the loops sum them without tracing update to learn it).
METRICS = ("critic_loss", "actor_loss", "temperature_loss", "alpha", "entropy", "q_mean")


@dataclass(frozen=True)
class SACConfig(OffPolicyConfig):
    """SAC hyperparameters. Defaults: the paper's Table 1 unless another source is named."""

    buffer_size: int = override(1_000_000, "paper, Table 1")
    learning_starts: int = override(100, "SB3 default")
    batch_size: int = override(256, "paper, Table 1")
    gradient_steps: int = override(1, "paper, Table 1: one per env step")
    env_steps_per_update: int = override(1, "SB3: 1")
    learning_rate: float = hp(
        3e-4,
        "Adam step size of actor, critics and temperature [paper, Table 1]",
        low=0,
        low_open=True,
        sweep=True,
    )
    tau: float = hp(
        0.005,
        "Polyak rate of the target critics per update [paper, Table 1]",
        low=0,
        high=1,
        low_open=True,
        sweep=True,
    )
    gamma: float = hp(0.99, "discount factor [paper, Table 1]", low=0, high=1, sweep=True)
    hidden: tuple = hp(
        (256, 256), "hidden widths of actor and critics, ReLU [paper, Table 1]", low=1
    )
    n_critics: int = hp(2, "Q-functions in the ensemble; the target takes their min [paper]", low=1)
    init_temperature: float = hp(1.0, "initial α [SB3 ent_coef='auto']", low=0, low_open=True)
    target_entropy_scale: float = hp(
        1.0, "target entropy H̄ = −scale·|A| [paper: H̄ = −dim(A)]", low=0
    )
    log_std_min: float = hp(-20.0, "lower clamp of the actor's log σ [softlearning, SB3]")
    log_std_max: float = hp(2.0, "upper clamp of the actor's log σ [softlearning, SB3]")
    matmul_dtype: str = hp(
        "float32",
        "precision of the network matmuls; parameters stay float32",
        choices=("float32", "bfloat16"),
    )
    weight_init: str = weight_init_hp()
    encoder: str = encoder_hp()
    cnn_features: int = cnn_features_hp()


CONFIG = SACConfig

PRESETS: dict[str, dict[str, Any]] = {
    # RL-Zoo hyperparams/sac.yml, Pendulum-v1: 20k steps, lr 1e-3, otherwise SB3 defaults.
    "zoo": {"learning_rate": 1e-3},
    # Small and fast (duetto's own): 64x64 networks and a small batch, as RLtools uses for
    # Pendulum, with a higher learning rate and τ 0.01 (solves Pendulum in ~2k steps).
    "fast": {
        "learning_rate": 3e-3,
        "hidden": (64, 64),
        "batch_size": 128,
        "buffer_size": 20_000,
        "tau": 0.01,
    },
}
PRESETS["mujoco"] = {"learning_starts": 10_000}  # RL-Zoo sac.yml, MuJoCo tasks: 1M steps
PRESET_STEPS = {"zoo": 20_000, "fast": 10_000, "mujoco": 1_000_000}


class SACState(flax.struct.PyTreeNode):
    actor_params: Any
    critic_params: Any
    target_params: Any
    log_alpha: jnp.ndarray  # []
    hparams: dict[str, jnp.ndarray]  # the sweepable hyperparameters, traced (see config.hp)
    actor_opt: Any
    critic_opt: Any
    alpha_opt: Any
    key: jax.Array
    updates: jnp.ndarray  # int32 [], gradient updates done
    config: SACConfig = flax.struct.field(pytree_node=False)
    spec: EnvSpec = flax.struct.field(pytree_node=False)


def _networks(config: SACConfig, spec: EnvSpec) -> tuple[Any, Any]:
    """The actor and the critic ensemble, each with its own encoder where the observation
    needs one (the ensemble's Q-functions share the critic's, as in SB3)."""
    dtype = jnp.dtype(config.matmul_dtype)
    actor = SquashedGaussianActor(
        config.hidden,
        spec.action_dim,
        config.log_std_min,
        config.log_std_max,
        dtype=dtype,
        weight_init=config.weight_init,
    )
    critic = CriticEnsemble(
        config.hidden, n=config.n_critics, dtype=dtype, weight_init=config.weight_init
    )
    init = config.weight_init
    critic = encoded(critic, spec, config, init, dtype, role="critic")
    return encoded(actor, spec, config, init, dtype), critic


def init(key: jax.Array, spec: EnvSpec, config: SACConfig, n_envs: int = 1) -> SACState:
    actor, critic = _networks(config, spec)
    k_actor, k_critic, k_state = jax.random.split(key, 3)
    obs = jnp.zeros((1, spec.obs_dim))
    action = jnp.zeros((1, spec.action_dim))
    actor_params = actor.init(k_actor, obs)
    critic_params = critic.init(k_critic, obs, action)
    log_alpha = jnp.log(jnp.asarray(config.init_temperature, jnp.float32))
    tx = optax.adam(config.learning_rate)
    return SACState(
        actor_params=actor_params,
        critic_params=critic_params,
        target_params=jax.tree.map(jnp.copy, critic_params),  # own buffers: states are donated
        log_alpha=log_alpha,
        hparams=hparams_of(config),
        actor_opt=tx.init(actor_params),
        critic_opt=tx.init(critic_params),
        alpha_opt=tx.init(log_alpha),
        key=k_state,
        updates=jnp.zeros((), jnp.int32),
        config=config,
        spec=spec,
    )


def act(
    state: SACState, obs: jnp.ndarray, key: jax.Array | None, deterministic: bool
) -> jnp.ndarray:
    """obs [B, obs_dim] -> action [B, act_dim] in [-1, 1]; the mean action when deterministic."""
    actor, _ = _networks(state.config, state.spec)
    return squashed_action(actor, state.actor_params, obs, key, deterministic)


def actor_loss(log_prob: jnp.ndarray, q: jnp.ndarray, alpha: jnp.ndarray) -> jnp.ndarray:
    """E[α·log π(ã|s) − min_j Q_j(s, ã)]: log_prob [B], q [N, B] -> []."""
    return jnp.mean(alpha * log_prob - q.min(axis=0))


def update(
    state: SACState, batch: Batch, env_steps: jax.Array
) -> tuple[SACState, dict[str, jnp.ndarray]]:
    """One gradient step on critics, actor and temperature, then Polyak: batch [B, ...] (its
    discount carries γ, termination and the n-step horizon; its weights, if any, weight the
    critic loss)."""
    cfg, h = state.config, state.hparams
    actor, critic = _networks(cfg, state.spec)
    tx = optax.adam(h["learning_rate"])
    key, k_next, k_pi = jax.random.split(state.key, 3)
    alpha = jnp.exp(state.log_alpha)

    nxt = squashed_samples(
        actor, state.actor_params, batch.next_obs, k_next, state.spec.action_log_scale
    )
    next_q = critic.apply(state.target_params, batch.next_obs, nxt.action)
    y = jax.lax.stop_gradient(
        soft_target(batch.reward, batch.discount, next_q, nxt.log_prob, alpha)
    )

    def critic_objective(params: Any) -> tuple[jnp.ndarray, jnp.ndarray]:
        q = critic.apply(params, batch.obs, batch.action)
        return critic_regression(q, y, batch.weight), q

    (loss_q, q), grads = jax.value_and_grad(critic_objective, has_aux=True)(state.critic_params)
    step, critic_opt = tx.update(grads, state.critic_opt)
    critic_params = optax.apply_updates(state.critic_params, step)

    # The actor against the freshly updated critics; α of before both steps.
    def objective(obs: jnp.ndarray, sample: Sample) -> jnp.ndarray:
        return actor_loss(sample.log_prob, critic.apply(critic_params, obs, sample.action), alpha)

    actor_params, actor_opt, samples = reparameterised_step(
        actor,
        objective,
        state.actor_params,
        state.actor_opt,
        tx,
        k_pi,
        batch.obs,
        state.spec.action_log_scale,
    )
    target_entropy = -cfg.target_entropy_scale * state.spec.action_dim
    log_alpha, alpha_opt, loss_alpha = temperature_step(
        state.log_alpha, state.alpha_opt, tx, samples.log_prob, target_entropy
    )

    new_state = state.replace(
        actor_params=actor_params,
        critic_params=critic_params,
        target_params=polyak(critic_params, state.target_params, h["tau"]),
        log_alpha=log_alpha,
        actor_opt=actor_opt,
        critic_opt=critic_opt,
        alpha_opt=alpha_opt,
        key=key,
        updates=state.updates + 1,
    )
    metrics = {
        "critic_loss": loss_q,
        "actor_loss": samples.loss,
        "temperature_loss": loss_alpha,
        "alpha": alpha,
        "entropy": -samples.log_prob.mean(),
        "q_mean": q.mean(),
        TD_ERROR: td_error(q, y),
    }
    return new_state, metrics
