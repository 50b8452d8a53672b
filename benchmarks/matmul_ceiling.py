#!/usr/bin/env python
"""fp32 matmul ceiling at 256x256x256 (GFLOP/s), JAX in-graph and torch per call.

Each (library, threads) pair runs in a fresh process pinned with taskset to the first
``threads`` CPUs, with the thread-count variables set before the library is imported.
  * jax: one jitted ``lax.fori_loop`` of chained matmuls (x @ w1 @ w2 ...), so Python
    dispatch is not measured.
  * torch (only if installed): ``torch.mm(a, b, out=c)`` in a Python loop.
Reported: median (min, max) of --repeats timings of at least --min-time seconds each.

Example:
  python benchmarks/matmul_ceiling.py --threads 1,2 --out benchmarks/results/matmul.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

SIZE = 256
FLOP_PER_MATMUL = 2 * SIZE**3


def time_per_matmul(
    run: Callable[[int], None], matmuls_per_rep: int, args: argparse.Namespace
) -> list[float]:
    """Seconds per matmul for each repeat; ``run(n)`` performs n repetitions and blocks."""
    run(1)  # warm-up (and JIT compile)
    n, elapsed = 1, 0.0
    while elapsed < args.min_time / 4:
        n *= 2
        t0 = time.perf_counter()
        run(n)
        elapsed = time.perf_counter() - t0
    n = max(1, int(n * args.min_time / elapsed))
    out = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        run(n)
        out.append((time.perf_counter() - t0) / (n * matmuls_per_rep))
    return out


def bench_jax(args: argparse.Namespace) -> tuple[str, list[float]]:
    import jax
    import jax.numpy as jnp

    iters = 200
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(0), 3)
    x = jax.random.normal(k1, (SIZE, SIZE), jnp.float32)
    w1 = jax.random.normal(k2, (SIZE, SIZE), jnp.float32) / SIZE**0.5
    w2 = jax.random.normal(k3, (SIZE, SIZE), jnp.float32) / SIZE**0.5

    @jax.jit
    def chain(x):
        return jax.lax.fori_loop(0, iters, lambda _, y: (y @ w1) @ w2, x)

    def run(n: int) -> None:
        for _ in range(n):
            out = chain(x)
        out.block_until_ready()

    return jax.__version__, time_per_matmul(run, 2 * iters, args)


def bench_torch(args: argparse.Namespace) -> tuple[str, list[float]]:
    import torch

    torch.set_num_threads(args.threads_one)
    a, b, c = torch.rand(SIZE, SIZE), torch.rand(SIZE, SIZE), torch.empty(SIZE, SIZE)

    def run(n: int) -> None:
        for _ in range(n):
            torch.mm(a, b, out=c)

    with torch.inference_mode():
        return torch.__version__, time_per_matmul(run, 1, args)


def run_worker(lib: str, threads: int, args: argparse.Namespace) -> dict:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(threads)
    if threads == 1:
        env["XLA_FLAGS"] = (
            env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
        ).strip()
    cpus = ",".join(str(i) for i in range(threads))
    cmd = [
        "taskset",
        "-c",
        cpus,
        sys.executable,
        os.path.abspath(__file__),
        "--worker",
        lib,
        "--threads-one",
        str(threads),
        "--min-time",
        str(args.min_time),
        "--repeats",
        str(args.repeats),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise RuntimeError(f"{lib} with {threads} thread(s) failed")
    version, per = json.loads(proc.stdout.strip().splitlines()[-1])
    gflops = [FLOP_PER_MATMUL / t / 1e9 for t in per]
    return {
        "lib": lib,
        "version": version,
        "threads": threads,
        "cpus": cpus,
        "variant": "in-graph fori_loop" if lib == "jax" else "per call torch.mm",
        "gflops_median": statistics.median(gflops),
        "gflops_min": min(gflops),
        "gflops_max": max(gflops),
        "us_per_matmul_median": 1e6 * statistics.median(per),
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--threads", default="1,2", help="comma list of thread counts")
    p.add_argument("--min-time", type=float, default=0.25, help="seconds per repeat")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "matmul.json")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--threads-one", type=int, default=1, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.worker:
        bench = bench_jax if args.worker == "jax" else bench_torch
        print(json.dumps(bench(args)))
        return

    libs = ["jax"] + (["torch"] if importlib.util.find_spec("torch") else [])
    results = []
    for threads in [int(t) for t in args.threads.split(",")]:
        for lib in libs:
            r = run_worker(lib, threads, args)
            results.append(r)
            print(
                f"{lib:5s} {r['version']:14s} fp32 {SIZE}^3 {threads} thread(s), "
                f"{r['variant']}: {r['gflops_median']:.0f} GFLOP/s "
                f"({r['gflops_min']:.0f}-{r['gflops_max']:.0f})",
                flush=True,
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "shape": [SIZE] * 3,
        "dtype": "float32",
        "repeats": args.repeats,
        "min_time_s": args.min_time,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    args.out.write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
