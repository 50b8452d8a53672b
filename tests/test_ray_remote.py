"""Remote env runners (loops/remote.py): sub-envs stepped by Ray actors give the local run's
data, so the run equals the local one bit for bit, and its checkpoints hold the runners' exact
env states."""

import warnings

import jax
import numpy as np
import pytest

import duetto
from duetto.errors import DuettoError
from duetto.loops.remote import remote_envs

SMALL = {"hidden": (32, 32), "batch_size": 32, "learning_starts": 64, "buffer_size": 2000}


@pytest.fixture(scope="session")
def local_ray():
    """A local Ray, started once per session (and xdist worker) unless one is up already."""
    import ray

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


def _leaves(agent):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(agent.state)]


@pytest.fixture(scope="module")
def local(local_ray):
    """Trained in this process with local sub-envs: what every remote run must equal."""
    agent = _train(0)
    yield agent
    agent.close()


def _train(runners, steps=400, **kwargs):
    agent = duetto.SAC("Pendulum-v1", seed=0, n_envs=3, run_dir=False, **SMALL, **kwargs)
    if runners:
        remote_envs(agent, runners=runners)
    agent.learn(steps, eval_every=200, eval_episodes=2)
    return agent


def test_remote_runners_equal_the_local_run(local):
    remote = _train(2)  # sub-envs 0-1 on one runner, 2 on the other
    assert remote.last_eval["returns"] == local.last_eval["returns"]
    for a, b in zip(_leaves(remote), _leaves(local), strict=True):
        np.testing.assert_array_equal(a, b)
    remote.close()


@pytest.mark.slow  # two more trainings with runners
def test_remote_run_checkpoints_and_resumes_exactly(local, tmp_path):
    agent = duetto.SAC("Pendulum-v1", seed=0, n_envs=3, run_dir=tmp_path / "run", **SMALL)
    remote_envs(agent, runners=2)
    agent.learn(200, eval_every=200, eval_episodes=2)  # episodes go on across the checkpoint
    agent.close()
    resumed = duetto.load(tmp_path / "run")
    remote_envs(resumed, runners=2)
    resumed.learn(200, eval_every=200, eval_episodes=2)
    for a, b in zip(_leaves(resumed), _leaves(local), strict=True):
        np.testing.assert_array_equal(a, b)
    resumed.close()


def test_remote_runners_bad_input(local_ray):
    agent = duetto.SAC("Pendulum-v1", seed=0, n_envs=2, run_dir=False, **SMALL)
    with pytest.raises(DuettoError, match="3 runners for 2 sub-envs"):
        remote_envs(agent, runners=3)
    with pytest.raises(DuettoError, match="runners must be a positive integer"):
        remote_envs(agent, runners=0)
    fused = duetto.PPO("gymnax:CartPole-v1", seed=0, run_dir=False)
    with pytest.raises(DuettoError, match="JAX-native env runs inside the compiled program"):
        remote_envs(fused)
