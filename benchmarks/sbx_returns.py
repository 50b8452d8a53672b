#!/usr/bin/env python
"""SBX's SAC on a MuJoCo env, evaluated as `mujoco_returns.py` evaluates duetto's runs: the
same algorithm from another JAX library, on the same machine, as a reference for duetto's
returns beside the published ones.

RL-Zoo's SAC setting for MuJoCo (SBX's defaults with learning_starts 10,000: lr 3e-4, batch
256, buffer 1M, τ 0.005, γ 0.99, α learned from 1.0, 256x256), one env; every `--eval-every`
env steps, 10 deterministic episodes on a separate env. Each seed writes a directory shaped
like a duetto run's, `benchmarks/results/mujoco/sbx-sac-<env>-s<seed>/` (config.json with algo
"sbx-sac", and the evaluations as metrics.jsonl rows), so that `duetto plot` and `duetto report`
read it beside duetto's runs. `--summarise` writes `benchmarks/results/sbx_sac_<env>.{md,png}`:
every seed's evaluations, and the mean over seeds with a 95 % bootstrap band of SBX's SAC and
duetto's. Runs in the benchmark venv (sbx installed):

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
    import numpy as np
    from sac_halfcheetah import zoo_mujoco_sac  # this script's folder, on sys.path when run
    from sbx import SAC
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.monitor import Monitor

    run = RUNS / f"sbx-sac-{env_id}-s{seed}"
    if run.exists():
        raise SystemExit(f"{run} exists; move it aside to run this seed again.")
    run.mkdir(parents=True)
    out = run / "metrics.jsonl"
    model = SAC(
        "MlpPolicy",
        gym.make(env_id),
        seed=seed,
        learning_starts=10_000,
        **zoo_mujoco_sac(),
    )
    (run / "config.json").write_text(json.dumps({"algo": "sbx-sac", "env": env_id, "seed": seed}))
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
                    "kind": "eval",
                    "step": self.num_timesteps,
                    "train_wall": time.perf_counter() - t0,
                    "return_mean": float(np.mean(returns)),
                    "return_std": float(np.std(returns)),
                    "length_mean": float(np.mean(lengths)),
                }
                with out.open("a") as f:
                    f.write(json.dumps(row) + "\n")
            return True

    model.learn(steps, callback=Evaluate())
    return run


def summarise(env_id: str) -> Path:
    """A markdown table of every seed's evaluations, SBX's SAC and duetto's, and a picture of
    the mean over seeds of each with its 95 % bootstrap band (`duetto plot --aggregate`)."""
    import duetto

    duetto.configure()  # the CLI's process set-up (done at import before issue 14)

    runs = sorted(RUNS.glob(f"sbx-sac-{env_id}-s*")) + sorted(RUNS.glob(f"sac-{env_id}-s*"))
    runs = [r for r in runs if (r / "metrics.jsonl").exists()]
    evals = {r: {row["step"]: row["return_mean"] for row in _eval_rows(r)} for r in runs}
    steps = sorted({s for rows in evals.values() for s in rows})
    name = {"sbx-sac": "SBX SAC", "sac": "duetto SAC"}
    lines = [
        f"# SAC on {env_id}: SBX and duetto on the same machine",
        "",
        "Mean return of 10 deterministic evaluation episodes, by env step "
        f"(`python benchmarks/sbx_returns.py --env {env_id} --summarise`).",
        "",
        "| run | " + " | ".join(f"{s // 1000}k" for s in steps) + " |",
        "|---|" + "---|" * len(steps),
    ]
    for run, rows in evals.items():
        config = json.loads((run / "config.json").read_text())
        cells = [f"{rows[s]:,.0f}" if s in rows else "" for s in steps]
        label = f"{name[config['algo']]}, seed {config['seed']}"
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    out = RUNS.parent / f"sbx_sac_{env_id}.md"
    out.write_text("\n".join(lines) + "\n")
    duetto.plot(runs, out.with_suffix(".png"), aggregate=True)
    return out


def _eval_rows(run: Path) -> list[dict]:
    rows = map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
    return [r for r in rows if r.get("kind") == "eval"]


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
