#!/usr/bin/env python
"""Learning to Fly in Seconds, in duetto: TD3's `l2f` preset on duetto:Quadrotor-v0, timed and
evaluated as the paper's code is (issue 17; the C++ anchor: 37.4 s for 300,001 steps on this
2-core CPU, 88 % of 1,000 deterministic episodes lasting the full 500 steps; see
../shared/baselines/l2f/README.md).

Each configuration runs in a fresh subprocess pinned to cores 0,1 (``taskset -c 0,1``) with
the persistent compilation cache off, so compilation is timed as a new user meets it. The
worker builds the run (the train program starts compiling in the background meanwhile), runs
one iteration (`compile`: the rest of the compilation and one env step), then the remaining
300,000 env steps in compiled chunks that end at the curriculum's steps (`train`), then plays
1,000 deterministic episodes per seed with noise and disturbances on (`eval`, timed apart and
not counted as training). Reported per seed: the share of episodes that last 500 steps and
the mean episode length, as the paper's evaluation reports them.

    python benchmarks/l2f_train.py                          # seed 0, then seeds 0-4 vmapped
    python benchmarks/l2f_train.py --configs single         # one seed only
    python benchmarks/l2f_train.py --configs ablations --seeds 0,1,2
    python benchmarks/l2f_train.py --configs five --out benchmarks/results/l2f_train.json

Ablations as in the paper (Table/Fig. of Eschmann et al. 2024): no asymmetric critic (the
critic reads the actor's noisy observation with its action history), no action history
(duetto:QuadrotorNoHistory-v0, actor input 18), no curriculum (the initial reward weights
throughout).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "results" / "l2f_train.json"
STEPS = 300_001  # [src/config/config.h: STEP_LIMIT]
EPISODES = 1_000  # [src/config/config.h: NUM_EVALUATION_EPISODES]
ABLATIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "full": ("duetto:Quadrotor-v0", {}),
    "no-asymmetric": ("duetto:Quadrotor-v0", {"critic_obs": "actor"}),
    "no-history": ("duetto:QuadrotorNoHistory-v0", {}),
    "no-curriculum": ("duetto:Quadrotor-v0", {"curriculum": ""}),
}


def cpu_seconds() -> float:
    """CPU time of this process so far, all threads (user + system): on a machine that other
    jobs share, an upper bound of the wall time the same work takes on an idle one when it
    runs on one thread at a time, and what it costs in core-seconds either way."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def worker(seeds: list[int], ablation: str, steps: int, episodes: int) -> dict[str, Any]:
    import jax
    import numpy as np

    import duetto

    duetto.configure()  # the CLI's process set-up
    env, overrides = ABLATIONS[ablation]
    c0 = cpu_seconds()
    t0 = time.perf_counter()
    agent = duetto.TD3(env, seeds=seeds, preset="l2f", run_dir=False, **overrides)
    runner = agent.loop
    runner.advance(1, 1, lambda _: True)
    jax.block_until_ready(runner.state)
    compile_s, c1 = time.perf_counter() - t0, cpu_seconds()
    t1 = time.perf_counter()
    runner.advance(steps - 1, steps, lambda _: True)
    jax.block_until_ready(runner.state)
    train_s, c2 = time.perf_counter() - t1, cpu_seconds()
    t2 = time.perf_counter()
    returns, lengths = runner.evaluate(episodes, seed=12345)
    eval_s = time.perf_counter() - t2
    full = (lengths >= runner.time_limit).mean(axis=1)
    return {
        "ablation": ablation,
        "env": env,
        "overrides": overrides,
        "seeds": seeds,
        "env_steps": runner.env_steps,
        "compile_s": compile_s,
        "train_s": train_s,
        "total_s": compile_s + train_s,
        "compile_cpu_s": c1 - c0,
        "train_cpu_s": c2 - c1,
        "eval_s": eval_s,
        "episodes": episodes,
        "full_length_share": full.tolist(),
        "length_mean": lengths.mean(axis=1).tolist(),
        "return_mean": returns.mean(axis=1).tolist(),
        "devices": runner.devices,
        "jax": jax.__version__,
        "numpy": np.__version__,
    }


def run(seeds: list[int], ablation: str, steps: int, episodes: int) -> dict[str, Any]:
    """One configuration in a fresh pinned process, compilation cache off."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        env = {**os.environ, "DUETTO_COMPILATION_CACHE": "0"}
        args = [sys.executable, __file__, "--worker", ",".join(map(str, seeds)), ablation]
        args += ["--steps", str(steps), "--episodes", str(episodes), "--worker-out", str(out)]
        subprocess.run(["taskset", "-c", "0,1", *args], check=True, env=env)
        return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", default="single,five", help="single, five, ablations")
    parser.add_argument("--seeds", default="0,1,2,3,4", help="seeds of the five/ablation runs")
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--episodes", type=int, default=EPISODES)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        seeds = [int(s) for s in args.worker[0].split(",")]
        result = worker(seeds, args.worker[1], args.steps, args.episodes)
        args.worker_out.write_text(json.dumps(result))
        return
    seeds = [int(s) for s in args.seeds.split(",")]
    results = []
    for config in args.configs.split(","):
        if config == "single":
            jobs = [([seeds[0]], "full")]
        elif config == "five":
            jobs = [(seeds, "full")]
        elif config == "ablations":
            jobs = [(seeds, name) for name in ABLATIONS if name != "full"]
        else:
            raise SystemExit(f"unknown config {config!r}: single, five or ablations")
        for job_seeds, ablation in jobs:
            result = run(job_seeds, ablation, args.steps, args.episodes)
            results.append(result)
            share = ", ".join(f"{x:.3f}" for x in result["full_length_share"])
            length = ", ".join(f"{x:.0f}" for x in result["length_mean"])
            print(
                f"{ablation:14s} seeds {job_seeds}: compile {result['compile_s']:.1f} s "
                f"(CPU {result['compile_cpu_s']:.1f} s), train {result['train_s']:.1f} s (CPU "
                f"{result['train_cpu_s']:.1f} s; {result['env_steps']:,} steps), eval "
                f"{result['eval_s']:.1f} s | full-length share {share} | mean length {length}",
                flush=True,
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
