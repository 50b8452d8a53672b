"""Checkpoints grow with the data, not with the replay's capacity (runs/checkpoint.py, format
3): a replay is stored to its filled rows and padded back on loading, and resume stays exact."""

import io
import zipfile
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import duetto
from duetto.data.replay import Replay, Transition, replay_add, replay_init
from duetto.errors import DuettoError
from duetto.runs.checkpoint import read_checkpoint, restore_state, save_checkpoint

# As tests/test_contract.py trains SAC, so that a ring of its size (150) runs its programs.
SMALL = {"hidden": (16, 16), "batch_size": 16, "learning_starts": 40}
# Per loop: env, how its runs are seeded, N and M (whole iterations of the fused loop).
LOOPS = {
    "host": ("Pendulum-v1", {"seed": 3}, 104, 40),
    "fused": ("gymnax:Pendulum-v1", {"seeds": [3, 4]}, 96, 40),
}


def leaves(agent) -> list[np.ndarray]:
    return [np.asarray(x) for x in jax.tree.leaves(jax.device_get(agent.loop.state))]


def replays(state) -> list[Replay]:
    nodes = jax.tree.leaves(state, is_leaf=lambda node: isinstance(node, Replay))
    return [node for node in nodes if isinstance(node, Replay)]


def resumes_exactly(
    loop: str, buffer_size: int, tmp_path, n: int | None = None, **hp: Any
) -> tuple[Any, Path]:
    """Train N, save, load, train M: every state leaf equals that of the run saved, trained M
    more without the checkpoint (which equals training N + M at once: tests/test_contract.py).
    `hp`: more of SAC's hyperparameters. Returns the saved state (in host memory) and the
    checkpoint."""
    env, seeds, default_n, m = LOOPS[loop]
    n = default_n if n is None else n
    quiet = dict(eval_every=10**9, eval_episodes=1)
    settings = {**SMALL, **hp}
    agent = duetto.SAC(env, run_dir=False, n_envs=2, buffer_size=buffer_size, **seeds, **settings)
    agent.learn(n, **quiet)
    ckpt = agent.save(tmp_path / f"{loop}.ckpt")
    saved = jax.device_get(agent.loop.state)
    expected = leaves(agent.learn(m, **quiet))
    got = leaves(duetto.load(ckpt).learn(m, **quiet))
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_array_equal(a, b)
    return saved, ckpt


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_a_partly_filled_big_replay_is_stored_to_its_filled_rows_and_resumes_exactly(
    loop, tmp_path
):
    state, ckpt = resumes_exactly(loop, 1_000_000, tmp_path)
    (replay,) = replays(state)
    rows = int(replay.size.max())
    assert rows == LOOPS[loop][2]  # N env steps, a row each, in every run
    full_bytes = sum(leaf.nbytes for leaf in jax.tree.leaves(replay.data))
    filled_bytes = full_bytes * rows // replay.capacity
    rest_bytes = sum(x.nbytes for x in jax.tree.leaves(state)) - full_bytes
    with zipfile.ZipFile(ckpt) as z:
        npz = z.getinfo("state.npz").file_size
        with np.load(io.BytesIO(z.read("state.npz"))) as arrays:
            n_arrays = len(arrays.files)
            stored = arrays[".replay.data.obs"]
    # The filled rows, every other leaf, and the .npy headers and zip entries (under 1 KiB
    # an array): where the whole buffer took 36 MB a run.
    assert npz <= filled_bytes + rest_bytes + 1024 * n_arrays, (npz, filled_bytes, rest_bytes)
    assert ckpt.stat().st_size < full_bytes / 50
    assert stored.shape == (*replay.size.shape, rows, 3)


def test_a_wrapped_ring_is_stored_whole_and_resumes_exactly(tmp_path):
    state, ckpt = resumes_exactly("host", 150, tmp_path, n=208)  # wrapped at the save
    (replay,) = replays(state)
    assert int(replay.size) == 150 and int(replay.ptr) == 208 % 150
    with zipfile.ZipFile(ckpt) as z, np.load(io.BytesIO(z.read("state.npz"))) as arrays:
        assert arrays[".replay.data.reward"].shape == (150,)


def _filled(capacity: int, rows: int) -> Replay:
    """A replay of obs_dim 2 and act_dim 1 with `rows` rows written: row i holds i + 1."""
    v = jnp.arange(1, rows + 1, dtype=jnp.float32)
    obs = jnp.stack([v, 2 * v], axis=1)
    batch = Transition(
        obs=obs, action=-v[:, None], reward=v, next_obs=obs + 0.5, terminated=v, done=v
    )
    return replay_add(replay_init(capacity, obs_dim=2, act_dim=1), batch)


def _round_trip(tmp_path, state, template):
    path = tmp_path / "state.ckpt"
    save_checkpoint(path, {}, state, [])
    _, arrays, _ = read_checkpoint(path)
    return arrays, restore_state(path, arrays, template)


def test_stacked_replays_are_cut_along_their_capacity_axis_and_padded_back(tmp_path):
    """The fused loop's replays have a leading [runs] axis: rows are cut after it, to the
    largest size of any run, and the other leaves are stored as they are."""
    a, b = _filled(10, 3), _filled(10, 5)
    stacked = jax.tree.map(lambda x, y: jnp.stack([x, y]), a, b)
    state = {"replay": stacked, "step": jnp.int32(7)}
    template = jax.eval_shape(lambda: state)
    arrays, restored = _round_trip(tmp_path, state, template)
    assert isinstance(arrays, dict)
    assert arrays["['replay'].data.obs"].shape == (2, 5, 2)
    assert arrays["['replay'].data.reward"].shape == (2, 5)
    assert arrays["['replay'].size"].tolist() == [3, 5]
    for got, want in zip(jax.tree.leaves(restored), jax.tree.leaves(state), strict=True):
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)


def test_a_replay_with_set_bits_past_its_size_is_stored_whole(tmp_path):
    """Only rows that hold zeros in every bit are left out (not -0.0), so whatever a replay
    holds comes back exactly."""
    replay = _filled(6, 2)
    replay = replay._replace(data=replay.data._replace(reward=replay.data.reward.at[4].set(-0.0)))
    arrays, restored = _round_trip(tmp_path, replay, jax.eval_shape(lambda: replay))
    assert arrays[".data.reward"].shape == (6,)
    assert np.signbit(restored.data.reward[4])
    for got, want in zip(jax.tree.leaves(restored), jax.tree.leaves(replay), strict=True):
        np.testing.assert_array_equal(got, want)


def test_a_checkpoint_missing_filled_rows_or_with_wrong_widths_is_refused(tmp_path):
    replay = _filled(6, 4)
    template = jax.eval_shape(lambda: replay)
    arrays, _ = _round_trip(tmp_path, replay, template)
    assert isinstance(arrays, dict)
    short = {k: v[:3] if k.startswith(".data.") else v for k, v in arrays.items()}
    with pytest.raises(DuettoError, match="holds 3 rows where 4 are filled"):
        restore_state(tmp_path / "x.ckpt", short, template)
    wide = {**arrays, ".data.obs": np.zeros((4, 3), np.float32)}
    with pytest.raises(
        DuettoError, match=r"\.data\.obs is float32\[4, 3\], expected float32\[4, 2\]"
    ):
        restore_state(tmp_path / "x.ckpt", wide, template)
    ragged = {**arrays, ".data.action": arrays[".data.action"][:2]}
    with pytest.raises(DuettoError, match=r"\.data\.action is float32\[2, 1\], expected"):
        restore_state(tmp_path / "x.ckpt", ragged, template)
