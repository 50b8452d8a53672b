"""The facade: callbacks, run directory contents, predict, evaluate, bf16 option."""

import json

import gymnasium as gym
import numpy as np

import duetto
from duetto.callbacks import CheckpointEvery, FunctionCallback, StopOnReturn


def test_callbacks_fire_on_their_intervals_and_can_stop(tmp_path, tiny):
    seen = []
    agent = duetto.SAC("Pendulum-v1", seed=0, run_dir=tmp_path / "run", **tiny)
    agent.learn(
        300,
        eval_every=100,
        eval_episodes=2,
        callbacks=[
            FunctionCallback(lambda ctx: seen.append(ctx.env_steps), every=70),
            CheckpointEvery(150),
        ],
    )
    assert seen == [70, 140, 210, 280]
    ckpts = sorted(p.name for p in (tmp_path / "run/checkpoints").iterdir())
    assert ckpts == ["step-0000000150.ckpt", "step-0000000300.ckpt"]

    def stop_at_250(ctx):
        return ctx.env_steps < 250

    agent = duetto.SAC("Pendulum-v1", seed=0, run_dir=False, **tiny)
    agent.learn(1000, eval_every=100, callbacks=[stop_at_250])
    assert agent.env_steps == 250


def test_stop_on_return_stops_after_the_first_good_evaluation(tiny):
    agent = duetto.SAC("Pendulum-v1", seed=0, run_dir=False, **tiny)
    # every Pendulum return is above −1e9, so the first evaluation stops training
    agent.learn(1000, eval_every=100, eval_episodes=1, callbacks=[StopOnReturn(-1e9)])
    assert agent.env_steps == 100
    agent = duetto.SAC("Pendulum-v1", seed=0, run_dir=False, **tiny)
    agent.learn(300, eval_every=100, eval_episodes=1, stop_at_return=1e9)  # unreachable
    assert agent.env_steps == 300


def test_run_directory_rows_and_curve(tmp_path, tiny):
    out = tmp_path / "run"
    duetto.SAC("Pendulum-v1", seed=2, run_dir=out, **tiny).learn(
        400, eval_every=200, eval_episodes=3, log_every=100
    )
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rows if r["kind"] == "train"]
    evals = [r for r in rows if r["kind"] == "eval"]
    assert [r["step"] for r in train] == [100, 200, 300, 400]
    assert [r["step"] for r in evals] == [200, 400]
    assert "critic_loss" in train[-1] and "alpha" in train[-1] and train[-1]["sps"] > 0
    final = json.loads((out / "eval.json").read_text())
    assert final["step"] == 400 and len(final["returns"]) == 3
    png = (out / "curve.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_predict_shapes_and_bounds(tiny):
    agent = duetto.SAC("Pendulum-v1", seed=0, run_dir=False, **tiny)
    single, state = agent.predict(np.zeros(3))
    batch, _ = agent.predict(np.zeros((4, 3)), deterministic=False)
    assert single.shape == (1,) and batch.shape == (4, 1)
    assert np.all(np.abs(batch) <= 2.0) and single.dtype == np.float32
    np.testing.assert_array_equal(agent.predict(np.ones(3))[0], agent.predict(np.ones(3))[0])
    assert state is None  # SB3's (action, state) for a policy without memory


def test_evaluate_is_repeatable_and_seeded(tiny):
    agent = duetto.SAC("Pendulum-v1", seed=0, run_dir=False, **tiny)
    a, b = agent.evaluate(episodes=3), agent.evaluate(episodes=3)
    assert a["returns"] == b["returns"] and len(a["returns"]) == 3
    assert agent.evaluate(episodes=3, seed=99)["returns"] != a["returns"]


def test_env_instance_works_like_an_id(tiny):
    agent = duetto.SAC(gym.make("Pendulum-v1"), seed=0, run_dir=False, **tiny)
    agent.learn(100, eval_every=100, eval_episodes=2)
    assert agent.env_id == "Pendulum-v1" and agent.env_steps == 100


def test_bfloat16_matmuls_run_and_keep_float32_parameters(tiny):
    agent = duetto.SAC("Pendulum-v1", seed=0, run_dir=False, matmul_dtype="bfloat16", **tiny)
    agent.learn(200, eval_every=200, eval_episodes=2)
    leaves = [np.asarray(x) for x in __import__("jax").tree.leaves(agent.state.actor_params)]
    assert all(x.dtype == np.float32 for x in leaves)
    assert np.isfinite(agent.last_eval["return_mean"])


def test_examples_run(tmp_path):
    """The examples in examples/ run to the end (in a scratch directory, with learn() budgets
    cut to a tenth, at most 500 env steps: the code is checked here, learning by its tests)."""
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    examples = {
        "quickstart.py": [],
        "callbacks_and_resume.py": [],
        "ppo_seeds.py": [],
        "compare_algorithms.py": [],
        "mdpo.py": ["300", "2048"],
        "spaces.py": [],
    }
    for name, args in examples.items():
        r = run_short(
            tmp_path,
            f"import runpy, sys\nsys.argv = {[name, *args]!r}\n"
            f"runpy.run_path({str(root / 'examples' / name)!r}, run_name='__main__')",
        )
        assert r.returncode == 0, r.stderr[-2000:]
        if name == "callbacks_and_resume.py":
            assert "resumed run identical to the straight run: True" in r.stdout
        if name == "compare_algorithms.py":
            assert all(f"| {a} |" in r.stdout for a in ("sac", "td3", "dsac-t")), r.stdout
            assert (tmp_path / "pendulum_curves.png").exists()
            assert (tmp_path / "pendulum_report" / "profiles.png").exists()
            assert "FutureWarning" not in r.stderr, r.stderr[-2000:]
        if name == "spaces.py":
            assert "loaded model's action" in r.stdout and "FrozenLake" in r.stdout, r.stdout
        if name == "mdpo.py":
            assert "off-policy MDPO, Pendulum, return per seed" in r.stdout
            assert (tmp_path / "mdpo-on-run" / "curve.png").exists()


def test_training_clock_stops_when_learn_returns(tiny, tmp_path):
    import time

    from duetto.runs.checkpoint import read_meta

    agent = duetto.SAC("Pendulum-v1", seed=0, run_dir=False, **tiny).learn(100, eval_every=100)
    wall = read_meta(agent.save(tmp_path / "a.ckpt"))["train_wall"]
    time.sleep(0.3)
    assert read_meta(agent.save(tmp_path / "b.ckpt"))["train_wall"] == wall > 0
    assert agent.train_wall == wall


README_PRELUDE = '''
import duetto.agent

_learn = duetto.agent.Agent.learn


def _short(steps):
    return max(1, min(steps // 10, 500))


def _shortened(self, total_steps=None, **options):
    """learn() with its budget and evaluation interval a tenth of the given (at most 500),
    so that calls that add up (2,000 = 1,000 + 1,000) still do."""
    if "total_timesteps" in options:
        options["total_timesteps"] = _short(options["total_timesteps"])
    if total_steps is not None:
        total_steps = _short(total_steps)
    if options.get("eval_every"):
        options["eval_every"] = _short(options["eval_every"])
    return _learn(self, total_steps, **options)


duetto.agent.Agent.learn = _shortened
_sweep = duetto.sweep


def _short_sweep(*args, steps=None, **options):
    """duetto.sweep with its trials' budget cut as learn()'s (its trials run in Ray workers,
    which the patch of learn() above does not reach)."""
    return _sweep(*args, steps=None if steps is None else _short(steps), **options)


duetto.sweep = _short_sweep
'''


def run_short(cwd, code):
    """Run `code` in a fresh process in `cwd`, with every learn() budget (and evaluation
    interval) cut to a tenth (at most 500 env steps)."""
    import subprocess
    import sys

    script = cwd / "_short_run.py"
    script.write_text(f"import duetto\n{README_PRELUDE}\n{code}")
    return subprocess.run([sys.executable, str(script)], cwd=cwd, capture_output=True, text=True)


def test_readme_snippets_run(tmp_path):
    """Every Python block of the README runs as written, in order, in one fresh process (with
    learn() budgets cut to a tenth, at most 500 env steps: the code is checked, not learning)."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    assert len(blocks) >= 5
    r = run_short(tmp_path, "\n".join(blocks))
    assert r.returncode == 0, r.stderr[-3000:]
