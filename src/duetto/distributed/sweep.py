"""Sweeps and seeds as Ray Tune trials: `duetto.sweep(...)` and `duetto sweep`.

Each (env, setting, seed) is one Tune trial (distributed/trial.py) that writes an ordinary run
directory under `out`, so `duetto plot`/`report` read a sweep as they read local runs; a JAX
env's trial trains all the seeds in one vmapped program. Settings come from a search space over
the algorithm's typed config (distributed/space.py): every combination of a grid, seeded random
draws, or Optuna's TPE (one seed per trial: it learns from each trial's return). ASHA stops the
trials whose evaluation return falls behind at its rungs (in env steps). A trial whose worker
dies is started again (up to `max_failures` times) and continues from its last checkpoint; an
interrupted sweep continues with `resume_sweep(out)` (`duetto sweep --resume OUT`): finished
trials are not run again, unfinished ones continue from their checkpoints.

out/
    sweep.json      what the sweep is (read by resume)
    config.json     {"seeds": ...}: `duetto plot OUT` / `report OUT` stand it for its runs
    <run>/          one run directory per trial
    summary.json    the table printed at the end, one row per (env, setting)
    .tune/          Tune's experiment state
"""

from __future__ import annotations

import math
import re
import signal
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from duetto.distributed.cluster import local_cores, ray_session
from duetto.distributed.space import Distribution, LogUniform, RandInt, Space, build_space
from duetto.distributed.trial import finished, run_trial, trial_run_dir, trial_setting
from duetto.errors import DuettoError
from duetto.runs.rundir import check_new_run_dir, read_json, write_json

SEARCHES = ("grid", "random", "optuna")
TUNE_DIR = ".tune"
METRIC = "return_mean"


def sweep(
    algo: str,
    env: str | Sequence[str],
    *,
    seeds: Sequence[int] = (0,),
    space: dict[str, Any] | None = None,
    search: str = "grid",
    samples: int | None = None,
    search_seed: int = 0,
    steps: int | None = None,
    preset: str | None = None,
    n_envs: int | None = None,
    vectorization: str = "sync",
    eval_every: int | None = None,
    eval_episodes: int | None = None,
    checkpoint_every: int | None = None,
    stop_at_return: float | None = None,
    asha: bool = False,
    workers: int | None = None,
    cpus_per_trial: float = 1,
    gpus_per_trial: float = 0,
    max_failures: int = 3,
    address: str | None = None,
    out: str | Path | None = None,
    verbose: bool = True,
) -> list[dict[str, Any]]:
    """Train every (env, setting, seed) of a search as a Ray Tune trial; returns the summary
    rows (one per env and setting, best first) that `out/summary.json` keeps.

    algo: a registered algorithm ('sac'); env: one id or several (Gymnasium or JAX-native).
    space: {hyperparameter: value | [values] | Uniform/LogUniform/RandInt}
    (duetto.distributed.space). search: 'grid' (every combination; distributions not allowed),
    'random' (`samples` seeded draws, each crossed with the grid), or 'optuna' (`samples`
    trials proposed by Optuna's TPE from the returns so far; one seed). asha: stop trials early
    with ASHA on the evaluation return (rungs in env steps from `eval_every`). workers: trials
    at a time (default: as many as the cluster's CPUs allow). Ray: local, started and shut down
    here, unless `address` (or RAY_ADDRESS) names a cluster, or Ray is initialized already.
    """
    spec, parsed = plan_sweep(
        algo,
        env,
        seeds=seeds,
        space=space,
        search=search,
        samples=samples,
        search_seed=search_seed,
        steps=steps,
        preset=preset,
        n_envs=n_envs,
        vectorization=vectorization,
        eval_every=eval_every,
        eval_episodes=eval_episodes,
        checkpoint_every=checkpoint_every,
        stop_at_return=stop_at_return,
        asha=asha,
        workers=workers,
        cpus_per_trial=cpus_per_trial,
        gpus_per_trial=gpus_per_trial,
        max_failures=max_failures,
        out=out,
    )
    root = {"algo": spec["algo"], "loop": "sweep", "envs": spec["envs"], "seeds": spec["seeds"]}
    return run_sweep(spec, parsed, root, address, verbose)


def plan_sweep(
    algo: str,
    env: str | Sequence[str],
    *,
    seeds: Sequence[int] = (0,),
    space: dict[str, Any] | None = None,
    search: str = "grid",
    samples: int | None = None,
    search_seed: int = 0,
    steps: int | None = None,
    preset: str | None = None,
    n_envs: int | None = None,
    vectorization: str = "sync",
    eval_every: int | None = None,
    eval_episodes: int | None = None,
    checkpoint_every: int | None = None,
    stop_at_return: float | None = None,
    asha: bool = False,
    workers: int | None = None,
    cpus_per_trial: float = 1,
    gpus_per_trial: float = 0,
    max_failures: int = 3,
    out: str | Path | None = None,
) -> tuple[dict[str, Any], Space]:
    """What `sweep` will run, every input checked (envs built once), nothing written yet."""
    from duetto.algorithms import PRESET_BUDGET, get_algorithm

    algorithm = get_algorithm(algo)
    envs = [env] if isinstance(env, str) else list(env)
    if not envs or len(set(envs)) != len(envs):
        raise DuettoError(f"give one or more distinct envs, got {envs!r}.")
    seeds = list(seeds)
    if (
        not seeds
        or len(set(seeds)) != len(seeds)
        or any(not isinstance(s, int) or isinstance(s, bool) or s < 0 for s in seeds)
    ):
        raise DuettoError(f"seeds must be distinct non-negative integers, got {seeds!r}.")
    parsed = build_space(algorithm, dict(space or {}))
    if search not in SEARCHES:
        raise DuettoError(f"search must be one of {', '.join(SEARCHES)}, got {search!r}.")
    _check_search(parsed, search, samples, seeds, envs)
    for name, value in (("workers", workers), ("max_failures", max_failures + 1)):
        if value is not None and (not isinstance(value, int) or value < 1):
            shown = value if name == "workers" else max_failures
            raise DuettoError(f"{name} must be a positive integer, got {shown!r}.")
    if not cpus_per_trial > 0 or gpus_per_trial < 0:
        raise DuettoError("cpus_per_trial must be > 0 and gpus_per_trial >= 0.")
    steps = steps or PRESET_BUDGET(algorithm, preset)
    eval_every = eval_every or max(steps // 10, 1_000)
    out = Path(out) if out else _default_out(algorithm.NAME, envs)
    check_new_run_dir(out)
    # Bad input (an env, an action space, a setting's value) stops here, before Ray starts.
    _check_runs(algorithm.NAME, envs, parsed, preset, n_envs, vectorization)
    spec = {
        "algo": algorithm.NAME,
        "envs": envs,
        "env_tags": [re.sub(r"[^A-Za-z0-9_.-]+", "_", e) for e in envs],
        "seeds": seeds,
        "search": search,
        "samples": samples,
        "search_seed": search_seed,
        "space": parsed.to_json(),
        "fixed": parsed.fixed,
        "steps": steps,
        "preset": preset,
        "n_envs": n_envs,
        "vectorization": vectorization,
        "eval_every": eval_every,
        "eval_episodes": eval_episodes,
        "checkpoint_every": checkpoint_every,
        "stop_at_return": stop_at_return,
        "asha": asha,
        "workers": workers,
        "cpus_per_trial": cpus_per_trial,
        "gpus_per_trial": gpus_per_trial,
        "max_failures": max_failures,
        "out": str(out.resolve()),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    return spec, parsed


def start_sweep(spec: dict[str, Any], root_config: dict[str, Any]) -> None:
    """Write the sweep's directory: sweep.json, and config.json (`root_config`, with the seeds
    that make `duetto plot`/`report` stand it for its runs)."""
    out = Path(spec["out"])
    try:
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "config.json", root_config)
        write_json(out / "sweep.json", spec)
    except OSError as e:
        raise DuettoError(f"cannot write the sweep directory '{out}': {e.strerror or e}.") from None


def run_sweep(
    spec: dict[str, Any],
    space: Space,
    root_config: dict[str, Any],
    address: str | None = None,
    verbose: bool = True,
) -> list[dict[str, Any]]:
    """Run a planned sweep (plan_sweep): its directory is written (start_sweep) once Ray is up,
    so that an unreachable cluster leaves nothing on disk."""
    return _fit(spec, space, address, resume=False, verbose=verbose, root_config=root_config)


def resume_sweep(
    out: str | Path, *, address: str | None = None, verbose: bool = True
) -> list[dict[str, Any]]:
    """Continue an interrupted sweep: finished trials are not run again, unfinished ones
    continue from their last checkpoints, those not started start."""
    out = Path(out)
    if not (out / "sweep.json").exists():
        raise DuettoError(
            f"'{out}' is not a sweep directory (no sweep.json); resume a single run with "
            f"'duetto train --resume RUN_DIR'."
        )
    spec = read_json(out / "sweep.json")
    spec["out"] = str(out.resolve())  # the directory may have moved
    from duetto.algorithms import get_algorithm

    parsed = build_space(get_algorithm(spec["algo"]), _space_items(spec["space"]))
    rows = _fit(spec, parsed, address, resume=True, verbose=verbose)
    if read_json(out / "config.json").get("loop") == "host":  # `duetto train --seeds`
        from duetto.runs.seeds import finish_host_seeds

        finish_host_seeds(out, spec["seeds"])
    return rows


def _space_items(saved: dict[str, Any]) -> dict[str, Any]:
    from duetto.distributed.space import KINDS

    items: dict[str, Any] = dict(saved["fixed"])
    items.update(saved["grid"])
    for name, d in saved["dists"].items():
        items[name] = KINDS[d["kind"]](d["low"], d["high"])
    return items


def _default_out(algo: str, envs: list[str]) -> Path:
    env = re.sub(r"[^A-Za-z0-9_.-]+", "_", envs[0]) if len(envs) == 1 else f"{len(envs)}envs"
    path = Path("runs") / f"{algo}-{env}-sweep-{time.strftime('%Y%m%d-%H%M%S')}"
    n = 1
    while path.exists():
        n += 1
        path = path.with_name(f"{path.name.rsplit('~', 1)[0]}~{n}")
    return path


def _check_search(
    space: Space, search: str, samples: int | None, seeds: list[int], envs: list[str]
) -> None:
    if samples is not None and (not isinstance(samples, int) or samples < 1):
        raise DuettoError(f"samples must be a positive integer, got {samples!r}.")
    if search == "grid":
        if space.dists:
            raise DuettoError(
                f"grid search tries lists of values; '{next(iter(space.dists))}' is a "
                "distribution: use search='random' or 'optuna' (--search), or give a list."
            )
        if samples is not None:
            raise DuettoError("samples is for random and optuna search; a grid tries every value.")
        return
    if samples is None:
        raise DuettoError(f"{search} search needs samples, the number of settings to try.")
    if search == "optuna":
        from duetto.envs.jaxenv import is_jax_env

        if space.grid:
            raise DuettoError(
                "optuna proposes each setting from the returns so far; give "
                f"'{next(iter(space.grid))}' as a range (uniform:LOW:HIGH, loguniform:..., "
                "randint:...) or one value."
            )
        if not space.dists:
            raise DuettoError("optuna search needs at least one range to search.")
        if len(envs) > 1:
            raise DuettoError("optuna search tunes one env at a time; give one --env.")
        if len(seeds) > 1 and not is_jax_env(envs[0]):
            raise DuettoError(
                "optuna search learns from one return per trial: give one seed on a Gymnasium "
                "env (a JAX-native env trains all its seeds in each trial), or use random search."
            )


def _check_runs(
    algo: str,
    envs: list[str],
    space: Space,
    preset: str | None,
    n_envs: int | None,
    vectorization: str,
) -> None:
    import duetto

    cls = duetto.AGENTS[algo]
    first = space.grid_settings()[0]
    for env in envs:
        agent = cls(
            env,
            seed=0,
            preset=preset,
            n_envs=n_envs,
            run_dir=False,
            vectorization=vectorization,
            **{**space.fixed, **first},
        )
        agent.close()
    for name, values in space.grid.items():  # each value against the preset's others
        for value in values:
            duetto.config.preset_config(cls.algorithm, preset, {**space.fixed, name: value})


def _param_space(spec: dict[str, Any], space: Space) -> dict[str, Any]:
    from ray import tune

    from duetto.envs.jaxenv import is_jax_env

    envs = spec["envs"]
    params: dict[str, Any] = {"spec": spec}
    params["env"] = tune.grid_search(envs) if len(envs) > 1 else envs[0]
    jax_env = all(is_jax_env(e) for e in envs)
    if any(is_jax_env(e) for e in envs) and not jax_env:
        raise DuettoError("a sweep's envs must be all Gymnasium or all JAX-native ones.")
    if jax_env:
        params["seed"] = spec["seeds"]  # one trial trains them all in one program
    elif len(spec["seeds"]) > 1:
        params["seed"] = tune.grid_search(spec["seeds"])
    else:
        params["seed"] = spec["seeds"][0]
    if spec["search"] == "optuna":
        for name, d in space.dists.items():
            params[f"hp_{name}"] = _tune_domain(d)
    else:
        settings = (
            space.grid_settings()
            if spec["search"] == "grid"
            else space.random_settings(spec["samples"], spec["search_seed"])
        )
        params["setting"] = tune.grid_search(settings) if len(settings) > 1 else settings[0]
    return params


def _tune_domain(d: Distribution) -> Any:
    from ray import tune

    if isinstance(d, RandInt):
        return tune.randint(d.low, d.high + 1)
    if isinstance(d, LogUniform):
        return tune.loguniform(d.low, d.high)
    return tune.uniform(d.low, d.high)


def _fit(
    spec: dict[str, Any],
    space: Space,
    address: str | None,
    resume: bool,
    verbose: bool,
    root_config: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    import os

    os.environ.setdefault("RAY_CHDIR_TO_TRIAL_DIR", "0")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    from ray import tune

    out = Path(spec["out"])
    params = _param_space(spec, space)
    with ray_session(address):
        import ray

        if root_config is not None:
            start_sweep(spec, root_config)

        cluster_cpus = int(ray.cluster_resources().get("CPU", 1))
        workers = spec["workers"] or max(1, int(cluster_cpus // spec["cpus_per_trial"]))
        # each trial pins its XLA threads to its share of a node's cores (trial.pin_cores)
        spec["cores_per_trial"] = max(1, local_cores() // workers) if workers > 1 else None
        params["spec"] = spec
        trainable = tune.with_resources(
            run_trial, {"cpu": spec["cpus_per_trial"], "gpu": spec["gpus_per_trial"]}
        )
        lines = _trial_lines(verbose)
        if resume and tune.Tuner.can_restore(str(out / TUNE_DIR)):
            tuner = tune.Tuner.restore(
                str(out / TUNE_DIR),
                trainable,
                resume_unfinished=True,
                resume_errored=True,
                param_space=params,
            )
            if verbose:
                print(f"resuming the sweep in {out}", flush=True)
        else:
            tuner = tune.Tuner(
                trainable,
                param_space=params,
                tune_config=_tune_config(spec, workers),
                run_config=tune.RunConfig(
                    name=TUNE_DIR,
                    storage_path=str(out),
                    verbose=0,
                    callbacks=[lines],
                    failure_config=tune.FailureConfig(max_failures=spec["max_failures"]),
                ),
            )
        if verbose:
            print(
                f"training {_count(spec, space)} trials, {workers} at a time; Ray: "
                f"{int(cluster_cpus)} CPUs; runs in {out}",
                flush=True,
            )
        # Tune installs its own SIGINT handler in the driver and leaves it there: put back
        # the process's own, so that a later learn() in this process stops cleanly on Ctrl-C.
        handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            grid = tuner.fit()
        finally:
            for sig, handler in handlers.items():
                if handler is not None:
                    signal.signal(sig, handler)
        rows = _summary(spec, grid)
    write_json(out / "summary.json", rows)
    if verbose and (len(rows) > 1 or spec["search"] != "grid" or spec["space"]["grid"]):
        _print_table(rows, spec)
    if any(r["unfinished"] for r in rows):
        raise DuettoError(
            f"{sum(r['unfinished'] for r in rows)} trial(s) did not finish (interrupted); "
            f"continue with 'duetto sweep --resume {out}'.",
            exit_code=1,
        )
    failed = [r for r in rows if r["failed"]]
    if failed:
        raise DuettoError(
            f"{sum(r['failed'] for r in rows)} trial(s) failed after {spec['max_failures']} "
            f"restarts; first: {failed[0]['error']}. Continue with 'duetto sweep --resume {out}'.",
            exit_code=1,
        )
    return rows


def _count(spec: dict[str, Any], space: Space) -> int:
    from duetto.envs.jaxenv import is_jax_env

    per_setting = 1 if is_jax_env(spec["envs"][0]) else len(spec["seeds"])
    settings = (
        spec["samples"]
        if spec["search"] == "optuna"
        else len(space.grid_settings()) * (spec["samples"] or 1)
    )
    return len(spec["envs"]) * settings * per_setting


def _tune_config(spec: dict[str, Any], workers: int) -> Any:
    from ray import tune

    scheduler, search_alg = None, None
    if spec["asha"]:
        from ray.tune.schedulers import ASHAScheduler

        grace = min(spec["eval_every"], spec["steps"])
        scheduler = ASHAScheduler(
            time_attr="env_steps",
            max_t=spec["steps"],
            grace_period=grace,
            reduction_factor=3,
        )
    if spec["search"] == "optuna":
        from ray.tune.search.optuna import OptunaSearch

        search_alg = OptunaSearch(seed=spec["search_seed"])
    return tune.TuneConfig(
        metric=METRIC,
        mode="max",
        scheduler=scheduler,
        search_alg=search_alg,
        num_samples=spec["samples"] if spec["search"] == "optuna" else 1,
        max_concurrent_trials=workers,
        # a worker process trains one trial after another: its imports and compiled programs
        # serve them all (a trial of the same shapes compiles nothing)
        reuse_actors=True,
    )


def _trial_lines(verbose: bool) -> Any:
    """A Tune callback that prints one line per trial event on the driver."""
    from ray import tune

    def name(trial: Any) -> str:
        return trial_run_dir(trial.config, trial.trial_id).name

    class TrialLines(tune.Callback):
        def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            if verbose:
                print(f"{name(trial)}: started", flush=True)

        def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            if verbose:
                print(
                    f"{name(trial)}: its worker failed; starting it again from its last checkpoint",
                    flush=True,
                )

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            if verbose:
                print(
                    f"{name(trial)}: failed {trial.num_failures} time(s), no restarts left "
                    "(the summary gives its error)",
                    flush=True,
                )

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            if verbose:
                r = trial.last_result.get(METRIC)
                shown = f"evaluation return {r:.1f}" if isinstance(r, float) else "no evaluation"
                if not finished(trial_run_dir(trial.config, trial.trial_id)):
                    steps = trial.last_result.get("env_steps", 0)
                    shown = f"stopped early by ASHA at {steps} env steps ({shown})"
                print(f"{name(trial)}: {shown}", flush=True)

    return TrialLines()


def _summary(spec: dict[str, Any], grid: Any) -> list[dict[str, Any]]:
    """One row per (env, setting): mean final return over its seeds, and each trial's state."""
    groups: dict[str, dict[str, Any]] = {}
    for result in grid:
        config = result.config
        run_dir = trial_run_dir(config, _tid(result))
        setting = trial_setting(config)
        key = repr((config["env"], sorted(setting.items())))
        row = groups.setdefault(
            key,
            {
                "env": config["env"],
                "setting": setting,
                "runs": [],
                "returns": [],
                "stopped": 0,
                "unfinished": 0,
                "failed": 0,
                "error": None,
            },
        )
        row["runs"].append(run_dir.name)
        if finished(run_dir):
            ev = read_json(run_dir / "eval.json")
            row["returns"] += ev.get("seed_returns", [ev["return_mean"]])  # a JAX env: per seed
        elif result.error is not None:
            row["failed"] += 1
            row["error"] = row["error"] or str(result.error).strip().splitlines()[-1]
        elif spec["asha"] and (result.metrics or {}).get("done"):
            row["stopped"] += 1  # ASHA stopped it early
        else:
            row["unfinished"] += 1  # the sweep was interrupted
    rows = list(groups.values())
    for row in rows:
        rs = row["returns"]
        row["return_mean"] = sum(rs) / len(rs) if rs else None
        row["return_std"] = (
            math.sqrt(sum((r - row["return_mean"]) ** 2 for r in rs) / len(rs)) if rs else None
        )
    rows.sort(key=lambda r: (r["return_mean"] is None, -(r["return_mean"] or 0.0)))
    return rows


def _tid(result: Any) -> str | None:
    """The Tune trial id of a result (what names an Optuna trial's run directory)."""
    return (result.metrics or {}).get("trial_id")


def _print_table(rows: list[dict[str, Any]], spec: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{spec['algo']}: final evaluation return, mean over seeds")
    several_envs = len(spec["envs"]) > 1
    if several_envs:
        table.add_column("env")
    table.add_column("setting")
    table.add_column("return", justify="right")
    table.add_column("± std", justify="right")
    table.add_column("seeds", justify="right")
    table.add_column("early-stopped", justify="right")
    table.add_column("failed", justify="right")
    for row in rows:
        setting = ", ".join(f"{k}={_show(v)}" for k, v in row["setting"].items()) or "(defaults)"
        mean = "-" if row["return_mean"] is None else f"{row['return_mean']:.1f}"
        std = "-" if row["return_std"] is None else f"{row['return_std']:.1f}"
        seeds = len(row["returns"]) + row["stopped"] + row["unfinished"] + row["failed"]
        cells = [setting, mean, std, str(seeds), str(row["stopped"]), str(row["failed"])]
        table.add_row(*([row["env"]] if several_envs else []), *cells)
    Console(width=120).print(table)
    print(f"summary: {Path(spec['out']) / 'summary.json'}")


def _show(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
