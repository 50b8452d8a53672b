#!/usr/bin/env python
"""SAC throughput on HalfCheetah-v5: SB3 vs SBX vs duetto, identical fp32 hyperparameters.

Every (library, seed) run is a fresh subprocess pinned to the same cores (``taskset -c 0,1``),
one after another. Hyperparameters: SB3/SBX defaults as RL-Zoo uses them on MuJoCo (256x256 ReLU,
batch 256, lr 3e-4, τ 0.005, γ 0.99, one gradient step per env step, α auto from 1.0), with
learning_starts 1,000 so that the measured window is all training. No evaluation.

Metrics: env steps/s over the steady window (env steps 2,000 to the end: acting, the env,
replay, one update; compilation is over by then) and over the whole run (compilation included).

    python benchmarks/sac_halfcheetah.py --steps 6000 --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ENV_ID = "HalfCheetah-v5"
LEARNING_STARTS = 1_000
WINDOW_FROM = 2_000
MARKS = (WINDOW_FROM,)
OUT = Path(__file__).resolve().parent / "results" / "sac_halfcheetah.json"


def zoo_mujoco_sac() -> dict[str, Any]:
    """RL-Zoo's SAC setting for MuJoCo as SB3 and SBX take it (each script adds its own
    learning_starts); `sbx_returns.py` uses it too."""
    return {
        "batch_size": 256,
        "buffer_size": 1_000_000,
        "learning_rate": 3e-4,
        "tau": 0.005,
        "gamma": 0.99,
        "ent_coef": "auto_1.0",
        "policy_kwargs": {"net_arch": [256, 256]},
    }


def run_sb3_like(lib: str, seed: int, steps: int) -> dict[str, Any]:
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env

    if lib == "sb3":
        from stable_baselines3 import SAC
    else:
        from sbx import SAC

    env = make_vec_env(ENV_ID, n_envs=1, seed=seed)
    model = SAC(
        "MlpPolicy",
        env,
        seed=seed,
        verbose=0,
        learning_starts=LEARNING_STARTS,
        **zoo_mujoco_sac(),
    )
    stamps: dict[int, float] = {}

    class Stamp(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps in MARKS:
                stamps[self.num_timesteps] = time.perf_counter()
            return True

    t0 = time.perf_counter()
    model.learn(steps, callback=Stamp())
    return {"t0": t0, "end": time.perf_counter(), "stamps": stamps, "steps": model.num_timesteps}


def run_duetto(seed: int, steps: int) -> dict[str, Any]:
    import duetto

    duetto.configure()  # the CLI's process set-up (done at import before issue 14)

    agent = duetto.SAC(
        ENV_ID,
        seed=seed,
        run_dir=False,
        learning_starts=LEARNING_STARTS,
        batch_size=256,
        learning_rate=3e-4,
        hidden=(256, 256),
    )
    stamps: dict[int, float] = {}

    def stamp(ctx: Any) -> None:
        if ctx.env_steps in (*MARKS, steps):
            stamps[ctx.env_steps] = time.perf_counter()

    t0 = time.perf_counter()
    # One evaluation episode runs after the last step, outside the measured span.
    agent.learn(steps, eval_every=10**9, eval_episodes=1, callbacks=[stamp])
    return {"t0": t0, "end": stamps[steps], "stamps": stamps, "steps": agent.env_steps}


def summarise(run: dict[str, Any]) -> dict[str, float]:
    start = run["stamps"][str(WINDOW_FROM)] if str(WINDOW_FROM) in run["stamps"] else None
    return {
        "steady_sps": (run["steps"] - WINDOW_FROM) / (run["end"] - start) if start else 0.0,
        "whole_sps": run["steps"] / (run["end"] - run["t0"]),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--steps", type=int, default=6_000)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--only", default="sb3,sbx,duetto")
    p.add_argument("--cpus", default="0,1")
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        lib, seed, steps, out = args.worker
        seed, steps = int(seed), int(steps)
        run = run_duetto(seed, steps) if lib == "duetto" else run_sb3_like(lib, seed, steps)
        Path(out).write_text(json.dumps(run))
        return
    results: dict[str, list[dict[str, Any]]] = {}
    env = {**os.environ, "DUETTO_COMPILATION_CACHE": "0", "OMP_NUM_THREADS": "2"}
    for lib in args.only.split(","):
        for seed in args.seeds.split(","):
            with tempfile.NamedTemporaryFile(suffix=".json") as f:
                cmd = [
                    "taskset",
                    "-c",
                    args.cpus,
                    sys.executable,
                    __file__,
                    "--worker",
                    lib,
                    seed,
                    str(args.steps),
                    f.name,
                ]
                subprocess.run(cmd, check=True, env=env)
                results.setdefault(lib, []).append(json.loads(Path(f.name).read_text()))
            print(lib, seed, summarise(results[lib][-1]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    lines = [
        "| library | n | env steps/s, steady (from step 2,000) | env steps/s, whole run |",
        "|---|---|---|---|",
    ]
    base = None
    for lib, runs in results.items():
        s = [summarise(r) for r in runs]
        steady = statistics.median(x["steady_sps"] for x in s)
        whole = statistics.median(x["whole_sps"] for x in s)
        base = steady if lib == "sbx" else base
        ratio = f" ({steady / base:.2f}× SBX)" if base and lib == "duetto" else ""
        lines.append(f"| {lib} | {len(runs)} | {steady:.0f}{ratio} | {whole:.0f} |")
    table = "\n".join(lines)
    args.out.with_suffix(".md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
