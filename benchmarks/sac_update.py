"""Microbenchmark: duetto's SAC update, and the off-policy loop's whole per-step program.

For each setting, in a fresh process pinned to the given cores:
  update   K gradient updates in one `lax.scan` call (no env, no replay writes): ms per update,
           achieved GFLOP/s (matmul FLOPs counted analytically) and the share of the machine's
           matmul ceiling (benchmarks/matmul_ceiling.py).
  step     the loop's compiled per-env-step program (store a transition, one update, choose the
           next action) called from Python with the action copied back to the host, as in
           training: ms per env step without the env itself.

    python benchmarks/sac_update.py --configs pendulum,halfcheetah --cores 0,1
    python benchmarks/sac_update.py --xla-flags "--xla_cpu_use_onednn=true"   # try a flag
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

CONFIGS = {  # obs_dim, act_dim, hidden, batch
    "pendulum": (3, 1, (256, 256), 256),  # RL-Zoo Pendulum preset
    "halfcheetah": (17, 6, (256, 256), 256),
    "fast": (3, 1, (64, 64), 128),  # duetto's `fast` preset
}


def sac_update_flops(
    obs: int, act: int, hidden: tuple[int, ...], batch: int, n_critics: int = 2
) -> float:
    """Matmul FLOPs of one SAC update (forward 2·B·in·out per layer; weight gradients the same
    again; input gradients the same again where they are needed)."""

    def layers(inp: int, out: int) -> list[tuple[int, int]]:
        dims = [inp, *hidden, out]
        return list(zip(dims[:-1], dims[1:], strict=True))

    actor = layers(obs, 2 * act)
    critic = layers(obs + act, 1)
    fwd = lambda net: sum(2 * batch * i * o for i, o in net)  # noqa: E731
    inner = lambda net: sum(2 * batch * i * o for i, o in net[1:])  # noqa: E731 input grads
    flops = fwd(actor) + n_critics * fwd(critic)  # target: actor(s'), target critics(s', a')
    flops += n_critics * (2 * fwd(critic) + inner(critic))  # critic loss: fwd, dW, dx
    flops += 2 * fwd(actor) + inner(actor)  # actor loss: actor fwd, dW, dx
    flops += n_critics * (2 * fwd(critic))  # critics fwd and dx (incl. first layer, dQ/da)
    return float(flops)


def worker(name: str, k: int, min_time: float, dtype: str) -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np

    from duetto.algorithms import sac
    from duetto.config import build_config
    from duetto.data.packing import Packing
    from duetto.data.replay import one_step_batch, replay_sample
    from duetto.envs.spec import EnvSpec
    from duetto.loops.host import compile_packed
    from duetto.loops.offpolicy import init_state, make_programs

    obs, act, hidden, batch = CONFIGS[name]
    config = build_config(
        sac.SACConfig,
        "sac",
        {},
        {
            "hidden": hidden,
            "batch_size": batch,
            "learning_starts": 0,
            "buffer_size": 100_000,
            "learning_rate": 1e-3,
            "matmul_dtype": dtype,
        },
    )
    spec = EnvSpec(obs, act)
    state = init_state(sac, jax.random.PRNGKey(0), spec, config, 1)
    packing = Packing(state.replace(replay=None))
    # no identity cache key that a run could share: this process times its own compilation
    start, _, step = compile_packed(
        make_programs(sac, config, 1), packing, "replay", {}, f"sac_update|{config!r}"
    )
    carry = (state.replay, jax.jit(packing.pack)(state.replace(replay=None)))
    zero_obs = np.zeros((1, obs), np.float32)
    t0 = time.perf_counter()
    carry, action = start(carry, jnp.asarray(zero_obs))
    r = np.zeros(1, np.float32)
    for _ in range(batch):  # fill some replay rows (first call compiles)
        carry, action = step(carry, r, zero_obs, r, r, zero_obs)
    np.asarray(action)
    compile_s = time.perf_counter() - t0

    def timed(fn, calls: int) -> float:
        times = []
        deadline = time.perf_counter() + min_time
        while time.perf_counter() < deadline or len(times) < 3:
            t = time.perf_counter()
            fn(calls)
            times.append((time.perf_counter() - t) / calls)
        return statistics.median(times)

    def run_steps(calls: int) -> None:
        nonlocal carry
        for _ in range(calls):
            carry, action = step(carry, r, zero_obs, r, r, zero_obs)
            np.asarray(action)

    step_s = timed(run_steps, 50)
    state = jax.jit(lambda c: packing.unpack(c[1]).replace(replay=c[0]))(carry)

    def scan_updates(algo_state, key):
        def one(s, kk):
            sample = replay_sample(state.replay, kk, batch)
            return sac.update(s, one_step_batch(sample, s.hparams["gamma"]), 0)

        return jax.lax.scan(one, algo_state, jax.random.split(key, k))

    scan = jax.jit(scan_updates, donate_argnums=0)
    algo_state = jax.tree.map(jnp.copy, state.algo)
    key = jax.random.PRNGKey(1)
    algo_state, _ = scan(algo_state, key)
    jax.block_until_ready(algo_state)

    def run_scan(calls: int) -> None:
        nonlocal algo_state
        for _ in range(calls):
            algo_state, _ = scan(algo_state, key)
        jax.block_until_ready(algo_state)

    update_s = timed(run_scan, 2) / k
    flops = sac_update_flops(obs, act, hidden, batch)
    return {
        "config": name,
        "matmul_dtype": dtype,
        "update_ms": update_s * 1e3,
        "step_ms": step_s * 1e3,
        "gflops_per_s": flops / update_s / 1e9,
        "mflop_per_update": flops / 1e6,
        "first_call_s": compile_s,
        "threads": len(os.sched_getaffinity(0)),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", default="pendulum,halfcheetah,fast")
    p.add_argument("--cores", default="0,1", help="taskset core list for each worker")
    p.add_argument("--scan", type=int, default=32, help="updates per scan call")
    p.add_argument("--min-time", type=float, default=1.5, help="seconds per timing repeat")
    p.add_argument("--xla-flags", default="", help="extra XLA_FLAGS for the workers")
    p.add_argument(
        "--dtype",
        default="float32",
        choices=("float32", "bfloat16"),
        help="matmul precision (SACConfig.matmul_dtype)",
    )
    p.add_argument(
        "--ceiling",
        type=float,
        default=None,
        help="matmul GFLOP/s to compare with (from matmul_ceiling.py)",
    )
    p.add_argument("--out", help="write results as JSON here")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.scan, args.min_time, args.dtype)))
        return
    results = []
    for name in args.configs.split(","):
        env = {
            **os.environ,
            "XLA_FLAGS": (os.environ.get("XLA_FLAGS", "") + " " + args.xla_flags).strip(),
            "DUETTO_COMPILATION_CACHE": "0",
        }
        cmd = [
            "taskset",
            "-c",
            args.cores,
            sys.executable,
            __file__,
            "--worker",
            name,
            "--scan",
            str(args.scan),
            "--min-time",
            str(args.min_time),
            "--dtype",
            args.dtype,
        ]
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
        row = json.loads(out.stdout.strip().splitlines()[-1])
        row["xla_flags"] = args.xla_flags
        if args.ceiling:
            row["share_of_ceiling"] = row["gflops_per_s"] / args.ceiling
        results.append(row)
        print(
            f"{name:12s} {args.dtype:8s} update {row['update_ms']:.3f} ms "
            f"({row['gflops_per_s']:.0f} GFLOP/s, "
            f"{row['mflop_per_update']:.0f} MFLOP)  step {row['step_ms']:.3f} ms  "
            f"first calls {row['first_call_s']:.1f} s  [{row['threads']} cores]",
            flush=True,
        )
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
