"""TD3: Twin Delayed Deep Deterministic policy gradient (Fujimoto, van Hoof, Meger, 2018).

Off-policy, deterministic actor. Twin critics regress on y = r + γ(1 − d)·min_j Q̄_j(s', ã'),
where ã' = clip(π̄(s') + clip(ε, −c, c), −1, 1), ε ~ N(0, σ̃²), is the target policy's action
smoothed with clipped noise; every `policy_delay` critic steps the actor maximises Q_1(s, π(s))
and all targets (actor and critics) take a Polyak step. Exploration adds N(0, σ²) to π(s).

DDPG (`duetto.algorithms.ddpg`) is this module with one critic, no target smoothing and no
delay: the same functions, other defaults.
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
from duetto.losses import critic_regression, soft_target, td_error
from duetto.nets import CriticEnsemble, DeterministicActor
from duetto.nets.encoder import encoded
from duetto.nets.targets import polyak

NAME = "td3"
ACTION_SPACES = ("box",)
LOOP = "offpolicy"
METRICS = ("critic_loss", "actor_loss", "q_mean")


@dataclass(frozen=True)
class TD3Config(OffPolicyConfig):
    """TD3 hyperparameters. Defaults: CleanRL's td3_continuous_action.py [CleanRL], which
    follows the paper [paper]."""

    buffer_size: int = override(1_000_000, "CleanRL, paper")
    learning_starts: int = override(
        25_000, "CleanRL", "env steps of uniform random actions before the first update"
    )
    batch_size: int = override(256, "CleanRL, paper")
    gradient_steps: int = override(1, "CleanRL, paper", "critic steps per update call")
    env_steps_per_update: int = override(1, "CleanRL: 1")
    learning_rate: float = hp(
        3e-4, "Adam step size of actor and critics [CleanRL]", low=0, low_open=True, sweep=True
    )
    tau: float = hp(
        0.005,
        "Polyak rate of all targets [CleanRL, paper]",
        low=0,
        high=1,
        low_open=True,
        sweep=True,
    )
    gamma: float = hp(0.99, "discount factor [CleanRL, paper]", low=0, high=1, sweep=True)
    hidden: tuple = hp((256, 256), "hidden widths of actor and critics, ReLU [CleanRL]", low=1)
    n_critics: int = hp(2, "Q-functions; the target takes their min [paper]", low=1)
    policy_delay: int = hp(
        2, "critic steps per actor and target step [paper: d = 2; CleanRL policy_frequency]", low=1
    )
    target_noise: float = hp(
        0.2, "σ̃ of the target-policy smoothing noise, in action units [paper, CleanRL]", low=0
    )
    target_noise_clip: float = hp(0.5, "c, the clip of that noise [paper, CleanRL]", low=0)
    exploration_noise: float = hp(
        0.1, "σ of the Gaussian exploration noise, in action units [paper, CleanRL]", low=0
    )
    actor_learning_starts: int = hp(
        0,
        "env steps before the first actor step, counted as learning_starts is (0: from the "
        "first update) [Learning to Fly: N_WARMUP_STEPS_ACTOR]",
        low=0,
    )
    critic_target_delay: int = hp(
        0,
        "critic steps between Polyak steps of the critic targets (0: with each actor step, as "
        "the paper does) [paper; Learning to Fly: 1, CRITIC_TARGET_UPDATE_INTERVAL]",
        low=0,
    )
    activation: str = hp(
        "relu", "hidden activation of actor and critics [CleanRL, paper]", choices=("relu", "tanh")
    )
    weight_decay: float = hp(
        0.0,
        "decoupled decay of the hidden-to-hidden weight matrices (not the first or last "
        "layer, not biases) per optimiser step, w -= weight_decay·w after Adam's step, not "
        "scaled by the learning rate (0: none) [rl_tools' Adam, as Learning to Fly runs it]",
        low=0,
        high=1,
    )
    weight_init: str = weight_init_hp()
    encoder: str = encoder_hp()
    cnn_features: int = cnn_features_hp()


CONFIG = TD3Config

PRESETS: dict[str, dict[str, Any]] = {
    # RL-Zoo hyperparams/td3.yml, Pendulum-v1: 20k steps.
    "zoo": {
        "gamma": 0.98,
        "buffer_size": 200_000,
        "learning_starts": 10_000,
        "learning_rate": 1e-3,
        "hidden": (400, 300),
    },
    # Small and fast (duetto's own), as SAC's `fast` preset: 64x64, batch 128, lr 3e-3, τ 0.01.
    "fast": {
        "learning_rate": 3e-3,
        "hidden": (64, 64),
        "batch_size": 128,
        "buffer_size": 20_000,
        "tau": 0.01,
        "learning_starts": 1_000,
    },
}
# RL-Zoo td3.yml, MuJoCo tasks (1M steps): lr 1e-3, 400-300, learning_starts 1e4, noise 0.1,
# with PyTorch's initial weights, as SB3 runs it (and the TD3 paper's code). With Flax's LeCun
# normal weights the actor saturated at ±1 for good on 3 of 5 Hopper-v5 seeds by 20k steps,
# with PyTorch's on 1 of 5 (BENCHMARKS.md §7).
PRESETS["mujoco"] = {
    "learning_rate": 1e-3,
    "hidden": (400, 300),
    "learning_starts": 10_000,
    "weight_init": "torch",
}
# Learning to Fly in Seconds (Eschmann, Albani, Loianno 2024), arplaboratory/learning-to-fly at
# d07592d, src/config/config.h and actor_and_critic.h: 64-64 tanh networks (fast tanh there),
# batch 256, γ 0.99, target noise 0.2 clipped at 0.5, exploration noise 0.1, a critic step every
# 10 env steps and an actor step every 20, critic targets after each critic step and the actor's
# after each actor step, critic warm-up 15k and actor warm-up 30k env steps acting with the
# untrained policy and its noise (rl_tools' off-policy runner has no uniform phase), a replay of
# the whole run, Adam (rl_tools' α 1e-3; ε optax's 1e-8) with WEIGHT_DECAY 1e-4 applied as
# 1e-4/2 per step to the hidden 64x64 layer of each network (backprop_tools' Adam decays the
# `groups::Normal` layers only); the asymmetric critic on the privileged observation and the reward
# curriculum (src/steps/curriculum.h) of duetto:Quadrotor-v0. 300,001 steps.
PRESETS["l2f"] = {
    "hidden": (64, 64),
    "activation": "tanh",
    "batch_size": 256,
    "gamma": 0.99,
    "learning_rate": 1e-3,
    "weight_decay": 5e-5,
    "tau": 0.005,
    "target_noise": 0.2,
    "target_noise_clip": 0.5,
    "exploration_noise": 0.1,
    "env_steps_per_update": 10,
    "policy_delay": 2,
    "critic_target_delay": 1,
    "learning_starts": 15_000,
    "actor_learning_starts": 30_000,
    "warmup_actions": "policy",
    "buffer_size": 300_001,
    "critic_obs": "privileged",
    "curriculum": "l2f",
}
PRESET_STEPS = {"zoo": 20_000, "fast": 10_000, "mujoco": 1_000_000, "l2f": 300_001}


class TD3State(flax.struct.PyTreeNode):
    actor_params: Any
    critic_params: Any
    target_actor_params: Any
    target_critic_params: Any
    hparams: dict[str, jnp.ndarray]  # the sweepable hyperparameters, traced (see config.hp)
    actor_opt: Any
    critic_opt: Any
    key: jax.Array
    updates: jnp.ndarray  # int32 [], critic steps done
    last_actor_loss: jnp.ndarray  # [], of the latest actor step (reported between them)
    config: Any = flax.struct.field(pytree_node=False)
    spec: EnvSpec = flax.struct.field(pytree_node=False)


def _networks(config: Any, spec: EnvSpec) -> tuple[Any, Any]:
    """The actor and the critic ensemble, each with its own encoder where the observation
    needs one."""
    act, init = config.activation, config.weight_init
    actor = DeterministicActor(config.hidden, spec.action_dim, weight_init=init, activation=act)
    critic = CriticEnsemble(config.hidden, n=config.n_critics, weight_init=init, activation=act)
    init = config.weight_init
    return encoded(actor, spec, config, init), encoded(critic, spec, config, init, role="critic")


def _hidden_kernels(params: Any) -> Any:
    """True at the weight matrices of the hidden-to-hidden layers of a parameter tree (a
    network's Dense layers but its first and its last), False elsewhere: the layers rl_tools'
    Adam decays (`groups::Normal`; the input and output groups keep their weights)."""
    paths = [path for path, _ in jax.tree_util.tree_leaves_with_path(params)]

    def layer(path: Any) -> tuple[tuple, int] | None:
        names = [getattr(k, "key", None) for k in path]
        for i, name in enumerate(names):
            if isinstance(name, str) and name.startswith("Dense_"):
                return tuple(names[:i]), int(name.removeprefix("Dense_"))
        return None

    last: dict[tuple, int] = {}
    for path in paths:
        found = layer(path)
        if found is not None:
            last[found[0]] = max(last.get(found[0], 0), found[1])

    def hidden(path: Any, _: Any) -> bool:
        found = layer(path)
        if found is None or getattr(path[-1], "key", None) != "kernel":
            return False
        return 0 < found[1] < last[found[0]]

    return jax.tree_util.tree_map_with_path(hidden, params)


def _optimizer(config: Any, learning_rate: Any) -> optax.GradientTransformation:
    """Adam; with `weight_decay`, each step also takes weight_decay·w off the weight matrices
    of the hidden-to-hidden layers (rl_tools' Adam as Learning to Fly runs it, backprop_tools
    nn/optimizers/adam/operations_generic.h: `WEIGHT_DECAY / 2` times the weight after the Adam
    step, for the `groups::Normal` layers only)."""
    adam = optax.adam(learning_rate)
    if config.weight_decay == 0:
        return adam
    decay = optax.add_decayed_weights(-config.weight_decay, mask=_hidden_kernels)
    return optax.chain(adam, decay)


def init(key: jax.Array, spec: EnvSpec, config: Any, n_envs: int = 1) -> TD3State:
    actor, critic = _networks(config, spec)
    k_actor, k_critic, k_state = jax.random.split(key, 3)
    obs = jnp.zeros((1, spec.obs_dim))
    actor_params = actor.init(k_actor, obs)
    critic_params = critic.init(k_critic, obs, jnp.zeros((1, spec.action_dim)))
    tx = _optimizer(config, config.learning_rate)
    return TD3State(
        actor_params=actor_params,
        critic_params=critic_params,
        target_actor_params=jax.tree.map(jnp.copy, actor_params),  # own buffers: donated
        target_critic_params=jax.tree.map(jnp.copy, critic_params),
        hparams=hparams_of(config),
        actor_opt=tx.init(actor_params),
        critic_opt=tx.init(critic_params),
        key=k_state,
        updates=jnp.zeros((), jnp.int32),
        last_actor_loss=jnp.zeros((), jnp.float32),
        config=config,
        spec=spec,
    )


def act(state: TD3State, obs: jnp.ndarray, key: jax.Array, deterministic: bool) -> jnp.ndarray:
    """π(s), plus N(0, σ²) exploration noise clipped to [-1, 1] unless deterministic."""
    actor, _ = _networks(state.config, state.spec)
    action = actor.apply(state.actor_params, obs)
    if deterministic:
        return action
    noise = state.config.exploration_noise * jax.random.normal(key, action.shape)
    return jnp.clip(action + noise, -1.0, 1.0)


def smoothed_target_action(
    target_action: jnp.ndarray, noise: jnp.ndarray, noise_clip: float
) -> jnp.ndarray:
    """ã' = clip(π̄(s') + clip(ε, −c, c), −1, 1): target policy smoothing."""
    return jnp.clip(target_action + jnp.clip(noise, -noise_clip, noise_clip), -1.0, 1.0)


def actor_loss(q1: jnp.ndarray) -> jnp.ndarray:
    """−E[Q_1(s, π(s))]: the first critic only [paper]; q1 [B] -> []."""
    return -q1.mean()


def update(
    state: TD3State, batch: Batch, env_steps: jax.Array
) -> tuple[TD3State, dict[str, jnp.ndarray]]:
    """One critic step; every `policy_delay` calls also an actor step and the Polyak steps."""
    cfg, h = state.config, state.hparams
    actor, critic = _networks(cfg, state.spec)
    tx = _optimizer(cfg, h["learning_rate"])
    key, k_noise = jax.random.split(state.key)

    next_action = smoothed_target_action(
        actor.apply(state.target_actor_params, batch.next_obs),
        cfg.target_noise * jax.random.normal(k_noise, batch.action.shape),
        cfg.target_noise_clip,
    )
    next_q = critic.apply(state.target_critic_params, batch.next_obs, next_action)
    # The clipped double-Q target is SAC's soft target without the entropy term.
    zero = jnp.zeros_like(batch.reward)
    y = jax.lax.stop_gradient(soft_target(batch.reward, batch.discount, next_q, zero, 0.0))

    def critic_objective(params: Any) -> tuple[jnp.ndarray, jnp.ndarray]:
        q = critic.apply(params, batch.obs, batch.action)
        return critic_regression(q, y, batch.weight), q

    (loss_q, q), grads = jax.value_and_grad(critic_objective, has_aux=True)(state.critic_params)
    step, critic_opt = tx.update(grads, state.critic_opt, state.critic_params)
    critic_params = optax.apply_updates(state.critic_params, step)
    state = state.replace(critic_params=critic_params, critic_opt=critic_opt, key=key)

    def critic_targets(state: TD3State) -> TD3State:
        target = polyak(state.critic_params, state.target_critic_params, h["tau"])
        return state.replace(target_critic_params=target)

    def actor_and_targets(state: TD3State) -> TD3State:
        def actor_objective(params: Any) -> jnp.ndarray:
            action = actor.apply(params, batch.obs)
            return actor_loss(critic.apply(state.critic_params, batch.obs, action)[0])

        loss_pi, grads = jax.value_and_grad(actor_objective)(state.actor_params)
        step, actor_opt = tx.update(grads, state.actor_opt, state.actor_params)
        actor_params = optax.apply_updates(state.actor_params, step)
        state = state.replace(
            actor_params=actor_params,
            actor_opt=actor_opt,
            target_actor_params=polyak(actor_params, state.target_actor_params, h["tau"]),
            last_actor_loss=loss_pi,
        )
        return critic_targets(state) if cfg.critic_target_delay == 0 else state

    def critic_only(state: TD3State) -> TD3State:
        return state

    if cfg.critic_target_delay == 1:
        state = critic_targets(state)
    elif cfg.critic_target_delay > 1:
        due = (state.updates + 1) % cfg.critic_target_delay == 0
        state = jax.lax.cond(due, critic_targets, critic_only, state)
    delayed = (state.updates + 1) % cfg.policy_delay == 0
    if cfg.actor_learning_starts:  # `env_steps` is unbatched in the fused loop: a branch
        delayed = delayed & (env_steps >= cfg.actor_learning_starts)
    state = jax.lax.cond(delayed, actor_and_targets, critic_only, state)
    metrics = {
        "critic_loss": loss_q,
        "actor_loss": state.last_actor_loss,
        "q_mean": q.mean(),
        TD_ERROR: td_error(q, y),
    }
    return state.replace(updates=state.updates + 1), metrics
