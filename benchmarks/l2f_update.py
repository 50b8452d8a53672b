#!/usr/bin/env python
"""The cost of one TD3 update of the `l2f` preset (a critic step and half an actor step, batch
256, the quadrotor's 146-wide actor input and 28-wide critic input), for 1 run and for several
vmapped as the fused loop runs seeds, with the matmul FLOPs it does.

    python benchmarks/l2f_update.py --runs 1,5

FLOPs per update call, counted from the layer sizes (multiply-adds × 2, batch B = 256):
actor 146-64-64-4 = 13,696 MACs a sample, one critic (28 + 4)-64-64-1 = 6,208, twin 12,416.
Critic step: target actor and target twin forward, twin forward and backward (2×) =
13,696 + 4 × 12,416 = 63,360 MACs; actor step (every second call): actor forward and backward
(2×) and one critic forward and input-backward = 3 × 13,696 + 2 × 6,208 = 53,504 MACs. So
(63,360 + 53,504 / 2) × 256 × 2 = 46.1 MFLOP per call, 30,000 calls in a 300,001-step run
(1.38 TFLOP a seed).
"""

from __future__ import annotations

import argparse
import time

MACS_PER_SAMPLE = 63_360 + 53_504 / 2
BATCH = 256
FLOP_PER_UPDATE = MACS_PER_SAMPLE * BATCH * 2


def time_update(runs: int, calls: int) -> float:
    """Seconds per vmapped update call of `runs` runs (median of 3 timings)."""
    import jax
    import jax.numpy as jnp

    from duetto.algorithms import td3
    from duetto.config import build_config
    from duetto.data.replay import Batch
    from duetto.envs.jaxenv import make_jax_env

    spec = make_jax_env("duetto:Quadrotor-v0", "td3", ("box",)).spec
    cfg = build_config(td3.CONFIG, "td3", td3.PRESETS["l2f"], {})
    keys = jax.random.split(jax.random.PRNGKey(0), runs)
    state = jax.vmap(lambda k: td3.init(k, spec, cfg))(keys)
    k_obs, k_next = jax.random.split(jax.random.PRNGKey(1))
    batch = Batch(
        obs=jax.random.normal(k_obs, (runs, BATCH, spec.obs_dim)),
        action=jnp.zeros((runs, BATCH, spec.action_dim)),
        reward=jnp.zeros((runs, BATCH)),
        next_obs=jax.random.normal(k_next, (runs, BATCH, spec.obs_dim)),
        discount=jnp.full((runs, BATCH), 0.99),
    )
    axes = jax.tree.map(lambda _: 0, state).replace(updates=None)  # as the fused loop
    update = jax.vmap(td3.update, in_axes=(axes, 0, None), out_axes=(axes, 0))

    @jax.jit
    def many(state):
        state = state.replace(updates=state.updates[0])

        def body(s, _):
            s, metrics = update(s, batch, jnp.asarray(10**6))
            return s, metrics["critic_loss"]

        return jax.lax.scan(body, state, None, length=calls)

    jax.block_until_ready(many(state))
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        jax.block_until_ready(many(state))
        times.append((time.perf_counter() - t0) / calls)
    return sorted(times)[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", default="1,5")
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args()
    base = None
    for runs in (int(r) for r in args.runs.split(",")):
        seconds = time_update(runs, args.calls)
        base = base or seconds
        rate = runs * FLOP_PER_UPDATE / seconds / 1e9
        print(
            f"{runs} run(s): {seconds * 1e6:,.0f} µs per update call ({seconds / base:.2f}× one "
            f"run), {rate:.0f} GFLOP/s of matmul",
            flush=True,
        )


if __name__ == "__main__":
    main()
