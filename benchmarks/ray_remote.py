#!/usr/bin/env python
"""Remote env runners (loops/remote.py) against the local loop: env steps per second of
training, on a costly env and on CartPole.

- costly: SAC on Pendulum-v1 whose every sub-env step also waits `--env-ms` milliseconds (an
  env that costs more than the update), 4 sub-envs: local (sync), 1 remote runner, 2 remote
  runners.
- cartpole: PPO on CartPole-v1 with RL-Zoo's preset (8 sub-envs), local against 2 runners:
  the setting of the RLlib anchor (shared/baselines/rllib: 2,023 env steps/s with 2 env
  runners on this machine).

Each: a first learn() call of `--warm` steps (compilation, learning starts), then the measured
call of `--steps`, whose training clock (agent.train_wall, evaluations excluded) gives env
steps/s; medians over `--repeats`. One local Ray (num_cpus=2) for all.

    python benchmarks/ray_remote.py --repeats 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import gymnasium as gym

OUT = Path(__file__).resolve().parent / "results" / "ray_remote.json"


class CostlyStep(gym.Wrapper):
    """Waits `ms` milliseconds in every step, as a costlier simulator would."""

    def __init__(self, env: gym.Env, ms: float):
        super().__init__(env)
        self.ms = ms

    def step(self, action):  # type: ignore[no-untyped-def]
        time.sleep(self.ms / 1000)
        return self.env.step(action)


def measure(make, runners: int, warm: int, steps: int) -> float:
    from duetto.loops.remote import remote_envs

    agent = make()
    if runners:
        remote_envs(agent, runners=runners)
    agent.learn(warm, eval_every=warm, eval_episodes=1)
    before = agent.train_wall
    agent.learn(steps, eval_every=steps, eval_episodes=1)
    rate = steps / (agent.train_wall - before)
    agent.close()
    return rate


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env-ms", type=float, default=2.0)
    p.add_argument("--warm", type=int, default=1000)
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    import ray

    import duetto

    duetto.configure()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    small = {"hidden": (64, 64), "batch_size": 128, "learning_starts": 500}

    def sac():
        env = CostlyStep(gym.make("Pendulum-v1"), args.env_ms)
        return duetto.SAC(env, seed=0, n_envs=4, run_dir=False, **small)

    def ppo():
        return duetto.PPO("CartPole-v1", seed=0, preset="cartpole", run_dir=False)

    cases = {
        "costly: local sync": (sac, 0),
        "costly: 1 remote runner": (sac, 1),
        "costly: 2 remote runners": (sac, 2),
        "cartpole: local": (ppo, 0),
        "cartpole: 2 remote runners": (ppo, 2),
    }
    rates: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.repeats):
        for name, (make, runners) in cases.items():
            rates[name].append(measure(make, runners, args.warm, args.steps))
            print(f"{name}: {rates[name][-1]:.0f} env steps/s", flush=True)
    med = {k: statistics.median(v) for k, v in rates.items()}
    for name, rate in med.items():
        print(f"{name:28s} {rate:7.0f} env steps/s (median of {args.repeats})")
    ratios = {
        "2 runners / 1 runner (costly)": med["costly: 2 remote runners"]
        / med["costly: 1 remote runner"],
        "2 runners / local sync (costly)": med["costly: 2 remote runners"]
        / med["costly: local sync"],
        "2 runners / local (cartpole)": med["cartpole: 2 remote runners"] / med["cartpole: local"],
    }
    for name, r in ratios.items():
        print(f"{name}: {r:.2f}x")
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(
        json.dumps({"args": vars(args), "rates": rates, "medians": med, "ratios": ratios}, indent=2)
    )
    ray.shutdown()


if __name__ == "__main__":
    main()
