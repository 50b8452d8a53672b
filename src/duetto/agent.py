"""The object facade: `duetto.SAC("Pendulum-v1").learn(20_000)`, predict, evaluate, save, load.

One class over every loop (loops/runner.py): the host loops for Gymnasium envs, the fused loop
for JAX-native ones ("gymnax:CartPole-v1", where `seeds=` and `sweep=` train many runs in one
program). Everything trained lives in the runner's state; the facade adds the host
bookkeeping once for all loops: logs, evaluations, checkpoints, progress, callbacks and the run
directory. Each registered algorithm gets its subclass (duetto/algorithms/__init__.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import jax
import numpy as np

from duetto import __version__
from duetto.callbacks import (
    Callback,
    CheckpointEvery,
    EvaluateEvery,
    FunctionCallback,
    StopOnReturn,
    TrainingContext,
)
from duetto.config import build_config, config_to_dict, preset_config
from duetto.contract import Algorithm, Config
from duetto.envs.gym import EnvLike, check_picklable, restored_envs
from duetto.envs.jaxenv import is_jax_env
from duetto.errors import DuettoError
from duetto.loops import RUNNERS, Runner
from duetto.runs.checkpoint import read_checkpoint, save_checkpoint
from duetto.runs.interrupt import Interrupted, StopRequests
from duetto.runs.logger import RunLogger
from duetto.runs.progress import TrainingProgress
from duetto.runs.rundir import (
    check_new_run_dir,
    checkpoint_path,
    create_run_dir,
    default_run_dir,
    latest_checkpoint,
    seed_tag,
    truncate_metrics,
    write_json,
)
from duetto.sb3 import sb3_learn_arguments, sb3_positional_policy

PREDICT_SEED_OFFSET = 1_000_000  # predict's sampling never shares keys with training
MIN_EVAL_EVERY = 1_000  # learn(300) evaluates at its end, not every 30 steps


class Agent:
    """An actor-critic agent bound to an environment.

    env: a Gymnasium id ("Pendulum-v1") or a gymnasium.Env instance (deep-copied per sub-env),
        trained by the host loop; or a JAX-native id ("gymnax:CartPole-v1"), trained by the
        fused loop, in which env, rollouts, updates and evaluation are compiled programs.
        SB3's form, SAC("MlpPolicy", env), works too (sb3_env is then the env).
    seed: the one integer that determines the run (network init, exploration, env seeds).
    seeds: several seeds at once (JAX-native envs): one vmapped program, one run directory
        per seed under the run's.
    sweep: {hyperparameter: [values]} (JAX-native envs): every combination of values, for
        every seed, in the same one program (numbers marked sweepable in `--help`).
    preset: a named set of hyperparameters (see `duetto list`); keyword hyperparameters
        override it. n_envs: sub-envs of the training vector env (default: the preset's, or 1).
    vectorization: 'sync' steps Gymnasium sub-envs in this process; 'async' in a subprocess
        each (for heavy envs); checkpoints hold the sub-envs' exact states either way.
    run_dir: where learn() writes the run (None: runs/<algo>-<env>-s<seed>-<time>; False: no
        run directory, so no logs or checkpoints).
    """

    algorithm: ClassVar[Algorithm]

    def __init__(
        self,
        env: EnvLike,
        sb3_env: EnvLike | None = None,
        *,
        seed: int | None = None,
        seeds: Sequence[int] | None = None,
        preset: str | None = None,
        n_envs: int | None = None,
        run_dir: str | Path | None | bool = None,
        vectorization: str = "sync",
        sweep: dict[str, Sequence[float]] | None = None,
        **hyperparameters: Any,
    ):
        algo = self.algorithm
        env = sb3_positional_policy(env, sb3_env, hyperparameters)
        if seeds is not None and seed is not None:
            raise DuettoError(
                f"seeds given twice (seed={seed!r} and seeds={list(seeds)!r}); give one: seed= "
                "for one run, seeds= for several in one program."
            )
        if seed is not None and (
            not isinstance(seed, int | np.integer) or isinstance(seed, bool) or seed < 0
        ):
            raise DuettoError(f"seed must be a non-negative integer, got {seed!r}.")
        config = preset_config(algo, preset, hyperparameters)
        if n_envs is None:
            n_envs = getattr(algo, "PRESET_ENVS", {}).get(preset, 1)
        if run_dir not in (None, False):
            check_new_run_dir(Path(run_dir))  # type: ignore[arg-type]
        kind = "fused" if is_jax_env(env) else "host"
        runner = RUNNERS[kind].create(
            algo,
            env,
            list(seeds) if seeds is not None else [0 if seed is None else int(seed)],
            config,
            n_envs,  # type: ignore[arg-type]
            dict(sweep or {}),  # type: ignore[arg-type]
            vectorization,
        )
        self._attach(runner, config, preset, run_dir)

    def _attach(
        self,
        runner: Runner,
        config: Config,
        preset: str | None,
        run_dir: Any,
        existing: Path | None = None,
    ) -> None:
        """Bind to `runner`; `existing`: the run directory a loaded run keeps writing to."""
        self.loop, self.config, self.preset = runner, config, preset
        self._existing: Path | None = existing
        self.env_id, self.n_envs, self.runs = runner.env_id, runner.n_envs, runner.runs
        self.seeds = list(dict.fromkeys(r["seed"] for r in runner.runs))
        self.seed = self.seeds[0]
        self._run_dir_arg = run_dir
        self.run_dir: Path | None = None
        self._loggers: list[RunLogger] = []
        self.train_wall = 0.0
        self._wall_mark: float | None = None  # set while the training clock runs
        self._last_train_row = -1
        self.last_eval: dict[str, Any] | None = None
        # The last learn() call's end (env steps) and options, which a checkpoint keeps so that
        # learn() (or `duetto train --resume` without --steps) finishes it after an interrupt.
        self.plan: dict[str, Any] | None = None
        self._predict_key = jax.random.PRNGKey(self.seed + PREDICT_SEED_OFFSET)

    # ---- what the agent is ----------------------------------------------------------------

    @property
    def env_steps(self) -> int:
        """Env steps taken (per run; summed over sub-envs)."""
        return self.loop.env_steps

    @property
    def state(self) -> Any:
        """The algorithm's state pytree (parameters, optimizer states, ...); with several runs
        (seeds, sweeps), theirs stacked on a leading [n_runs] axis."""
        return self.loop.algo_state

    @property
    def run_names(self) -> list[str]:
        """The sub-directory name of each run of a multi-run program: seed-<s>, prefixed by
        its swept values."""
        return [
            "".join(f"{k}={v:g}-" for k, v in r["hparams"].items()) + f"seed-{r['seed']}"
            for r in self.runs
        ]

    @property
    def devices(self) -> int:
        """How many devices the runs are split over (1 for the host loops)."""
        return int(self.loop.progress().get("devices", 1))

    # ---- training ---------------------------------------------------------------------------

    def learn(
        self,
        total_steps: int | None = None,
        *,
        eval_every: int | None = None,
        eval_episodes: int | None = None,
        checkpoint_every: int | None = None,
        stop_at_return: float | None = None,
        callbacks: Sequence[Callback | Callable[[TrainingContext], bool | None]] = (),
        progress: bool = False,
        log_every: int | None = None,
        **sb3: Any,
    ) -> Agent:
        """Train for `total_steps` more env steps (per run, summed over sub-envs; the fused
        loop rounds up to whole iterations).

        Evaluates every `eval_every` env steps (default: a tenth of the call, at least 1,000)
        and at the end, over `eval_episodes` episodes (default 10), checkpoints every
        `checkpoint_every` steps and at the end, stops early when an evaluation's mean return
        reaches `stop_at_return`, logs training metrics every `log_every` env steps (default
        1000; in the fused loop every compiled chunk). `callbacks` are Callback objects or
        functions `fn(ctx) -> False to stop`, called after every vector step (host loops) or
        compiled chunk (fused loop, one per evaluation).

        `total_steps=None` finishes the run's last learn() call with its options (after an
        interrupt, or on a loaded run); options left out continue those of that call. SIGINT
        (Ctrl-C), SIGTERM or an exception in a callback stop training at a step boundary,
        write a checkpoint into the run directory and raise (`runs.interrupt.Interrupted` for
        a signal). SB3's `total_timesteps=`, `callback=` and `progress_bar=` are accepted.
        """
        total_steps, callbacks, progress = sb3_learn_arguments(
            total_steps, callbacks, progress, sb3
        )
        plan = self._plan_call(
            total_steps,
            {
                "eval_every": eval_every,
                "eval_episodes": eval_episodes,
                "checkpoint_every": checkpoint_every,
                "stop_at_return": stop_at_return,
                "log_every": log_every,
            },
        )
        options, steps = plan["options"], plan["end"] - self.env_steps
        self.config.warn_if_idle(self.algorithm.NAME, plan["end"])
        self._open_run_dir()
        if self.run_dir is not None:
            check_picklable(self.loop.saved_envs())
        self.plan = plan
        every, log_every = options["eval_every"], options["log_every"]
        chain: list[Callback] = [EvaluateEvery(every, options["eval_episodes"])]
        if options["stop_at_return"] is not None:
            chain.append(StopOnReturn(options["stop_at_return"]))
        if options["checkpoint_every"]:
            chain.append(CheckpointEvery(options["checkpoint_every"]))
        chain += [c if isinstance(c, Callback) else FunctionCallback(c) for c in callbacks]

        start = self.env_steps
        ctx = TrainingContext(self, start, 0, start_steps=start, last_eval=self.last_eval)
        bar = None
        if progress:
            bar = TrainingProgress(steps, start, f"{self.algorithm.NAME} {self.env_id}")
        self.loop.prepare_evaluation(options["eval_episodes"])
        self._wall_mark = time.perf_counter()
        next_log = (start // log_every + 1) * log_every
        failure: Exception | None = None

        def hook(env_steps: int) -> bool:
            nonlocal next_log, failure
            ctx.env_steps, ctx.steps_this_call = env_steps, env_steps - start
            if env_steps >= next_log:
                self._log_train()
                next_log = (env_steps // log_every + 1) * log_every
            go_on = True
            try:
                for callback in chain:
                    go_on &= callback(ctx) is not False
            except Exception as e:  # noqa: BLE001 - re-raised once the run is saved
                failure, go_on = e, False
            if bar is not None:
                bar.update(ctx.steps_this_call, (ctx.last_eval or {}).get("return_mean"))
            return go_on and stops.signum is None

        with StopRequests() as stops:
            try:
                self.loop.advance(steps, every, hook)
                if self._last_train_row != self.env_steps:
                    self._log_train()
                self._clock()
                self._wall_mark = None  # the training clock stops with the last env step
                stopped = failure is not None or stops.signum is not None
                if not stopped and (
                    ctx.last_eval is None or ctx.last_eval["step"] != self.env_steps
                ):
                    ctx.last_eval = self.record_evaluation(options["eval_episodes"])
            finally:
                self._wall_mark = None
                if bar is not None:
                    bar.update(
                        ctx.steps_this_call, (ctx.last_eval or {}).get("return_mean"), force=True
                    )
                    bar.close()
            self.last_eval = ctx.last_eval
            if stopped:
                saved = self.checkpoint() if self.run_dir is not None else None
                if failure is not None:
                    where = f"checkpoint: {saved}" if saved else "no run directory to save to"
                    failure.add_note(
                        f"duetto: training stopped at env step {self.env_steps} ({where})"
                    )
                    raise failure
            elif self.run_dir is not None:
                self._finish_run_dir()
        if stops.signum is not None:  # a signal during the final evaluation or checkpoint too
            saved = checkpoint_path(self.run_dir, self.env_steps) if self.run_dir else None
            raise Interrupted(stops.signum, self.env_steps, saved)
        return self

    def _plan_call(self, total_steps: int | None, given: dict[str, Any]) -> dict[str, Any]:
        """The end (in env steps) and options of a learn() call: given ones, else (for
        total_steps=None) those of the unfinished last call, else the defaults."""
        for name, value in given.items():
            if value is None:
                continue
            if name == "stop_at_return":
                if isinstance(value, bool) or not isinstance(value, int | float | np.number):
                    raise DuettoError(f"stop_at_return must be a number, got {value!r}.")
            elif not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 1:
                raise DuettoError(f"{name} must be a positive integer, got {value!r}.")
        last = self.plan
        if total_steps is None:
            if last is None or last["end"] <= self.env_steps:
                done = f" this run finished its last learn() call at {last['end']}," if last else ""
                raise DuettoError(
                    f"learn() needs total_steps, the env steps to train;{done} give how many more "
                    "to take, e.g. learn(10_000)."
                )
            options = {**last["options"], **{k: v for k, v in given.items() if v is not None}}
            return {"end": last["end"], "options": options}
        if (
            not isinstance(total_steps, int | np.integer)
            or isinstance(total_steps, bool)
            or (total_steps < 1)
        ):
            raise DuettoError(f"total_steps must be a positive integer, got {total_steps!r}.")
        options = dict(given)
        options["eval_every"] = options["eval_every"] or max(total_steps // 10, MIN_EVAL_EVERY)
        options["eval_episodes"] = options["eval_episodes"] or 10
        options["log_every"] = options["log_every"] or self.loop.default_log_every
        return {"end": self.env_steps + self.loop.planned(int(total_steps)), "options": options}

    # ---- acting and evaluating --------------------------------------------------------------

    def predict(
        self,
        observation: Any,
        state: Any = None,
        episode_start: Any = None,
        deterministic: bool = True,
        *,
        run: int = 0,
    ) -> tuple[np.ndarray, Any]:
        """(action, state), as Stable-Baselines3's predict: the action(s) in the env's terms
        for one observation or a batch [n, ...], the mean action when deterministic (the
        default here; SB3's is False), else a sample of the policy. `state` and
        `episode_start` are for recurrent policies and are passed through (duetto's are not
        recurrent); `run` picks one run of a multi-run program."""
        if not 0 <= run < len(self.runs):
            raise DuettoError(f"run must be in [0, {len(self.runs)}), got {run}.")
        x, single = self.loop.obs_edge.flatten(observation)  # [n, obs_dim] (envs/spaces.py)
        key = None
        if not deterministic:
            self._predict_key, key = jax.random.split(self._predict_key)
        action = self.loop.act(run, x, key)
        return (action[0] if single else action), state

    def evaluate(self, episodes: int = 10, seed: int | None = None) -> dict[str, Any]:
        """Deterministic (mean-action) returns over `episodes` fresh episodes per run: seeded by
        `seed`, or by the run's own evaluation seed at this step. With several runs,
        `seed_returns` holds each run's mean and `return_mean` their mean."""
        if not isinstance(episodes, int | np.integer) or episodes < 1:
            raise DuettoError(f"episodes must be a positive integer, got {episodes!r}.")
        return self._summary(*self.loop.evaluate(int(episodes), seed))

    def record_evaluation(self, episodes: int) -> dict[str, Any]:
        """Evaluate with the run's own seed at this step (so a resumed run evaluates as the
        original would), log it, and keep it as `last_eval`; time spent here is not training
        time."""
        wall = self._clock()
        returns, lengths = self.loop.evaluate(int(episodes), None)
        result = self._summary(returns, lengths)
        if self._wall_mark is not None:
            self._wall_mark = time.perf_counter()
        for logger, run_returns, run_lengths in zip(self._loggers, returns, lengths, strict=False):
            logger.log(
                "eval",
                self.env_steps,
                {
                    "train_wall": wall,
                    "return_mean": float(run_returns.mean()),
                    "return_std": float(run_returns.std()),
                    "length_mean": float(run_lengths.mean()),
                },
            )
        self.last_eval = {"step": self.env_steps, "train_wall": wall, **result}
        return self.last_eval

    # ---- saving -----------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write a checkpoint that `duetto.load` resumes exactly."""
        path = Path(path)
        meta = {
            **self._identity(),
            "env_steps": self.env_steps,
            "train_wall": self._clock(),
            "last_eval": self.last_eval,
            "plan": self.plan,
            **self.loop.progress(),
        }
        save_checkpoint(path, meta, self.loop.state, self.loop.saved_envs())
        return path

    def checkpoint(self) -> Path:
        """Write a checkpoint into the run directory (checkpoints/step-<env steps>.ckpt)."""
        if self.run_dir is None:
            raise DuettoError(
                "this agent has no run directory (run_dir=False, or learn() not called yet); "
                "save with agent.save(path) instead."
            )
        return self.save(checkpoint_path(self.run_dir, self.env_steps))

    def close(self) -> None:
        """Close the envs (async sub-env processes end) and the logs."""
        loggers, self._loggers = getattr(self, "_loggers", []), []
        for logger in loggers:
            logger.close()
        loop = getattr(self, "loop", None)
        if loop is not None:
            loop.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown: nothing left to report to
            pass

    @classmethod
    def load(cls, path: str | Path, env: EnvLike | None = None) -> Agent:
        """`duetto.SAC.load(path)`, as in SB3: `duetto.load` for a run of this algorithm."""
        agent = load(path, env)
        if cls is not Agent and not isinstance(agent, cls):
            raise DuettoError(
                f"'{path}' holds a {agent.algorithm.NAME} run, not {cls.algorithm.NAME}; load it "
                f"with duetto.load(path) or duetto.{type(agent).__name__}.load(path)."
            )
        return agent

    # ---- internals ----------------------------------------------------------------------------

    def _identity(self) -> dict[str, Any]:
        """What the run is: the same in config.json and in every checkpoint."""
        return {
            "algo": self.algorithm.NAME,
            "env": self.env_id,
            **self.loop.identity(),
            "n_envs": self.n_envs,
            "preset": self.preset,
            "config": config_to_dict(self.config),
            "duetto_version": __version__,
        }

    def _clock(self) -> float:
        """The training wall time so far (the clock runs during learn, not in evaluations)."""
        mark = self._wall_mark
        if mark is not None:
            now = time.perf_counter()
            self.train_wall += now - mark
            self._wall_mark = now
        return self.train_wall

    def _open_run_dir(self) -> None:
        if self._loggers or self._run_dir_arg is False:
            return
        if self._existing is not None:
            self.run_dir = self._existing
            for path in self._run_paths():
                truncate_metrics(path, self.env_steps)
        else:
            tag = seed_tag(self.seeds)
            path = self._run_dir_arg or default_run_dir(self.algorithm.NAME, self.env_id, tag)
            created = time.strftime("%Y-%m-%dT%H:%M:%S")
            self.run_dir = create_run_dir(Path(path), {**self._identity(), "created": created})
            if self.loop.runs_have_dirs:
                for run, name in zip(self.runs, self.run_names, strict=True):
                    identity = {
                        **self._identity(),
                        "seed": run["seed"],
                        "config": {**config_to_dict(self.config), **run["hparams"]},
                        "created": created,
                    }
                    create_run_dir(self.run_dir / name, identity)
        self._loggers = [RunLogger(p) for p in self._run_paths()]

    def _run_paths(self) -> list[Path]:
        assert self.run_dir is not None
        if self.loop.runs_have_dirs:
            return [self.run_dir / name for name in self.run_names]
        return [self.run_dir]

    def _log_train(self) -> None:
        self._last_train_row = self.env_steps
        wall = self._clock()
        rows = self.loop.read_train()
        sps = self.env_steps * len(self.runs) / wall if wall > 0 else 0.0
        for logger, row in zip(self._loggers, rows, strict=False):
            logger.log("train", self.env_steps, {"train_wall": wall, **row, "sps": sps})

    def _summary(self, returns: np.ndarray, lengths: np.ndarray) -> dict[str, Any]:
        """An evaluation's summary: per run (seed_returns) with several runs, else per episode."""
        many = self.loop.runs_have_dirs
        per = returns.mean(axis=1) if many else returns[0]
        summary = {"return_mean": float(per.mean()), "return_std": float(per.std())}
        if many:
            summary["seed_returns"] = per.tolist()
        summary["length_mean"] = float(lengths.mean())
        limit = getattr(self.loop, "time_limit", None)
        if limit is not None:  # episodes that lasted the time limit (not terminated before)
            full = (lengths >= limit).mean(axis=1)
            summary["full_length_share"] = float(full.mean())
            if many:
                summary["seed_full_length_share"] = full.tolist()
                summary["seed_length_mean"] = lengths.mean(axis=1).tolist()
        summary["returns"] = returns.tolist() if many else returns[0].tolist()
        return summary

    def _finish_run_dir(self) -> None:
        from duetto.analysis.curves import plot_learning_curve, plot_seed_band

        assert self.run_dir is not None
        write_json(self.run_dir / "eval.json", self.last_eval)
        if self.loop.runs_have_dirs:
            ev = self.last_eval or {}
            for i, path in enumerate(self._run_paths()):
                if ev:
                    returns = ev["returns"][i]
                    write_json(
                        path / "eval.json",
                        {
                            "step": ev["step"],
                            "return_mean": float(np.mean(returns)),
                            "return_std": float(np.std(returns)),
                            "returns": returns,
                        },
                    )
                plot_learning_curve([path], path / "curve.png")
            plot_seed_band([self.run_dir], self.run_dir / "curve.png")
        else:
            plot_learning_curve([self.run_dir], self.run_dir / "curve.png")
        self.checkpoint()


def load(path: str | Path, env: EnvLike | None = None) -> Agent:
    """An agent from a checkpoint file or a run directory (its latest checkpoint).

    Loaded from a run directory (or a checkpoint inside one), further learn() calls keep writing
    to that run. `env` replaces the saved Gymnasium sub-envs (the continuation is then not
    bit-exact).
    """
    from duetto.algorithms import AGENTS

    path = Path(path)
    ckpt, run = path, None
    if path.is_dir():
        ckpt, run = latest_checkpoint(path), path
    elif path.parent.name == "checkpoints" and (path.parent.parent / "config.json").exists():
        run = path.parent.parent
    meta, arrays, envs = read_checkpoint(ckpt)
    if meta.get("algo") not in AGENTS:
        raise DuettoError(f"checkpoint '{ckpt}' is for unknown algorithm {meta.get('algo')!r}.")
    cls = AGENTS[meta["algo"]]
    algo = cls.algorithm
    config = build_config(algo.CONFIG, algo.NAME, {}, meta["config"])
    kind = meta.get("loop", "host")  # format 1 wrote "loop" for fused runs only
    if kind not in RUNNERS:
        raise DuettoError(f"checkpoint '{ckpt}' is of an unknown loop {kind!r}.")
    runner = RUNNERS[kind].restore(algo, config, meta, ckpt, arrays, restored_envs(envs), env)
    agent = cls.__new__(cls)
    agent._attach(runner, config, meta.get("preset"), None, existing=run)
    agent.train_wall = float(meta.get("train_wall", 0.0))
    agent.last_eval = meta.get("last_eval")
    agent.plan = meta.get("plan")
    agent._last_train_row = agent.env_steps  # logged before the checkpoint was written
    return agent
