"""Exact resume: 2N steps in one go equal N steps, save, load in a new process, N more."""

import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import duetto
from duetto.errors import DuettoError

SCRIPT = """
import sys, jax, numpy as np, duetto
mode, ckpt, out = sys.argv[1:4]
tiny = dict(hidden=(32, 32), batch_size=32, learning_starts=64, buffer_size=500)
if mode == "full":
    agent = duetto.SAC("Pendulum-v1", seed=7, n_envs=2, run_dir=False, **tiny)
    agent.learn(700, eval_every=200)
elif mode == "first":
    agent = duetto.SAC("Pendulum-v1", seed=7, n_envs=2, run_dir=False, **tiny)
    agent.learn(350, eval_every=1000)
    agent.save(ckpt)
else:
    agent = duetto.load(ckpt)
    agent.learn(350, eval_every=50)
np.savez(out, *[np.asarray(x) for x in jax.tree.leaves(agent.loop.state)])
"""


def _run(tmp_path, *args):
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    subprocess.run(
        [sys.executable, str(script), *map(str, args)],
        check=True,
        env={"DUETTO_COMPILATION_CACHE": "0", "PATH": "/usr/bin:/bin"},
    )


def _arrays(path):
    with np.load(path) as z:
        return [z[k] for k in sorted(z.files, key=lambda k: int(k.split("_")[1]))]


def test_resume_in_new_process_is_bit_identical(tmp_path):
    """Mid-episode (Pendulum episodes are 200 steps), with the replay wrapped around (500 rows)
    and two sub-envs: parameters, optimizer states, targets, temperature, replay contents,
    keys and counters all match bit for bit."""
    ckpt = tmp_path / "half.ckpt"
    _run(tmp_path, "full", ckpt, tmp_path / "full.npz")
    _run(tmp_path, "first", ckpt, tmp_path / "first.npz")
    _run(tmp_path, "resume", ckpt, tmp_path / "resumed.npz")
    full, resumed = _arrays(tmp_path / "full.npz"), _arrays(tmp_path / "resumed.npz")
    first = _arrays(tmp_path / "first.npz")
    assert len(full) == len(resumed) > 20
    for a, b in zip(full, resumed, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not all(np.array_equal(a, b) for a, b in zip(full, first, strict=True))


def test_checkpoint_errors_are_clear_and_touch_nothing(tmp_path, tiny):
    agent = duetto.SAC("Pendulum-v1", seed=0, run_dir=False, **tiny)
    good = agent.save(tmp_path / "good.ckpt")

    with pytest.raises(DuettoError, match="no checkpoint at"):
        duetto.load(tmp_path / "missing.ckpt")

    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(DuettoError, match="truncated or corrupt"):
        duetto.load(truncated)

    foreign = tmp_path / "notes.txt"
    foreign.write_text("my precious notes")
    with pytest.raises(DuettoError, match="not a duetto checkpoint"):
        duetto.load(foreign)
    with pytest.raises(DuettoError, match="not overwriting"):
        agent.save(foreign)
    assert foreign.read_text() == "my precious notes"

    other_zip = tmp_path / "other.zip"
    with zipfile.ZipFile(other_zip, "w") as z:
        z.writestr("hello.txt", "hi")
    with pytest.raises(DuettoError, match="not a duetto checkpoint"):
        duetto.load(other_zip)

    with pytest.raises(DuettoError, match="no checkpoints"):
        (tmp_path / "emptyrun").mkdir()
        duetto.load(tmp_path / "emptyrun")


def test_save_is_atomic_and_reloads(tmp_path, tiny):
    agent = duetto.SAC("Pendulum-v1", seed=1, run_dir=False, **tiny).learn(100, eval_every=100)
    path = agent.save(tmp_path / "a.ckpt")
    agent.save(path)  # overwriting its own checkpoint is fine
    assert [p.name for p in Path(tmp_path).iterdir()] == ["a.ckpt"]  # no temp files left
    loaded = duetto.load(path)
    assert loaded.env_steps == 100
    obs = np.array([0.3, -0.2, 1.0])
    np.testing.assert_array_equal(loaded.predict(obs), agent.predict(obs))


def test_unpicklable_env_is_a_clear_error_and_writes_nothing(tmp_path, tiny):
    import threading

    from probe_envs import CountingEnv

    env = CountingEnv(terminate_at=5)
    agent = duetto.SAC(env, seed=0, run_dir=False, **tiny)
    agent.loop.vec.envs[0].unwrapped.lock = threading.Lock()  # a lock cannot be pickled
    with pytest.raises(DuettoError, match="cannot be pickled"):
        agent.save(tmp_path / "x.ckpt")
    assert list(tmp_path.iterdir()) == []
