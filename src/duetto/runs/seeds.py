"""Several seeds of a Gymnasium env, each its own host-loop run and its own Ray Tune trial
(`duetto train --seeds 0-9 [--workers N]`: N trials at a time, one after another by default),
on a local Ray started for the command or a cluster joined by `--address`
(duetto/distributed/). JAX-native envs train their seeds in one program instead
(loops/fused.py).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from duetto.analysis.curves import plot_seed_band
from duetto.config import config_to_dict
from duetto.runs.rundir import default_run_dir, read_json, seed_tag, write_json


def train_host_seeds(cls: Any, args: argparse.Namespace, hps: dict[str, Any]) -> int:
    """One host-loop run per seed of `args.seeds` in <out>/seed-<s>, each a Tune trial,
    `args.workers` at a time, and the aggregate (eval.json, curve.png). `args` holds `duetto
    train`'s options. Bad input stops before Ray starts or anything is written."""
    from duetto.distributed.sweep import plan_sweep, run_sweep

    algo = cls.algorithm
    parent = (
        Path(args.out) if args.out else default_run_dir(algo.NAME, args.env, seed_tag(args.seeds))
    )
    agent = cls(
        args.env,
        seed=args.seeds[0],
        preset=args.preset,
        n_envs=args.n_envs,
        run_dir=False,
        vectorization=args.vectorization,
        **hps,
    )
    spec, space = plan_sweep(
        algo.NAME,
        args.env,
        seeds=args.seeds,
        space=hps,
        steps=args.steps,
        preset=args.preset,
        n_envs=args.n_envs,
        vectorization=args.vectorization,
        eval_every=args.eval_every,
        eval_episodes=args.eval_episodes,
        checkpoint_every=args.checkpoint_every,
        stop_at_return=args.stop_at_return,
        workers=args.workers,
        out=parent,
    )
    config = {
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
    }
    agent.close()
    run_sweep(spec, space, config, args.address, verbose=True)
    return finish_host_seeds(parent, args.seeds)


def finish_host_seeds(parent: Path, seeds: list[int]) -> int:
    """The aggregate of a --seeds directory whose runs have finished: eval.json, curve.png."""
    seed_returns = [read_json(parent / f"seed-{s}" / "eval.json")["return_mean"] for s in seeds]
    summary = {
        "seeds": seeds,
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
