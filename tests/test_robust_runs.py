"""Runs that survive their users (issue 15): the env a run trained on, interrupts, resume
without --steps, SB3 habits, and one clear line for bad input."""

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import zipfile

import gymnasium as gym
import numpy as np
import pytest

import duetto
from duetto.errors import DuettoError
from duetto.runs.interrupt import Interrupted

CLI_SMALL = ["--hidden", "32,32", "--batch-size", "32", "--learning-starts", "64"]
CLI_SMALL += ["--buffer-size", "4000", "--eval-episodes", "2", "--seed", "5"]


def cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "duetto", *map(str, args)], capture_output=True, text=True, cwd=cwd
    )


def state_arrays(path):
    with zipfile.ZipFile(path) as z, np.load(io.BytesIO(z.read("state.npz"))) as npz:
        return {k: npz[k] for k in npz.files}


def rows(run_dir):
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def assert_same_state(a, b):
    arrays_a, arrays_b = state_arrays(a), state_arrays(b)
    assert arrays_a.keys() == arrays_b.keys()
    for k in arrays_a:
        np.testing.assert_array_equal(arrays_a[k], arrays_b[k], err_msg=k)


def assert_same_history(run, straight):
    """The same rows at the same steps (train and eval), the same evaluation returns."""
    got, want = rows(run), rows(straight)
    assert [(r["kind"], r["step"]) for r in got] == [(r["kind"], r["step"]) for r in want]
    evals = [(r["step"], r["return_mean"]) for r in got if r["kind"] == "eval"]
    assert evals == [(r["step"], r["return_mean"]) for r in want if r["kind"] == "eval"]


# ---- interrupts keep the work --------------------------------------------------------------


@pytest.fixture(scope="module")
def straight_cli_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("straight") / "run"
    r = cli("train", "sac", "--env", "Pendulum-v1", "--steps", 3000, "--out", out, *CLI_SMALL)
    assert r.returncode == 0, r.stderr
    return out


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_cli_run_stopped_by_a_signal_keeps_a_checkpoint_and_resumes_exactly(
    tmp_path, straight_cli_run, signum
):
    out = tmp_path / "run"
    args = ["train", "sac", "--env", "Pendulum-v1", "--steps", 3000, "--out", out, *CLI_SMALL]
    proc = subprocess.Popen(
        [sys.executable, "-m", "duetto", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not ((out / "metrics.jsonl").exists() and rows(out)):  # training has begun
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.02)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, err
    ckpts = sorted((out / "checkpoints").glob("*.ckpt"))
    assert len(ckpts) == 1 and ckpts[0].name < "step-0000003000.ckpt", ckpts
    assert f"duetto train --resume {out}" in err

    r = cli("train", "--resume", out)  # no --steps: on to the 3,000 it planned
    assert r.returncode == 0, r.stderr
    assert_same_state(
        out / "checkpoints/step-0000003000.ckpt",
        straight_cli_run / "checkpoints/step-0000003000.ckpt",
    )
    assert_same_history(out, straight_cli_run)  # no duplicate rows at the resume point

    r = cli("train", "--resume", out)
    assert r.returncode == 2 and "has finished its training at 3000" in r.stderr


def test_an_exception_in_a_callback_keeps_a_checkpoint_and_learn_finishes_the_call(
    tmp_path, tiny
):
    def explode(ctx):
        if ctx.env_steps == 250:
            raise RuntimeError("my callback broke")

    options = {"eval_every": 100, "eval_episodes": 2, "log_every": 50}
    straight = duetto.SAC("Pendulum-v1", seed=1, run_dir=tmp_path / "straight", **tiny)
    straight.learn(400, **options)

    agent = duetto.SAC("Pendulum-v1", seed=1, run_dir=tmp_path / "run", **tiny)
    with pytest.raises(RuntimeError, match="my callback broke") as raised:
        agent.learn(400, **options, callbacks=[explode])
    assert "training stopped at env step 250" in "".join(raised.value.__notes__)
    assert (tmp_path / "run/checkpoints/step-0000000250.ckpt").exists()

    resumed = duetto.load(tmp_path / "run")
    resumed.learn()  # finishes the interrupted call, with its evaluation and log schedule
    assert resumed.env_steps == 400
    assert_same_state(
        tmp_path / "run/checkpoints/step-0000000400.ckpt",
        tmp_path / "straight/checkpoints/step-0000000400.ckpt",
    )
    assert_same_history(tmp_path / "run", tmp_path / "straight")
    with pytest.raises(DuettoError, match="finished its last learn"):
        resumed.learn()


def test_a_signal_in_python_raises_interrupted_after_the_checkpoint(tmp_path, tiny):
    def ctrl_c(ctx):
        if ctx.env_steps == 120:
            os.kill(os.getpid(), signal.SIGINT)

    agent = duetto.SAC("Pendulum-v1", seed=0, run_dir=tmp_path / "run", **tiny)
    with pytest.raises(Interrupted) as raised:
        agent.learn(300, callbacks=[ctrl_c])
    assert raised.value.env_steps == 120 and raised.value.exit_code == 130
    assert raised.value.checkpoint == tmp_path / "run/checkpoints/step-0000000120.ckpt"
    assert raised.value.checkpoint.exists()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers restored


def test_a_short_learn_evaluates_at_its_end_only(tiny):
    agent = duetto.SAC("Pendulum-v1", seed=0, run_dir=False, **tiny)
    seen = []
    agent.learn(300, eval_episodes=1, callbacks=[lambda ctx: seen.append(ctx.last_eval)])
    assert all(ev is None for ev in seen) and agent.last_eval["step"] == 300


# ---- a run knows its env ---------------------------------------------------------------------


def test_evaluation_after_load_runs_on_the_env_with_its_arguments(tmp_path, tiny):
    agent = duetto.SAC(gym.make("Pendulum-v1", g=2.0), seed=0, run_dir=tmp_path / "r", **tiny)
    agent.learn(200, eval_episodes=3)
    config = json.loads((tmp_path / "r/config.json").read_text())
    assert config["env_build"]["id"] == "Pendulum-v1"
    assert config["env_build"]["kwargs"] == {"g": 2.0}

    on_disk = json.loads((tmp_path / "r/eval.json").read_text())["returns"]
    assert agent.evaluate(3)["returns"] == on_disk  # same start states, same env
    loaded = duetto.load(tmp_path / "r")
    assert loaded.evaluate(3)["returns"] == on_disk
    bare = duetto.SAC("Pendulum-v1", seed=0, run_dir=False, **tiny)
    bare.loop.state = agent.loop.state  # the same policy on g = 10
    assert bare.evaluate(3)["returns"] != on_disk


def test_normalising_wrappers_are_evaluated_with_the_training_statistics_frozen(tmp_path, tiny):
    env = gym.make("Pendulum-v1")
    env = gym.wrappers.NormalizeObservation(gym.wrappers.RescaleAction(env, -1.0, 1.0))
    agent = duetto.SAC(env, seed=0, run_dir=tmp_path / "r", **tiny)
    agent.learn(300, eval_episodes=2)
    trained = agent.loop.vec.envs[0]
    mean = trained.obs_rms.mean.copy()
    assert not np.allclose(mean, 0.0)  # training moved the statistics
    first = agent.evaluate(2)["returns"]
    np.testing.assert_array_equal(trained.obs_rms.mean, mean)  # evaluation left them alone
    assert agent.evaluate(2)["returns"] == first  # and did not move its own copy's either
    loaded = duetto.load(tmp_path / "r")
    assert loaded.evaluate(2)["returns"] == first
    config = json.loads((tmp_path / "r/config.json").read_text())
    names = [w["name"] for w in config["env_build"]["wrappers"]]
    assert names[-2:] == ["RescaleAction", "NormalizeObservation"]


class DictPoint(gym.Env):
    """A Dict-observation task made flat by FlattenObservation (whose lambda plain pickle
    cannot save)."""

    def __init__(self):
        self.observation_space = gym.spaces.Dict(
            {"x": gym.spaces.Box(-1, 1, (1,)), "v": gym.spaces.Box(-1, 1, (1,))}
        )
        self.action_space = gym.spaces.Box(-1, 1, (1,))

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x = self.np_random.uniform(-1, 1, (1,)).astype(np.float32)
        return {"x": self.x, "v": np.zeros(1, np.float32)}, {}

    def step(self, action):
        self.x = np.clip(self.x + 0.1 * action, -1, 1).astype(np.float32)
        obs = {"x": self.x, "v": np.asarray(action, np.float32)}
        return obs, -float(abs(self.x[0])), False, False, {}


def test_a_flattened_dict_env_trains_saves_and_loads(tmp_path, tiny):
    env = gym.wrappers.TimeLimit(gym.wrappers.FlattenObservation(DictPoint()), 50)
    agent = duetto.SAC(env, seed=0, run_dir=tmp_path / "r", **tiny).learn(150)
    assert (tmp_path / "r/checkpoints/step-0000000150.ckpt").exists()
    assert duetto.load(tmp_path / "r").evaluate(2)["returns"] == agent.evaluate(2)["returns"]


def test_an_env_class_from_a_script_is_evaluated_in_another_process(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(
        textwrap.dedent(
            """
            import gymnasium as gym
            import numpy as np
            import duetto

            class Drift(gym.Env):  # defined in __main__: another process cannot import it
                def __init__(self, drift):
                    self.drift = drift
                    self.observation_space = gym.spaces.Box(-5, 5, (1,))
                    self.action_space = gym.spaces.Box(-1, 1, (1,))

                def reset(self, *, seed=None, options=None):
                    super().reset(seed=seed)
                    self.x = self.np_random.uniform(-1, 1, (1,)).astype(np.float32)
                    return self.x, {}

                def step(self, action):
                    self.x = np.clip(self.x + 0.1 * action + self.drift, -5, 5)
                    return self.x.astype(np.float32), -float(abs(self.x[0])), False, False, {}

            env = gym.wrappers.TimeLimit(Drift(drift=0.3), 40)
            agent = duetto.SAC(env, seed=0, run_dir="run", hidden=(16, 16), learning_starts=32,
                               batch_size=16, buffer_size=500)
            agent.learn(100, eval_episodes=3)
            print(agent.evaluate(3, seed=7)["return_mean"])
            """
        )
    )
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    here = float(r.stdout.split()[-1])
    config = json.loads((tmp_path / "run/config.json").read_text())
    assert config["env_build"]["class"] == "__main__:Drift"
    r = cli("eval", tmp_path / "run", "--episodes", 3, "--seed", 7)
    assert r.returncode == 0, r.stderr
    assert f"return {here:.1f}" in r.stdout


def test_an_env_that_cannot_be_saved_is_refused_before_training(tmp_path, tiny):
    import threading

    agent = duetto.SAC("Pendulum-v1", seed=0, run_dir=tmp_path / "r", **tiny)
    agent.loop.vec.envs[0].unwrapped.lock = threading.Lock()  # a lock cannot be pickled
    with pytest.raises(DuettoError, match="cannot be saved in a checkpoint"):
        agent.learn(100)
    assert agent.env_steps == 0


# ---- SB3 habits --------------------------------------------------------------------------------


def test_sb3_spellings_work(tmp_path, tiny):
    model = duetto.SAC("MlpPolicy", "Pendulum-v1", run_dir=False, **tiny)
    model.learn(total_timesteps=100, progress_bar=False, callback=lambda ctx: None)
    assert model.env_steps == 100
    action, state = model.predict(np.zeros(3), deterministic=True)
    assert action.shape == (1,) and state is None
    actions, _ = model.predict(np.zeros((4, 3)))
    assert actions.shape == (4, 1)
    path = model.save(tmp_path / "sac.ckpt")
    loaded = duetto.SAC.load(path)
    assert isinstance(loaded, duetto.SAC) and loaded.env_steps == 100
    with pytest.raises(DuettoError, match="holds a sac run, not td3"):
        duetto.TD3.load(path)
    with pytest.raises(DuettoError, match="observation has shape"):
        model.predict(np.zeros(4))


@pytest.mark.parametrize(
    ("keyword", "answer"),
    [
        ({"train_freq": 4}, "env_steps_per_update"),
        ({"ent_coef": "auto"}, "init_temperature"),
        ({"net_arch": [64, 64]}, "hidden"),
        ({"policy_kwargs": {}}, "hidden="),
        ({"policy": "LstmPolicy"}, "custom policy classes are not offered"),
    ],
)
def test_sb3_names_get_duettos_equivalent(keyword, answer):
    with pytest.raises(DuettoError, match=answer):
        duetto.SAC("Pendulum-v1", run_dir=False, **keyword)


def test_sb3_learn_keywords_get_duettos_equivalent(tiny):
    model = duetto.SAC("Pendulum-v1", run_dir=False, **tiny)
    with pytest.raises(DuettoError, match="log_every"):
        model.learn(100, log_interval=4)
    with pytest.raises(DuettoError, match="make a new agent"):
        model.learn(100, reset_num_timesteps=True)


# ---- one line for bad input ------------------------------------------------------------------


def test_a_read_only_output_directory_is_one_line_and_writes_nothing(monkeypatch, tmp_path, tiny):
    import errno
    from pathlib import Path

    def read_only(self, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(self))

    agent = duetto.SAC("Pendulum-v1", run_dir=tmp_path / "ro/run", **tiny)
    monkeypatch.setattr(Path, "mkdir", read_only)
    with pytest.raises(DuettoError, match="cannot write the run directory .*Read-only file system"):
        agent.learn(100)
    assert list(tmp_path.iterdir()) == []


def test_an_env_whose_extra_is_missing_names_the_extra(monkeypatch, capsys):
    import importlib.util

    from duetto import cli
    from duetto.envs import gym as duetto_gym

    real = importlib.util.find_spec
    monkeypatch.setattr(
        duetto_gym.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "Box2D" else real(name, *a),
    )
    assert cli.main(["train", "ppo", "--env", "LunarLander-v3", "--steps", "100"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install swig 'gymnasium[box2d]'" in err[0]
    assert cli.main(["list"]) == 0
    listing = capsys.readouterr().out
    assert "LunarLander-v3 (needs gymnasium[box2d])" in listing
    assert "Pendulum-v1 (needs" not in listing
