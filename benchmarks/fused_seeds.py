#!/usr/bin/env python
"""The fused loop: wall time for 1, 16 and 256 seeds in one program, and one seed's throughput.

Each configuration runs in a fresh subprocess pinned to the same cores (``taskset -c 0,1``),
with the persistent compilation cache off. A first `learn` call of one chunk compiles the
programs (timed as `compile+1st chunk`); then the timed call trains every seed for `--steps`
env steps, with one in-graph evaluation (10 episodes per seed) per chunk of `--chunk` steps.

  scaling: PPO, RL-Zoo CartPole preset (8 envs x 32 steps, 20 epochs), gymnax:CartPole-v1.
  throughput: PPO, `classic` preset (CleanRL ppo.py = PureJaxRL's default config: 4 envs x 128
      steps, 4 epochs x 4 minibatches), one seed, 499,712 steps (PureJaxRL's budget), one
      evaluation at the end: the number to hold against PureJaxRL's 161k and Rejax's 147k.

    python benchmarks/fused_seeds.py                      # seeds 1,16,256 and the throughput
    python benchmarks/fused_seeds.py --seeds 1,16 --no-throughput
    python benchmarks/fused_seeds.py --cpu-devices 1      # all seeds on one device, as before
    python benchmarks/fused_seeds.py --run sac,gymnax:Pendulum-v1,fast --seeds 1,16 \
        --steps 2000 --chunk 1000 --no-throughput --out benchmarks/results/fused_seeds_sac.json

duetto splits the seeds over one CPU device per core (duetto/devices.py); `--cpu-devices N`
sets DUETTO_CPU_DEVICES for the workers (1: one device, XLA's threads spread each operation).
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
from typing import Any

OUT = Path(__file__).resolve().parent / "results" / "fused_seeds.json"


def worker(
    algo: str, env: str, preset: str, n_seeds: int, steps: int, chunk: int
) -> dict[str, Any]:
    import jax

    import duetto

    duetto.configure()  # the CLI's process set-up (done at import before issue 14)

    t0 = time.perf_counter()
    classes = {"ppo": duetto.PPO, "sac": duetto.SAC, "td3": duetto.TD3, "dsac-t": duetto.DSACT}
    agent = classes[algo](env, seeds=list(range(n_seeds)), preset=preset, run_dir=False)
    agent.learn(chunk, eval_every=chunk)
    jax.block_until_ready(agent.loop.state)
    first = time.perf_counter() - t0
    start_steps = agent.env_steps
    t0 = time.perf_counter()
    agent.learn(steps, eval_every=chunk)
    jax.block_until_ready(agent.loop.state)
    wall = time.perf_counter() - t0
    done = agent.env_steps - start_steps
    return {
        "algo": algo,
        "env": env,
        "preset": preset,
        "n_seeds": n_seeds,
        "steps_per_seed": done,
        "wall": wall,
        "compile_and_first_chunk": first,
        "env_steps_per_s": done * n_seeds / wall,
        "devices": len(jax.tree.leaves(agent.loop.state)[0].sharding.device_set),
        "final_seed_returns": agent.last_eval["seed_returns"],
    }


def launch(
    args: argparse.Namespace, run: tuple[str, str, str], n_seeds: int, steps: int, chunk: int
) -> dict:
    env = {**os.environ, "DUETTO_COMPILATION_CACHE": "0"}
    if args.cpu_devices:
        env["DUETTO_CPU_DEVICES"] = str(args.cpu_devices)
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        cmd = [
            "taskset",
            "-c",
            args.cpus,
            sys.executable,
            __file__,
            "--worker",
            *run,
            str(n_seeds),
            str(steps),
            str(chunk),
            f.name,
        ]
        subprocess.run(cmd, check=True, env=env, timeout=args.timeout)
        return json.loads(Path(f.name).read_text())


def render(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| algorithm, preset | seeds | devices | env steps per seed | wall s (no compile) | "
        "× one seed | per-seed cost vs one seed | env steps/s (all seeds) | "
        "compile + 1st chunk s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    label = {id(r): f"{r.get('algo', 'ppo')} {r['preset']}" for r in rows}
    one = {label[id(r)]: r for r in rows if r["n_seeds"] == 1}
    for r in rows:
        base = one.get(label[id(r)])
        ratio = (
            r["wall"] / base["wall"] * base["steps_per_seed"] / r["steps_per_seed"]
            if base
            else None
        )
        per_seed = ratio / r["n_seeds"] if ratio else None
        lines.append(
            f"| {label[id(r)]} | {r['n_seeds']} | {r['devices']} | {r['steps_per_seed']:,} | "
            f"{r['wall']:.2f} | "
            f"{'–' if ratio is None else f'{ratio:.2f}×'} | "
            f"{'–' if per_seed is None else f'{per_seed:.3f}'} | {r['env_steps_per_s']:,.0f} | "
            f"{r['compile_and_first_chunk']:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seeds", default="1,16,256")
    p.add_argument("--steps", type=int, default=20_480, help="timed env steps per seed")
    p.add_argument("--chunk", type=int, default=10_240, help="env steps per chunk (evaluation)")
    p.add_argument("--throughput", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--cpus", default="0,1")
    p.add_argument("--cpu-devices", type=int, help="DUETTO_CPU_DEVICES for the workers")
    p.add_argument("--timeout", type=float, default=900)
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument(
        "--run",
        default="ppo,gymnax:CartPole-v1,cartpole",
        help="ALGO,ENV,PRESET of the scaling rows (e.g. sac,gymnax:Pendulum-v1,fast)",
    )
    p.add_argument("--worker", nargs=7, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        algo, env, preset, n, steps, chunk, out = args.worker
        result = worker(algo, env, preset, int(n), int(steps), int(chunk))
        Path(out).write_text(json.dumps(result))
        return
    run = tuple(args.run.split(","))
    rows = []
    for n in [int(s) for s in args.seeds.split(",")]:
        rows.append(launch(args, run, n, args.steps, args.chunk))
        print(rows[-1], flush=True)
    if args.throughput:
        rows.append(launch(args, ("ppo", "gymnax:CartPole-v1", "classic"), 1, 499_712, 499_712))
        print(rows[-1], flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=1))
    table = render(rows)
    args.out.with_suffix(".md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
