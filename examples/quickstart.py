"""Train SAC on Pendulum-v1, evaluate it, save it, load it and act with it.

.venv/bin/python examples/quickstart.py
"""

import gymnasium as gym

import duetto

model = duetto.SAC("Pendulum-v1", seed=0, preset="fast")
model.learn(10_000, eval_every=2_000, progress=True)
print("evaluation:", model.evaluate(episodes=10)["return_mean"])
print("run directory:", model.run_dir)

path = model.save("pendulum-sac.ckpt")
model = duetto.load(path)

env = gym.make("Pendulum-v1")
obs, _ = env.reset(seed=123)
total = 0.0
for _ in range(200):
    obs, reward, terminated, truncated, _ = env.step(model.predict(obs, deterministic=True)[0])
    total += reward
    if terminated or truncated:
        break
print(f"one episode with the loaded model: return {total:.1f}")
