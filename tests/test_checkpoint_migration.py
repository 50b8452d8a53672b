"""Checkpoints of earlier formats load and continue exactly: format 1 (duetto up to dbe3a5c:
leaves by position) and format 2 (up to fd54f40: every replay stored whole). tests/fixtures/v1/
and v2/ hold checkpoints written by those commits and the state each reached when that commit
continued it (tests/fixtures/make_v1_checkpoints.py, make_v2_checkpoints.py)."""

import json
import zipfile
from pathlib import Path

import jax
import numpy as np
import pytest

import duetto
from duetto.runs.checkpoint import FORMAT_VERSION

FIXTURES = Path(__file__).parent / "fixtures"
MORE = {
    (1, "sac-host"): 60,
    (1, "td3-host"): 41,
    (1, "ppo-host"): 64,
    (1, "ppo-fused"): 64,
    (2, "sac-host"): 60,
    (2, "sac-fused"): 60,
}


@pytest.mark.parametrize("version,name", sorted(MORE), ids=[f"v{v}-{n}" for v, n in sorted(MORE)])
def test_earlier_format_checkpoint_loads_and_continues_exactly(version, name, tmp_path):
    ckpt = FIXTURES / f"v{version}" / f"{name}.ckpt"
    with zipfile.ZipFile(ckpt) as z:
        assert json.loads(z.read("meta.json"))["format_version"] == version
    agent = duetto.load(ckpt)
    agent.learn(MORE[version, name], eval_every=10**9, eval_episodes=1)
    with np.load(FIXTURES / f"v{version}" / f"{name}-continued.npz") as f:
        expected = [f[f"arr_{i}"] for i in range(len(f.files))]
    got = [np.asarray(x) for x in jax.tree.leaves(jax.device_get(agent.loop.state))]
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_array_equal(a, b)

    # Saved again, it is today's format, keyed by tree path, and loads to the same state.
    again = agent.save(tmp_path / "again.ckpt")
    with zipfile.ZipFile(again) as z:
        assert json.loads(z.read("meta.json"))["format_version"] == FORMAT_VERSION == 3
        with z.open("state.npz") as member, np.load(member) as npz:
            assert any(k.startswith(".algo.") for k in npz.files), npz.files[:3]
    reloaded = duetto.load(again)
    for a, b in zip(jax.tree.leaves(jax.device_get(reloaded.loop.state)), got, strict=True):
        np.testing.assert_array_equal(np.asarray(a), b)
