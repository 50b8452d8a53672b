"""MDPO, off-policy: Mirror Descent Policy Optimization (Tomar, Shani, Efroni, Ghavamzadeh, ICLR
2022; official code: manantomar/Mirror-Descent-Policy-Optimization, on stable-baselines' SAC).

SAC in its first form (a state-value network V, its Polyak target V̄, twin Q-functions and a
fixed entropy weight λ) with a KL term to an old policy π_θk, which is a copy of the actor taken
every m env steps. With ã = tanh(u), u = μ_θ(s) + σ_θ(s)·ε (reparameterised):

    Q_i:  ½·E[(Q_i(s, a) − (r + γ(1 − d)·V̄(s')))²]
    V:    ½·E[(V(s) − ⌊min_i Q_i(s, ã) − λ·log π_θ(ã|s)⌋)²]
    π:    E[λ·log π_θ(ã|s) + w·(log π_θ(ã|s) − log π_θk(ã|s)) − Q_1(s, ã)]
          + 10⁻³·(E[μ²] + E[(log σ)²])

w = 1/t_k is the KL weight: a one-sample estimate of w·KL(π_θ ‖ π_θk), with the gradient
flowing through ã inside log π_θk too. The code writes the actor loss as c·log π_θ + (λ − c)·
log π_θk with c = λ + w (`klconst` 1.0 with λ = 0.2, so w = 0.8); with w = 0 it is SAC-v1's.
It uses Q_1 alone in the actor loss [code]. Every gradient of one update is computed from the
parameters before it (as the code's single graph does), then V̄ takes a Polyak step.

The official code collects with the deterministic action tanh(μ) after the warm-up; duetto
samples from π as the paper and SAC do (`explore_deterministic` keeps the code's way).
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
from duetto.improvement import Sample, reparameterised_step, squashed_action, squashed_samples
from duetto.losses import critic_regression, td_error
from duetto.nets import MLP, CriticEnsemble, SquashedGaussianActor, squashed_gaussian_log_prob
from duetto.nets.encoder import encoded
from duetto.nets.targets import polyak

NAME = "mdpo-off"
CLASS_NAME = "MDPOOff"
ACTION_SPACES = ("box",)
LOOP = "offpolicy"
METRICS = ("critic_loss", "value_loss", "actor_loss", "kl", "entropy", "q_mean")


@dataclass(frozen=True)
class MDPOOffConfig(OffPolicyConfig):
    """Off-policy MDPO hyperparameters. Defaults: the official code's off-policy script and
    README example [code], on stable-baselines' SAC [SB]."""

    buffer_size: int = override(1_000_000, "code")
    learning_starts: int = override(
        10_000, "code", "env steps of uniform random actions before the first update"
    )
    batch_size: int = override(256, "code")
    gradient_steps: int = override(1, "code")
    env_steps_per_update: int = override(1, "code")
    learning_rate: float = hp(
        3e-4, "Adam step size of actor, Q and V [code]", low=0, low_open=True, sweep=True
    )
    tau: float = hp(0.005, "Polyak rate of V̄ [code]", low=0, high=1, low_open=True, sweep=True)
    gamma: float = hp(0.99, "discount factor [code]", low=0, high=1, sweep=True)
    entropy_weight: float = hp(
        0.2, "λ, the fixed entropy weight [code: ent_coef]", low=0, sweep=True
    )
    kl_weight: float = hp(
        0.8,
        "w = 1/t_k, the weight of the KL to the old policy [code: klconst c = 1.0 = λ + w]",
        low=0,
        sweep=True,
    )
    old_policy_every: int = hp(
        1000, "m: env steps between copies of the actor into the old policy [code README]", low=1
    )
    actor_reg: float = hp(
        1e-3, "weight of E[μ²] + E[(log σ)²] in the actor loss [code, SAC-v1]", low=0
    )
    hidden: tuple = hp((256, 256), "hidden widths of actor, Q and V, ReLU [code]", low=1)
    n_critics: int = hp(2, "Q-functions; V's target takes their min [code]", low=1)
    log_std_min: float = hp(-20.0, "lower clamp of the actor's log σ [code]")
    log_std_max: float = hp(2.0, "upper clamp of the actor's log σ [code]")
    explore_deterministic: bool = hp(
        False, "collect with the mean action after the warm-up, as the code does [code: True]"
    )
    weight_init: str = weight_init_hp()
    encoder: str = encoder_hp()
    cnn_features: int = cnn_features_hp()


CONFIG = MDPOOffConfig

PRESETS: dict[str, dict[str, Any]] = {
    # RL-Zoo's SAC setting for Pendulum-v1 (20k steps, lr 1e-3, a short warm-up).
    "zoo": {"learning_rate": 1e-3, "learning_starts": 100},
    "mujoco": {},  # the official script's setting
}
PRESET_STEPS = {"zoo": 20_000, "mujoco": 1_000_000}


class MDPOOffState(flax.struct.PyTreeNode):
    actor_params: Any
    old_actor_params: Any  # π_θk
    q_params: Any
    v_params: Any
    v_target_params: Any
    hparams: dict[str, jnp.ndarray]  # the sweepable hyperparameters, traced (see config.hp)
    actor_opt: Any
    q_opt: Any
    v_opt: Any
    key: jax.Array
    updates: jnp.ndarray  # int32 [], update calls done
    copied_at: jnp.ndarray  # int32 [], env steps at the last copy into the old policy
    config: MDPOOffConfig = flax.struct.field(pytree_node=False)
    spec: EnvSpec = flax.struct.field(pytree_node=False)


def _networks(config: MDPOOffConfig, spec: EnvSpec) -> tuple[Any, Any, Any]:
    """The actor, the Q ensemble and V, each with its own encoder where the observation needs
    one."""
    actor = SquashedGaussianActor(
        config.hidden,
        spec.action_dim,
        config.log_std_min,
        config.log_std_max,
        weight_init=config.weight_init,
    )
    q = CriticEnsemble(config.hidden, n=config.n_critics, weight_init=config.weight_init)
    v = MLP(config.hidden, 1, weight_init=config.weight_init)
    init = config.weight_init
    return (
        encoded(actor, spec, config, init),
        encoded(q, spec, config, init, role="critic"),
        encoded(v, spec, config, init, role="critic"),
    )


def init(key: jax.Array, spec: EnvSpec, config: MDPOOffConfig, n_envs: int = 1) -> MDPOOffState:
    actor, q, v = _networks(config, spec)
    k_actor, k_q, k_v, k_state = jax.random.split(key, 4)
    obs = jnp.zeros((1, spec.obs_dim))
    actor_params = actor.init(k_actor, obs)
    q_params = q.init(k_q, obs, jnp.zeros((1, spec.action_dim)))
    v_params = v.init(k_v, obs)
    adam = optax.adam(1.0)  # the step size does not enter Adam's state
    return MDPOOffState(
        actor_params=actor_params,
        old_actor_params=jax.tree.map(jnp.copy, actor_params),  # own buffers: states are donated
        q_params=q_params,
        v_params=v_params,
        v_target_params=jax.tree.map(jnp.copy, v_params),
        hparams=hparams_of(config),
        actor_opt=adam.init(actor_params),
        q_opt=adam.init(q_params),
        v_opt=adam.init(v_params),
        key=k_state,
        updates=jnp.zeros((), jnp.int32),
        copied_at=jnp.zeros((), jnp.int32),
        config=config,
        spec=spec,
    )


def act(
    state: MDPOOffState, obs: jnp.ndarray, key: jax.Array | None, deterministic: bool
) -> jnp.ndarray:
    """obs [B, obs_dim] -> action [B, act_dim] in [-1, 1]; the mean action when deterministic
    (and when collecting, with `explore_deterministic`)."""
    actor, _, _ = _networks(state.config, state.spec)
    deterministic = deterministic or state.config.explore_deterministic
    return squashed_action(actor, state.actor_params, obs, key, deterministic)


def actor_loss(
    log_prob: jnp.ndarray,
    old_log_prob: jnp.ndarray,
    q1: jnp.ndarray,
    entropy_weight: jnp.ndarray | float,
    kl_weight: jnp.ndarray | float,
) -> jnp.ndarray:
    """E[λ·log π_θ(ã|s) + w·(log π_θ(ã|s) − log π_θk(ã|s)) − Q_1(s, ã)]: [B] -> []."""
    return jnp.mean(entropy_weight * log_prob + kl_weight * (log_prob - old_log_prob) - q1)


def value_target(
    q: jnp.ndarray, log_prob: jnp.ndarray, entropy_weight: jnp.ndarray | float
) -> jnp.ndarray:
    """min_i Q_i(s, ã) − λ·log π_θ(ã|s): q [N, B], log_prob [B] -> [B]."""
    return q.min(axis=0) - entropy_weight * log_prob


def update(
    state: MDPOOffState, batch: Batch, env_steps: jax.Array
) -> tuple[MDPOOffState, dict[str, jnp.ndarray]]:
    """Copy the actor into the old policy when m env steps have passed since the last copy,
    then one gradient step on Q, V and the actor (all from the parameters before it), then
    Polyak on V̄."""
    cfg, h, spec = state.config, state.hparams, state.spec
    actor, q_net, v_net = _networks(cfg, spec)
    tx = optax.adam(h["learning_rate"])
    key, k_pi = jax.random.split(state.key)
    lam, w = h["entropy_weight"], h["kl_weight"]

    copy = jnp.asarray(env_steps) - state.copied_at >= cfg.old_policy_every
    old_params = jax.tree.map(
        lambda new, old: jnp.where(copy, new, old), state.actor_params, state.old_actor_params
    )
    copied_at = jnp.where(copy, jnp.asarray(env_steps, jnp.int32), state.copied_at)

    # The batch's discount is γ(1 − d), or γ^m(1 − d) after an n-step return: V̄ bootstraps
    # either (the importance weights of prioritised replay weight the Q loss alone).
    y = batch.reward + batch.discount * v_net.apply(state.v_target_params, batch.next_obs)[..., 0]
    y = jax.lax.stop_gradient(y)

    def q_objective(params: Any) -> tuple[jnp.ndarray, jnp.ndarray]:
        q = q_net.apply(params, batch.obs, batch.action)
        return critic_regression(q, y, batch.weight), q

    (loss_q, q), q_grads = jax.value_and_grad(q_objective, has_aux=True)(state.q_params)

    # V's target and the actor's step use samples of the current actor (one key for both, as
    # the code's graph samples once).
    log_scale = spec.action_log_scale
    sample = squashed_samples(actor, state.actor_params, batch.obs, k_pi, log_scale)
    v_target = jax.lax.stop_gradient(
        value_target(q_net.apply(state.q_params, batch.obs, sample.action), sample.log_prob, lam)
    )

    def v_objective(params: Any) -> jnp.ndarray:
        return 0.5 * jnp.mean(jnp.square(v_net.apply(params, batch.obs)[..., 0] - v_target))

    loss_v, v_grads = jax.value_and_grad(v_objective)(state.v_params)

    old_mean, old_log_std = jax.lax.stop_gradient(actor.apply(old_params, batch.obs))

    def old_log_prob(sample: Sample) -> jnp.ndarray:
        """log π_θk at the sample's ã (the same u: the tanh correction is the same)."""
        return squashed_gaussian_log_prob(sample.u, old_mean, old_log_std) - log_scale

    def objective(obs: jnp.ndarray, sample: Sample) -> jnp.ndarray:
        q1 = q_net.apply(state.q_params, obs, sample.action)[0]
        reg = jnp.mean(jnp.square(sample.mean)) + jnp.mean(jnp.square(sample.log_std))
        loss = actor_loss(sample.log_prob, old_log_prob(sample), q1, lam, w)
        return loss + cfg.actor_reg * reg

    # The step samples with the same key and parameters as `sample`: the same ã.
    actor_params, actor_opt, samples = reparameterised_step(
        actor, objective, state.actor_params, state.actor_opt, tx, k_pi, batch.obs, log_scale
    )
    kl = jnp.mean(sample.log_prob - old_log_prob(sample))

    step, q_opt = tx.update(q_grads, state.q_opt)
    q_params = optax.apply_updates(state.q_params, step)
    step, v_opt = tx.update(v_grads, state.v_opt)
    v_params = optax.apply_updates(state.v_params, step)

    new_state = state.replace(
        actor_params=actor_params,
        old_actor_params=old_params,
        q_params=q_params,
        v_params=v_params,
        v_target_params=polyak(v_params, state.v_target_params, h["tau"]),
        actor_opt=actor_opt,
        q_opt=q_opt,
        v_opt=v_opt,
        key=key,
        updates=state.updates + 1,
        copied_at=copied_at,
    )
    metrics = {
        "critic_loss": loss_q,
        "value_loss": loss_v,
        "actor_loss": samples.loss,
        "kl": kl,
        "entropy": -samples.log_prob.mean(),
        "q_mean": q.mean(),
        TD_ERROR: td_error(q, y),
    }
    return new_state, metrics
