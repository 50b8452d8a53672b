#!/usr/bin/env python
"""SBX's SAC on a MuJoCo env, evaluated as `mujoco_returns.py` evaluates duetto's runs: the
same algorithm from another JAX library, on the same machine, as a reference for duetto's
returns beside the published ones.

RL-Zoo's SAC setting for MuJoCo (SBX's defaults with learning_starts 10,000: lr 3e-4, batch
256, buffer 1M, τ 0.005, γ 0.99, α learned from 1.0, 256x256), one env; every `--eval-every`
env steps, 10 deterministic episodes on a separate env. Each seed appends its evaluations to
`benchmarks/results/mujoco/sbx-sac-<env>-s<seed>.jsonl` (one JSON object per evaluation) and
`--summarise` writes them, next to duetto's SAC runs of the same seeds, to
`benchmarks/results/sbx_sac_<env>.md`. Runs in the benchmark venv (sbx installed):

    taskset -c 0 python benchmarks/sbx_returns.py --env Hopper-v5 --seed 0 --steps 300000 &
    taskset -c 1 python benchmarks/sbx_returns.py --env Hopper-v5 --seed 1 --steps 300000
    python benchmarks/sbx_returns.py --env Hopper-v5 --summarise
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

RUNS = Path(__file__).resolve().parent / "results" / "mujoco"


def train(env_id: str, seed: int, steps: int, eval_every: int) -> Path:
    import gymnasium as gym
    from sbx import SAC
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.monitor import Monitor

    out = RUNS / f"sbx-sac-{env_id}-s{seed}.jsonl"
    if out.exists():
        raise SystemExit(f"{out} exists; move it aside to run this seed again.")
    model = SAC(
        "MlpPolicy",
        gym.make(env_id),
        seed=seed,
        learning_starts=10_000,
        batch_size=256,
        buffer_size=1_000_000,
        learning_rate=3e-4,
        tau=0.005,
        gamma=0.99,
        ent_coef="auto_1.0",
        policy_kwargs={"net_arch": [256, 256]},
    )
    eval_env = Monitor(gym.make(env_id))
    eval_env.reset(seed=seed + 10_000)
    t0 = time.perf_counter()

    class Evaluate(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps % eval_every == 0:
                returns, lengths = evaluate_policy(
                    model, eval_env, 10, deterministic=True, return_episode_rewards=True
                )
                row = {
                    "step": self.num_timesteps,
                    "train_wall": time.perf_counter() - t0,
                    "return_mean": float(sum(returns) / len(returns)),
                    "length_mean": float(sum(lengths) / len(lengths)),
                }
                with out.open("a") as f:
                    f.write(json.dumps(row) + "\n")
            return True

    model.learn(steps, callback=Evaluate())
    return out


def summarise(env_id: str) -> Path:
    """A markdown table: SBX's and duetto's SAC evaluations per seed at each evaluated step."""
    tables = []
    for name, pattern, read in (
        ("SBX SAC", f"sbx-sac-{env_id}-s*.jsonl", _read_sbx),
        ("duetto SAC", f"sac-{env_id}-s*", _read_duetto),
    ):
        for path in sorted(RUNS.glob(pattern)):
            rows = read(path)
            if rows:
                tables.append((f"{name}, seed {path.name.rsplit('-s', 1)[1].split('.')[0]}", rows))
    steps = sorted({s for _, rows in tables for s in rows})
    lines = [
        f"# SAC on {env_id}: SBX and duetto on the same machine",
        "",
        "Mean return of 10 deterministic evaluation episodes, by env step "
        f"(`python benchmarks/sbx_returns.py --env {env_id} --summarise`).",
        "",
        "| run | " + " | ".join(f"{s // 1000}k" for s in steps) + " |",
        "|---|" + "---|" * len(steps),
    ]
    for label, rows in tables:
        cells = [f"{rows[s]:,.0f}" if s in rows else "" for s in steps]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    out = RUNS.parent / f"sbx_sac_{env_id}.md"
    out.write_text("\n".join(lines) + "\n")
    return out


def _read_sbx(path: Path) -> dict[int, float]:
    return {r["step"]: r["return_mean"] for r in map(json.loads, path.read_text().splitlines())}


def _read_duetto(run: Path) -> dict[int, float]:
    metrics = run / "metrics.jsonl"
    if not metrics.exists():
        return {}
    rows = map(json.loads, metrics.read_text().splitlines())
    return {r["step"]: r["return_mean"] for r in rows if r["kind"] == "eval"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--env", default="Hopper-v5")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=300_000)
    p.add_argument("--eval-every", type=int, default=20_000)
    p.add_argument("--summarise", action="store_true", help="train nothing: write the table")
    args = p.parse_args()
    if args.summarise:
        print(summarise(args.env).read_text())
    else:
        print(train(args.env, args.seed, args.steps, args.eval_every))


if __name__ == "__main__":
    main()
