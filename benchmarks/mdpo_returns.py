"""MDPO's learning checks (issue 14; control.md §4), each over several seeds:

  pendulum   off-policy MDPO on Pendulum (JAX-native, 5 seeds in one program, RL-Zoo's SAC
             setting): evaluation return ≥ −250 by 20k steps on at least 4 of 5 seeds;
  inverted   on-policy MDPO on InvertedPendulum-v5 (official setting): the first step at which
             an evaluation reaches 1,000, within 300k steps;
  hopper     on-policy MDPO against duetto's PPO with the same network (64-64 tanh) and batch
             (2,048-step rollouts, 1 env, observation and reward normalisation) on Hopper-v5.

    .venv/bin/python benchmarks/mdpo_returns.py pendulum inverted hopper \
        [--hopper-steps 500000] [--seeds 0,1,2] [--out /tmp/mdpo_runs]

Writes a run directory per run under --out, and benchmarks/results/mdpo_returns.json (and
mdpo_hopper.png) with the figures BENCHMARKS.md quotes.
"""

import argparse
import json
from pathlib import Path

import numpy as np

import duetto
from duetto.runs.rundir import read_metrics

RESULTS = Path(__file__).parent / "results"


def evals(run_dir: Path) -> list[tuple[int, float]]:
    return [(r["step"], r["return_mean"]) for r in read_metrics(run_dir) if r["kind"] == "eval"]


def pendulum(out: Path, summary: dict) -> None:
    agent = duetto.MDPOOff(
        "gymnax:Pendulum-v1", seeds=range(5), preset="zoo", run_dir=out / "pendulum"
    )
    agent.learn(20_000, eval_every=2_000, eval_episodes=20)
    final = agent.last_eval["seed_returns"]
    summary["pendulum"] = {
        "final_returns": final,
        "seeds_at_least_minus_250": int(np.sum(np.asarray(final) >= -250)),
        "train_wall_s": agent.train_wall,
    }
    print("pendulum", summary["pendulum"])


def inverted(out: Path, seeds: list[int], summary: dict) -> None:
    rows = []
    for seed in seeds:
        agent = duetto.MDPO(
            "InvertedPendulum-v5", seed=seed, preset="mujoco", run_dir=out / f"inverted-{seed}"
        )
        agent.learn(300_000, eval_every=10_240, eval_episodes=10, stop_at_return=1000)
        reached = [s for s, r in evals(agent.run_dir) if r >= 1000]
        rows.append({"seed": seed, "first_step_at_1000": reached[0] if reached else None})
        print("inverted", rows[-1])
    summary["inverted"] = rows


def hopper(out: Path, seeds: list[int], steps: int, summary: dict) -> None:
    """Seeds already in the summary for the same budget are kept (the check can be run a few
    seeds at a time)."""
    previous = summary.get("hopper", {})
    same_budget = previous.get("steps") == steps
    runs: dict[str, list] = {
        name: [r for r in previous.get(name, []) if same_budget and r["seed"] not in seeds]
        for name in ("mdpo", "ppo")
    }
    makers = {
        "mdpo": lambda s: duetto.MDPO(
            "Hopper-v5", seed=s, preset="mujoco", run_dir=out / f"hopper-mdpo-{s}"
        ),
        "ppo": lambda s: duetto.PPO(
            "Hopper-v5",
            seed=s,
            preset="cleanrl",
            anneal_steps=steps,  # CleanRL anneals over its budget
            run_dir=out / f"hopper-ppo-{s}",
        ),
    }
    for seed in seeds:
        for name, make in makers.items():
            agent = make(seed).learn(steps, eval_every=steps // 10, eval_episodes=10)
            curve = evals(agent.run_dir)
            runs[name].append(
                {
                    "seed": seed,
                    "final": curve[-1][1],
                    "last3_mean": float(np.mean([r for _, r in curve[-3:]])),
                    "run_dir": str(agent.run_dir),
                }
            )
            print("hopper", name, runs[name][-1], flush=True)
            summary["hopper"] = {"steps": steps, **runs}
            (RESULTS / "mdpo_returns.json").write_text(json.dumps(summary, indent=1))
    dirs = [Path(r["run_dir"]) for name in runs for r in runs[name]]
    duetto.plot(dirs, RESULTS / "mdpo_hopper.png", aggregate=True)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("checks", nargs="+", choices=("pendulum", "inverted", "hopper"))
    p.add_argument("--hopper-steps", type=int, default=500_000)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--out", default="/tmp/mdpo_runs")
    args = p.parse_args()
    duetto.configure()
    out = Path(args.out)
    seeds = [int(s) for s in args.seeds.split(",")]
    path = RESULTS / "mdpo_returns.json"
    summary = json.loads(path.read_text()) if path.exists() else {}
    for check in args.checks:
        if check == "pendulum":
            pendulum(out, summary)
        elif check == "inverted":
            inverted(out, seeds, summary)
        else:
            hopper(out, seeds, args.hopper_steps, summary)
        path.write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
