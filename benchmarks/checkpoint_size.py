"""Checkpoint size against replay capacity (issue 15): a short SAC run with the default 1M-row
replay, saved, its file size beside the bytes of the whole preallocated replay.

    .venv/bin/python benchmarks/checkpoint_size.py [--env HalfCheetah-v5] [--steps 2000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import jax
import numpy as np

import duetto


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="HalfCheetah-v5")
    p.add_argument("--steps", type=int, default=2000)
    args = p.parse_args()
    duetto.configure()
    agent = duetto.SAC(args.env, seed=0, preset="mujoco", run_dir=False)
    agent.learn(args.steps, eval_episodes=1)
    replay = agent.loop.state.replay
    full = sum(np.asarray(leaf).nbytes for leaf in jax.tree.leaves(replay.data))
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        path = agent.save(Path(tmp) / "run.ckpt")
        saved = time.perf_counter() - start
        size = path.stat().st_size
        start = time.perf_counter()
        duetto.load(path)
        loaded = time.perf_counter() - start
    print(
        f"SAC {args.env}, {args.steps} env steps, replay capacity {replay.capacity:,}: "
        f"checkpoint {size:,} bytes (whole replay {full:,} bytes; {size / full:.1%}); "
        f"save {saved:.2f} s, load {loaded:.2f} s"
    )


if __name__ == "__main__":
    main()
