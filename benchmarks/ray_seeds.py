#!/usr/bin/env python
"""The cost of Ray Tune trials against the process pool they replaced (issue 19's overhead
target: at most 1.1x the wall time).

Both run `duetto train sac --env Pendulum-v1 --preset fast --seeds 0-7 --workers 2`: this
checkout's command (8 Tune trials, 2 at a time, on a local Ray started and shut down by the
command) and the same command of the commit before the Ray work (`--before`, default 5abe1bc:
duetto's own pool of child processes, each pinned to a core), unpacked with `git archive` into a
temporary directory and run from there with this venv. The wall time of the whole command
(imports, Ray start and stop, compilation with an empty cache, training, evaluations, pictures),
`taskset -c 0,1`, the two alternating, `--repeats` times each; medians.

    python benchmarks/ray_seeds.py --repeats 3
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

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "results" / "ray_seeds.json"


def run(src: Path, seeds: str, steps: int | None, cores: str, out: Path, cache: str) -> float:
    cmd = ["taskset", "-c", cores, sys.executable, "-m", "duetto", "train", "sac"]
    cmd += ["--env", "Pendulum-v1", "--preset", "fast", "--seeds", seeds, "--workers", "2"]
    cmd += ["--out", str(out), "--no-progress"]
    if steps:
        cmd += ["--steps", str(steps)]
    env = {**os.environ, "DUETTO_COMPILATION_CACHE": cache, "PYTHONPATH": str(src)}
    env.pop("RAY_ADDRESS", None)
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{r.stderr[-2000:]}")
    return wall


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="0-7")
    p.add_argument("--steps", type=int, help="env steps per seed (default: the preset's 10,000)")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--before", default="5abe1bc", help="the commit with the process pool")
    p.add_argument("--cores", default="0,1")
    p.add_argument(
        "--warm-cache",
        action="store_true",
        help="a compilation cache shared by both, warmed by one untimed run of each first (as "
        "a returning user has it); default: no cache",
    )
    args = p.parse_args()
    walls: dict[str, list[float]] = {"pool": [], "tune": []}
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "before"
        old.mkdir()
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", args.before, "src"],
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
        sources = {"pool": old / "src", "tune": ROOT / "src"}
        cache = "0"
        if args.warm_cache:
            cache = str(Path(tmp) / "cache")
            for name in ("pool", "tune"):
                run(sources[name], args.seeds, args.steps, args.cores, Path(tmp) / name, cache)
        for i in range(args.repeats):
            for name in ("tune", "pool") if i % 2 else ("pool", "tune"):
                wall = run(
                    sources[name],
                    args.seeds,
                    args.steps,
                    args.cores,
                    Path(tmp) / f"{name}{i}",
                    cache,
                )
                walls[name].append(wall)
                print(f"{name}: {wall:.1f} s", flush=True)
    med = {k: statistics.median(v) for k, v in walls.items()}
    ratio = med["tune"] / med["pool"]
    print(f"medians: pool {med['pool']:.1f} s, Tune trials {med['tune']:.1f} s: {ratio:.2f}x")
    OUT.parent.mkdir(exist_ok=True)
    out = OUT.with_name("ray_seeds_warm.json") if args.warm_cache else OUT
    out.write_text(
        json.dumps(
            {
                "warm_cache": args.warm_cache,
                "seeds": args.seeds,
                "steps": args.steps,
                "walls": walls,
                "medians": med,
                "ratio": ratio,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
