"""MDPO, both variants (Tomar et al., ICLR 2022): off-policy MDPO on the JAX-native Pendulum,
five seeds in one compiled program, and on-policy MDPO on MuJoCo's InvertedPendulum-v5.

    .venv/bin/python examples/mdpo.py [OFF_STEPS ON_STEPS]     # default 20,000 and 300,000
"""

import sys

import duetto

duetto.configure()  # one CPU device per core: the five seeds are split over them

off_steps, on_steps = (int(a) for a in sys.argv[1:3]) if len(sys.argv) > 2 else (20_000, 300_000)

# Off-policy: SAC-v1 (V network, fixed entropy weight λ = 0.2) with a KL term to the actor as it
# was 1,000 env steps ago; kl_weight=0 would be SAC-v1 itself.
off = duetto.MDPOOff("gymnax:Pendulum-v1", seeds=range(5), preset="zoo", run_dir="mdpo-off-runs")
off.learn(off_steps, eval_every=off_steps // 5)
print(
    "off-policy MDPO, Pendulum, return per seed:", [round(r) for r in off.last_eval["seed_returns"]]
)

# On-policy: m = 10 full-batch steps on the mirror-descent loss per 2,048-step rollout, the
# KL weight 1/t_k growing over the run; stop once an evaluation balances for all 1,000 steps.
on = duetto.MDPO("InvertedPendulum-v5", seed=0, preset="mujoco", run_dir="mdpo-on-run")
on.learn(on_steps, eval_every=20_480, stop_at_return=1000)
print(
    f"on-policy MDPO, InvertedPendulum: {on.last_eval['return_mean']:.0f} at {on.env_steps} steps"
)
print("learning curves:", off.run_dir / "curve.png", on.run_dir / "curve.png")
