"""JAX-native environments for the fused loop: gymnax's, written "gymnax:CartPole-v1", and
duetto's own gymnax-style ones (DUETTO_ENVS), written "duetto:Quadrotor-v0".

Envs step like a Gymnasium vector env in SAME_STEP mode, as gymnax 1.x's `step` does: an ended
episode is auto-reset in the same step, which returns `terminated`, `truncated` (the time limit)
and the true final observation, so truncated episodes bootstrap from the right state here too.
`JaxEnv.step_from` does that autoreset itself, with randomness drawn ahead (`step_noise`), so
that a rollout draws its env randomness in one call instead of in every step; an env that
overrides gymnax's `step` (bsuite's DeepSea keeps counters across episodes) steps through its
own.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from duetto.envs.spaces import layout_size, observation_layout
from duetto.envs.spec import EnvSpec, log_scale
from duetto.errors import DuettoError, did_you_mean

PREFIX = "gymnax:"
DUETTO_PREFIX = "duetto:"
# duetto's own JAX-native environments (gymnax `Environment`s): id -> "module:class".
DUETTO_ENVS = {
    "Quadrotor-v0": "duetto.envs.quadrotor:Quadrotor",
    "QuadrotorNoHistory-v0": "duetto.envs.quadrotor:QuadrotorNoHistory",
}
# The gymnax environments duetto tests and documents (others registered by gymnax also work
# when their observations are Box or Discrete and their actions Discrete or Box).
TESTED = ("CartPole-v1", "Pendulum-v1", "Acrobot-v1", "MountainCarContinuous-v0")
# gymnax's classic-control envs by id: the class names in gymnax.environments.classic_control.
CLASSIC = {
    "CartPole-v1": "CartPole",
    "Pendulum-v1": "Pendulum",
    "Acrobot-v1": "Acrobot",
    "MountainCar-v0": "MountainCar",
    "MountainCarContinuous-v0": "ContinuousMountainCar",
}


def is_jax_env(env: Any) -> bool:
    return isinstance(env, str) and env.startswith((PREFIX, DUETTO_PREFIX))


def jax_env_names() -> list[str]:
    import gymnax

    return [DUETTO_PREFIX + name for name in DUETTO_ENVS] + [
        PREFIX + name for name in gymnax.registered_envs
    ]


class Curriculum(NamedTuple):
    """A change of an env's parameters during training (`update`: params -> params), applied
    every `every` env steps (not at 0) inside the compiled program; the off-policy loops then
    recompute the rewards in the replay with the env's `relabel_reward`."""

    every: int
    update: Callable[[Any], Any]


class StepNoise(NamedTuple):
    """Randomness of env steps drawn ahead (JaxEnv.step_noise), every field with the same
    leading batch shape: (step, env) for a rollout, (env,) for one step."""

    keys: jax.Array  # a key per (step, env), for the env's own randomness in that step
    reset_obs: jnp.ndarray | None  # [..., obs_dim] a fresh episode's first observation
    reset_state: Any  # [...] and its env state (both None for an env with its own `step`)


@dataclass(frozen=True)
class JaxEnv:
    """A gymnax environment with its default parameters, described for the algorithms."""

    env_id: str  # with the prefix
    env: Any
    params: Any
    spec: EnvSpec
    low: np.ndarray | None  # Box bounds, or None for Discrete
    high: np.ndarray | None
    max_steps: int  # the time limit, which bounds an evaluation episode
    own_step: bool = False  # the env overrides gymnax's `step`: step through it
    observation_space: Any = None  # of the actor's part, as a Gymnasium space (envs/spaces.py)

    @property
    def privileged(self) -> bool:
        """Whether the env gives a privileged observation (`privileged_observation(state,
        params)`), appended to each observation for an asymmetric critic (EnvSpec)."""
        return self.spec.privileged_dim > 0

    def _observation(self, obs: jnp.ndarray, state: Any, params: Any = None) -> jnp.ndarray:
        """The flat observation [n, obs_dim] of n envs: the env's, then its privileged part."""
        flat = obs.reshape(obs.shape[0], -1).astype(jnp.float32)
        if not self.privileged:
            return flat
        privileged = jax.vmap(self.env.privileged_observation, in_axes=(0, None))(
            state, self.params if params is None else params
        )
        return jnp.concatenate([flat, privileged.astype(jnp.float32)], axis=-1)

    def reset(self, key: jax.Array, n: int) -> tuple[jnp.ndarray, Any]:
        """n fresh episodes: (obs [n, obs_dim], env states [n])."""
        obs, state = jax.vmap(self.env.reset, in_axes=(0, None))(
            jax.random.split(key, n), self.params
        )
        # Strong types, as step returns them (else the first train call compiles twice).
        state = jax.tree.map(lambda x: jnp.asarray(x, dtype=x.dtype), state)
        return self._observation(obs, state), state

    def curriculum(self, name: str) -> Curriculum:
        """The env's curriculum `name` (one DuettoError when it has none of that name)."""
        curricula = getattr(self.env, "curricula", {})
        if name not in curricula:
            have = f"its curricula: {', '.join(curricula)}" if curricula else "it has none"
            raise DuettoError(
                f"curriculum '{name}' is not one of '{self.env_id}' ({have}). Set curriculum "
                "to one of those, or to '' for none."
            )
        if not hasattr(self.env, "relabel_reward") or not self.privileged:
            raise DuettoError(
                f"'{self.env_id}' cannot recompute the rewards of its replay (it needs a "
                "privileged observation and relabel_reward); its curriculum cannot run."
            )
        return curricula[name]

    def relabel(
        self,
        obs: jnp.ndarray,
        action: jnp.ndarray,
        next_obs: jnp.ndarray,
        terminated: Any,
        params: Any,
    ) -> jnp.ndarray:
        """The rewards [N] of stored transitions [N, ...] under `params`, recomputed from their
        privileged parts (the env's `relabel_reward`)."""
        k = self.spec.actor_dim
        return jax.vmap(self.env.relabel_reward, in_axes=(0, 0, 0, 0, None))(
            obs[:, k:], self.to_env(action), next_obs[:, k:], terminated, params
        ).astype(jnp.float32)

    def step_noise(self, key: jax.Array, batch: tuple[int, ...]) -> StepNoise:
        """The randomness of env steps drawn ahead, for a batch [..., n] of (step, env): each
        one's key for the env's own dynamics, and a fresh episode that autoreset takes where an
        episode ends there. gymnax's `step` draws both inside every step (two calls of the
        random generator per step); this draws a whole rollout's in two."""
        size = int(np.prod(batch))
        keys = jax.random.split(key, size if self.own_step else 2 * size)
        step_keys = keys[:size].reshape(*batch, *keys.shape[1:])
        if self.own_step:
            return StepNoise(keys=step_keys, reset_obs=None, reset_state=None)
        obs, state = jax.vmap(self.env.reset_env, in_axes=(0, None))(keys[size:], self.params)
        return StepNoise(
            keys=step_keys,
            reset_obs=self._observation(obs, state).reshape(*batch, -1),
            reset_state=jax.tree.map(lambda x: x.reshape(*batch, *x.shape[1:]), state),
        )

    def step_from(
        self, noise: StepNoise, state: Any, action: jnp.ndarray, params: Any = None
    ) -> tuple:
        """Step n envs with policy actions and `step_noise` for [n]: -> (obs, state, reward,
        terminated, truncated, final_obs), where obs is after autoreset (the noise's fresh
        episode where one ended, as gymnax's `step` does) and final_obs the observation each
        env reached. `params` replaces the env's own (a curriculum's, for the steps only)."""
        n = action.shape[0]
        params = self.params if params is None else params
        if self.own_step:
            obs, state, reward, terminated, truncated, info = jax.vmap(
                self.env.step, in_axes=(0, 0, 0, None)
            )(noise.keys, state, self.to_env(action), params)
            final = info["final_observation"].reshape(n, -1).astype(jnp.float32)
            obs = obs.reshape(n, -1).astype(jnp.float32)
            return obs, state, *self._flags(n, reward, terminated, truncated), final
        obs, stepped, reward, terminated, _ = jax.vmap(self.env.step_env, in_axes=(0, 0, 0, None))(
            noise.keys, state, self.to_env(action), params
        )
        truncated = jax.vmap(self.env.is_truncated, in_axes=(0, None))(stepped, params)
        done = jnp.logical_or(terminated, truncated)

        def autoreset(fresh: jnp.ndarray, old: jnp.ndarray) -> jnp.ndarray:
            mask = done.reshape(n, *([1] * (old.ndim - 1)))
            return jnp.where(mask, fresh, old).astype(old.dtype)

        final = self._observation(obs, stepped, params)
        assert noise.reset_obs is not None
        return (
            autoreset(noise.reset_obs, final),
            jax.tree.map(autoreset, noise.reset_state, stepped),
            *self._flags(n, reward, terminated, truncated),
            final,
        )

    @staticmethod
    def _flags(n: int, reward: Any, terminated: Any, truncated: Any) -> tuple:
        """reward, terminated, truncated as float32 [n]."""
        return tuple(x.reshape(n).astype(jnp.float32) for x in (reward, terminated, truncated))

    def step(self, key: jax.Array, state: Any, action: jnp.ndarray) -> tuple:
        """`step_from` with noise drawn from `key`."""
        return self.step_from(self.step_noise(key, (action.shape[0],)), state, action)

    def to_env(self, action: jnp.ndarray) -> jnp.ndarray:
        """Policy actions -> env actions: Discrete indices as int32; Box from [-1, 1] (clipped)
        to [low, high]."""
        if self.spec.discrete:
            return action.astype(jnp.int32)
        low, high = jnp.asarray(self.low), jnp.asarray(self.high)
        return low + 0.5 * (jnp.clip(action, -1.0, 1.0) + 1.0) * (high - low)


_COMPLETING = threading.RLock()  # completing gymnax completes gymnax.environments
_PACKAGES = ("gymnax", "gymnax.environments")


def _gymnax_complete() -> bool:
    """Whether gymnax's package has run its `__init__` (imported by the user, or completed)."""
    module = sys.modules.get("gymnax")
    return module is not None and "__getattr__" not in vars(module)


def _lazy_package(name: str) -> types.ModuleType:
    """The package `name`, created without running its `__init__`: it runs on the first access
    to an attribute the package does not have yet and that is not one of its submodules
    (PEP 562), so that `import gymnax; gymnax.make(...)` still works later, on the same module
    objects."""
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)

    def __getattr__(attr: str) -> Any:
        if attr.startswith("__") and attr != "__all__":
            raise AttributeError(attr)
        if importlib.util.find_spec(f"{name}.{attr}") is not None:
            return importlib.import_module(f"{name}.{attr}")  # a submodule: it alone
        with _COMPLETING:
            if "__getattr__" in vars(module):
                del module.__getattr__
                spec.loader.exec_module(module)  # type: ignore[union-attr]
        return getattr(module, attr)

    module.__getattr__ = __getattr__  # type: ignore[method-assign]
    return module


def light_import(*names: str) -> list[types.ModuleType]:
    """gymnax submodules (e.g. gymnax.environments.classic_control), imported without running
    gymnax's package `__init__`s, which import every gymnax environment (seaborn, matplotlib,
    pandas and scipy among them): 1.3 s of a fused run's start. The packages are put in
    `sys.modules` as lazy modules that complete themselves when first used."""
    with _COMPLETING:
        if "gymnax" not in sys.modules and importlib.util.find_spec("gymnax") is not None:
            for name in _PACKAGES:
                package = sys.modules[name] = _lazy_package(name)
                parent, _, child = name.rpartition(".")
                if parent:
                    setattr(sys.modules[parent], child, package)
    return [importlib.import_module(name) for name in names]


def _own_step(env: Any) -> bool:
    """Whether a gymnax env overrides `Environment.step` (then it keeps something of its own
    across its autoresets, as bsuite's DeepSea does, and steps through its own `step`)."""
    for cls in type(env).__mro__:
        if cls.__name__ == "Environment" and cls.__module__.startswith("gymnax."):
            return False
        if "step" in vars(cls):
            return True
    return False


def _duetto_make(name: str) -> tuple[Any, Any, types.ModuleType]:
    """One of duetto's own envs, its default parameters and gymnax's spaces module."""
    if name not in DUETTO_ENVS:
        raise DuettoError(
            f"unknown JAX-native environment '{DUETTO_PREFIX}{name}'."
            f"{did_you_mean(name, DUETTO_ENVS)} Available: "
            f"{', '.join(DUETTO_PREFIX + n for n in DUETTO_ENVS)}."
        )
    module, _, cls = DUETTO_ENVS[name].partition(":")
    env = getattr(importlib.import_module(module), cls)()
    (spaces,) = light_import("gymnax.environments.spaces")
    return env, env.default_params, spaces


def _gymnax_make(name: str) -> tuple[Any, Any, types.ModuleType]:
    """gymnax.make(name) and gymnax's spaces module; a classic-control env without importing
    all of gymnax, unless the user has imported it (it may hold environments registered at
    run time)."""
    if name in CLASSIC and not _gymnax_complete():
        classic, spaces = light_import(
            "gymnax.environments.classic_control", "gymnax.environments.spaces"
        )
        env = getattr(classic, CLASSIC[name])()
        return env, env.default_params, spaces
    import gymnax
    from gymnax.environments import spaces  # type: ignore[no-redef]

    if name not in gymnax.registered_envs:
        raise DuettoError(
            f"unknown JAX-native environment '{PREFIX}{name}'."
            f"{did_you_mean(name, gymnax.registered_envs)} Available: "
            f"{', '.join(PREFIX + n for n in TESTED)} (and the rest of gymnax's registry)."
        )
    return (*gymnax.make(name), spaces)


def gymnasium_space(space: Any, spaces: types.ModuleType, env_id: str) -> Any:
    """A gymnax observation space as the Gymnasium space it stands for: a Box (its bounds
    broadcast to its shape) or a Discrete; one DuettoError for the others."""
    import gymnasium as gym

    if isinstance(space, spaces.Discrete):
        return gym.spaces.Discrete(int(space.n))
    if isinstance(space, spaces.Box):
        shape, dtype = tuple(space.shape), np.dtype(space.dtype)
        low = np.broadcast_to(np.asarray(space.low, dtype), shape)
        high = np.broadcast_to(np.asarray(space.high, dtype), shape)
        return gym.spaces.Box(low, high, shape, dtype)
    raise DuettoError(
        f"'{env_id}' has {type(space).__name__} observations; the fused loop takes gymnax envs "
        "with Box or Discrete observations. Train a Gymnasium version of the env on the host "
        "loop, which reads Dict observations."
    )


def make_jax_env(env_id: str, algo: str, action_spaces: tuple[str, ...]) -> JaxEnv:
    """The env for "gymnax:<name>" or "duetto:<name>", checked against what `algo` serves."""
    if env_id.startswith(DUETTO_PREFIX):
        env, params, spaces = _duetto_make(env_id.removeprefix(DUETTO_PREFIX))
    else:
        env, params, spaces = _gymnax_make(env_id.removeprefix(PREFIX))
    obs_space = gymnasium_space(env.observation_space(params), spaces, env_id)
    act_space = env.action_space(params)
    layout = observation_layout(obs_space, algo)
    privileged = int(getattr(env, "privileged_dim", 0))  # appended after the actor's part
    obs_dim = layout_size(layout) + privileged
    if isinstance(act_space, spaces.Discrete):
        if "discrete" not in action_spaces:
            raise DuettoError(
                f"{algo} needs a continuous (Box) action space; '{env_id}' has Discrete"
                f"({act_space.n}) actions. Use ppo for it, or a continuous env such as "
                "gymnax:Pendulum-v1."
            )
        spec = EnvSpec(
            obs_dim=obs_dim,
            action_dim=int(act_space.n),
            discrete=True,
            obs_layout=layout,
            privileged_dim=privileged,
        )
        low = high = None
    elif isinstance(act_space, spaces.Box):
        if "box" not in action_spaces:
            raise DuettoError(f"{algo} cannot handle the continuous actions of '{env_id}'.")
        shape = act_space.shape or (1,)
        low = np.broadcast_to(np.asarray(act_space.low, np.float32), shape).ravel()
        high = np.broadcast_to(np.asarray(act_space.high, np.float32), shape).ravel()
        spec = EnvSpec(
            obs_dim=obs_dim,
            action_dim=low.size,
            action_log_scale=log_scale(low, high),
            obs_layout=layout,
            privileged_dim=privileged,
        )
    else:
        raise DuettoError(f"{algo} cannot handle the action space of '{env_id}' ({act_space}).")
    max_steps = int(params.max_steps_in_episode)
    return JaxEnv(env_id, env, params, spec, low, high, max_steps, _own_step(env), obs_space)
