"""The fused loop: learning on gymnax envs with seeds vmapped in one program, vmapped seeds
equal to the same seeds one by one, exact resume, one compilation per program, bad input."""

import jax
import numpy as np
import pytest

import duetto
from duetto.cli import main
from duetto.errors import DuettoError

SEEDS = [0, 1, 2, 3, 4]


def test_fused_ppo_solves_cartpole_by_100k_on_4_of_5_seeds():
    """Five seeds in one program, RL-Zoo preset; a seed counts as solved when an evaluation
    reaches 500 within 100k steps."""
    agent = duetto.PPO("gymnax:CartPole-v1", seeds=SEEDS, preset="cartpole", run_dir=False)
    best = np.full(len(SEEDS), -np.inf)

    def track(ctx):
        np.maximum(best, ctx.last_eval["seed_returns"], out=best)

    agent.learn(
        100_000,
        eval_every=10_000,
        callbacks=[track],
    )
    assert isinstance(agent, duetto.PPO) and agent.env_steps >= 100_000
    assert (best >= 500).sum() >= 4, best


def test_fused_ppo_pendulum_reaches_minus_400_by_200k_on_4_of_5_seeds():
    """RL-Zoo preset without gSDE (RL-Zoo: −172 ± 104 at 100k with gSDE); 20-episode eval."""
    agent = duetto.PPO("gymnax:Pendulum-v1", seeds=SEEDS, preset="pendulum", run_dir=False)
    agent.learn(200_000, eval_every=100_000, eval_episodes=20)
    final = np.asarray(agent.last_eval["seed_returns"])
    assert agent.env_steps <= 204_800
    assert (final >= -400).sum() >= 4, final


def test_fused_sac_learns_pendulum_with_the_replay_in_the_scan():
    """SAC's fast preset, the same threshold as the host test: ≥ −250 at 10k, 4 of 5 seeds."""
    agent = duetto.SAC("gymnax:Pendulum-v1", seeds=SEEDS, preset="fast", run_dir=False)
    agent.learn(10_000, eval_every=5_000)
    final = np.asarray(agent.last_eval["seed_returns"])
    assert (final >= -250).sum() >= 4, final


HP = dict(n_steps=16, batch_size=32, n_epochs=2, normalize_obs=True, normalize_reward=True)


def _leaves(agent, index=None):
    state = agent.loop.state
    if index is not None:
        state = jax.tree.map(lambda x: x[index], state)
    return [np.asarray(x) for x in jax.tree.leaves(state)]


def test_vmapped_seeds_equal_the_same_seeds_one_by_one():
    together = duetto.PPO("gymnax:CartPole-v1", seeds=[3, 5], n_envs=4, run_dir=False, **HP)
    together.learn(640, eval_every=320)
    for i, seed in enumerate([3, 5]):
        alone = duetto.PPO("gymnax:CartPole-v1", seed=seed, n_envs=4, run_dir=False, **HP)
        alone.learn(640, eval_every=320)
        for a, b in zip(_leaves(alone, 0), _leaves(together, i), strict=True):
            np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)
        np.testing.assert_allclose(
            alone.last_eval["seed_returns"][0], together.last_eval["seed_returns"][i], rtol=1e-5
        )


def test_fused_resume_is_bit_identical_and_compiles_once(tmp_path):
    full = duetto.SAC(
        "gymnax:Pendulum-v1",
        seeds=[0, 1],
        run_dir=False,
        hidden=(32, 32),
        batch_size=32,
        learning_starts=64,
        buffer_size=300,
    )
    full.learn(600, eval_every=200, eval_episodes=2)
    programs = full.loop.loop
    assert programs._train.cache_size() == 1 and programs._evaluate.cache_size() == 1

    run = tmp_path / "run"
    half = duetto.SAC(
        "gymnax:Pendulum-v1",
        seeds=[0, 1],
        run_dir=run,
        hidden=(32, 32),
        batch_size=32,
        learning_starts=64,
        buffer_size=300,
    )
    half.learn(400, eval_every=200, eval_episodes=2)
    resumed = duetto.load(run)
    assert resumed.env_steps == 400
    resumed.learn(200, eval_every=200, eval_episodes=2)
    for a, b in zip(_leaves(full), _leaves(resumed), strict=True):
        np.testing.assert_array_equal(a, b)
    rows = (run / "seed-1" / "metrics.jsonl").read_text().splitlines()
    assert sum('"eval"' in r for r in rows) == 3
    assert (run / "curve.png").exists() and (run / "seed-0" / "curve.png").exists()


def test_fused_bad_input_is_refused_clearly():
    with pytest.raises(
        DuettoError,
        match="needs a continuous .Box. action space; 'gymnax:CartPole-v1' has Discrete",
    ):
        duetto.SAC("gymnax:CartPole-v1", run_dir=False)
    with pytest.raises(
        DuettoError,
        match="unknown JAX-native environment 'gymnax:CartPol-v1'. Did you mean 'CartPole-v1'",
    ):
        duetto.PPO("gymnax:CartPol-v1", run_dir=False)
    with pytest.raises(DuettoError, match="repeats"):
        duetto.PPO("gymnax:CartPole-v1", seeds=[1, 1], run_dir=False)
    with pytest.raises(DuettoError, match="does not divide"):
        duetto.PPO("gymnax:CartPole-v1", n_steps=10, batch_size=64, run_dir=False)


def test_cli_fused_seeds_and_bad_seed_input(tmp_path, capsys):
    out = tmp_path / "run"
    args = [
        "train",
        "ppo",
        "--env",
        "gymnax:CartPole-v1",
        "--seeds",
        "0-2",
        "--steps",
        "512",
        "--n-envs",
        "4",
        "--n-steps",
        "32",
        "--batch-size",
        "64",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "seeds 0-2" in text and "per seed" in text
    assert sorted(p.name for p in out.iterdir() if p.name.startswith("seed-")) == [
        "seed-0",
        "seed-1",
        "seed-2",
    ]
    assert main(["eval", str(out), "--episodes", "3"]) == 0
    assert (
        main(["train", "ppo", "--env", "gymnax:CartPole-v1", "--seed", "1", "--seeds", "0-2"]) == 2
    )
    assert "seeds given twice" in capsys.readouterr().err
    assert main(["train", "ppo", "--env", "gymnax:CartPole-v1", "--seeds", "3-1"]) == 2
    assert "not a seed list" in capsys.readouterr().err
    assert main(args) == 2  # the run directory exists: refused, nothing touched
    assert "already exists" in capsys.readouterr().err


def test_cli_host_seeds_write_one_run_per_seed(tmp_path, capsys):
    out = tmp_path / "host"
    assert (
        main(
            [
                "train",
                "ppo",
                "--env",
                "CartPole-v1",
                "--seeds",
                "0,2",
                "--steps",
                "64",
                "--n-steps",
                "32",
                "--batch-size",
                "32",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert (out / "seed-0" / "metrics.jsonl").exists() and (out / "seed-2" / "eval.json").exists()
    assert (out / "curve.png").exists() and (out / "eval.json").exists()
    assert main(["train", "--resume", str(out), "--steps", "10"]) == 2
    assert "holds one run per seed" in capsys.readouterr().err


def test_a_sweep_is_the_same_runs_in_one_program(tmp_path):
    """learning_rate × gamma × 1 seed in one program equals each combination run alone."""
    sweep = {"learning_rate": [1e-3, 3e-4], "gamma": [0.98, 0.99]}
    together = duetto.PPO(
        "gymnax:CartPole-v1", seed=2, sweep=sweep, n_envs=4, run_dir=tmp_path / "sweep", **HP
    )
    together.learn(320, eval_every=320)
    assert together.run_names == [
        "learning_rate=0.001-gamma=0.98-seed-2",
        "learning_rate=0.001-gamma=0.99-seed-2",
        "learning_rate=0.0003-gamma=0.98-seed-2",
        "learning_rate=0.0003-gamma=0.99-seed-2",
    ]
    for i, run in enumerate(together.runs):
        alone = duetto.PPO(
            "gymnax:CartPole-v1", seed=2, n_envs=4, run_dir=False, **{**HP, **run["hparams"]}
        )
        alone.learn(320, eval_every=320)
        for a, b in zip(_leaves(alone, 0), _leaves(together, i), strict=True):
            np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)
    config = (tmp_path / "sweep" / together.run_names[2] / "config.json").read_text()
    assert '"learning_rate": 0.0003' in config and '"gamma": 0.98' in config
    resumed = duetto.load(tmp_path / "sweep")
    assert resumed.runs == together.runs


def test_sweep_bad_input_is_refused_clearly():
    with pytest.raises(DuettoError, match="'batch_size' cannot be swept in one program"):
        duetto.PPO("gymnax:CartPole-v1", sweep={"batch_size": [32, 64]}, run_dir=False)
    with pytest.raises(DuettoError, match="unknown hyperparameter 'learning_rte' in the sweep"):
        duetto.PPO("gymnax:CartPole-v1", sweep={"learning_rte": [1e-3]}, run_dir=False)
    with pytest.raises(DuettoError, match="'gamma' is 1.5; it must be in"):
        duetto.PPO("gymnax:CartPole-v1", sweep={"gamma": [0.9, 1.5]}, run_dir=False)
    with pytest.raises(DuettoError, match="sweep= trains several hyperparameter values"):
        duetto.PPO("CartPole-v1", sweep={"gamma": [0.9, 0.99]}, run_dir=False)
    assert main(["train", "ppo", "--env", "gymnax:CartPole-v1", "--sweep", "gamma"]) == 2


def test_classic_gymnax_envs_load_without_all_of_gymnax():
    """A classic-control env skips gymnax's package imports (every env, seaborn included); a
    later `import gymnax` still works, whole, and gives the same classes."""
    import subprocess
    import sys

    script = """
import sys
import jax
import numpy as np
from duetto.envs.jaxenv import CLASSIC, make_jax_env
envs = {n: make_jax_env("gymnax:" + n, "ppo", ("discrete", "box")) for n in CLASSIC}
assert "seaborn" not in sys.modules, "all of gymnax imported"
import gymnax
assert gymnax.environments.spaces.Box and gymnax.environments.classic_control.CartPole
for name, env in envs.items():
    real, params = gymnax.make(name)
    same = jax.tree.map(lambda a, b: bool(np.all(a == b)), params, env.params)
    assert type(real) is type(env.env) and jax.tree.all(same), name
print("ok")
"""
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
