"""Learning to fly in seconds, from Python: TD3 trains a Crazyflie hover controller on the JAX
quadrotor (Eschmann, Albani, Loianno, RA-L 2024), then flies a few evaluation episodes and
draws them.

The `l2f` preset is the paper's setting: 64-64 tanh networks, a critic step every 10 env steps
and an actor step every 20, critic and actor warm-ups of 15k and 30k steps, an asymmetric
critic that reads the noise-free state, the disturbance and the rotor speeds, and the reward
curriculum at 100k and 200k steps that recomputes the rewards in the replay. The actor sees
what the real drone would: noisy position, attitude and velocities, and its last 32 actions.

    .venv/bin/python examples/quadrotor.py [SEEDS]      # default 1 seed; e.g. 5 (vmapped)
"""

import sys

import duetto
from duetto.analysis.flights import plot_flights, record_flights

seeds = int(sys.argv[1]) if len(sys.argv) > 1 else 1
agent = duetto.TD3("duetto:Quadrotor-v0", seeds=range(seeds), preset="l2f", run_dir="l2f-runs")
agent.learn(300_001, eval_every=50_000)  # every seed in one compiled program

# The paper's evaluation: 1,000 deterministic episodes with noise and disturbances on.
result = agent.evaluate(episodes=1000)
print(
    f"full-length episodes (500 steps): {result['full_length_share']:.0%}, "
    f"mean episode length {result['length_mean']:.0f} of 500"
)

flights = record_flights(agent, episodes=6, seed=1)
print("flights:", plot_flights(flights, agent.run_dir / "flights.png"))
print("learning curve:", agent.run_dir / "curve.png")
