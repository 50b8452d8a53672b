"""Checkpoints: clear errors for bad files, atomic writes, unpicklable envs."""

import zipfile
from pathlib import Path

import numpy as np
import pytest

import duetto
from duetto.errors import DuettoError

# Resume across processes is held for every algorithm and loop by tests/test_contract.py.


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
    np.testing.assert_array_equal(loaded.predict(obs)[0], agent.predict(obs)[0])


def test_unpicklable_env_is_a_clear_error_and_writes_nothing(tmp_path, tiny):
    import threading

    from probe_envs import CountingEnv

    env = CountingEnv(terminate_at=5)
    agent = duetto.SAC(env, seed=0, run_dir=False, **tiny)
    agent.loop.vec.envs[0].unwrapped.lock = threading.Lock()  # a lock cannot be pickled
    with pytest.raises(DuettoError, match="cannot be pickled"):
        agent.save(tmp_path / "x.ckpt")
    assert list(tmp_path.iterdir()) == []
