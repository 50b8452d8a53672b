"""Checkpoints of format 1 (duetto up to dbe3a5c: leaves by position) load and continue exactly:
tests/fixtures/v1/ holds one per loop kind, written by that commit, and the state each reached
when that commit continued it (tests/fixtures/make_v1_checkpoints.py)."""

import json
import zipfile
from pathlib import Path

import jax
import numpy as np
import pytest

import duetto
from duetto.runs.checkpoint import FORMAT_VERSION

FIXTURES = Path(__file__).parent / "fixtures" / "v1"
MORE = {"sac-host": 60, "td3-host": 41, "ppo-host": 64, "ppo-fused": 64}


@pytest.mark.parametrize("name", sorted(MORE))
def test_format_1_checkpoint_loads_and_continues_exactly(name, tmp_path):
    with zipfile.ZipFile(FIXTURES / f"{name}.ckpt") as z:
        assert json.loads(z.read("meta.json"))["format_version"] == 1
    agent = duetto.load(FIXTURES / f"{name}.ckpt")
    agent.learn(MORE[name], eval_every=10**9, eval_episodes=1)
    with np.load(FIXTURES / f"{name}-continued.npz") as f:
        expected = [f[f"arr_{i}"] for i in range(len(f.files))]
    got = [np.asarray(x) for x in jax.tree.leaves(jax.device_get(agent.loop.state))]
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_array_equal(a, b)

    # Saved again, it is format 2, keyed by tree path, and loads to the same state.
    again = agent.save(tmp_path / "again.ckpt")
    with zipfile.ZipFile(again) as z:
        assert json.loads(z.read("meta.json"))["format_version"] == FORMAT_VERSION == 2
        with z.open("state.npz") as member, np.load(member) as npz:
            assert any(k.startswith(".algo.") for k in npz.files), npz.files[:3]
    reloaded = duetto.load(again)
    for a, b in zip(jax.tree.leaves(jax.device_get(reloaded.loop.state)), got, strict=True):
        np.testing.assert_array_equal(np.asarray(a), b)
