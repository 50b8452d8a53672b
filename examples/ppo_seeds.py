"""PPO two ways: on a Gymnasium env (host loop), and on its JAX-native twin with six seeds
trained as one compiled program (fused loop), then resumed exactly from the run directory.

    .venv/bin/python examples/ppo_seeds.py
"""

import gymnasium as gym

import duetto

duetto.configure()  # one CPU device per core: a program's seeds are split over them

# Host loop: Gymnasium's CartPole, RL-Zoo preset (8 envs), stop once an evaluation hits 500.
model = duetto.PPO("CartPole-v1", seed=0, preset="cartpole")
model.learn(100_000, eval_every=10_000, stop_at_return=500)
print("host loop:", model.env_steps, "steps, evaluation", model.evaluate()["return_mean"])

env = gym.make("CartPole-v1")
obs, _ = env.reset(seed=1)
action, _ = model.predict(obs)  # an int, as CartPole takes it

# Fused loop: gymnax's CartPole, seeds 0-5 in one vmapped program; a run directory per seed.
fused = duetto.PPO("gymnax:CartPole-v1", seeds=range(6), preset="cartpole", run_dir="ppo-seeds")
fused.learn(30_000, eval_every=10_000)
print("fused loop, evaluation per seed:", [round(r) for r in fused.last_eval["seed_returns"]])
# Split over as many devices as divide 6 (duetto.configure() made one per core).
print("seeds split over", fused.devices, "device(s)")

fused = duetto.load("ppo-seeds")  # the latest checkpoint of all six seeds
fused.learn(10_000)
print("resumed to", fused.env_steps, "steps per seed; curves in ppo-seeds/curve.png")
