"""No speed regression: the same timed runs against two checkouts of duetto, alternating.

Each case runs in a fresh process pinned to the same cores (`taskset -c 0,1`), once per round
for each checkout in turn (old, new, old, new, ...), with the compilation cache off; it warms
up (compiles) with a first `learn` call, then times a second. Reported: the median env steps/s
of each checkout and their ratio (new/old).

  sac-host     SAC, RL-Zoo Pendulum preset, Pendulum-v1 (BENCHMARKS §1): 1,000 + 3,000 steps
  ppo-host     PPO, RL-Zoo CartPole preset (8 envs), CartPole-v1 (§4): 4,096 + 32,768 steps
  ppo-fused-1  PPO, CleanRL/PureJaxRL `classic` preset, gymnax:CartPole-v1, 1 seed (§5):
               1 iteration + 98,304 steps
  ppo-fused-16 PPO, RL-Zoo CartPole preset, 16 seeds in one program (§5): 2,560 + 20,480 steps

    git worktree add /tmp/v1tree dbe3a5c
    python benchmarks/regression.py --old /tmp/v1tree/src --rounds 3

The old checkout is imported through PYTHONPATH (same virtual environment, same libraries).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

CASES = {
    "sac-host": ("SAC", "Pendulum-v1", "zoo", None, 1_000, 3_000),
    "ppo-host": ("PPO", "CartPole-v1", "cartpole", None, 4_096, 32_768),
    "ppo-fused-1": ("PPO", "gymnax:CartPole-v1", "classic", 1, 512, 98_304),
    "ppo-fused-16": ("PPO", "gymnax:CartPole-v1", "cartpole", 16, 2_560, 20_480),
}

WORKER = """
import json, sys, time
import jax
import duetto
getattr(duetto, "configure", lambda: None)()  # at import before issue 14
cls, env, preset, seeds, warm, steps = json.loads(sys.argv[1])
kw = {"seeds": list(range(seeds))} if seeds else {"seed": 0}
agent = getattr(duetto, cls)(env, preset=preset, run_dir=False, **kw)
agent.learn(warm, eval_every=warm, eval_episodes=1)
state = lambda: getattr(agent, "loop_state", None) or agent.loop.state
jax.block_until_ready(state())
start, t0 = agent.env_steps, time.perf_counter()
agent.learn(steps, eval_every=steps, eval_episodes=1)
jax.block_until_ready(state())
print(json.dumps({"sps": (agent.env_steps - start) / (time.perf_counter() - t0)}))
"""


def run(src: str, case: tuple, cpus: str) -> float:
    env = {**os.environ, "PYTHONPATH": src, "DUETTO_COMPILATION_CACHE": "0"}
    cmd = ["taskset", "-c", cpus, sys.executable, "-c", WORKER, json.dumps(case)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])["sps"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--old", required=True, help="the old checkout's src/ directory")
    p.add_argument("--new", default=str(Path(__file__).resolve().parent.parent / "src"))
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--cases", default=",".join(CASES))
    p.add_argument("--cpus", default="0,1")
    p.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "regression.json"
    )
    args = p.parse_args()
    results: dict[str, dict[str, list[float]]] = {}
    for name in args.cases.split(","):
        results[name] = {"old": [], "new": []}
        for _ in range(args.rounds):
            for which in ("old", "new"):
                src = args.old if which == "old" else args.new
                results[name][which].append(run(src, CASES[name], args.cpus))
        old, new = (statistics.median(results[name][w]) for w in ("old", "new"))
        results[name]["ratio_new_over_old"] = [new / old]
        print(
            f"{name}: old {old:,.0f}, new {new:,.0f} env steps/s (medians of "
            f"{args.rounds}): new/old {new / old:.3f}; runs {results[name]}",
            flush=True,
        )
    args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
