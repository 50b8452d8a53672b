"""DSAC-T: Distributional Soft Actor-Critic with Three refinements (Duan et al., "Distributional
Soft Actor-Critic with Three Refinements", TPAMI 2025; official code: Jingliang-Duan/DSAC-v2).

Each critic models the soft return as a Gaussian Z_i(s, a) ~ N(Q_i, σ_i²). The target comes from
a target actor and target critics: a' ~ π̄(·|s'), z_i = Q̄_i + σ̄_i·clip(ε, −3, 3), and per sample
the critic with the smaller mean Q̄ supplies both the expected target y_q = r + γ(1 − d)(q' − α
log π̄(a'|s')) (γ^m(1 − d) after an n-step return) and the sampled one y_z (refinement 2, twin
distributions). The mean is trained on y_q (refinement 1, expected-value substitution); σ on y_z
clipped to ⌊Q_i⌋ ± 3ω_i, where ω_i is an EMA of the batch mean of σ_i; and the critic gradients
are rescaled by ω_i² (refinement 3), which makes the effective step size invariant to the reward
scale.

Two forms of the critic loss (`critic_loss`): "official", the current official code (July 2025,
also the SB3 port), a Huber (δ = 50) regression of Q on y_q and of σ on ŷ with a per-sample
ratio ρ_i = clip(ω_i²/(⌊σ_i⌋² + ε_b), 0.1, 10); and "paper", the earlier code's surrogate whose
gradients are the paper's refined negative log-likelihood gradients scaled by (ω_i² + ε_b). Its
value is not a likelihood; only its gradients mean something.

One `update` is as in the official `DSAC_V2.__compute_gradient` + `__update`: every gradient is
computed from the parameters before the step; the critics step on every call; every
`policy_delay`-th call (the first included) the actor and α step and all targets (critics and
actor) take a Polyak step. Evaluation acts with the mean action tanh(μ(s)).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax

from duetto.algorithms.sac import actor_loss
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
from duetto.losses import soft_target, td_error
from duetto.nets import GaussianCriticEnsemble, SquashedGaussianActor
from duetto.nets.encoder import encoded
from duetto.nets.targets import polyak

NAME = "dsac-t"
ACTION_SPACES = ("box",)
LOOP = "offpolicy"
METRICS = (
    "critic_loss",
    "actor_loss",
    "temperature_loss",
    "alpha",
    "entropy",
    "q_mean",
    "q_std",
    "omega",
)
_POLICY_METRICS = ("actor_loss", "temperature_loss", "entropy")  # from the delayed steps
_SAMPLE_CLIP = 3.0  # the target critics' noise ε is clipped to ±3 [code: __q_evaluate]
_RATIO_CLIP = (0.1, 10.0)  # bounds of ρ_i in the official loss [code]


@dataclass(frozen=True)
class DSACTConfig(OffPolicyConfig):
    """DSAC-T hyperparameters. Defaults: the official code's MuJoCo script
    (example_train/dsacv2_mlp_mujoco_offserial.py) [code] unless another source is named."""

    buffer_size: int = override(1_000_000, "code")
    learning_starts: int = override(
        10_000, "code: buffer_warm_size", "warm-up env steps before the first update"
    )
    batch_size: int = override(256, "code")
    gradient_steps: int = override(1, "code")
    env_steps_per_update: int = override(
        1,
        "SB3 port",
        "vector-env steps between update calls: 1; 20 is the paper's schedule "
        "[code: sample_batch_size]",
    )
    warmup_actions: str = override(
        "policy", "code", "warm-up actions: the current (untrained) policy's, or uniform"
    )
    critic_learning_rate: float = hp(
        1e-4, "Adam step size of the critics [code]", low=0, low_open=True, sweep=True
    )
    actor_learning_rate: float = hp(
        1e-4, "Adam step size of the actor [code]", low=0, low_open=True, sweep=True
    )
    alpha_learning_rate: float = hp(
        3e-4, "Adam step size of log α [code]", low=0, low_open=True, sweep=True
    )
    tau: float = hp(
        0.005,
        "Polyak rate of all targets, and the rate τ_b of the ω EMA [code]",
        low=0,
        high=1,
        low_open=True,
        sweep=True,
    )
    gamma: float = hp(0.99, "discount factor [code]", low=0, high=1, sweep=True)
    hidden: tuple = hp((256, 256, 256), "hidden widths of actor and critics [code]", low=1)
    activation: str = hp(
        "gelu", "hidden activation of actor and critics [code]", choices=("gelu", "relu", "tanh")
    )
    n_critics: int = hp(
        2, "Gaussian critics; per sample the smallest mean gives the target [paper]", low=1
    )
    policy_delay: int = hp(
        2, "critic steps per actor, α and target step [code: delay_update]", low=1
    )
    init_log_alpha: float = hp(1.0, "initial log α (α ≈ 2.72) [code]")
    target_entropy_scale: float = hp(1.0, "target entropy H̄ = −scale·|A| [code: −|A|]", low=0)
    log_std_min: float = hp(-20.0, "lower clamp of the actor's log σ [code]")
    log_std_max: float = hp(0.5, "upper clamp of the actor's log σ [code]")
    critic_loss: str = hp(
        "official",
        "critic loss form: 'official' (Huber, ratio-clipped; the code since July 2025) or "
        "'paper' (the refined-gradient surrogate of the paper and earlier code)",
        choices=("official", "paper"),
    )
    td_bound: float = hp(
        3.0, "ξ: the sampled target is clipped to ⌊Q_i⌋ ± ξ·ω_i [paper, code]", low=0
    )
    std_bias: float = hp(0.1, "ε_b, added to σ powers in the loss denominators [code]", low=0)
    huber_delta: float = hp(50.0, "δ of the Huber terms of the official loss [code]", low=0)
    omega_scaling: bool = hp(
        True,
        "refinement 3: scale the critic gradients by ω_i²; False puts 1 in place of ω_i² (an "
        "ablation; the ±ξ·ω_i clip stays)",
    )
    reward_scale: float = hp(
        1.0,
        "rewards are multiplied by this before learning [code: reward_scale]",
        low=0,
        low_open=True,
        sweep=True,
    )
    weight_init: str = weight_init_hp()
    encoder: str = encoder_hp()
    cnn_features: int = cnn_features_hp()


CONFIG = DSACTConfig

PRESETS: dict[str, dict[str, Any]] = {
    # The paper's schedule: 20 env steps per gradient step [code: sample_batch_size = 20];
    # the official Pendulum run is 12k iterations, 240k env steps.
    "paper": {"env_steps_per_update": 20},
    # Small and fast (duetto's own), as SAC's `fast` preset: 64x64 networks, batch 128,
    # step sizes 3e-3, τ 0.01, a short warm-up.
    "fast": {
        "critic_learning_rate": 3e-3,
        "actor_learning_rate": 3e-3,
        "alpha_learning_rate": 3e-3,
        "hidden": (64, 64),
        "batch_size": 128,
        "buffer_size": 20_000,
        "tau": 0.01,
        "learning_starts": 1_000,
    },
    # The official MuJoCo script, at UTD 1 (the defaults; 1.5M iterations there).
    "mujoco": {"learning_starts": 10_000},
}
PRESET_STEPS = {"paper": 240_000, "fast": 10_000, "mujoco": 1_000_000}


class DSACTState(flax.struct.PyTreeNode):
    actor_params: Any
    critic_params: Any
    target_actor_params: Any
    target_critic_params: Any
    log_alpha: jnp.ndarray  # []
    omega: jnp.ndarray  # [N], EMA of each critic's batch-mean σ
    hparams: dict[str, jnp.ndarray]  # the sweepable hyperparameters, traced (see config.hp)
    actor_opt: Any
    critic_opt: Any
    alpha_opt: Any
    key: jax.Array
    updates: jnp.ndarray  # int32 [], critic steps done
    last: dict[str, jnp.ndarray]  # the latest delayed step's metrics (reported between them)
    config: DSACTConfig = flax.struct.field(pytree_node=False)
    spec: EnvSpec = flax.struct.field(pytree_node=False)


def _networks(config: DSACTConfig, spec: EnvSpec) -> tuple[Any, Any]:
    """The actor and the critic ensemble, each with its own encoder where the observation
    needs one."""
    actor = SquashedGaussianActor(
        config.hidden,
        spec.action_dim,
        config.log_std_min,
        config.log_std_max,
        activation=config.activation,
        weight_init=config.weight_init,
    )
    critic = GaussianCriticEnsemble(
        config.hidden,
        n=config.n_critics,
        activation=config.activation,
        weight_init=config.weight_init,
    )
    init = config.weight_init
    return encoded(actor, spec, config, init), encoded(critic, spec, config, init, role="critic")


def init(key: jax.Array, spec: EnvSpec, config: DSACTConfig, n_envs: int = 1) -> DSACTState:
    actor, critic = _networks(config, spec)
    k_actor, k_critic, k_state = jax.random.split(key, 3)
    obs = jnp.zeros((1, spec.obs_dim))
    actor_params = actor.init(k_actor, obs)
    critic_params = critic.init(k_critic, obs, jnp.zeros((1, spec.action_dim)))
    log_alpha = jnp.asarray(config.init_log_alpha, jnp.float32)
    adam = optax.adam(1.0)  # the step size does not enter Adam's state
    return DSACTState(
        actor_params=actor_params,
        critic_params=critic_params,
        target_actor_params=jax.tree.map(jnp.copy, actor_params),  # own buffers: donated
        target_critic_params=jax.tree.map(jnp.copy, critic_params),
        log_alpha=log_alpha,
        omega=jnp.zeros((config.n_critics,), jnp.float32),  # set from the first batch
        hparams=hparams_of(config),
        actor_opt=adam.init(actor_params),
        critic_opt=adam.init(critic_params),
        alpha_opt=adam.init(log_alpha),
        key=k_state,
        updates=jnp.zeros((), jnp.int32),
        last={k: jnp.zeros((), jnp.float32) for k in _POLICY_METRICS},
        config=config,
        spec=spec,
    )


def act(
    state: DSACTState, obs: jnp.ndarray, key: jax.Array | None, deterministic: bool
) -> jnp.ndarray:
    """obs [B, obs_dim] -> action [B, act_dim] in [-1, 1]; the mean action when deterministic."""
    actor, _ = _networks(state.config, state.spec)
    return squashed_action(actor, state.actor_params, obs, key, deterministic)


# ---- the pieces of the critic loss (each unit-tested against a hand computation) -------------


def distributional_targets(
    reward: jnp.ndarray,
    discount: jnp.ndarray,
    next_q: jnp.ndarray,
    next_std: jnp.ndarray,
    noise: jnp.ndarray,
    next_log_prob: jnp.ndarray,
    alpha: jnp.ndarray,
) -> tuple[jnp.ndarray, jnp.ndarray]:
    """(y_q, y_z) [B]: reward, discount [B] (γ(1 − d)), next_q, next_std, noise [N, B] (noise
    already clipped to ±3).

    z_i = Q̄_i + σ̄_i·ε_i; per sample j* = argmin_i Q̄_i; y_q uses Q̄_{j*}, y_z uses z_{j*}."""
    j = jnp.argmin(next_q, axis=0)
    z = jnp.take_along_axis(next_q + next_std * noise, j[None], axis=0)  # [1, B]
    y_q = soft_target(reward, discount, next_q, next_log_prob, alpha)
    y_z = soft_target(reward, discount, z, next_log_prob, alpha)
    return y_q, y_z


def omega_ema(
    omega: jnp.ndarray, std: jnp.ndarray, rate: float | jnp.ndarray, first: jnp.ndarray
) -> jnp.ndarray:
    """ω_i ← (1 − τ_b)·ω_i + τ_b·mean_B σ_i, or mean_B σ_i on the first batch: std [N, B]."""
    batch_mean = jnp.mean(std, axis=1)
    return jnp.where(first, batch_mean, (1.0 - rate) * omega + rate * batch_mean)


def clipped_sample_target(
    q: jnp.ndarray, y_z: jnp.ndarray, omega: jnp.ndarray, bound: float
) -> jnp.ndarray:
    """ŷ_i = Q_i + clip(y_z − Q_i, −ξω_i, ξω_i): q [N, B] (no gradient), y_z [B] -> [N, B]."""
    width = bound * omega[:, None]
    return q + jnp.clip(y_z - q, -width, width)


def _huber(x: jnp.ndarray, delta: float) -> jnp.ndarray:
    """½x² for |x| ≤ δ, δ(|x| − ½δ) beyond (PyTorch's huber_loss)."""
    return optax.losses.huber_loss(x, delta=delta)


def critic_loss_official(
    q: jnp.ndarray,
    std: jnp.ndarray,
    y_q: jnp.ndarray,
    y_hat: jnp.ndarray,
    omega_sq: jnp.ndarray,
    bias: float,
    delta: float,
    weight: jnp.ndarray | None = None,
) -> jnp.ndarray:
    """Σ_i E[w·ρ_i·(Huber_δ(Q_i − y_q) + σ_i·(⌊σ_i⌋² − Huber_δ(⌊Q_i⌋ − ŷ_i))/(⌊σ_i⌋ + ε_b))],
    ρ_i = clip(ω_i²/(⌊σ_i⌋² + ε_b), 0.1, 10): q, std, y_hat [N, B], y_q [B], omega_sq [N],
    weight [B] (importance weights of a prioritised batch; None: w = 1)."""
    q_d, std_d = jax.lax.stop_gradient(q), jax.lax.stop_gradient(std)
    ratio = jnp.clip(omega_sq[:, None] / (jnp.square(std_d) + bias), *_RATIO_CLIP)
    mean_term = _huber(q - y_q, delta)
    std_term = std * (jnp.square(std_d) - _huber(q_d - y_hat, delta)) / (std_d + bias)
    per_sample = ratio * (mean_term + std_term)
    if weight is not None:
        per_sample = weight * per_sample
    return jnp.sum(jnp.mean(per_sample, axis=1))


def critic_loss_paper(
    q: jnp.ndarray,
    std: jnp.ndarray,
    y_q: jnp.ndarray,
    y_hat: jnp.ndarray,
    omega_sq: jnp.ndarray,
    bias: float,
    weight: jnp.ndarray | None = None,
) -> jnp.ndarray:
    """Σ_i (ω_i² + ε_b)·E[w·(−(y_q − ⌊Q_i⌋)/(⌊σ_i⌋² + ε_b)·Q_i
    − ((⌊Q_i⌋ − ŷ_i)² − ⌊σ_i⌋²)/(⌊σ_i⌋³ + ε_b)·σ_i)]: shapes as critic_loss_official."""
    q_d, std_d = jax.lax.stop_gradient(q), jax.lax.stop_gradient(std)
    mean_term = -(y_q - q_d) / (jnp.square(std_d) + bias) * q
    std_term = -(jnp.square(q_d - y_hat) - jnp.square(std_d)) / (std_d**3 + bias) * std
    per_sample = mean_term + std_term
    if weight is not None:
        per_sample = weight * per_sample
    return jnp.sum((omega_sq + bias) * jnp.mean(per_sample, axis=1))


# ---- one update ------------------------------------------------------------------------------


def update(
    state: DSACTState, batch: Batch, env_steps: jax.Array
) -> tuple[DSACTState, dict[str, jnp.ndarray]]:
    """One critic step; on every `policy_delay`-th call also the actor, α and target steps."""
    cfg, h = state.config, state.hparams
    actor, critic = _networks(cfg, state.spec)
    key, k_next, k_noise, k_pi = jax.random.split(state.key, 4)
    alpha = jnp.exp(state.log_alpha)
    reward = h["reward_scale"] * batch.reward

    nxt = squashed_samples(
        actor, state.target_actor_params, batch.next_obs, k_next, state.spec.action_log_scale
    )
    next_action, next_log_prob = nxt.action, nxt.log_prob
    next_q, next_std = critic.apply(state.target_critic_params, batch.next_obs, next_action)
    noise = jnp.clip(jax.random.normal(k_noise, next_q.shape), -_SAMPLE_CLIP, _SAMPLE_CLIP)
    y_q, y_z = jax.lax.stop_gradient(
        distributional_targets(
            reward, batch.discount, next_q, next_std, noise, next_log_prob, alpha
        )
    )

    def critic_objective(params: Any) -> tuple[jnp.ndarray, tuple]:
        q, std = critic.apply(params, batch.obs, batch.action)
        omega = omega_ema(state.omega, jax.lax.stop_gradient(std), h["tau"], state.updates == 0)
        y_hat = clipped_sample_target(jax.lax.stop_gradient(q), y_z, omega, cfg.td_bound)
        omega_sq = jnp.square(omega) if cfg.omega_scaling else jnp.ones_like(omega)
        if cfg.critic_loss == "official":
            loss = critic_loss_official(
                q, std, y_q, y_hat, omega_sq, cfg.std_bias, cfg.huber_delta, batch.weight
            )
        else:
            loss = critic_loss_paper(q, std, y_q, y_hat, omega_sq, cfg.std_bias, batch.weight)
        return loss, (q, std, omega)

    (loss_q, (q, std, omega)), grads = jax.value_and_grad(critic_objective, has_aux=True)(
        state.critic_params
    )
    step, critic_opt = optax.adam(h["critic_learning_rate"]).update(grads, state.critic_opt)
    critic_params = optax.apply_updates(state.critic_params, step)

    def policy_and_targets(state: DSACTState) -> DSACTState:
        # The actor's gradient uses the critics before this call's step, as the code does:
        # E[α·log π(ã|s) − min_i Q_i(s, ã)] on the critic means.
        def objective(obs: jnp.ndarray, sample: Sample) -> jnp.ndarray:
            q = critic.apply(state.critic_params, obs, sample.action)[0]
            return actor_loss(sample.log_prob, q, alpha)

        actor_params, actor_opt, samples = reparameterised_step(
            actor,
            objective,
            state.actor_params,
            state.actor_opt,
            optax.adam(h["actor_learning_rate"]),
            k_pi,
            batch.obs,
            state.spec.action_log_scale,
        )
        log_alpha, alpha_opt, loss_alpha = temperature_step(
            state.log_alpha,
            state.alpha_opt,
            optax.adam(h["alpha_learning_rate"]),
            samples.log_prob,
            -cfg.target_entropy_scale * state.spec.action_dim,
        )
        return state.replace(
            actor_params=actor_params,
            actor_opt=actor_opt,
            log_alpha=log_alpha,
            alpha_opt=alpha_opt,
            target_actor_params=polyak(actor_params, state.target_actor_params, h["tau"]),
            target_critic_params=polyak(critic_params, state.target_critic_params, h["tau"]),
            last={
                "actor_loss": samples.loss,
                "temperature_loss": loss_alpha,
                "entropy": -samples.log_prob.mean(),
            },
        )

    def critics_only(state: DSACTState) -> DSACTState:
        return state

    delayed = state.updates % cfg.policy_delay == 0
    state = jax.lax.cond(delayed, policy_and_targets, critics_only, state)
    metrics = {
        "critic_loss": loss_q,
        "alpha": alpha,
        "q_mean": q.mean(),
        "q_std": std.mean(),
        "omega": omega.mean(),
        **state.last,
        TD_ERROR: td_error(q, y_q),
    }
    new_state = state.replace(
        critic_params=critic_params,
        critic_opt=critic_opt,
        omega=omega,
        key=key,
        updates=state.updates + 1,
    )
    return new_state, metrics
