"""Wall time for duetto SAC to solve Pendulum-v1 (first evaluation with mean return ≥ −200).

Each seed runs in a fresh process pinned to the given cores. Reported per run:
  solve_s    agent construction + training wall time until the first evaluation ≥ −200
             (compilation included, evaluation excluded, imports excluded), as SBX/SB3 are timed
             in BENCHMARKS.md
  process_s  the whole process up to that point: Python start, imports, construction,
             compilation, training and the evaluations
  step       env steps at that evaluation
`--cache cold` points JAX's persistent compilation cache at an empty directory for every run;
`--cache warm` runs each seed once to fill a shared cache, then times a second run.

    python benchmarks/time_to_solve.py --preset fast --seeds 0,1,2,3,4 --cache cold
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

WORKER = """
import json, sys, time
t_import = time.perf_counter()
import duetto
duetto.configure()  # the CLI's process set-up: compilation cache (done at import before issue 14)
preset, seed, eval_every, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
hp = json.loads(sys.argv[5])
t0 = time.perf_counter()
agent = duetto.SAC("Pendulum-v1", seed=seed, preset=preset, run_dir=False, **hp)
construct = time.perf_counter() - t0
solved = {}
def watch(ctx):
    ev = ctx.last_eval
    if ev and ev["return_mean"] >= -200 and not solved:
        solved.update(step=ev["step"], train_wall=ev["train_wall"],
                      process_s=time.perf_counter() - START)
        return False
agent.learn(steps, eval_every=eval_every, eval_episodes=10, callbacks=[watch])
print(json.dumps({"construct_s": construct, "import_s": t0 - t_import, **solved,
                  "solve_s": construct + solved["train_wall"] if solved else None}))
"""


def run(
    preset: str, seed: int, cores: str, cache: str, eval_every: int, steps: int, hp: str
) -> dict:
    env = {**os.environ, "DUETTO_COMPILATION_CACHE": cache}
    code = f"import time; START = time.perf_counter()\n{WORKER}"
    t = time.perf_counter()
    out = subprocess.run(
        [
            "taskset",
            "-c",
            cores,
            sys.executable,
            "-c",
            code,
            preset,
            str(seed),
            str(eval_every),
            str(steps),
            hp,
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    row = json.loads(out.stdout.strip().splitlines()[-1])
    row["wrapper_s"] = time.perf_counter() - t
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="fast")
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--cores", default="0,1")
    p.add_argument("--cache", choices=("cold", "warm"), default="cold")
    p.add_argument("--eval-every", type=int, default=500)
    p.add_argument("--steps", type=int, default=20_000)
    p.add_argument(
        "--hp",
        default="{}",
        help='extra hyperparameters as JSON, e.g. \'{"matmul_dtype": "bfloat16"}\'',
    )
    p.add_argument("--out")
    args = p.parse_args()
    rows = []
    shared = tempfile.mkdtemp(prefix="duetto-cache-")
    for seed in map(int, args.seeds.split(",")):
        cache = tempfile.mkdtemp(prefix="duetto-cache-") if args.cache == "cold" else shared
        if args.cache == "warm":
            run(args.preset, seed, args.cores, cache, args.eval_every, args.steps, args.hp)
        row = {
            "seed": seed,
            **run(args.preset, seed, args.cores, cache, args.eval_every, args.steps, args.hp),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    solved = [r["solve_s"] for r in rows if r.get("solve_s") is not None]
    summary = {
        "preset": args.preset,
        "hp": json.loads(args.hp),
        "cache": args.cache,
        "runs": len(rows),
        "solved": len(solved),
    }
    if solved:
        summary.update(
            solve_s_median=statistics.median(solved),
            solve_s_min=min(solved),
            solve_s_max=max(solved),
            process_s_median=statistics.median(r["process_s"] for r in rows if "process_s" in r),
            step_median=statistics.median(r["step"] for r in rows if "step" in r),
        )
    print(json.dumps(summary))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"summary": summary, "runs": rows}, f, indent=1)


if __name__ == "__main__":
    main()
