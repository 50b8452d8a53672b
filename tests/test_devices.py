"""Runs split over devices: one CPU device per core, a fused run's seeds sharded across them,
the same runs as on one device, and a bad device count refused clearly."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from duetto.devices import runs_sharding

# Two seeds of fused PPO: the leaves of the state after training, and how many seeds each
# device holds (the leading axis of each leaf's shard) after the first and the second call.
SCRIPT = """
import json, sys
import jax, numpy as np
import duetto
duetto.configure()
agent = duetto.PPO("gymnax:CartPole-v1", seeds=[3, 5], n_envs=4, run_dir=False, hidden=(16, 16),
                   n_steps=32, batch_size=64, n_epochs=2)
agent.learn(640, eval_every=320)
per_device = {x.sharding.shard_shape(x.shape)[0] for x in jax.tree.leaves(agent.loop.state)}
agent.learn(320, eval_every=320)  # the layout the programs return is the one they take
per_device |= {x.sharding.shard_shape(x.shape)[0] for x in jax.tree.leaves(agent.loop.state)}
np.savez(sys.argv[1], *[np.asarray(x) for x in jax.tree.leaves(agent.loop.state)])
print(json.dumps({"cpus": len(jax.devices()), "per_device": sorted(per_device),
                  "returns": agent.last_eval["seed_returns"]}))
"""


def _run(tmp_path, devices: str) -> tuple[dict, list[np.ndarray]]:
    out = tmp_path / f"state-{devices}.npz"
    env = {**os.environ, "DUETTO_CPU_DEVICES": devices}
    r = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(out)], capture_output=True, text=True, env=env
    )
    assert r.returncode == 0, r.stderr
    with np.load(out) as f:
        leaves = [f[k] for k in sorted(f.files, key=lambda k: int(k.split("_")[1]))]
    return json.loads(r.stdout.strip().splitlines()[-1]), leaves


def test_seeds_are_split_over_cpu_devices_and_train_as_on_one(tmp_path):
    split, split_leaves = _run(tmp_path, "2")
    one, one_leaves = _run(tmp_path, "1")
    assert split["cpus"] == 2 and split["per_device"] == [1], split  # a seed on each device
    assert one["cpus"] == 1 and one["per_device"] == [2], one
    # The same runs: each device computes its seed as the single device does both (float
    # results may differ in the last bits with the batch a matmul sees).
    for a, b in zip(split_leaves, one_leaves, strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)
    np.testing.assert_allclose(split["returns"], one["returns"], rtol=1e-5)


def test_runs_are_split_over_the_devices_that_divide_them():
    script = (
        "import duetto\nduetto.configure()\nfrom duetto.devices import runs_sharding\n"
        "print([None if (s := runs_sharding(n)) is None else len(s.device_set) "
        "for n in (1, 2, 3, 4, 6, 16, 7)])"
    )
    env = {**os.environ, "DUETTO_CPU_DEVICES": "4"}
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[None, 2, 3, 4, 3, 4, None]"
    sharding = runs_sharding(len(jax.devices()) * 3)  # in this process: every device
    if sharding is not None:
        assert sharding.shard_shape((len(jax.devices()) * 3, 7)) == (3, 7)


def test_a_device_count_jax_has_already_is_kept_and_said():
    env = {
        **os.environ,
        "DUETTO_CPU_DEVICES": "2",
        "XLA_FLAGS": "--xla_force_host_platform_device_count=3",
    }
    script = "import duetto, jax; duetto.configure(); print(len(jax.devices()))"
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "3"
    assert "2 CPU device(s) not set" in r.stderr


@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_a_bad_device_count_is_refused_clearly(value):
    env = {**os.environ, "DUETTO_CPU_DEVICES": value}
    r = subprocess.run(
        [sys.executable, "-c", "import duetto; duetto.configure()"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert r.returncode != 0
    assert "DUETTO_CPU_DEVICES must be a positive integer" in r.stderr
    assert repr(value) in r.stderr.splitlines()[-1]


def test_a_run_resumed_on_another_split_says_so(tmp_path):
    train = (
        "import sys, duetto\n"
        "duetto.configure()\n"
        "a = duetto.PPO('gymnax:CartPole-v1', seeds=[0, 1], n_envs=4, run_dir=sys.argv[1],"
        " hidden=(16, 16), n_steps=32, batch_size=64, n_epochs=2)\n"
        "a.learn(256, eval_every=128, checkpoint_every=128)\n"
        "print(a.devices)"
    )
    resume = (
        "import sys, duetto; duetto.configure(); a = duetto.load(sys.argv[1]); "
        "print(a.devices, a.env_steps)"
    )
    run = str(tmp_path / "run")

    def call(script: str, devices: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "DUETTO_CPU_DEVICES": devices}
        return subprocess.run(
            [sys.executable, "-c", script, run], capture_output=True, text=True, env=env
        )

    trained = call(train, "2")
    assert trained.returncode == 0 and trained.stdout.split()[-1] == "2", trained.stderr
    same = call(resume, "2")
    assert same.returncode == 0 and same.stdout.split() == ["2", "256"], same.stderr
    assert "split over" not in same.stderr
    other = call(resume, "1")
    assert other.returncode == 0 and other.stdout.split() == ["1", "256"], other.stderr
    assert "split over 2 device(s); here they are split over 1" in other.stderr


def test_importing_duetto_changes_nothing_in_the_process():
    """No devices, cache or affinity set at import; JAX not even started. The CLI (and a user
    who asks) calls duetto.configure()."""
    script = (
        "import os, jax\n"
        "before = os.sched_getaffinity(0)\n"
        "import duetto\n"
        "from jax._src import xla_bridge\n"
        "print(xla_bridge.backends_are_initialized(), jax.config.jax_num_cpu_devices,\n"
        "      jax.config.jax_compilation_cache_dir, os.sched_getaffinity(0) == before)\n"
    )
    env = {**os.environ, "DUETTO_PIN_CORES": "0", "DUETTO_CPU_DEVICES": "2"}
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", "-1", "None", "True"]
