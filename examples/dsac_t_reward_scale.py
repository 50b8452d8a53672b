"""DSAC-T's third refinement, seen: scale Pendulum's reward by 0.1, 1 and 10 and train five seeds
of each scale in one compiled program, with ω-scaled critic gradients (DSAC-T) and without.
The evaluation return is the env's own, so the scales are directly comparable.

    .venv/bin/python examples/dsac_t_reward_scale.py [STEPS]     # default 10,000 per run
"""

import sys

import numpy as np

import duetto

duetto.configure()  # one CPU device per core: a program's seeds are split over them

steps = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
scales = [0.1, 1.0, 10.0]
for name, omega_scaling in (("dsac-t", True), ("without-omega", False)):
    agent = duetto.DSACT(
        "gymnax:Pendulum-v1",
        seeds=range(5),
        sweep={"reward_scale": scales},  # 3 scales x 5 seeds = 15 runs, one program
        preset="fast",
        critic_loss="paper",  # the paper's form, where ω is the whole gradient scaling
        omega_scaling=omega_scaling,
        run_dir=f"reward-scale-{name}",
    )
    agent.learn(steps, eval_every=max(steps // 5, 1))
    returns = np.asarray(agent.last_eval["seed_returns"]).reshape(len(scales), -1)
    medians = np.median(returns, axis=1)
    table = ", ".join(f"×{s}: {m:.0f}" for s, m in zip(scales, medians, strict=True))
    print(f"{name}: median return over seeds by reward scale: {table}")
    print(f"  curves (mean over seeds, 95 % CI, one line per scale): {agent.run_dir}/curve.png")
