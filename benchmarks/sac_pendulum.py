#!/usr/bin/env python
"""SAC on Pendulum-v1, RL-Zoo preset: Stable-Baselines3 vs SBX vs duetto.

Every (library, seed) pair runs in a fresh subprocess pinned to the same cores
(``taskset -c 0,1`` by default), one after another, so no two runs compete.

Hyperparameters (RL-Zoo ``hyperparams/sac.yml`` Pendulum-v1: lr 1e-3, the rest are
the SB3/SBX defaults, passed explicitly here): 20,000 steps, 1 env, learning_starts 100,
batch 256, buffer 1e6, 256x256 ReLU actor and twin critics, tau 0.005, gamma 0.99,
1 gradient step per env step, entropy coefficient auto (init 1.0).
duetto runs ``duetto.SAC(..., preset="zoo")``, which mirrors this preset.

Evaluation: 10 deterministic episodes every 2,000 steps. Its time is excluded from the
training wall clock. For SB3/SBX it runs on a separate 10-env DummyVecEnv
(``evaluate_policy``); duetto runs its own evaluation.

Metrics per (library, seed):
  * env steps/s: total env steps / training wall clock (start of learn() to the end,
    evaluation excluded, JIT compilation included).
  * ms per env step, steady state: slope of training wall clock over env steps between
    the eval points at 2k and the last step (acting + env + replay + 1 update; no compile).
    Measured the same way for all three libraries.
  * ms per update (SB3/SBX only): median duration of one model.train() call (= 1 gradient
    step), from a timer wrapped around model.train.
  * wall to -200: training wall clock at the first eval with mean return >= -200.
  * final return: mean return of the last evaluation (step 20k).
Construction and import times are recorded but are not part of any wall clock.
duetto's wall clock is measured from outside like the others (learn() wall minus the time
in model.evaluate()); its JAX compilation cache starts cold in every run, and SBX runs with
no persistent cache, so compilation always counts.

Noise guard (the machine may be shared): before each run the driver waits until the pinned
CPUs are idle, measures the CPU time other processes took on them during the run
(foreign_cpu_share) and reruns a disturbed run (--max-foreign, --retries). Torch under
oversubscription slows down several-fold, so this matters.

Examples:
  python benchmarks/sac_pendulum.py                      # all libraries, seeds 0,1,2
  python benchmarks/sac_pendulum.py --only sb3,sbx --out benchmarks/results/baselines.json
  python benchmarks/sac_pendulum.py --only duetto --merge benchmarks/results/baselines.json
  python benchmarks/sac_pendulum.py --render benchmarks/results/sac_pendulum.json  # table only
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

LIBS = ("sb3", "sbx", "duetto")
LIB_TITLES = {"sb3": "SB3 (torch)", "sbx": "SBX (jax)", "duetto": "duetto (jax)"}
ENV_ID = "Pendulum-v1"
THRESHOLD = -200.0
STEADY_FROM = 2_000  # steady-state window starts at this env step (after JIT compile)
ZOO_HPARAMS: dict[str, Any] = {
    "learning_rate": 1e-3,
    "buffer_size": 1_000_000,
    "learning_starts": 100,
    "batch_size": 256,
    "tau": 0.005,
    "gamma": 0.99,
    "train_freq": 1,
    "gradient_steps": 1,
    "ent_coef": "auto_1.0",
    "policy_kwargs": {"net_arch": [256, 256]},  # ReLU is the default activation in both
}
CLK_TCK = os.sysconf("SC_CLK_TCK")
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "sac_pendulum.json"


# --------------------------------------------------------------------------- helpers


def timed(fn: Any, durations: list[float]) -> Any:
    """`fn` wrapped so that each call appends its duration (seconds) to `durations`."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        durations.append(time.perf_counter() - start)
        return out

    return wrapper


def cpu_jiffies(cpus: list[int]) -> tuple[int, int]:
    """(busy, steal) jiffies summed over ``cpus``, from /proc/stat."""
    busy = steal = 0
    with open("/proc/stat") as f:
        for line in f:
            name, *fields = line.split()
            if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
                user, nice, system, _idle, _iowait, irq, softirq, st = map(int, fields[:8])
                busy += user + nice + system + irq + softirq
                steal += st
    return busy, steal


def parse_cpus(spec: str) -> list[int]:
    """'0,1' or '0-3' -> list of CPU ids."""
    out: list[int] = []
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def wait_until_quiet(cpus: list[int], max_wait_s: float, busy_limit: float = 0.10) -> float:
    """Wait until the pinned CPUs are at most ``busy_limit`` busy over 1 s; returns s waited."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < max_wait_s:
        b0, _ = cpu_jiffies(cpus)
        time.sleep(1.0)
        b1, _ = cpu_jiffies(cpus)
        if (b1 - b0) / CLK_TCK / len(cpus) <= busy_limit:
            break
    return time.perf_counter() - t0


def steady_ms_per_step(points: list[tuple[int, float]], start_step: int) -> float | None:
    """Wall ms per env step between the first point at/after ``start_step`` and the last point.

    ``points`` are (env step, training wall s) pairs, e.g. the evaluation stamps.
    """
    points = sorted(points)
    later = [p for p in points if p[0] >= start_step]
    if len(later) < 2 or later[-1][0] == later[0][0]:
        return None
    (s0, w0), (s1, w1) = later[0], later[-1]
    return 1e3 * (w1 - w0) / (s1 - s0)


def threshold_metrics(evals: list[dict[str, Any]]) -> dict[str, Any]:
    hit = [e for e in evals if e["return_mean"] >= THRESHOLD]
    return {
        "step_at_threshold": hit[0]["step"] if hit else None,
        "wall_at_threshold_s": hit[0]["train_wall_s"] if hit else None,
        "final_return": evals[-1]["return_mean"] if evals else None,
    }


# --------------------------------------------------------------------------- workers
def run_sb3_like(lib: str, seed: int, steps: int, eval_every: int, eval_episodes: int) -> dict:
    """SB3 or SBX SAC with the zoo preset; timers wrapped around model.train."""
    t0 = time.perf_counter()
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy

    if lib == "sb3":
        import stable_baselines3 as lib_mod
        import torch
        from stable_baselines3 import SAC

        backend = {"torch": torch.__version__, "torch_threads": torch.get_num_threads()}
    else:
        import jax
        import sbx as lib_mod
        from sbx import SAC

        backend = {"jax": jax.__version__, "devices": [str(d) for d in jax.devices()]}
    import_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    env = make_vec_env(ENV_ID, n_envs=1, seed=seed)
    model = SAC("MlpPolicy", env, seed=seed, verbose=0, **ZOO_HPARAMS)
    eval_env = make_vec_env(ENV_ID, n_envs=eval_episodes, seed=seed + 10_000)
    setup_s = time.perf_counter() - t0

    train_calls: list[float] = []
    model.train = timed(model.train, train_calls)

    class EvalCallback(BaseCallback):
        """Deterministic evaluation every ``eval_every`` steps, its time kept off the clock."""

        def __init__(self) -> None:
            super().__init__()
            self.eval_s = 0.0
            self.evals: list[dict[str, Any]] = []

        def _on_training_start(self) -> None:
            self.t_start = time.perf_counter()

        def _on_step(self) -> bool:
            if self.num_timesteps % eval_every == 0:
                start = time.perf_counter()
                train_wall = start - self.t_start - self.eval_s
                mean, std = evaluate_policy(
                    self.model, eval_env, n_eval_episodes=eval_episodes, deterministic=True
                )
                self.eval_s += time.perf_counter() - start
                self.evals.append(
                    {
                        "step": int(self.num_timesteps),
                        "train_wall_s": train_wall,
                        "return_mean": float(mean),
                        "return_std": float(std),
                    }
                )
            return True

    callback = EvalCallback()
    t0 = time.perf_counter()
    model.learn(total_timesteps=steps, callback=callback)
    learn_wall_s = time.perf_counter() - t0
    train_wall_s = learn_wall_s - callback.eval_s
    evals = callback.evals
    points = [(e["step"], e["train_wall_s"]) for e in evals]

    return {
        "lib_version": lib_mod.__version__,
        "backend": backend,
        "env_steps": int(model.num_timesteps),
        "import_s": import_s,
        "setup_s": setup_s,
        "learn_wall_s": learn_wall_s,
        "eval_s": callback.eval_s,
        "train_wall_s": train_wall_s,
        "steps_per_s": model.num_timesteps / train_wall_s,
        "steady_ms_per_step": steady_ms_per_step(points, STEADY_FROM),
        "n_updates": len(train_calls),
        "update_ms_median": 1e3 * statistics.median(train_calls) if train_calls else None,
        "first_update_s": train_calls[0] if train_calls else None,
        "update_total_s": sum(train_calls),
        "evals": evals,
        **threshold_metrics(evals),
    }


def run_duetto(seed: int, steps: int, eval_every: int, eval_episodes: int) -> dict:
    """duetto SAC with its 'zoo' preset.

    The training wall clock is measured from outside, as for SB3/SBX: learn() wall minus
    the time spent in model.evaluate(). duetto's own ``train_wall`` (metrics.jsonl) gives
    the per-evaluation stamps and is recorded as ``reported_train_wall_s`` for comparison.
    """
    t0 = time.perf_counter()
    import jax

    import duetto

    duetto.configure()  # the CLI's process set-up (done at import before issue 14)

    import_s = time.perf_counter() - t0
    run_dir = Path(tempfile.mkdtemp(prefix="duetto_bench_")) / "run"  # must not exist yet

    t0 = time.perf_counter()
    model = duetto.SAC(ENV_ID, seed=seed, preset="zoo", run_dir=str(run_dir))
    setup_s = time.perf_counter() - t0
    config = getattr(model, "config", None)
    hparams = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else repr(config)

    eval_calls: list[float] = []
    model.evaluate = timed(model.evaluate, eval_calls)
    t0 = time.perf_counter()
    model.learn(steps, eval_every=eval_every, eval_episodes=eval_episodes)
    learn_wall_s = time.perf_counter() - t0
    train_wall_s = learn_wall_s - sum(eval_calls)

    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    shutil.rmtree(run_dir.parent)
    evals = [
        {
            "step": int(r["step"]),
            "train_wall_s": float(r["train_wall"]),
            "return_mean": float(r["return_mean"]),
            "return_std": float(r["return_std"]) if "return_std" in r else None,
        }
        for r in rows
        if r.get("kind") == "eval"
    ]
    walls = [(int(r["step"]), float(r["train_wall"])) for r in rows if "train_wall" in r]
    reported_steps, reported_train_wall_s = max(walls)  # the row with the most env steps
    return {
        "lib_version": getattr(duetto, "__version__", "unknown"),
        "hyperparameters": hparams,
        "backend": {"jax": jax.__version__, "devices": [str(d) for d in jax.devices()]},
        "env_steps": int(model.env_steps),
        "import_s": import_s,
        "setup_s": setup_s,
        "learn_wall_s": learn_wall_s,
        "eval_s": sum(eval_calls),
        "train_wall_s": train_wall_s,
        "reported_train_wall_s": reported_train_wall_s,
        "reported_steps": reported_steps,
        "steps_per_s": model.env_steps / train_wall_s,
        "steady_ms_per_step": steady_ms_per_step(
            [(e["step"], e["train_wall_s"]) for e in evals], STEADY_FROM
        ),
        "update_ms_median": None,  # not separable from outside; see steady_ms_per_step
        "evals": evals,
        **threshold_metrics(evals),
    }


def worker_main(lib: str, seed: int, args: argparse.Namespace) -> None:
    if lib == "duetto":
        result = run_duetto(seed, args.steps, args.eval_every, args.eval_episodes)
    else:
        result = run_sb3_like(lib, seed, args.steps, args.eval_every, args.eval_episodes)
    result.update({"lib": lib, "seed": seed, "cpu_affinity": sorted(os.sched_getaffinity(0))})
    Path(args.result_file).write_text(json.dumps(result))


# --------------------------------------------------------------------------- driver
def run_one(lib: str, seed: int, args: argparse.Namespace) -> dict:
    """One (lib, seed) run in a fresh pinned process.

    Records how much CPU time other processes used on the pinned CPUs meanwhile
    (``foreign_cpu_share``: 0 = the run had the cores to itself, 1 = another process
    kept every core fully busy).
    """
    cpus = parse_cpus(args.cpus)
    with tempfile.TemporaryDirectory() as tmp:
        result_file = Path(tmp) / "result.json"
        cmd = [
            "taskset",
            "-c",
            args.cpus,
            sys.executable,
            os.path.abspath(__file__),
            "--worker",
            f"{lib}:{seed}",
            "--result-file",
            str(result_file),
            "--steps",
            str(args.steps),
            "--eval-every",
            str(args.eval_every),
            "--eval-episodes",
            str(args.eval_episodes),
        ]
        # Compilation must count: no persistent JAX cache for SBX, and a fresh (cold) one for
        # duetto, which turns its cache on by default.
        env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
        env["DUETTO_COMPILATION_CACHE"] = str(Path(tmp) / "cold-jax-cache")
        waited = wait_until_quiet(cpus, args.quiet_wait)
        usage0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        (busy0, steal0), t0 = cpu_jiffies(cpus), time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        busy1, steal1 = cpu_jiffies(cpus)
        usage1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0 or not result_file.exists():
            sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-6000:])
            raise RuntimeError(f"worker {lib}:{seed} failed (exit {proc.returncode})")
        result = json.loads(result_file.read_text())
    own_cpu_s = (usage1.ru_utime + usage1.ru_stime) - (usage0.ru_utime + usage0.ru_stime)
    foreign_cpu_s = max(0.0, (busy1 - busy0) / CLK_TCK - own_cpu_s)
    result.update(
        process_wall_s=wall,
        waited_for_quiet_s=waited,
        own_cpu_s=own_cpu_s,
        foreign_cpu_share=foreign_cpu_s / (wall * len(cpus)),
        steal_share=(steal1 - steal0) / CLK_TCK / (wall * len(cpus)),
    )
    return result


def run_clean(lib: str, seed: int, args: argparse.Namespace, discarded: list[dict]) -> dict:
    """``run_one``, repeated (up to --retries times) while other processes disturbed it."""
    for attempt in range(args.retries + 1):
        r = run_one(lib, seed, args)
        if r["foreign_cpu_share"] <= args.max_foreign or attempt == args.retries:
            return r
        print(
            f"  {lib} seed={seed}: other processes used {r['foreign_cpu_share']:.0%} of the "
            f"pinned CPUs ({r['steps_per_s']:.0f} steps/s); discarded, retrying",
            flush=True,
        )
        discarded.append({k: v for k, v in r.items() if k != "evals"})
    raise AssertionError("unreachable")


def med_range(values: list[float | None]) -> dict[str, float] | None:
    xs = [v for v in values if v is not None]
    if not xs:
        return None
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "n": len(xs)}


SUMMARY_KEYS = (
    "steps_per_s",
    "train_wall_s",
    "steady_ms_per_step",
    "update_ms_median",
    "first_update_s",
    "step_at_threshold",
    "wall_at_threshold_s",
    "final_return",
    "setup_s",
    "import_s",
    "eval_s",
    "foreign_cpu_share",
    "steal_share",
    "outside_reported_wall_s",
)


def metric(run: dict, key: str) -> Any:
    if key == "outside_reported_wall_s" and "reported_train_wall_s" in run:
        # duetto: part of learn() outside its own train_wall (run-dir setup, final checkpoint
        # and plot); it is inside train_wall_s, which is measured like SB3's and SBX's.
        return run["train_wall_s"] - run["reported_train_wall_s"]
    return run.get(key)


def summarize(runs: list[dict]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for lib in LIBS:
        rs = [r for r in runs if r["lib"] == lib]
        if not rs:
            continue
        summary[lib] = {k: med_range([metric(r, k) for r in rs]) for k in SUMMARY_KEYS}
        summary[lib]["n_runs"] = len(rs)
        summary[lib]["n_reached_threshold"] = sum(r["step_at_threshold"] is not None for r in rs)
        summary[lib]["version"] = rs[0]["lib_version"]
    ratios = {}
    if "duetto" in summary:
        d = summary["duetto"]["steps_per_s"]["median"]
        for base in ("sbx", "sb3"):
            if base in summary:
                ratios[f"duetto/{base} steps_per_s"] = d / summary[base]["steps_per_s"]["median"]
    summary["ratios"] = ratios
    return summary


def fmt(stat: dict[str, float] | None, spec: str = ".1f") -> str:
    if stat is None:
        return "n/a"
    med, lo, hi = (stat[k] for k in ("median", "min", "max"))
    if stat["n"] == 1 or lo == hi:
        return f"{med:{spec}}"
    return f"{med:{spec}} ({lo:{spec}} to {hi:{spec}})"


def markdown_table(summary: dict[str, Any], meta: dict[str, Any]) -> str:
    libs = [lib for lib in LIBS if lib in summary]
    n = {lib: summary[lib]["n_runs"] for lib in libs}
    header = (
        "| metric | "
        + " | ".join(f"{LIB_TITLES[lib]} {summary[lib]['version']} (n={n[lib]})" for lib in libs)
        + " |"
    )
    rows = [
        (
            "**env steps/s** (all steps / training wall; eval excluded, compile included)",
            "steps_per_s",
            ".0f",
        ),
        ("training wall s (eval excluded, compile included)", "train_wall_s", ".1f"),
        (
            f"ms per env step, steady state (steps {STEADY_FROM:,} to end; act + env + update)",
            "steady_ms_per_step",
            ".2f",
        ),
        ("ms per update: median model.train() call (SB3/SBX only)", "update_ms_median", ".2f"),
        ("first model.train() call s (JIT compile for SBX)", "first_update_s", ".2f"),
        ("**wall s to first eval >= -200** (compile included)", "wall_at_threshold_s", ".1f"),
        ("env step of first eval >= -200", "step_at_threshold", ",.0f"),
        ("final eval mean return (10 deterministic episodes)", "final_return", ".1f"),
        ("model construction s (not in any wall)", "setup_s", ".2f"),
        ("imports s (not in any wall)", "import_s", ".2f"),
        ("evaluation s in total (excluded)", "eval_s", ".2f"),
        (
            "duetto: learn() time outside its own train_wall (run dir, final checkpoint, plot;"
            " counted in the training wall above)",
            "outside_reported_wall_s",
            ".2f",
        ),
        (
            "CPU share taken by other processes during the run (noise)",
            "foreign_cpu_share",
            ".3f",
        ),
    ]
    lines = [header, "|---|" + "---|" * len(libs)]
    for title, key, spec in rows:
        cells = [fmt(summary[lib][key], spec) for lib in libs]
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    lines.append(
        "| runs reaching -200 | "
        + " | ".join(f"{summary[lib]['n_reached_threshold']}/{n[lib]}" for lib in libs)
        + " |"
    )
    text = [
        f"SAC {ENV_ID}, RL-Zoo preset, {meta['steps']:,} steps, seeds {meta['seeds']}, "
        f"each run a fresh process pinned with `taskset -c {meta['cpus']}`. "
        "Cells: median (min to max) over seeds.",
        "",
        *lines,
        "",
    ]
    for name, value in summary["ratios"].items():
        text.append(f"- {name} (ratio of medians): **{value:.2f}x**")
    if meta.get("merged_from"):
        text.append(
            f"- runs of {', '.join(meta['merged_libs'])} were taken from "
            f"`{meta['merged_from']}` (an earlier invocation), not re-run."
        )
    text.append(f"- command: `{meta['command']}`")
    return "\n".join(text) + "\n"


def machine_info() -> dict[str, Any]:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "n_cpus": os.cpu_count(), "python": platform.python_version()}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--only",
        default=",".join(LIBS),
        help="comma list of libraries to run: sb3,sbx,duetto (default: all)",
    )
    p.add_argument("--seeds", default="0,1,2", help="comma list of seeds (default 0,1,2)")
    p.add_argument("--steps", type=int, default=20_000, help="env steps per run")
    p.add_argument("--eval-every", type=int, default=2_000)
    p.add_argument("--eval-episodes", type=int, default=10)
    p.add_argument("--cpus", default="0,1", help="taskset CPU list for every run")
    p.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="JSON output; the markdown table goes next to it as .md",
    )
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=300.0,
        help="before each run, wait up to this many s for the CPUs to be idle",
    )
    p.add_argument(
        "--max-foreign",
        type=float,
        default=0.05,
        help="rerun a run if other processes used more than this share of its CPUs",
    )
    p.add_argument("--retries", type=int, default=2, help="reruns allowed per (lib, seed)")
    p.add_argument(
        "--merge",
        type=Path,
        default=None,
        help="earlier JSON output: its runs of libraries not in --only are added",
    )
    p.add_argument(
        "--render", type=Path, default=None, help="only rebuild the table of this JSON output"
    )
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--result-file", default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:
        lib, seed = args.worker.split(":")
        worker_main(lib, int(seed), args)
        return

    if args.render:
        data = json.loads(args.render.read_text())
        data["summary"] = summarize(data["runs"])
        args.render.write_text(json.dumps(data, indent=1))
        table = markdown_table(data["summary"], data["meta"])
        args.render.with_suffix(".md").write_text(table)
        print(table)
        return

    libs = [lib.strip() for lib in args.only.split(",") if lib.strip()]
    unknown = set(libs) - set(LIBS)
    if unknown:
        raise SystemExit(f"unknown libraries {sorted(unknown)}; choose from {LIBS}")
    seeds = [int(s) for s in args.seeds.split(",")]

    runs: list[dict] = []
    discarded: list[dict] = []
    for lib in libs:
        for seed in seeds:
            r = run_clean(lib, seed, args, discarded)
            runs.append(r)
            curve = " ".join(f"{e['step']}:{e['return_mean']:.0f}" for e in r["evals"])
            upd = f"{r['update_ms_median']:.2f} ms" if r["update_ms_median"] else "n/a"
            hit = r["wall_at_threshold_s"]
            hit_s = f"{hit:.1f} s" if hit is not None else "never"
            print(
                f"{lib} seed={seed}: {r['steps_per_s']:.0f} steps/s, "
                f"train wall {r['train_wall_s']:.1f} s, update {upd}, "
                f"-200 at {hit_s} | evals {curve}",
                flush=True,
            )

    meta: dict[str, Any] = {
        "env_id": ENV_ID,
        "steps": args.steps,
        "seeds": args.seeds,
        "cpus": args.cpus,
        "eval_every": args.eval_every,
        "eval_episodes": args.eval_episodes,
        "hyperparameters": ZOO_HPARAMS,
        "threshold": THRESHOLD,
        "steady_from": STEADY_FROM,
        "max_foreign_cpu_share": args.max_foreign,
        "machine": machine_info(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "command": " ".join(["python", "benchmarks/sac_pendulum.py", *sys.argv[1:]]),
    }
    if args.merge:
        old = json.loads(args.merge.read_text())
        extra = [r for r in old["runs"] if r["lib"] not in libs]
        runs = extra + runs
        meta.update(merged_from=str(args.merge), merged_libs=sorted({r["lib"] for r in extra}))

    summary = summarize(runs)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {"meta": meta, "summary": summary, "runs": runs, "discarded_runs": discarded}, indent=1
        )
    )
    table = markdown_table(summary, meta)
    args.out.with_suffix(".md").write_text(table)
    print(table)
    print(f"wrote {args.out} and {args.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
