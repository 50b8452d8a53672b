"""Gymnasium adapter: build vector envs, check spaces, rescale actions, read autoreset steps.

Vector envs run in Gymnasium 1.x's SAME_STEP autoreset mode: when a sub-env's episode ends, the
step returns the first observation of the next episode and puts the true final observation in
`info["final_obs"]`. So every step is a real transition, and the final observation (needed to
bootstrap a truncated episode) is at hand in the same step.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
import pickle
from collections.abc import Callable
from typing import Any

import cloudpickle
import gymnasium as gym
import numpy as np

from duetto.envs.spaces import ObsEdge, layout_size, observation_layout
from duetto.envs.spec import EnvSpec, log_scale
from duetto.errors import DuettoError, did_you_mean

EnvLike = str | gym.Env


def env_name(env: EnvLike) -> str:
    if isinstance(env, str):
        return env
    spec = getattr(env, "spec", None)
    return spec.id if spec is not None else type(env.unwrapped).__name__


def check_env_id(env_id: str) -> None:
    if env_id.startswith("gymnax:"):
        raise DuettoError(
            f"'{env_id}' is a JAX-native (gymnax) environment; the host loop runs Gymnasium ids "
            f"such as '{env_id.removeprefix('gymnax:')}'."
        )
    if env_id not in gym.registry:
        raise DuettoError(
            f"unknown environment '{env_id}'.{did_you_mean(env_id, gym.registry)} "
            "Run 'duetto list' for the environments that are installed."
        )
    missing = missing_dependency(env_id)
    if missing is not None:
        raise DuettoError(f"'{env_id}' {missing[1]}")


# What an env's module needs beyond gymnasium: (package, extra, how to install it).
_EXTRAS = {
    "gymnasium.envs.box2d": ("Box2D", "gymnasium[box2d]", "pip install swig 'gymnasium[box2d]'"),
    "gymnasium.envs.mujoco": ("mujoco", "gymnasium[mujoco]", "pip install 'gymnasium[mujoco]'"),
}


def missing_dependency(env_id: str) -> tuple[str, str] | None:
    """(what `env_id` needs that is not installed, the sentence that says how to get it), or
    None when it can be made here."""
    entry = gym.spec(env_id).entry_point
    if callable(entry):  # gymnasium's placeholders for envs that need another package
        name = getattr(entry, "__name__", "")
        if "mujoco_py" in name:
            return "mujoco-py", (
                "needs mujoco-py (the old MuJoCo bindings, no longer installable); use its -v5 "
                "version, e.g. 'HalfCheetah-v5'."
            )
        if "shimmy" in name:
            return "shimmy", "needs shimmy: pip install 'shimmy[gym-v21,gym-v26]'."
        return None
    module = str(entry).split(":")[0].rsplit(".", 1)[0]
    for prefix, (package, extra, install) in _EXTRAS.items():
        if module.startswith(prefix) and importlib.util.find_spec(package) is None:
            return extra, f"needs the {package} package, which is not installed: {install}."
    return None


def _env_factory(env: EnvLike) -> Callable[[], gym.Env]:
    if isinstance(env, str):
        check_env_id(env)
        return lambda: gym.make(env)
    if not isinstance(env, gym.Env):
        raise DuettoError(
            f"env must be a Gymnasium id such as 'Pendulum-v1' or a gymnasium.Env, "
            f"got {type(env).__name__}."
        )
    return lambda: copy.deepcopy(env)


def describe_env(env: EnvLike) -> dict[str, Any]:
    """How an env was built, for config.json: its id and keyword arguments, the wrappers around
    it with theirs (Gymnasium records both in `env.spec`), or the class of an unregistered env.
    Arguments that are not JSON values (functions, spaces) are given by their repr."""
    if isinstance(env, str):
        return {"id": env}
    spec = getattr(env, "spec", None)
    u = env.unwrapped
    described: dict[str, Any] = {}
    if spec is not None and spec.id in gym.registry:
        described["id"] = spec.id
        described["kwargs"] = _plain(spec.kwargs)
    else:
        described["class"] = f"{type(u).__module__}:{type(u).__qualname__}"
    wrappers = []
    inner: Any = env
    while isinstance(inner, gym.Wrapper):
        if not isinstance(inner, _BOOKKEEPING):
            wrappers.append(_wrapper_record(inner))
        inner = inner.env
    described["wrappers"] = wrappers[::-1]  # innermost first, the order they were applied
    return described


# What gym.make puts around every env, which says nothing about how this one was built.
_BOOKKEEPING = (gym.wrappers.PassiveEnvChecker, gym.wrappers.OrderEnforcing)


def _wrapper_record(wrapper: gym.Wrapper) -> dict[str, Any]:
    record: dict[str, Any] = {"name": type(wrapper).__name__}
    args = getattr(wrapper, "_saved_kwargs", None)  # gymnasium's RecordConstructorArgs
    if args is not None:
        record["kwargs"] = _plain({k: v for k, v in args.items() if k != "env"})
    return record


def _plain(value: Any) -> Any:
    """value as JSON data: containers kept, numbers and strings as they are, the rest repr'd."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.generic):
        return value.item()
    return repr(value)


def evaluation_copy(env: gym.Env) -> gym.Env:
    """A copy of a training sub-env to evaluate on: the same env, arguments and wrappers, with
    the statistics of normalising wrappers (NormalizeObservation, NormalizeReward) as training
    left them, frozen."""
    clone = copy.deepcopy(env)
    inner: Any = clone
    while isinstance(inner, gym.Wrapper):
        if hasattr(inner, "update_running_mean"):
            inner.update_running_mean = False
        inner = inner.env
    return clone


def check_picklable(env: Any) -> None:
    """Checkpoints hold the sub-envs (pickled with cloudpickle, so lambdas and classes defined
    in a script are fine): say at once, not after training, when an env cannot be saved."""
    try:
        cloudpickle.dumps(env)
    except Exception as e:  # noqa: BLE001 - any pickling failure means the same thing here
        raise DuettoError(
            f"this env cannot be saved in a checkpoint ({type(e).__name__}: {e}), and a run "
            "keeps its env so that evaluation and resume use exactly the env it trained on. "
            "Make the env picklable (open files, sockets and locks cannot be), or train with "
            "run_dir=False (no checkpoints)."
        ) from None


VECTORIZATION = ("sync", "async")


def _physics(env: gym.Env) -> Any:
    """The MuJoCo simulation data of env (all of mjData) and its RNG, or None for other envs."""
    u = env.unwrapped
    if not (hasattr(u, "model") and hasattr(u, "data") and hasattr(u, "_np_random")):
        return None
    return {"data": u.data, "np_random": u._np_random, "seed": u._np_random_seed}


class EnvCopy:
    """A sub-env as a checkpoint stores it: pickled, plus its MuJoCo simulation data.

    Gymnasium's MuJoCo envs pickle as their constructor arguments (EzPickle), so an unpickled
    HalfCheetah is a fresh one. This copy also carries the whole mjData (state, warm start, and
    the derived quantities such as body positions, which lag the state by one integration and
    which rewards read) and the env's RNG, and copies them back, so a resumed run steps on
    exactly as the original would.
    """

    def __init__(self, env: gym.Env):
        self.env = env

    def __getstate__(self) -> dict[str, Any]:
        return {"env": self.env, "physics": _physics(self.env)}

    def __setstate__(self, saved: dict[str, Any]) -> None:
        self.env = saved["env"]
        physics = saved["physics"]
        if physics is not None:
            import mujoco

            u: Any = self.env.unwrapped
            mujoco.mj_copyData(u.data, u.model, physics["data"])
            u._np_random, u._np_random_seed = physics["np_random"], physics["seed"]


class Snapshot(gym.Wrapper):
    """Wraps each sub-env of an async vector env so that its worker process can hand back a
    pickled copy of the env (`vec.call("snapshot")`): checkpoints of async runs hold the exact
    env states too."""

    def snapshot(self) -> bytes:
        return cloudpickle.dumps(EnvCopy(self.env))


def _vector(fns: list[Callable[[], gym.Env]], vectorization: str) -> gym.vector.VectorEnv:
    mode = gym.vector.AutoresetMode.SAME_STEP
    if vectorization == "sync":
        return gym.vector.SyncVectorEnv(fns, autoreset_mode=mode)
    if vectorization == "async":
        # "spawn": forking a process that runs JAX's threads can deadlock.
        wrapped = [(lambda fn=fn: Snapshot(fn())) for fn in fns]
        return gym.vector.AsyncVectorEnv(wrapped, autoreset_mode=mode, context="spawn")
    raise DuettoError(
        f"vectorization must be one of {', '.join(VECTORIZATION)}, got {vectorization!r}: "
        "'sync' steps the sub-envs in this process, 'async' in one subprocess each."
    )


def make_vector_env(env: EnvLike, n_envs: int, vectorization: str = "sync") -> gym.vector.VectorEnv:
    """n_envs copies of `env` (an id, or an instance that is deep-copied) in SAME_STEP mode,
    stepped in this process ('sync') or in a subprocess each ('async', for heavy envs)."""
    if not isinstance(n_envs, int) or n_envs < 1:
        raise DuettoError(f"n_envs must be a positive integer, got {n_envs!r}.")
    return _vector([_env_factory(env)] * n_envs, vectorization)


def wrap_vector_env(envs: list[gym.Env], vectorization: str = "sync") -> gym.vector.VectorEnv:
    """A vector env over existing sub-envs (restored from a checkpoint), in SAME_STEP mode."""
    return _vector([_constant(e) for e in envs], vectorization)


def _constant(env: gym.Env) -> Callable[[], gym.Env]:
    return lambda: env


def sub_envs(vec: gym.vector.VectorEnv) -> list[EnvCopy]:
    """The sub-envs as they are now, ready to pickle into a checkpoint."""
    if isinstance(vec, gym.vector.AsyncVectorEnv):
        return [pickle.loads(b) for b in vec.call("snapshot")]
    return [EnvCopy(e) for e in vec.envs]  # type: ignore[attr-defined]


def restored_envs(saved: list[Any]) -> list[gym.Env]:
    """The envs of a checkpoint (EnvCopy objects; plain envs in checkpoints of duetto 0.1.0)."""
    return [s.env if isinstance(s, EnvCopy) else s for s in saved]


def box_bounds(space: gym.spaces.Box) -> tuple[np.ndarray, np.ndarray]:
    return space.low.astype(np.float64).ravel(), space.high.astype(np.float64).ravel()


def env_spec(vec: gym.vector.VectorEnv, algo: str, action_spaces: tuple[str, ...]) -> EnvSpec:
    """Check the spaces against what `algo` serves and describe them."""
    obs_space = vec.single_observation_space
    act_space = vec.single_action_space
    layout = observation_layout(obs_space, algo)  # envs/spaces.py: what duetto reads
    obs_dim = layout_size(layout)
    privileged = privileged_dim(vec)
    if privileged:  # envs/privileged.py: a flat Box, the privileged part last
        actor = gym.spaces.Box(-np.inf, np.inf, (obs_dim - privileged,), np.float32)
        layout = observation_layout(actor, algo)
    spec = _action_spec(act_space, algo, action_spaces, obs_dim, layout)
    return dataclasses.replace(spec, privileged_dim=privileged)


def privileged_dim(vec: gym.vector.VectorEnv) -> int:
    """The width of the privileged part of the sub-envs' observations (their space is a
    PrivilegedBox: envs/privileged.py), or 0. Read from the space: asking an AsyncVectorEnv's
    workers for an attribute they lack shuts them down."""
    return int(getattr(vec.single_observation_space, "privileged_dim", 0))


def _action_spec(
    act_space: gym.Space, algo: str, action_spaces: tuple[str, ...], obs_dim: int, layout: Any
) -> EnvSpec:
    if isinstance(act_space, gym.spaces.Box):
        if "box" not in action_spaces:
            raise DuettoError(f"{algo} cannot handle a continuous (Box) action space.")
        low, high = box_bounds(act_space)
        if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
            raise DuettoError(
                f"{algo} needs finite action bounds; this env's are low={act_space.low}, "
                f"high={act_space.high}. Wrap it with gymnasium.wrappers.ClipAction or "
                "RescaleAction."
            )
        return EnvSpec(
            obs_dim=obs_dim,
            action_dim=low.size,
            action_log_scale=log_scale(low, high),
            obs_layout=layout,
        )
    if isinstance(act_space, gym.spaces.Discrete):
        if "discrete" not in action_spaces:
            raise DuettoError(
                f"{algo} needs a continuous (Box) action space; this env's action space is "
                f"{act_space}. Use an algorithm for Discrete actions (see 'duetto list'), or a "
                "continuous env such as Pendulum-v1."
            )
        return EnvSpec(
            obs_dim=obs_dim, action_dim=int(act_space.n), discrete=True, obs_layout=layout
        )
    multi = {gym.spaces.MultiDiscrete: "multi_discrete", gym.spaces.MultiBinary: "binary"}
    kind = multi.get(type(act_space))
    if kind is not None:
        if kind not in action_spaces:
            raise DuettoError(
                f"{algo} cannot handle the action space {act_space}; it serves: "
                f"{', '.join(action_spaces)}. Use an algorithm for {type(act_space).__name__} "
                "actions (see 'duetto list': ppo and mdpo take them)."
            )
        if isinstance(act_space, gym.spaces.MultiDiscrete):
            nvec = tuple(int(n) for n in np.asarray(act_space.nvec).ravel())
            return EnvSpec(obs_dim=obs_dim, action_dim=len(nvec), nvec=nvec, obs_layout=layout)
        bits = int(np.prod(act_space.shape or ()))
        return EnvSpec(obs_dim=obs_dim, action_dim=bits, binary=True, obs_layout=layout)
    raise DuettoError(
        f"{algo} cannot handle the action space {act_space}; it serves: {', '.join(action_spaces)}."
    )


def to_env_action(action: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """[-1, 1] -> [low, high], elementwise: action [n, act_dim]."""
    return low + 0.5 * (np.clip(action, -1.0, 1.0) + 1.0) * (high - low)


class ActionEdge:
    """Policy actions -> env actions for one sub-env action space, for n sub-envs at once.

    Box: the policy acts in [-1, 1] (values outside are clipped), rescaled to [low, high] and
    cast to the space's dtype. Discrete: the policy's index 0..n−1, shifted by the space's start.
    MultiDiscrete: the indices [n, k], each shifted by its start, in the space's shape;
    MultiBinary: the bits [n, k] in the space's shape.
    """

    def __init__(self, space: gym.spaces.Space):
        self.space = space
        self.discrete = isinstance(space, gym.spaces.Discrete)
        self.choices = isinstance(space, gym.spaces.MultiDiscrete | gym.spaces.MultiBinary)
        if not (self.discrete or self.choices):
            assert isinstance(space, gym.spaces.Box)
            self.low, self.high = box_bounds(space)

    def __call__(self, action: np.ndarray, n: int) -> np.ndarray:
        action = np.asarray(action)
        space: Any = self.space
        if self.discrete:
            return (action.reshape(n) + space.start).astype(space.dtype)
        if self.choices:
            action = action.reshape((n, *space.shape))
            return (action + getattr(space, "start", 0)).astype(space.dtype)
        scaled = to_env_action(action, self.low, self.high)
        return scaled.reshape((n, *space.shape)).astype(space.dtype)


def final_observations(edge: ObsEdge, obs: Any, done: np.ndarray, info: dict) -> np.ndarray:
    """The observation each sub-env reached in this step, flat [n, obs_dim]: the true final
    one where an episode ended (SAME_STEP autoreset already put the next episode's first
    observation in `obs`; `info["final_obs"]` holds each ended sub-env's own)."""
    if not done.any():
        return edge(obs, len(done))
    next_obs = np.array(edge(obs, len(done)))  # a copy: rows are replaced below
    for i in np.flatnonzero(done):
        next_obs[i] = edge.one(info["final_obs"][i])
    return next_obs


def check_finite(step: int, **arrays: np.ndarray) -> None:
    for name, value in arrays.items():
        if not np.all(np.isfinite(value)):
            raise DuettoError(
                f"the environment returned a non-finite {name} ({value.ravel()[:8]}) at env "
                f"step {step}. Check the env (or wrap it to clip or replace NaN) and start again.",
                exit_code=1,
            )
