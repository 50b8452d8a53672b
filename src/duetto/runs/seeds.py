"""Several seeds of a Gymnasium env, each its own host-loop run: one after another, or in
parallel worker processes pinned to their share of the cores (`duetto train --seeds 0-9
--workers N`). JAX-native envs train their seeds in one program instead (loops/fused.py).

(The worker processes are duetto's own pool until the Ray issue replaces it with Ray Tune
trials.)
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from duetto.analysis.curves import plot_seed_band
from duetto.config import config_to_dict
from duetto.errors import DuettoError
from duetto.runs.rundir import (
    check_new_run_dir,
    default_run_dir,
    read_json,
    seed_tag,
    write_json,
)


def train_host_seeds(
    cls: Any,
    args: argparse.Namespace,
    hps: dict[str, Any],
    learn: Callable[[Any], None],
    report: Callable[[Any], None],
) -> int:
    """One host-loop run per seed of `args.seeds` in <out>/seed-<s>, and the aggregate: one
    after another in this process (`learn`, then `report`, each agent), or `args.workers` at a
    time in child processes with their own cores. `args` holds `duetto train`'s options."""
    algo = cls.algorithm
    parent = (
        Path(args.out) if args.out else default_run_dir(algo.NAME, args.env, seed_tag(args.seeds))
    )
    check_new_run_dir(parent)

    def make(seed: int, run_dir: Path | bool) -> Any:
        return cls(
            args.env,
            seed=seed,
            preset=args.preset,
            n_envs=args.n_envs,
            run_dir=run_dir,
            vectorization=args.vectorization,
            **hps,
        )

    def write_config(agent: Any) -> None:
        write_json(
            parent / "config.json",
            {
                "algo": agent.algorithm.NAME,
                "env": agent.env_id,
                "loop": "host",
                "seed": None,
                "n_envs": agent.n_envs,
                "vectorization": args.vectorization,
                "preset": agent.preset,
                "config": config_to_dict(agent.config),
                "seeds": args.seeds,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            },
        )

    if args.workers > 1:
        # Built once here so that bad input stops before any process starts or anything is
        # written; the runs themselves are trained by the workers.
        write_config(make(args.seeds[0], False))
        seed_returns = train_in_workers(algo.NAME, args, hps, parent)
    else:
        seed_returns = []
        for seed in args.seeds:
            agent = make(seed, parent / f"seed-{seed}")
            if not seed_returns:
                write_config(agent)
            learn(agent)
            report(agent)
            seed_returns.append(agent.last_eval["return_mean"])
    summary = {
        "seeds": args.seeds,
        "return_mean": sum(seed_returns) / len(seed_returns),
        "seed_returns": seed_returns,
    }
    write_json(parent / "eval.json", summary)
    plot_seed_band([parent], parent / "curve.png")
    print(
        f"{len(seed_returns)} seeds: mean evaluation return {summary['return_mean']:.1f} "
        f"(per seed: {', '.join(f'{r:.1f}' for r in seed_returns)})"
    )
    print(f"run directory: {parent}")
    print(f"learning curve: {parent / 'curve.png'}")
    return 0


def core_shares(cores: list[int], workers: int) -> list[list[int]]:
    """`cores` cut into `workers` contiguous shares as equal as they can be (each non-empty when
    there are at least as many cores as workers; otherwise workers share cores round-robin)."""
    if len(cores) < workers:
        return [[cores[i % len(cores)]] for i in range(workers)]
    size, extra = divmod(len(cores), workers)
    shares, start = [], 0
    for i in range(workers):
        end = start + size + (1 if i < extra else 0)
        shares.append(cores[start:end])
        start = end
    return shares


def train_in_workers(
    algo_name: str, args: argparse.Namespace, hps: dict, parent: Path
) -> list[float]:
    """Each seed as `duetto train ... --seed S --out <parent>/seed-S` in a child process, at
    most `args.workers` at a time, each pinned to its own share of the cores by
    `duetto/__init__.py` before JAX starts (XLA then sizes its thread pool to that share). Its
    output goes to <parent>/seed-S.log. Returns each seed's final return, in --seeds order."""
    options = {
        "--env": args.env,
        "--steps": args.steps,
        "--preset": args.preset,
        "--n-envs": args.n_envs,
        "--vectorization": args.vectorization,
        "--eval-every": args.eval_every,
        "--eval-episodes": args.eval_episodes,
        "--checkpoint-every": args.checkpoint_every,
        "--stop-at-return": args.stop_at_return,
        **{"--" + name.replace("_", "-"): value for name, value in hps.items()},
    }
    # one word per option: a value such as -1e-05 would otherwise read as an option
    common = [f"{k}={v}" for k, v in options.items() if v is not None]
    has_affinity = hasattr(os, "sched_getaffinity")
    cores = sorted(os.sched_getaffinity(0)) if has_affinity else []
    workers = min(args.workers, len(args.seeds))
    shares = core_shares(cores, workers) if cores else [[] for _ in range(workers)]
    parent.mkdir(parents=True, exist_ok=True)
    waiting = list(args.seeds)
    running: dict[int, tuple[subprocess.Popen, int, Any]] = {}  # share index -> process
    print(f"training {len(waiting)} seeds, {workers} at a time; logs in {parent}/seed-N.log")
    # SIGTERM (a scheduler, `timeout`, `kill`) stops the children too, through `finally`
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    try:
        while waiting or running:
            for share in range(workers):
                if share in running or not waiting:
                    continue
                seed = waiting.pop(0)
                cmd = [sys.executable, "-m", "duetto", "train", algo_name, *common]
                cmd += ["--seed", str(seed), "--out", str(parent / f"seed-{seed}")]
                cmd += ["--no-progress"]
                log = open(parent / f"seed-{seed}.log", "w")  # noqa: SIM115 closed when it ends
                pin = shares[share]
                env = {**os.environ, "DUETTO_PIN_CORES": ",".join(map(str, pin))}
                try:
                    process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
                except OSError:
                    log.close()
                    raise
                where = f" on cores {','.join(map(str, pin))}" if pin else ""
                print(f"seed {seed}: started{where}", flush=True)
                running[share] = (process, seed, log)
            time.sleep(0.2)
            for share, (process, seed, log) in list(running.items()):
                if process.poll() is None:
                    continue
                log.close()
                del running[share]
                if process.returncode != 0:
                    lines = (parent / f"seed-{seed}.log").read_text().strip().splitlines()
                    last = lines[-1] if lines else "no output"
                    raise DuettoError(
                        f"seed {seed} failed (exit {process.returncode}): {last} "
                        f"(whole log: {parent / f'seed-{seed}.log'})"
                    )
                result = read_json(parent / f"seed-{seed}" / "eval.json")
                print(f"seed {seed}: evaluation return {result['return_mean']:.1f}", flush=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
        for process, _, log in running.values():
            process.terminate()
            process.wait()
            log.close()
    return [read_json(parent / f"seed-{s}" / "eval.json")["return_mean"] for s in args.seeds]
