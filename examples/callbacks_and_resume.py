"""Callbacks (evaluate, checkpoint, stop at a threshold, your own function) and exact resume.

.venv/bin/python examples/callbacks_and_resume.py
"""

import jax
import numpy as np

import duetto
from duetto.callbacks import CheckpointEvery, FunctionCallback


def report(ctx):
    if ctx.last_eval is not None:
        print(f"  step {ctx.env_steps}: last evaluation {ctx.last_eval['return_mean']:.1f}")


# Stop as soon as an evaluation reaches -200; checkpoint every 2,000 steps into the run directory.
model = duetto.SAC("Pendulum-v1", seed=1, preset="fast")
model.learn(
    20_000,
    eval_every=1_000,
    stop_at_return=-200.0,
    callbacks=[FunctionCallback(report, every=2_000), CheckpointEvery(2_000)],
)
print(f"stopped after {model.env_steps} env steps; checkpoints in {model.run_dir}/checkpoints")

# Exact resume: 2N steps in one go equal N steps, save, load, N more.
straight = duetto.SAC("Pendulum-v1", seed=2, preset="fast", run_dir=False).learn(2_000)
first = duetto.SAC("Pendulum-v1", seed=2, preset="fast", run_dir=False).learn(1_000)
first.save("half.ckpt")
resumed = duetto.load("half.ckpt").learn(1_000)
same = all(
    np.array_equal(a, b)
    for a, b in zip(jax.tree.leaves(straight.state), jax.tree.leaves(resumed.state), strict=True)
)
print("resumed run identical to the straight run:", same)
