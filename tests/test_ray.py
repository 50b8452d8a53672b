"""Seeds and sweeps as Ray Tune trials (duetto/distributed/): search spaces checked against the
typed configs, trials that write the run directories a local run writes (bit for bit), a trial
whose worker is killed continuing exactly from its checkpoint, ASHA, and a sweep resumed after
its driver was interrupted. One local Ray for the module."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
import warnings

import numpy as np
import pytest

import duetto
from duetto.distributed import LogUniform, RandInt, Uniform
from duetto.distributed.space import build_space
from duetto.errors import DuettoError

SMALL = {"hidden": (32, 32), "batch_size": 32, "learning_starts": 64, "buffer_size": 2000}
STEPS, EVERY = 1200, 300
MARK = f"duetto-test-{uuid.uuid4().hex[:8]}"  # in the environment of this module's Ray workers


def _sac():
    from duetto.algorithms import get_algorithm

    return get_algorithm("sac")


def _ckpt_arrays(path):
    import io
    import zipfile

    with zipfile.ZipFile(path) as z, np.load(io.BytesIO(z.read("state.npz"))) as npz:
        return {k: npz[k] for k in npz.files}


def _final_checkpoint(run_dir):
    return sorted((run_dir / "checkpoints").glob("step-*.ckpt"))[-1]


def _assert_same_state(a, b):
    arrays_a, arrays_b = _ckpt_arrays(a), _ckpt_arrays(b)
    assert arrays_a.keys() == arrays_b.keys()
    for k in arrays_a:
        np.testing.assert_array_equal(arrays_a[k], arrays_b[k], err_msg=k)


def _evals(run_dir):
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["return_mean"]) for r in rows if r["kind"] == "eval"]


# ---- search spaces (no Ray) -------------------------------------------------------------------


def test_space_grid_is_every_combination_and_random_draws_are_seeded():
    space = build_space(
        _sac(),
        {"learning_rate": "1e-3,3e-4", "gamma": [0.98, 0.99], "tau": "0.01", "hidden": "64,64"},
    )
    assert space.fixed == {"tau": 0.01, "hidden": (64, 64)}
    assert len(space.grid_settings()) == 4
    assert {"learning_rate": 3e-4, "gamma": 0.98} in space.grid_settings()
    space = build_space(
        _sac(),
        {"learning_rate": "loguniform:1e-4:1e-2", "n_critics": RandInt(2, 4), "gamma": [0.9, 0.99]},
    )
    draws = space.random_settings(3, seed=7)
    assert len(draws) == 6  # each draw crossed with the grid
    assert draws == space.random_settings(3, seed=7) != space.random_settings(3, seed=8)
    assert all(1e-4 <= d["learning_rate"] <= 1e-2 and d["n_critics"] in (2, 3, 4) for d in draws)
    assert build_space(_sac(), {"hidden": "32,32/64,64"}).grid == {"hidden": [(32, 32), (64, 64)]}
    saved = json.loads(json.dumps(build_space(_sac(), {"hidden": (32, 32)}).to_json()))
    assert build_space(_sac(), saved["fixed"]).fixed == {"hidden": (32, 32)}


@pytest.mark.parametrize(
    "items,message",
    [
        ({"learning_rat": "1e-3"}, "Did you mean 'learning_rate'"),
        ({"gamma": "0.9,1.5"}, "'gamma' is 1.5; it must be in [0, 1]"),
        ({"learning_rate": "loguniform:0:1e-3"}, "loguniform 'learning_rate' needs LOW > 0"),
        ({"learning_rate": "uniform:1e-3"}, "must look like uniform:LOW:HIGH"),
        ({"batch_size": Uniform(8, 64)}, "'batch_size' is an integer; use randint"),
        ({"gamma": RandInt(0, 1)}, "'gamma' is a real number"),
        ({"tau": Uniform(0.5, 2.0)}, "'tau' is 2.0; it must be in (0, 1]"),
        ({"warmup_actions": LogUniform(1, 2)}, "is not a number"),
        ({"gamma": "0.99,0.99"}, "must be distinct"),
    ],
)
def test_bad_search_space_is_one_clear_error(items, message):
    with pytest.raises(DuettoError) as e:
        build_space(_sac(), items)
    assert message in str(e.value)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"space": {"gamma": Uniform(0.9, 0.99)}}, "grid search tries lists"),
        ({"search": "random"}, "random search needs samples"),
        ({"search": "optuna", "samples": 4, "space": {"gamma": [0.9, 0.99]}}, "as a range"),
        (
            {
                "search": "optuna",
                "samples": 4,
                "seeds": [0, 1],
                "space": {"gamma": Uniform(0.9, 0.99)},
            },
            "give one seed on a Gymnasium env",
        ),
        ({"search": "bayes"}, "search must be one of grid, random, optuna"),
        ({"seeds": [0, 0]}, "seeds must be distinct"),
        ({"env": "Pendulum-v9"}, "Pendulum"),
        ({"workers": 0}, "workers must be a positive integer"),
    ],
)
def test_bad_sweep_stops_before_ray_starts_or_anything_is_written(tmp_path, kwargs, message):
    import ray

    kwargs = {"env": "Pendulum-v1", **kwargs}
    running = ray.is_initialized()  # another Ray test of this session may have started one
    with pytest.raises(DuettoError) as e:
        duetto.sweep("sac", out=tmp_path / "never", steps=100, **kwargs)
    assert message in str(e.value)
    assert not (tmp_path / "never").exists()
    assert ray.is_initialized() == running


def test_trial_checkpoints_before_it_reports_and_never_at_the_planned_end(monkeypatch):
    from duetto.callbacks import TrainingContext
    from duetto.distributed import trial

    reported, saved = [], []
    monkeypatch.setattr(trial, "report", lambda ev, steps: reported.append(steps))

    class Agent:
        plan = {"end": 1000}

        def checkpoint(self):
            saved.append(ctx.env_steps)

    def at(step, evaluated=None):
        ctx.env_steps = step
        if evaluated is not None:
            ctx.last_eval = {"step": evaluated, "return_mean": 0.0}
        report(ctx)

    for every, expect_saved in ((None, [300, 600, 900]), (200, [200, 400, 600, 800])):
        reported.clear(), saved.clear()
        ctx = TrainingContext(Agent(), 0, 0)
        report = trial.TuneReport(every, seen=None, saved=0)
        for step in range(100, 1001, 100):
            at(step, evaluated=step if step % 300 == 0 or step == 1000 else None)
        assert reported == [300, 600, 900]  # the end (1000) is reported after eval.json
        assert saved == expect_saved


# ---- trials on a local Ray ----------------------------------------------------------------------


@pytest.fixture(scope="session")
def local_ray():
    """One local Ray for the session's Ray tests (per xdist worker): started once, on first use."""
    import ray

    os.environ["DUETTO_TEST_MARK"] = MARK  # before Ray starts: its workers inherit it
    started = not ray.is_initialized()
    if started:
        with warnings.catch_warnings():  # ray.init forks and execs at once: safe after JAX
            warnings.simplefilter("ignore", RuntimeWarning)
            ray.init(
                num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR"
            )
    yield
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    """Seed 0 trained in this process, uninterrupted: what every trial of seed 0 must equal."""
    out = tmp_path_factory.mktemp("local") / "run"
    agent = duetto.SAC("Pendulum-v1", seed=0, run_dir=out, **SMALL)
    agent.learn(STEPS, eval_every=EVERY, eval_episodes=1)
    agent.close()
    return out


def _trial_workers():
    """The pids of this module's Tune trial workers (Ray names them ray::ImplicitFunc)."""
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if not f.read().startswith(b"ray::ImplicitFunc"):
                    continue
            with open(f"/proc/{pid}/environ", "rb") as f:
                if MARK.encode() in f.read():
                    pids.append(int(pid))
        except OSError:
            continue
    return pids


def test_killed_trial_worker_continues_from_its_checkpoint_bit_for_bit(
    local_ray, local_run, tmp_path, capsys
):
    out = tmp_path / "sweep"
    run_dir = out / "seed-0"
    killed = []

    def kill_after_first_checkpoint():
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            if list((run_dir / "checkpoints").glob("step-*.ckpt")) and _trial_workers():
                for pid in _trial_workers():
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                return
            time.sleep(0.02)

    watcher = threading.Thread(target=kill_after_first_checkpoint, daemon=True)
    watcher.start()
    rows = duetto.sweep(
        "sac",
        "Pendulum-v1",
        seeds=[0],
        space=SMALL,
        steps=STEPS,
        eval_every=EVERY,
        eval_episodes=1,
        workers=1,
        out=out,
    )
    watcher.join()
    assert killed, "the trial finished before its worker could be killed"
    assert (
        "its worker failed; starting it again from its last checkpoint" in capsys.readouterr().out
    )
    first = sorted((run_dir / "checkpoints").glob("step-*.ckpt"))[0]
    assert first.name < _final_checkpoint(run_dir).name  # it went on from a checkpoint
    _assert_same_state(_final_checkpoint(run_dir), _final_checkpoint(local_run))
    assert _evals(run_dir) == _evals(local_run)  # the steps logged twice are logged once
    assert rows[0]["returns"] == [json.loads((local_run / "eval.json").read_text())["return_mean"]]
    # the directory a local run writes, read by plot and report as one
    assert {"config.json", "metrics.jsonl", "eval.json", "curve.png"} <= {
        p.name for p in run_dir.iterdir()
    }
    assert duetto.plot(out, tmp_path / "c.png", aggregate=True).stat().st_size > 0


def test_grid_sweep_with_asha_stops_the_trials_that_fall_behind(local_ray, tmp_path):
    out = tmp_path / "asha"
    rows = duetto.sweep(
        "sac",
        "Pendulum-v1",
        seeds=[0],
        # in this order, on seed 0: -1170 then -1402 at the first rung (300 steps)
        space={**SMALL, "learning_rate": [1e-6, 3e-3]},
        steps=900,
        eval_every=300,
        eval_episodes=1,
        asha=True,
        workers=1,
        out=out,
        verbose=False,
    )
    assert [(r["setting"]["learning_rate"], len(r["returns"]), r["stopped"]) for r in rows] == [
        (1e-6, 1, 0),
        (3e-3, 0, 1),
    ]
    for row in rows:
        run_dir = out / row["runs"][0]
        if row["stopped"]:  # stopped at a rung: checkpointed there, never finished
            assert not (run_dir / "eval.json").exists()
            assert list((run_dir / "checkpoints").glob("step-*.ckpt"))
        else:
            assert json.loads((run_dir / "eval.json").read_text())["step"] == 900
    summary = json.loads((out / "summary.json").read_text())
    assert summary == rows and rows[0]["return_mean"] is not None


def test_optuna_search_proposes_settings_in_their_ranges(local_ray, tmp_path):
    space = {**SMALL, "learning_rate": LogUniform(1e-4, 1e-2), "gamma": Uniform(0.9, 0.99)}
    for search in ("optuna",):
        rows = duetto.sweep(
            "sac",
            "Pendulum-v1",
            seeds=[0],
            space=space,
            search=search,
            samples=2,
            steps=200,
            eval_every=200,
            eval_episodes=1,
            workers=2,
            out=tmp_path / search,
            verbose=False,
        )
        assert len(rows) == 2 and all(len(r["returns"]) == 1 for r in rows)
        for row in rows:
            s = row["setting"]
            assert 1e-4 <= s["learning_rate"] <= 1e-2 and 0.9 <= s["gamma"] <= 0.99
            config = json.loads((tmp_path / search / row["runs"][0] / "config.json").read_text())
            assert config["config"]["learning_rate"] == s["learning_rate"]


@pytest.mark.slow  # two commands, each with its own Ray: about a minute
def test_interrupted_sweep_resumes_finished_trials_kept_unfinished_exact(local_run, tmp_path):
    """The driver is stopped (SIGINT) while seed 0 trains, after seed 1 finished; `duetto
    sweep --resume` keeps seed 1 as it is and finishes seed 0 as an uninterrupted run."""
    out = tmp_path / "sweep"
    cmd = [sys.executable, "-m", "duetto", "sweep", "sac", "--env", "Pendulum-v1"]
    cmd += ["--seeds", "1,0", "--steps", str(STEPS), "--eval-every", str(EVERY)]
    cmd += ["--eval-episodes", "1", "--workers", "1", "--out", str(out)]
    cmd += ["--hidden", "32,32", "--batch-size", "32", "--learning-starts", "64"]
    cmd += ["--buffer-size", "2000"]
    driver = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not list((out / "seed-0" / "checkpoints").glob("step-*.ckpt")):
        assert driver.poll() is None and time.monotonic() < deadline, driver.communicate()
        time.sleep(0.02)
    driver.send_signal(signal.SIGINT)
    _, err = driver.communicate(timeout=120)
    assert driver.returncode != 0
    assert f"duetto sweep --resume {out}" in err.strip().splitlines()[-1]
    assert not (out / "seed-0" / "eval.json").exists()
    kept = {p: p.stat().st_mtime_ns for p in (out / "seed-1").rglob("*") if p.is_file()}

    r = subprocess.run(
        [sys.executable, "-m", "duetto", "sweep", "--resume", str(out)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert {p: p.stat().st_mtime_ns for p in (out / "seed-1").rglob("*") if p.is_file()} == kept
    _assert_same_state(_final_checkpoint(out / "seed-0"), _final_checkpoint(local_run))
    assert _evals(out / "seed-0") == _evals(local_run)


@pytest.mark.slow  # two fused programs to compile
def test_a_jax_env_trains_all_seeds_of_a_setting_in_one_trial(local_ray, tmp_path):
    out = tmp_path / "fused"
    rows = duetto.sweep(
        "ppo",
        "gymnax:CartPole-v1",
        seeds=[0, 1],
        space={"learning_rate": [1e-3, 3e-4], "hidden": (16, 16)},
        steps=2048,
        eval_every=1024,
        eval_episodes=2,
        out=out,
        verbose=False,
    )
    assert sorted(r["setting"]["learning_rate"] for r in rows) == [3e-4, 1e-3]
    for row in rows:
        assert row["runs"] == [f"learning_rate={row['setting']['learning_rate']:.4g}-seeds-0-1"]
        trial = out / row["runs"][0]
        per_seed = json.loads((trial / "eval.json").read_text())["seed_returns"]
        assert row["returns"] == per_seed and len(per_seed) == 2
        assert all((trial / f"seed-{s}" / "metrics.jsonl").exists() for s in (0, 1))
    # the sweep directory stands for its four runs, two levels down
    from duetto.analysis.curves import expand_runs

    assert len(expand_runs([out])) == 4
    assert duetto.plot(out, tmp_path / "c.png", aggregate=True).stat().st_size > 0


def test_a_trial_that_keeps_failing_ends_the_sweep_with_one_clear_error(local_ray, tmp_path):
    """An env registered in the driver only (not importable by the workers) fails its trial."""
    import gymnasium as gym
    from gymnasium.envs.classic_control import PendulumEnv

    gym.register("DuettoDriverOnly-v0", entry_point=lambda: PendulumEnv(), max_episode_steps=200)
    try:
        with pytest.raises(DuettoError) as e:
            duetto.sweep(
                "sac",
                "DuettoDriverOnly-v0",
                space=SMALL,
                steps=200,
                max_failures=0,
                out=tmp_path / "sweep",
                verbose=False,
            )
    finally:
        gym.registry.pop("DuettoDriverOnly-v0")
    message = str(e.value)
    assert "1 trial(s) failed after 0 restarts; first: " in message and "\n" not in message
    assert "DuettoDriverOnly" in message
    assert f"duetto sweep --resume {tmp_path / 'sweep'}" in message
    assert json.loads((tmp_path / "sweep" / "summary.json").read_text())[0]["failed"] == 1
