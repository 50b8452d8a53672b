#!/usr/bin/env python
"""TD3 on Hopper-v5 with RL-Zoo's MuJoCo setting: how often does the actor saturate for good?

For each implementation and seed: train `--steps` env steps (400-300, lr 1e-3, batch 256, 10k
uniform random steps first, N(0, 0.1²) exploration noise), then report the mean return of 10
deterministic episodes and the share of saturated actions (|a| > 0.999) on every fourth
observation in the replay. A stuck run has 100 % saturated actions and a return near 38 (or −2)
from then on. Each run is a fresh process pinned to `--cpus`.

    python benchmarks/td3_saturation.py --libs duetto-lecun,duetto-torch --seeds 0-4
    python benchmarks/td3_saturation.py --libs sb3,sbx --seeds 0-3   # needs the bench extra

Results: one JSON line per run on stdout and in `--out` (benchmarks/results/td3_saturation.jsonl).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

OUT = Path(__file__).resolve().parent / "results" / "td3_saturation.jsonl"
ENV = "Hopper-v5"
EVAL_EPISODES = 10


def train(lib: str, seed: int, steps: int) -> tuple[Any, np.ndarray]:
    """A trained model with a `predict(obs) -> action` and the replay's observations."""
    if lib.startswith("duetto-"):
        import duetto

        duetto.configure()  # the CLI's process set-up (done at import before issue 14)

        init = lib.removeprefix("duetto-")
        agent = duetto.TD3(ENV, seed=seed, preset="mujoco", weight_init=init, run_dir=False)
        agent.learn(steps, eval_every=10 * steps)
        obs = np.asarray(agent.loop.state.replay.data.obs[:steps])
        return (lambda o: agent.predict(o, deterministic=True)[0]), obs
    import gymnasium as gym
    from stable_baselines3.common.noise import NormalActionNoise

    if lib == "sb3":
        from stable_baselines3 import TD3
    else:
        from sbx import TD3
    model = TD3(
        "MlpPolicy",
        gym.make(ENV),
        learning_rate=1e-3,
        learning_starts=10_000,
        batch_size=256,
        action_noise=NormalActionNoise(np.zeros(3), 0.1 * np.ones(3)),
        train_freq=1,
        gradient_steps=1,
        policy_kwargs={"net_arch": [400, 300]},
        seed=seed,
    )
    model.learn(steps)
    obs = model.replay_buffer.observations[:steps, 0]
    return (lambda o: model.predict(o, deterministic=True)[0]), obs


def measure(lib: str, seed: int, steps: int) -> dict[str, Any]:
    import gymnasium as gym

    predict, replay_obs = train(lib, seed, steps)
    saturated = float(np.mean(np.abs(predict(replay_obs[::4])) > 0.999))
    env, returns = gym.make(ENV), []
    for episode in range(EVAL_EPISODES):
        obs, _ = env.reset(seed=1000 + episode)
        done, total = False, 0.0
        while not done:
            obs, reward, terminated, truncated, _ = env.step(predict(obs))
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    return {
        "lib": lib,
        "seed": seed,
        "steps": steps,
        "return": float(np.mean(returns)),
        "saturated": saturated,
    }


def seeds_of(text: str) -> list[int]:
    if "-" in text:
        lo, hi = text.split("-")
        return list(range(int(lo), int(hi) + 1))
    return [int(s) for s in text.split(",")]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--libs", default="duetto-lecun,duetto-torch,sb3,sbx")
    p.add_argument("--seeds", default="0-4")
    p.add_argument("--steps", type=int, default=20_000)
    p.add_argument("--cpus", default="0")
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(measure(args.worker[0], int(args.worker[1]), args.steps)))
        return
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for lib in args.libs.split(","):
        for seed in seeds_of(args.seeds):
            cmd = ["taskset", "-c", args.cpus, sys.executable, __file__]
            cmd += ["--worker", lib, str(seed), "--steps", str(args.steps)]
            line = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            row = line.strip().splitlines()[-1]
            print(row, flush=True)
            with args.out.open("a") as f:
                f.write(row + "\n")


if __name__ == "__main__":
    main()
