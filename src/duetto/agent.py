"""The object facade: `duetto.SAC("Pendulum-v1").learn(20_000)`, predict, evaluate, save, load.

A thin layer over an algorithm module, the off-policy loop and a run directory. Everything it
trains lives in `self.loop.state` (a pytree); the facade only adds host bookkeeping: logs,
evaluations, checkpoints, progress and callbacks.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np

from duetto import __version__
from duetto.algorithms import ddpg, dsac_t, ppo, sac, td3
from duetto.callbacks import (
    Callback,
    CheckpointEvery,
    EvaluateEvery,
    FunctionCallback,
    StopOnReturn,
    TrainingContext,
)
from duetto.config import build_config, config_to_dict
from duetto.envs.gym import (
    EnvLike,
    env_name,
    env_spec,
    make_vector_env,
    restored_envs,
    sub_envs,
    wrap_vector_env,
)
from duetto.envs.jaxenv import is_jax_env
from duetto.errors import DuettoError, did_you_mean
from duetto.fused_agent import FusedAgent, load_fused
from duetto.loops import offpolicy, onpolicy
from duetto.loops.evaluation import evaluate_policy
from duetto.runs.checkpoint import read_checkpoint, restore_state, save_checkpoint
from duetto.runs.logger import RunLogger
from duetto.runs.progress import TrainingProgress
from duetto.runs.rundir import (
    check_new_run_dir,
    checkpoint_path,
    create_run_dir,
    default_run_dir,
    latest_checkpoint,
    write_json,
)

EVAL_SEED_OFFSET = 1_000_000  # evaluation episodes never share seeds with training envs

# The host loop of each kind of algorithm: (init_state, state_shapes, loop class).
HOST_LOOPS = {
    "offpolicy": (offpolicy.init_state, offpolicy.state_shapes, offpolicy.OffPolicyLoop),
    "onpolicy": (onpolicy.init_state, onpolicy.state_shapes, onpolicy.OnPolicyLoop),
}


class Agent:
    """An actor-critic agent bound to an environment.

    env: a Gymnasium id ("Pendulum-v1") or a gymnasium.Env instance (deep-copied per sub-env).
    seed: the one integer that determines the run (network init, exploration, env seeds).
    preset: a named set of hyperparameters (see `duetto list`); keyword hyperparameters
        override it. n_envs: sub-envs of the training vector env (default: the preset's, or 1).
    vectorization: 'sync' steps the sub-envs in this process; 'async' in a subprocess each (for
        heavy envs); checkpoints hold the sub-envs' exact states either way.
    seeds: several seeds at once, for a JAX-native env ("gymnax:CartPole-v1"): the fused loop
        trains them as one vmapped program (see duetto.fused_agent.FusedAgent).
    sweep: {hyperparameter: [values]} for a JAX-native env: every combination of values, for
        every seed, in the same one program (numbers marked sweepable in `--help`).
    run_dir: where learn() writes the run (None: runs/<algo>-<env>-s<seed>-<time>; False: no
        run directory, so no logs or checkpoints).
    """

    algorithm: ClassVar[ModuleType]

    def __new__(
        cls,
        env: EnvLike | None = None,
        seed: int | None = None,
        *,
        seeds: Sequence[int] | None = None,
        preset: str | None = None,
        n_envs: int | None = None,
        run_dir: str | Path | None | bool = None,
        vectorization: str = "sync",
        sweep: dict[str, Sequence[float]] | None = None,
        **hyperparameters: Any,
    ) -> Any:
        if seeds is not None and seed is not None:
            raise DuettoError(
                f"seeds given twice (seed={seed!r} and seeds={list(seeds)!r}); give one: seed= "
                "for one run, seeds= for several in one program."
            )
        if is_jax_env(env):
            if vectorization != "sync":
                raise DuettoError(
                    "vectorization applies to Gymnasium envs; a JAX-native env steps inside the "
                    "compiled program."
                )
            return FusedAgent(
                cls.algorithm,
                env,
                seeds if seeds is not None else [0 if seed is None else seed],
                preset=preset,
                n_envs=n_envs,
                run_dir=run_dir,
                hyperparameters=hyperparameters,
                sweep=sweep,
            )
        if sweep is not None:
            raise DuettoError(
                "sweep= trains several hyperparameter values in one compiled program, which "
                "needs a JAX-native env such as 'gymnax:CartPole-v1'."
            )
        if seeds is not None:
            raise DuettoError(
                f"seeds= trains several seeds in one compiled program, which needs a JAX-native "
                f"env such as 'gymnax:{env_name(env) if env is not None else 'CartPole-v1'}'. "
                "For a Gymnasium env, make one agent per seed (the CLI's --seeds does this)."
            )
        return super().__new__(cls)

    def __init__(
        self,
        env: EnvLike,
        seed: int | None = None,
        *,
        seeds: Sequence[int] | None = None,
        preset: str | None = None,
        n_envs: int | None = None,
        run_dir: str | Path | None | bool = None,
        vectorization: str = "sync",
        sweep: dict[str, Sequence[float]] | None = None,
        **hyperparameters: Any,
    ):
        algo = self.algorithm
        seed = 0 if seed is None else seed
        if not isinstance(seed, int | np.integer) or isinstance(seed, bool) or seed < 0:
            raise DuettoError(f"seed must be a non-negative integer, got {seed!r}.")
        preset_values = {}
        if preset is not None:
            if preset not in algo.PRESETS:
                raise DuettoError(
                    f"{algo.NAME}: unknown preset '{preset}'.{did_you_mean(preset, algo.PRESETS)}"
                    f" Available: {', '.join(algo.PRESETS)}."
                )
            preset_values = algo.PRESETS[preset]
        config = build_config(algo.CONFIG, algo.NAME, preset_values, hyperparameters)
        if n_envs is None:
            n_envs = getattr(algo, "PRESET_ENVS", {}).get(preset, 1)
        if run_dir not in (None, False):
            check_new_run_dir(Path(run_dir))
        vec = make_vector_env(env, n_envs, vectorization)
        self.vectorization = vectorization
        self._setup(env, int(seed), n_envs, config, preset, run_dir, vec, state=None)
        self.loop.reset(self.seed)

    def _setup(
        self,
        env: EnvLike,
        seed: int,
        n_envs: int,
        config: Any,
        preset: str | None,
        run_dir: Any,
        vec: gym.vector.VectorEnv,
        state: Any,
    ) -> None:
        algo = self.algorithm
        self.seed, self.n_envs, self.config, self.preset = seed, n_envs, config, preset
        self.env_id = env_name(env)
        self._env_source: EnvLike = env if isinstance(env, str) else copy.deepcopy(env)
        self.spec = env_spec(vec, algo.NAME, algo.ACTION_SPACES)
        init_state, _, loop_class = HOST_LOOPS[algo.LOOP]
        if state is None:
            state = init_state(algo, jax.random.PRNGKey(seed), self.spec, config, n_envs)
        self.loop = loop_class(algo, config, vec, state)
        self._run_dir_arg = run_dir
        self.run_dir: Path | None = None
        self._logger: RunLogger | None = None
        self._train_wall = 0.0
        self._wall_mark: float | None = None  # set while the training clock runs
        self._last_train_row = -1
        self._last_eval: dict[str, Any] | None = None
        self._eval_envs: dict[int, gym.vector.VectorEnv] = {}
        self._policy = jax.jit(lambda s, o: algo.act(s, o, None, True))
        self._sample = jax.jit(lambda s, o, k: algo.act(s, o, k, False))
        self._predict_key = jax.random.PRNGKey(seed + EVAL_SEED_OFFSET)

    # ---- user surface -------------------------------------------------------------------------

    @property
    def env_steps(self) -> int:
        return self.loop.env_steps

    @property
    def state(self) -> Any:
        """The algorithm's state pytree (parameters, optimizer states, temperature, ...)."""
        return self.loop.algo_state

    def learn(
        self,
        total_steps: int,
        *,
        eval_every: int | None = None,
        eval_episodes: int = 10,
        checkpoint_every: int | None = None,
        stop_at_return: float | None = None,
        callbacks: Sequence[Callback | Callable[[TrainingContext], bool | None]] = (),
        progress: bool = False,
        log_every: int = 1000,
    ) -> Agent:
        """Train for `total_steps` more env steps (summed over sub-envs).

        Evaluates every `eval_every` env steps (default: a tenth of the call) and at the end,
        checkpoints every `checkpoint_every` steps and at the end, stops early when an
        evaluation's mean return reaches `stop_at_return`. `callbacks` are Callback objects or
        functions `fn(ctx) -> False to stop`, called after every vector step.
        """
        for name, value in (
            ("total_steps", total_steps),
            ("eval_episodes", eval_episodes),
            ("log_every", log_every),
        ):
            if not isinstance(value, int | np.integer) or value < 1:
                raise DuettoError(f"{name} must be a positive integer, got {value!r}.")
        self._open_run_dir()
        every = eval_every or max(total_steps // 10, 1)
        chain: list[Callback] = [EvaluateEvery(every, eval_episodes)]
        if stop_at_return is not None:
            chain.append(StopOnReturn(stop_at_return))
        if checkpoint_every:
            chain.append(CheckpointEvery(checkpoint_every))
        chain += [c if isinstance(c, Callback) else FunctionCallback(c) for c in callbacks]

        start_steps = self.env_steps
        ctx = TrainingContext(self, start_steps, 0, last_eval=self._last_eval)
        bar = (
            TrainingProgress(total_steps, start_steps, f"{self.algorithm.NAME} {self.env_id}")
            if progress
            else None
        )
        self._wall_mark = time.perf_counter()
        next_log = (start_steps // log_every + 1) * log_every

        def hook(env_steps: int) -> bool:
            nonlocal next_log
            ctx.env_steps, ctx.steps_this_call = env_steps, env_steps - start_steps
            if env_steps >= next_log:
                self._log_train()
                next_log = (env_steps // log_every + 1) * log_every
            go_on = True
            for callback in chain:
                go_on &= callback(ctx) is not False
            if bar is not None:
                bar.update(ctx.steps_this_call, (ctx.last_eval or {}).get("return_mean"))
            return go_on

        try:
            self.loop.run(total_steps, hook)
            if self._last_train_row != self.env_steps:
                self._log_train()
            self._current_train_wall()
            self._wall_mark = None  # the training clock stops with the last env step
            if ctx.last_eval is None or ctx.last_eval["step"] != self.env_steps:
                ctx.last_eval = self._evaluate_and_log(eval_episodes)
        finally:
            self._wall_mark = None
            if bar is not None:
                bar.update(
                    ctx.steps_this_call, (ctx.last_eval or {}).get("return_mean"), force=True
                )
                bar.close()
        self._last_eval = ctx.last_eval
        if self.run_dir is not None:
            write_json(self.run_dir / "eval.json", self._last_eval)
            self._checkpoint()
            from duetto.analysis.curves import plot_learning_curve

            plot_learning_curve([self.run_dir], self.run_dir / "curve.png")
        return self

    def predict(self, obs: Any, deterministic: bool = True) -> np.ndarray:
        """Action(s) in the env's bounds for obs [obs_dim] or a batch [n, obs_dim]."""
        x = np.asarray(obs, np.float32)
        single = x.ndim == len(self.loop.vec.single_observation_space.shape)
        x = x.reshape((1 if single else x.shape[0], self.spec.obs_dim))
        if deterministic:
            action = self._policy(self.state, x)
        else:
            self._predict_key, key = jax.random.split(self._predict_key)
            action = self._sample(self.state, x, key)
        env_action = self.loop.edge(action, x.shape[0])
        return env_action[0] if single else env_action

    def evaluate(self, episodes: int = 10, seed: int | None = None) -> dict[str, Any]:
        """Deterministic (mean-action) returns over `episodes` episodes on separate envs."""
        if not isinstance(episodes, int | np.integer) or episodes < 1:
            raise DuettoError(f"episodes must be a positive integer, got {episodes!r}.")
        if episodes not in self._eval_envs:
            self._eval_envs[episodes] = make_vector_env(self._env_source, episodes)
        seed = self.seed + EVAL_SEED_OFFSET if seed is None else seed
        state = self.state
        return evaluate_policy(
            lambda o: np.asarray(self._policy(state, jnp.asarray(o))),
            self._eval_envs[episodes],
            seed,
        )

    def save(self, path: str | Path) -> Path:
        """Write a checkpoint that `duetto.load` resumes exactly."""
        path = Path(path)
        save_checkpoint(path, self._meta(), self.loop.state, sub_envs(self.loop.vec))
        return path

    # ---- internals ----------------------------------------------------------------------------

    def _identity(self) -> dict[str, Any]:
        """What the run is: the same in config.json and in every checkpoint."""
        return {
            "algo": self.algorithm.NAME,
            "env": self.env_id,
            "seed": self.seed,
            "n_envs": self.n_envs,
            "vectorization": self.vectorization,
            "preset": self.preset,
            "config": config_to_dict(self.config),
            "duetto_version": __version__,
        }

    def _meta(self) -> dict[str, Any]:
        return {
            **self._identity(),
            "env_steps": self.env_steps,
            "train_wall": self._current_train_wall(),
            "last_eval": self._last_eval,
            "episodes": self.loop.episodes.state(),
        }

    def _run_config(self) -> dict[str, Any]:
        return {**self._identity(), "created": time.strftime("%Y-%m-%dT%H:%M:%S")}

    def _open_run_dir(self) -> None:
        if self._logger is not None or self._run_dir_arg is False:
            return
        if isinstance(self._run_dir_arg, _ExistingRun):
            self.run_dir = self._run_dir_arg.path
        else:
            path = self._run_dir_arg or default_run_dir(self.algorithm.NAME, self.env_id, self.seed)
            self.run_dir = create_run_dir(Path(path), self._run_config())
        self._logger = RunLogger(self.run_dir)

    def _current_train_wall(self) -> float:
        mark = self._wall_mark
        if mark is not None:
            now = time.perf_counter()
            self._train_wall += now - mark
            self._wall_mark = now
        return self._train_wall

    def _log_train(self) -> None:
        self._last_train_row = self.env_steps
        wall = self._current_train_wall()
        metrics = self.loop.read_metrics()
        finished = self.loop.episodes.drain()
        row: dict[str, Any] = {"train_wall": wall, **metrics}
        row["sps"] = self.env_steps / wall if wall > 0 else 0.0
        if finished:
            row["episode_return"] = float(np.mean([r for r, _ in finished]))
            row["episode_length"] = float(np.mean([n for _, n in finished]))
        if self._logger is not None:
            self._logger.log("train", self.env_steps, row)

    def _evaluate_and_log(self, episodes: int) -> dict[str, Any]:
        wall = self._current_train_wall()
        # Fresh start states at each evaluation, fixed by (seed, step) so that a resumed run
        # evaluates exactly as the original would have.
        seed = int(np.random.SeedSequence([self.seed, self.env_steps]).generate_state(1)[0])
        result = self.evaluate(episodes, seed=seed % 2**31)
        if self._wall_mark is not None:  # evaluation time is not training time
            self._wall_mark = time.perf_counter()
        row = {"train_wall": wall, **{k: v for k, v in result.items() if k != "returns"}}
        if self._logger is not None:
            self._logger.log("eval", self.env_steps, row)
        return {"step": self.env_steps, **row, "returns": result["returns"]}

    def _checkpoint(self) -> Path | None:
        if self.run_dir is None:
            return None
        return self.save(checkpoint_path(self.run_dir, self.env_steps))

    def close(self) -> None:
        """Close the envs (async sub-env processes end) and the logs."""
        logger, self._logger = getattr(self, "_logger", None), None
        if logger is not None:
            logger.close()
        loop = getattr(self, "loop", None)
        if loop is not None:
            loop.vec.close()
        for vec in getattr(self, "_eval_envs", {}).values():
            vec.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown: nothing left to report to
            pass


class _ExistingRun:
    """Marks a run directory that a loaded agent keeps writing to."""

    def __init__(self, path: Path):
        self.path = path


class SAC(Agent):
    __doc__ = sac.__doc__
    algorithm = sac


class PPO(Agent):
    __doc__ = ppo.__doc__
    algorithm = ppo


class TD3(Agent):
    __doc__ = td3.__doc__
    algorithm = td3


class DDPG(Agent):
    __doc__ = ddpg.__doc__
    algorithm = ddpg


class DSACT(Agent):
    __doc__ = dsac_t.__doc__
    algorithm = dsac_t


AGENTS: dict[str, type[Agent]] = {
    "sac": SAC,
    "td3": TD3,
    "ddpg": DDPG,
    "dsac-t": DSACT,
    "ppo": PPO,
}


def load(path: str | Path, env: EnvLike | None = None) -> Agent | FusedAgent:
    """An agent from a checkpoint file or a run directory (its latest checkpoint).

    Loaded from a run directory (or a checkpoint inside one), further learn() calls keep writing
    to that run. `env` replaces the saved sub-envs (the continuation is then not bit-exact).
    """
    path = Path(path)
    ckpt, run = path, None
    if path.is_dir():
        ckpt, run = latest_checkpoint(path), path
    elif path.parent.name == "checkpoints" and (path.parent.parent / "config.json").exists():
        run = path.parent.parent
    meta, leaves, envs = read_checkpoint(ckpt)
    envs = restored_envs(envs)
    if meta.get("algo") not in AGENTS:
        raise DuettoError(f"checkpoint '{ckpt}' is for unknown algorithm {meta.get('algo')!r}.")
    cls = AGENTS[meta["algo"]]
    algo = cls.algorithm
    if meta.get("loop") == "fused":
        if env is not None:
            raise DuettoError("a fused run resumes on its own JAX-native env; do not pass env=.")
        return load_fused(algo, ckpt, run, meta, leaves)
    config = build_config(algo.CONFIG, algo.NAME, {}, meta["config"])
    replaced = env is not None
    vectorization = meta.get("vectorization", "sync")
    if replaced:
        vec = make_vector_env(env, meta["n_envs"], vectorization)
    else:
        vec = wrap_vector_env(envs, vectorization)
    spec = env_spec(vec, algo.NAME, algo.ACTION_SPACES)
    state_shapes = HOST_LOOPS[algo.LOOP][1]
    state = restore_state(ckpt, leaves, state_shapes(algo, spec, config, meta["n_envs"]))
    if not replaced:
        env = meta["env"] if meta["env"] in gym.registry else envs[0]
    agent = cls.__new__(cls)
    agent.vectorization = vectorization
    agent._setup(
        env,
        meta["seed"],
        meta["n_envs"],
        config,
        meta.get("preset"),
        _ExistingRun(run) if run is not None else None,
        vec,
        state,
    )
    if replaced:
        agent.loop.reset(agent.seed)
    agent._train_wall = float(meta.get("train_wall", 0.0))
    agent._last_eval = meta.get("last_eval")
    agent.loop.episodes.restore(meta["episodes"])
    agent.loop.read_metrics()  # the sums so far belong to logs already written
    return agent
