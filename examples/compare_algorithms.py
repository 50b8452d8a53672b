"""Compare algorithms over several seeds, as a paper would: SAC, TD3 and DSAC-T on the
JAX-native Pendulum, each algorithm's seeds trained as one compiled program; then the mean
learning curve of each with a 95 % bootstrap confidence band (`duetto.plot`), and IQM, mean,
median and optimality gap with stratified-bootstrap confidence intervals (`duetto.report`,
rliable's statistics).

    .venv/bin/python examples/compare_algorithms.py [STEPS]      # default 4,000 per seed

Writes runs/ (one run directory per algorithm, one per seed inside it), pendulum_curves.png and
pendulum_report/ (report.md, report.json, aggregates.png, profiles.png). The same from the
shell: `duetto plot runs/... --aggregate` and `duetto report runs/...`.
"""

import sys

import duetto

duetto.configure()  # one CPU device per core: a program's seeds are split over them

steps = int(sys.argv[1]) if len(sys.argv) > 1 else 4_000
runs = []
for algorithm in (duetto.SAC, duetto.TD3, duetto.DSACT):
    agent = algorithm("gymnax:Pendulum-v1", seeds=range(4), preset="fast")
    agent.learn(steps, eval_every=1_000)
    print(f"{agent.run_dir}: final returns per seed {agent.last_eval['seed_returns']}")
    runs.append(agent.run_dir)

print("curves:", duetto.plot(runs, "pendulum_curves.png", aggregate=True))
summary = duetto.report(runs, "pendulum_report")
print(summary.read_text())
