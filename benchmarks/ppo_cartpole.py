#!/usr/bin/env python
"""PPO on CartPole-v1, RL-Zoo preset: SB3 vs SBX vs duetto (host loop and fused loop).

Every (library, seed) run is a fresh subprocess pinned to the same cores (``taskset -c 0,1``),
one after another. Hyperparameters: RL-Zoo ``hyperparams/ppo.yml`` CartPole-v1 (8 envs,
n_steps 32, batch 256, 20 epochs, γ 0.98, λ 0.8, lr lin_1e-3, clip lin_0.2, ent 0, 64x64 tanh),
100k env steps; duetto runs ``preset="cartpole"``, which mirrors it.

Evaluation: 10 deterministic episodes every 2,500 env steps. For SB3/SBX and the duetto host
loop its time is kept off the training clock (SB3/SBX: a callback with ``evaluate_policy`` on a
separate 10-env DummyVecEnv; duetto: the facade's own clock, which stops during evaluation).
The fused loop evaluates in-graph at the end of each 2,560-step chunk, and its clock includes
those evaluations (the stricter count).

Metrics per run: env steps/s over the whole run (training clock, compilation included); wall s
to the first evaluation with mean ≥ 475 (training clock since learn() started; for the fused
loop since the agent's construction, so its init compile counts too); final evaluation.
The fused loop runs twice per seed: `cold` (no persistent compilation cache) and `warm` (the
cache filled by the cold run); with `--host-warm`, so does the duetto host loop.

    python benchmarks/ppo_cartpole.py                  # all, seeds 0,1,2
    python benchmarks/ppo_cartpole.py --only duetto,fused --seeds 0
    python benchmarks/ppo_cartpole.py --only sb3,duetto --host-warm --out /tmp/host.json
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

STEPS = 100_000
EVAL_EVERY = 2_500
EVAL_EPISODES = 10
THRESHOLD = 475.0
OUT = Path(__file__).resolve().parent / "results" / "ppo_cartpole.json"
ZOO = dict(
    n_steps=32,
    batch_size=256,
    gae_lambda=0.8,
    gamma=0.98,
    n_epochs=20,
    ent_coef=0.0,
)


def run_sb3_like(lib: str, seed: int) -> dict[str, Any]:
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy

    if lib == "sb3":
        from stable_baselines3 import PPO
    else:
        from sbx import PPO

    def linear(start: float):
        return lambda progress_remaining: progress_remaining * start

    env = make_vec_env("CartPole-v1", n_envs=8, seed=seed)
    eval_env = make_vec_env("CartPole-v1", n_envs=EVAL_EPISODES, seed=seed + 10_000)
    model = PPO(
        "MlpPolicy",
        env,
        seed=seed,
        verbose=0,
        learning_rate=linear(1e-3),
        clip_range=linear(0.2),
        **ZOO,
    )

    class Eval(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.eval_s, self.evals, self.next = 0.0, [], EVAL_EVERY

        def _on_training_start(self) -> None:
            self.t0 = time.perf_counter()

        def _on_step(self) -> bool:
            if self.num_timesteps >= self.next:
                self.next += EVAL_EVERY
                start = time.perf_counter()
                wall = start - self.t0 - self.eval_s
                mean, _ = evaluate_policy(self.model, eval_env, EVAL_EPISODES, deterministic=True)
                self.evals.append({"step": self.num_timesteps, "wall": wall, "return": mean})
                self.eval_s += time.perf_counter() - start
            return True

    cb = Eval()
    t0 = time.perf_counter()
    model.learn(STEPS, callback=cb)
    wall = time.perf_counter() - t0 - cb.eval_s
    return {"steps": model.num_timesteps, "train_wall": wall, "evals": cb.evals}


def run_duetto_host(seed: int) -> dict[str, Any]:
    import duetto

    duetto.configure()  # the CLI's process set-up (done at import before issue 14)

    agent = duetto.PPO("CartPole-v1", seed=seed, preset="cartpole", run_dir=False)
    evals: list[dict[str, Any]] = []

    def record(ctx: Any) -> None:
        ev = ctx.last_eval
        if ev is not None and (not evals or evals[-1]["step"] != ev["step"]):
            evals.append(
                {"step": ev["step"], "wall": ev["train_wall"], "return": ev["return_mean"]}
            )

    agent.learn(STEPS, eval_every=EVAL_EVERY, eval_episodes=EVAL_EPISODES, callbacks=[record])
    record(type("Ctx", (), {"last_eval": agent.last_eval})())
    return {"steps": agent.env_steps, "train_wall": agent.train_wall, "evals": evals}


def run_duetto_fused(seed: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    import duetto

    duetto.configure()  # the CLI's process set-up (done at import before issue 14)

    import_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    agent = duetto.PPO("gymnax:CartPole-v1", seed=seed, preset="cartpole", run_dir=False)
    construct_s = time.perf_counter() - t0
    evals: list[dict[str, Any]] = []

    def record(ev: dict[str, Any]) -> None:
        evals.append(
            {"step": ev["step"], "wall": time.perf_counter() - t0, "return": ev["return_mean"]}
        )

    agent.learn(STEPS, eval_every=EVAL_EVERY, eval_episodes=EVAL_EPISODES, callbacks=[record])
    wall = time.perf_counter() - t0
    return {
        "steps": agent.env_steps,
        "train_wall": wall,
        "evals": evals,
        "import_s": import_s,
        "construct_s": construct_s,
    }


def worker(lib: str, seed: int) -> dict[str, Any]:
    if lib in ("sb3", "sbx"):
        return run_sb3_like(lib, seed)
    if lib == "duetto":
        return run_duetto_host(seed)
    return run_duetto_fused(seed)


def summarise(run: dict[str, Any]) -> dict[str, Any]:
    hit = [e for e in run["evals"] if e["return"] >= THRESHOLD]
    return {
        "sps": run["steps"] / run["train_wall"],
        "wall_to_475": hit[0]["wall"] if hit else None,
        "step_to_475": hit[0]["step"] if hit else None,
        "final": run["evals"][-1]["return"] if run["evals"] else None,
    }


def launch(lib: str, seed: int, cpus: str, env: dict[str, str]) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        cmd = [
            "taskset",
            "-c",
            cpus,
            sys.executable,
            __file__,
            "--worker",
            lib,
            "--seed",
            str(seed),
            "--result",
            f.name,
        ]
        subprocess.run(cmd, check=True, env=env)
        return json.loads(Path(f.name).read_text())


def median(xs: list[float | None]) -> float | None:
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def render(results: dict[str, list[dict[str, Any]]]) -> str:
    titles = {
        "sb3": "SB3 2.9.2",
        "sbx": "SBX 0.28.0",
        "duetto": "duetto host",
        "duetto-warm": "duetto host, warm cache",
        "fused-cold": "duetto fused, cold cache",
        "fused-warm": "duetto fused, warm cache",
    }
    rows = [
        "| run | n | env steps/s | wall s to eval ≥ 475 | step | final eval |",
        "|---|---|---|---|---|---|",
    ]
    base = None
    for lib, runs in results.items():
        s = [summarise(r) for r in runs]
        sps = median([x["sps"] for x in s])
        if lib == "sb3":
            base = sps
        ratio = f" ({sps / base:.2f}× SB3)" if base and lib != "sb3" else ""
        wall, step = median([x["wall_to_475"] for x in s]), median([x["step_to_475"] for x in s])
        walls = ", ".join("–" if x["wall_to_475"] is None else f"{x['wall_to_475']:.1f}" for x in s)
        rows.append(
            f"| {titles.get(lib, lib)} | {len(runs)} | {sps:,.0f}{ratio} | "
            f"{'–' if wall is None else f'{wall:.1f}'} ({walls}) | "
            f"{'–' if step is None else f'{step:,.0f}'} | "
            f"{median([x['final'] for x in s]):.0f} |"
        )
    return "\n".join(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--only", default="sb3,sbx,duetto,fused")
    p.add_argument("--cpus", default="0,1")
    p.add_argument(
        "--host-warm",
        action="store_true",
        help="run the duetto host loop a second time per seed on the cache its first run filled",
    )
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        Path(args.result).write_text(json.dumps(worker(args.worker, args.seed)))
        return
    seeds = [int(s) for s in args.seeds.split(",")]
    results: dict[str, list[dict[str, Any]]] = {}
    for lib in args.only.split(","):
        for seed in seeds:
            base_env = {**os.environ, "OMP_NUM_THREADS": "2"}
            if lib == "fused" or (lib == "duetto" and args.host_warm):
                with tempfile.TemporaryDirectory() as cache:
                    for mode in ("cold", "warm"):
                        env = {**base_env, "DUETTO_COMPILATION_CACHE": cache}
                        key = "duetto" if (lib, mode) == ("duetto", "cold") else f"{lib}-{mode}"
                        results.setdefault(key, []).append(launch(lib, seed, args.cpus, env))
            else:
                env = {**base_env, "DUETTO_COMPILATION_CACHE": "0"}
                results.setdefault(lib, []).append(launch(lib, seed, args.cpus, env))
            print(lib, seed, "done", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    table = render(results)
    args.out.with_suffix(".md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
