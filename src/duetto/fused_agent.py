"""The facade over the fused loop: `duetto.PPO("gymnax:CartPole-v1", seeds=range(8))`.

Training runs as compiled chunks, one per evaluation interval, for all runs at once; between
chunks the host logs, evaluates, checkpoints, draws progress and calls callbacks. The runs are
the seeds, or with `sweep={"learning_rate": [1e-3, 3e-4]}` every (swept values, seed)
combination: one vmapped program whatever their number. A run directory holds the shared config
and checkpoints, one sub-directory per run (`seed-<s>/`, or `learning_rate=0.001-seed-<s>/`: a
run directory of its own, with config, metrics, curve and eval) and the aggregate evaluation and
curve.
"""

from __future__ import annotations

import itertools
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from duetto import __version__
from duetto.config import build_config, check_sweep, config_to_dict
from duetto.envs.jaxenv import make_jax_env
from duetto.errors import DuettoError
from duetto.loops.fused import FusedLoop
from duetto.runs.checkpoint import save_checkpoint
from duetto.runs.logger import RunLogger
from duetto.runs.progress import TrainingProgress
from duetto.runs.rundir import (
    check_new_run_dir,
    checkpoint_path,
    create_run_dir,
    default_run_dir,
    write_json,
)

EVAL_SEED_OFFSET = 1_000_000


def check_seeds(seeds: Sequence[int]) -> list[int]:
    seeds = list(seeds)
    if not seeds:
        raise DuettoError("seeds is empty; give at least one seed, e.g. seeds=[0, 1, 2].")
    for s in seeds:
        if not isinstance(s, int | np.integer) or isinstance(s, bool) or s < 0:
            raise DuettoError(f"seeds must be non-negative integers, got {s!r}.")
    if len(set(seeds)) != len(seeds):
        raise DuettoError(f"seeds has repeats ({seeds}); each seed must appear once.")
    return [int(s) for s in seeds]


class FusedAgent:
    """An algorithm trained by the fused loop on a gymnax env, over one or more seeds.

    Built by the algorithm classes (`duetto.PPO(...)`, `duetto.SAC(...)`) when the env id starts
    with "gymnax:". Its state has a leading [n_runs] axis, one entry per run in `self.runs`
    (each {"seed": s, "hparams": {...swept values}}); `predict` acts with one run's policy.
    """

    def __init__(
        self,
        algorithm: ModuleType,
        env: str,
        seeds: Sequence[int],
        *,
        preset: str | None = None,
        n_envs: int | None = None,
        run_dir: str | Path | None | bool = None,
        config: Any = None,
        hyperparameters: dict[str, Any] | None = None,
        state: Any = None,
        sweep: dict[str, Any] | None = None,
    ):
        algo = self.algorithm = algorithm
        self.seeds = check_seeds(seeds)
        self.sweep = check_sweep(algo.CONFIG, algo.NAME, sweep or {})
        names = list(self.sweep)
        self.runs = [
            {"seed": seed, "hparams": dict(zip(names, combo, strict=True))}
            for combo in itertools.product(*self.sweep.values())
            for seed in self.seeds
        ]
        self.jax_env = make_jax_env(env, algo.NAME, algo.ACTION_SPACES)
        self.env_id = env
        if config is None:
            presets = algo.PRESETS.get(preset, {}) if preset else {}
            config = build_config(algo.CONFIG, algo.NAME, presets, hyperparameters or {})
        if n_envs is None:
            n_envs = getattr(algo, "PRESET_ENVS", {}).get(preset, 1)
        if n_envs < 1:
            raise DuettoError(f"n_envs must be at least 1, got {n_envs}.")
        self.config, self.preset, self.n_envs = config, preset, int(n_envs)
        if isinstance(run_dir, str | Path):
            check_new_run_dir(Path(run_dir))
        self.loop = FusedLoop(algo, config, self.jax_env, self.n_envs)
        # A new run is about to train: its train program compiles while the seeds' states are
        # built. A loaded one may only be evaluated, and compiles on its first `learn`.
        self.loop.prepare(len(self.runs), train=state is None)
        if state is None:
            state = self.loop.init([r["seed"] for r in self.runs], EVAL_SEED_OFFSET)
            if self.sweep:
                hparams = dict(state.algo.hparams)
                for name in names:
                    hparams[name] = jnp.asarray(
                        [r["hparams"][name] for r in self.runs], jnp.float32
                    )
                state = state.replace(algo=state.algo.replace(hparams=hparams))
        self.loop_state = self.loop.place(state)
        self._run_dir_arg = run_dir
        self.run_dir: Path | None = None
        self._loggers: list[RunLogger] = []
        self.train_wall = 0.0
        self.last_eval: dict[str, Any] | None = None
        self._policy = jax.jit(lambda s, o: algo.act(s, o, None, True))

    # ---- user surface -------------------------------------------------------------------------

    @property
    def run_names(self) -> list[str]:
        """The sub-directory name of each run: seed-<s>, prefixed by its swept values."""
        return [
            "".join(f"{k}={v:g}-" for k, v in r["hparams"].items()) + f"seed-{r['seed']}"
            for r in self.runs
        ]

    @property
    def env_steps(self) -> int:
        """Env steps per run (every run has taken the same number)."""
        return int(self.loop_state.env_steps[0])

    @property
    def devices(self) -> int:
        """How many devices the runs are split over (duetto/devices.py)."""
        sharding = self.loop.sharding
        return 1 if sharding is None else len(sharding.device_set)

    @property
    def state(self) -> Any:
        """The algorithm states of all runs, stacked on a leading [n_runs] axis."""
        return self.loop_state.algo

    def learn(
        self,
        total_steps: int,
        *,
        eval_every: int | None = None,
        eval_episodes: int = 10,
        checkpoint_every: int | None = None,
        stop_at_return: float | None = None,
        callbacks: Sequence[Callable[[dict[str, Any]], bool | None]] = (),
        progress: bool = False,
    ) -> FusedAgent:
        """Train every seed for `total_steps` more env steps (rounded up to whole iterations).

        A chunk is `eval_every` env steps (default a tenth of the call) rounded up to whole
        iterations, the last one shorter when the call ends first; each chunk ends with a
        deterministic evaluation of `eval_episodes` episodes per seed. Stops early once the
        mean over seeds of the evaluation return reaches `stop_at_return`. `callbacks` are
        functions of the latest evaluation summary, called after each chunk; one returning
        False stops training.
        """
        for name, value in (("total_steps", total_steps), ("eval_episodes", eval_episodes)):
            if not isinstance(value, int | np.integer) or value < 1:
                raise DuettoError(f"{name} must be a positive integer, got {value!r}.")
        self._open_run_dir()
        self.loop.prepare_evaluate(int(eval_episodes))
        per_iteration = self.loop.steps_per_iteration
        every = eval_every or max(total_steps // 10, 1)
        per_chunk = max(-(-every // per_iteration), 1)
        remaining = -(-total_steps // per_iteration)  # iterations
        next_checkpoint = (
            (self.env_steps // checkpoint_every + 1) * checkpoint_every
            if checkpoint_every
            else None
        )
        start = self.env_steps
        bar = (
            TrainingProgress(
                remaining * per_iteration, start, f"{self.algorithm.NAME} {self.env_id}"
            )
            if progress
            else None
        )
        try:
            while remaining > 0:
                iterations = min(per_chunk, remaining)
                remaining -= iterations
                t0 = time.perf_counter()
                self.loop_state, summary = self.loop.train(self.loop_state, iterations)
                summary = jax.device_get(summary)
                self.train_wall += time.perf_counter() - t0
                self._log_train(summary)
                self.last_eval = self._evaluate_and_log(eval_episodes)
                if bar is not None:
                    bar.update(self.env_steps - start, self.last_eval["return_mean"])
                if next_checkpoint is not None and self.env_steps >= next_checkpoint:
                    self._checkpoint()
                    next_checkpoint = (self.env_steps // checkpoint_every + 1) * checkpoint_every
                stop = any(cb(self.last_eval) is False for cb in callbacks)
                if stop_at_return is not None and self.last_eval["return_mean"] >= stop_at_return:
                    stop = True
                if stop:
                    break
        finally:
            if bar is not None:
                bar.close()
        if self.run_dir is not None:
            self._finish_run_dir()
        return self

    def evaluate(self, episodes: int = 10) -> dict[str, Any]:
        """Deterministic returns of `episodes` episodes per run: per-run means (`seed_returns`, in
        the order of `self.runs`), and their mean over runs as `return_mean`."""
        if not isinstance(episodes, int | np.integer) or episodes < 1:
            raise DuettoError(f"episodes must be a positive integer, got {episodes!r}.")
        result = jax.device_get(self.loop.evaluate(self.loop_state, int(episodes)))
        returns = np.asarray(result["returns"], np.float64)  # [n_runs, episodes]
        per_seed = returns.mean(axis=1)
        return {
            "return_mean": float(per_seed.mean()),
            "return_std": float(per_seed.std()),
            "seed_returns": per_seed.tolist(),
            "length_mean": float(np.mean(result["lengths"])),
            "returns": returns.tolist(),
        }

    def predict(self, obs: Any, deterministic: bool = True, run_index: int = 0) -> np.ndarray:
        """Deterministic action(s) of run `runs[run_index]`'s policy, in the env's terms."""
        if not deterministic:
            raise DuettoError("the fused facade predicts deterministic actions only.")
        x = np.asarray(obs, np.float32)
        single = x.ndim == 1
        x = x.reshape((1 if single else x.shape[0], self.jax_env.spec.obs_dim))
        state = jax.tree.map(lambda leaf: leaf[run_index], self.state)
        action = np.asarray(self.jax_env.to_env(self._policy(state, jnp.asarray(x))))
        return action[0] if single else action

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        save_checkpoint(path, self._meta(), self.loop_state, [])
        return path

    # ---- internals ----------------------------------------------------------------------------

    def _identity(self) -> dict[str, Any]:
        return {
            "algo": self.algorithm.NAME,
            "env": self.env_id,
            "loop": "fused",
            "seeds": self.seeds,
            "sweep": self.sweep,
            "n_envs": self.n_envs,
            "preset": self.preset,
            "config": config_to_dict(self.config),
            "duetto_version": __version__,
        }

    def _meta(self) -> dict[str, Any]:
        return {
            **self._identity(),
            "devices": self.devices,
            "env_steps": self.env_steps,
            "train_wall": self.train_wall,
            "last_eval": self.last_eval,
        }

    def _open_run_dir(self) -> None:
        if self._loggers or self._run_dir_arg is False:
            return
        if isinstance(self._run_dir_arg, _ExistingFusedRun):
            self.run_dir = self._run_dir_arg.path
        else:
            tag = seed_tag(self.seeds)
            path = self._run_dir_arg or default_run_dir(self.algorithm.NAME, self.env_id, tag)
            created = time.strftime("%Y-%m-%dT%H:%M:%S")
            self.run_dir = create_run_dir(Path(path), {**self._identity(), "created": created})
            for run, name in zip(self.runs, self.run_names, strict=True):
                identity = {
                    **self._identity(),
                    "seed": run["seed"],
                    "config": {**config_to_dict(self.config), **run["hparams"]},
                    "created": created,
                }
                create_run_dir(self.run_dir / name, identity)
        self._loggers = [RunLogger(self.run_dir / name) for name in self.run_names]

    def _log_train(self, summary: dict[str, Any]) -> None:
        if not self._loggers:
            return
        steps = self.env_steps
        for i, logger in enumerate(self._loggers):
            row: dict[str, Any] = {"train_wall": self.train_wall}
            if summary["updated"][i] > 0:
                row.update({k: float(v[i]) for k, v in summary["metrics"].items()})
            if summary["episodes"][i] > 0:
                row["episode_return"] = float(
                    summary["episode_return_sum"][i] / summary["episodes"][i]
                )
            row["sps"] = steps * len(self.runs) / self.train_wall if self.train_wall else 0.0
            logger.log("train", steps, row)

    def _evaluate_and_log(self, episodes: int) -> dict[str, Any]:
        result = self.evaluate(episodes)
        for i, logger in enumerate(self._loggers):
            seed_returns = np.asarray(result["returns"][i])
            logger.log(
                "eval",
                self.env_steps,
                {
                    "train_wall": self.train_wall,
                    "return_mean": float(seed_returns.mean()),
                    "return_std": float(seed_returns.std()),
                },
            )
        return {"step": self.env_steps, "train_wall": self.train_wall, **result}

    def _checkpoint(self) -> Path | None:
        if self.run_dir is None:
            return None
        return self.save(checkpoint_path(self.run_dir, self.env_steps))

    def _finish_run_dir(self) -> None:
        from duetto.analysis.curves import plot_learning_curve, plot_seed_band

        run_dir = self.run_dir
        assert run_dir is not None
        write_json(run_dir / "eval.json", self.last_eval)
        for i, name in enumerate(self.run_names):
            seed_dir = run_dir / name
            ev = self.last_eval or {}
            if ev:
                returns = ev["returns"][i]
                write_json(
                    seed_dir / "eval.json",
                    {
                        "step": ev["step"],
                        "return_mean": float(np.mean(returns)),
                        "return_std": float(np.std(returns)),
                        "returns": returns,
                    },
                )
            plot_learning_curve([seed_dir], seed_dir / "curve.png")
        plot_seed_band([run_dir], run_dir / "curve.png")
        self._checkpoint()

    def __del__(self) -> None:
        for logger in getattr(self, "_loggers", []):
            logger.close()


class _ExistingFusedRun:
    def __init__(self, path: Path):
        self.path = path


def seed_tag(seeds: list[int]) -> str:
    """'3' for one seed, '0-7' for a contiguous range, else the list joined by '_'."""
    if len(seeds) == 1:
        return str(seeds[0])
    if seeds == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"{seeds[0]}-{seeds[-1]}"
    return "_".join(map(str, seeds))


def load_fused(
    algorithm: ModuleType, ckpt: Path, run: Path | None, meta: dict, leaves: list
) -> FusedAgent:
    """A fused agent from a checkpoint's meta and leaves (see duetto.load)."""
    from duetto.runs.checkpoint import restore_state

    config = build_config(algorithm.CONFIG, algorithm.NAME, {}, meta["config"])
    env = make_jax_env(meta["env"], algorithm.NAME, algorithm.ACTION_SPACES)
    n_runs = len(meta["seeds"]) * int(np.prod([len(v) for v in meta.get("sweep", {}).values()]))
    template = FusedLoop(algorithm, config, env, meta["n_envs"]).shapes(n_runs)
    agent = FusedAgent(
        algorithm,
        meta["env"],
        meta["seeds"],
        preset=meta.get("preset"),
        n_envs=meta["n_envs"],
        run_dir=_ExistingFusedRun(run) if run is not None else False,
        config=config,
        state=restore_state(ckpt, leaves, template),
        sweep=meta.get("sweep"),
    )
    agent.train_wall = float(meta.get("train_wall", 0.0))
    agent.last_eval = meta.get("last_eval")
    saved = meta.get("devices", 1)
    if saved != agent.devices:
        warnings.warn(
            f"'{ckpt}' was trained with its runs split over {saved} device(s); here they are "
            f"split over {agent.devices}. The runs continue, but not bit-identically with "
            f"training on {saved} (set DUETTO_CPU_DEVICES={saved} to match on a CPU).",
            stacklevel=3,
        )
    return agent
