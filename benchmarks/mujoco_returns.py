#!/usr/bin/env python
"""Returns on MuJoCo: SAC, TD3 and DSAC-T on HalfCheetah-v5 and Hopper-v5, several seeds.

Each (algorithm, env, seed) is one `duetto train` run with the algorithm's `mujoco` preset
(RL-Zoo's setting for SAC and TD3; the official code's for DSAC-T, at one env step per gradient
step), evaluated every `--eval-every` steps on 10 deterministic episodes, one run after another;
`--cores` pins them, so that two drivers can share a 2-core CPU, a core each. A run directory
that already holds a checkpoint is resumed (exact resume), one that has finished is skipped, so
the script can be stopped and started again. A driver holds a lock file per run while it trains
it (`.<run>.lock` beside the run directories, holding its process id and start time) and
passes over runs that another live process holds, so several drivers can work through the same
grid. At the end,
`duetto report` and `duetto plot --aggregate` summarise the runs per env.

    python benchmarks/mujoco_returns.py --steps 300000 --seeds 0-2
    python benchmarks/mujoco_returns.py --algos dsac-t --envs Hopper-v5 --steps 100000 --seeds 0
    python benchmarks/mujoco_returns.py --seeds 0-2 --cores 0 &     # two drivers, one grid,
    python benchmarks/mujoco_returns.py --seeds 0-2 --cores 1       # a core each

Results: benchmarks/results/mujoco/<algo>-<env>-s<seed>/ (run directories, not committed:
checkpoints hold the replay), and the summaries benchmarks/results/mujoco_<env>.{md,png}.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
# (random, expert) returns that normalise the scores in `duetto report`: D4RL's reference scores
# (REF_MIN_SCORE / REF_MAX_SCORE of its MuJoCo locomotion datasets).
REFERENCES = {"HalfCheetah-v5": (-280.18, 12135.0), "Hopper-v5": (-20.27, 3234.3)}
DUETTO = [sys.executable, "-m", "duetto"]


def seeds_of(text: str) -> list[int]:
    if "-" in text:
        lo, hi = text.split("-")
        return list(range(int(lo), int(hi) + 1))
    return [int(s) for s in text.split(",")]


def steps_done(run: Path) -> int:
    """The env steps of the latest checkpoint of a run directory (0 if none)."""
    ckpts = sorted((run / "checkpoints").glob("step-*.ckpt")) if run.exists() else []
    return max((int(c.stem.split("-")[1]) for c in ckpts), default=0)


def process_id(pid: int) -> str | None:
    """'<pid> <start time>' of a live process, None if there is none: a lock left by a process
    that is gone is not mistaken for a new process that got the same id (a new machine)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return f"{pid} {stat.rsplit(')', 1)[1].split()[19]}"  # field 22: start time in ticks


def take(lock: Path) -> str | None:
    """Create the lock file with this process's id; None when that worked, else the id of the
    live process that holds it. A lock whose process is gone is taken over."""
    me = process_id(os.getpid())
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            text = lock.read_text().strip()
            holder = text.split()[0] if text else ""
            if holder.isdigit() and process_id(int(holder)) == text:
                return text
            lock.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as f:
            f.write(str(me))
        return None
    return "another driver"  # it took the lock over between our two tries


def train(
    algo: str, env: str, seed: int, steps: int, eval_every: int, out: Path, cores: str
) -> None:
    run = out / f"{algo}-{env}-s{seed}"
    if (run / "eval.json").exists() and steps_done(run) >= steps:
        print(f"{run.name}: finished ({steps_done(run)} steps)", flush=True)
        return
    lock = out / f".{run.name}.lock"
    holder = take(lock)
    if holder is not None:
        print(f"{run.name}: taken by {holder}, passed over", flush=True)
        return
    try:
        run_locked(run, algo, env, seed, steps, eval_every, cores)
    finally:
        lock.unlink(missing_ok=True)


def run_locked(
    run: Path, algo: str, env: str, seed: int, steps: int, eval_every: int, cores: str
) -> None:
    done = steps_done(run)
    if (run / "eval.json").exists() and done >= steps:  # finished while we waited for the lock
        return
    common = ["--eval-every", str(eval_every), "--checkpoint-every", str(eval_every)]
    if done:
        cmd = [*DUETTO, "train", "--resume", str(run), "--steps", str(steps - done), *common]
    else:
        if run.exists():  # a run stopped before its first checkpoint: keep it aside, start over
            aside = run.with_name(f"{run.name}.stopped-{time.strftime('%Y%m%d-%H%M%S')}")
            run.rename(aside)
            print(f"{run.name}: no checkpoint yet, moved to {aside.name}", flush=True)
        cmd = [*DUETTO, "train", algo, "--env", env, "--preset", "mujoco", "--seed", str(seed)]
        cmd += ["--steps", str(steps), "--out", str(run), *common]
    t0 = time.perf_counter()
    print(" ".join(cmd[2:]), flush=True)
    pin = (
        {"DUETTO_PIN_CORES": cores} if cores else {}
    )  # read by duetto.configure(), which the CLI calls
    subprocess.run(cmd, check=True, env={**os.environ, **pin})
    print(f"{run.name}: {time.perf_counter() - t0:.0f} s", flush=True)


def summarise(env: str, out: Path) -> None:
    # <algo>-<env>-s<seed> only: a run kept under another name (e.g. "-lecun") is a record of
    # an earlier setting, not part of the grid.
    grid = re.compile(rf"[a-z0-9-]+-{re.escape(env)}-s\d+")
    runs = sorted(
        str(p)
        for p in out.glob(f"*-{env}-s*")
        if grid.fullmatch(p.name) and (p / "eval.json").exists()
    )
    if not runs:
        return
    stem = RESULTS / f"mujoco_{env}"
    subprocess.run([*DUETTO, "plot", *runs, "--aggregate", "--out", f"{stem}.png"], check=True)
    report = out / f"report-{env}"
    low, high = REFERENCES[env]
    ref = ["--ref", f"{env}={low},{high}"]
    subprocess.run([*DUETTO, "report", *runs, *ref, "--out", str(report)], check=True)
    finals = {}
    for run in runs:
        final = json.loads((Path(run) / "eval.json").read_text())
        algo = json.loads((Path(run) / "config.json").read_text())["algo"]
        finals.setdefault(algo, []).append(round(final["return_mean"], 1))
    lines = [f"# {env}: final evaluation return per seed (10 episodes each)", ""]
    lines += [f"- {algo}: {vals}" for algo, vals in sorted(finals.items())]
    table = report / "report.md"
    if table.exists():
        lines += ["", table.read_text()]
    Path(f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--algos", default="sac,td3,dsac-t")
    p.add_argument("--envs", default="HalfCheetah-v5,Hopper-v5")
    p.add_argument("--seeds", default="0-2")
    p.add_argument("--steps", type=int, default=300_000)
    p.add_argument("--eval-every", type=int, default=10_000)
    p.add_argument("--out", type=Path, default=RESULTS / "mujoco")
    p.add_argument(
        "--cores",
        default="",
        help="pin the runs to these cores, e.g. 0 (two drivers, --cores 0 and --cores 1, with "
        "different --algos/--envs/--seeds, do about 1.45x the runs per hour of one on both)",
    )
    p.add_argument(
        "--summarise-only",
        action="store_true",
        help="train nothing: summarise the finished runs in --out (while other drivers run)",
    )
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    envs = args.envs.split(",")
    for seed in [] if args.summarise_only else seeds_of(args.seeds):  # seed-major order
        for env in envs:
            for algo in args.algos.split(","):
                train(algo, env, seed, args.steps, args.eval_every, args.out, args.cores)
    for env in envs:
        summarise(env, args.out)


if __name__ == "__main__":
    main()
