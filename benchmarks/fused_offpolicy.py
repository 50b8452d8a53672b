#!/usr/bin/env python
"""Off-policy algorithms in the fused loop: env steps/s once compiled, gymnax Pendulum-v1.

For each algorithm, a fresh process pinned to the given cores builds `duetto.<ALGO>(
"gymnax:Pendulum-v1", seeds=[0], preset="fast", learning_starts=100)`, trains 2,000 env steps
(compilation), then times `learn(10_000)` (one evaluation at its end). Reported: seconds per
10,000 env steps and env steps/s, the median over `--repeats` processes.

    python benchmarks/fused_offpolicy.py --algos sac,td3,dsac-t --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def worker(algo: str) -> float:
    import jax

    import duetto

    duetto.configure()  # the CLI's process set-up (done at import before issue 14)

    cls = {"sac": duetto.SAC, "td3": duetto.TD3, "dsac-t": duetto.DSACT}[algo]
    agent = cls("gymnax:Pendulum-v1", seeds=[0], preset="fast", learning_starts=100, run_dir=False)
    agent.learn(2_000)
    jax.block_until_ready(agent.loop.state)
    t0 = time.perf_counter()
    agent.learn(10_000)
    jax.block_until_ready(agent.loop.state)
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--algos", default="sac,td3,dsac-t")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--cores", default="0,1")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker)))
        return
    env = {**os.environ, "DUETTO_COMPILATION_CACHE": "0"}
    for algo in args.algos.split(","):
        walls = []
        for _ in range(args.repeats):
            cmd = ["taskset", "-c", args.cores, sys.executable, __file__, "--worker", algo]
            out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
            walls.append(json.loads(out.stdout.strip().splitlines()[-1]))
        wall = statistics.median(walls)
        print(f"{algo:7s} {wall:.2f} s per 10k env steps ({10_000 / wall:,.0f} env steps/s)")


if __name__ == "__main__":
    main()
