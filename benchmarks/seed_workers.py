#!/usr/bin/env python
"""Several seeds on a 2-core CPU: one run after another (each run's XLA uses both cores) against
`--workers 2` (two runs at a time, each pinned to one core), SAC on HalfCheetah-v5.

Both are one `duetto train sac --env HalfCheetah-v5 --preset mujoco --seeds ...` command (RL-Zoo
MuJoCo preset, UTD 1, 256x256, batch 256) with learning_starts 1,000 as in sac_halfcheetah.py,
no evaluation until the end, an empty compilation cache, pinned to the same cores. Reported:
the command's wall time, and the env steps of all seeds per second of it (the seeds' total work
over the wall clock, compilation and process start-up included).

    python benchmarks/seed_workers.py --seeds 0-3 --steps 5000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "results" / "seed_workers.json"


def run(seeds: str, steps: int, workers: int, cores: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = ["taskset", "-c", cores, sys.executable, "-m", "duetto", "train", "sac"]
        cmd += ["--env", "HalfCheetah-v5", "--preset", "mujoco", "--seeds", seeds]
        cmd += ["--steps", str(steps), "--learning-starts", "1000", "--eval-every", str(steps)]
        cmd += ["--eval-episodes", "1", "--workers", str(workers), "--out", f"{tmp}/run"]
        env = {**os.environ, "DUETTO_COMPILATION_CACHE": "0"}
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, env=env, capture_output=True)
        return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="0-3")
    p.add_argument("--steps", type=int, default=5000, help="env steps per seed")
    p.add_argument("--cores", default="0,1")
    args = p.parse_args()
    from duetto.cli import parse_seeds

    n = len(parse_seeds(args.seeds))
    rows = []
    for workers in (1, 2):
        wall = run(args.seeds, args.steps, workers, args.cores)
        rows.append({"workers": workers, "wall_s": wall, "env_steps_per_s": n * args.steps / wall})
        print(
            f"--workers {workers}: {wall:.1f} s, {n * args.steps / wall:.0f} env steps/s "
            f"over {n} seeds",
            flush=True,
        )
    rows[1]["ratio"] = rows[1]["env_steps_per_s"] / rows[0]["env_steps_per_s"]
    print(f"--workers 2 / --workers 1: {rows[1]['ratio']:.2f}x")
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps({"seeds": args.seeds, "steps": args.steps, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
