"""Checkpoint files: one zip archive, written atomically, with a format version.

Members: `meta.json` (format tag and version, algorithm, env, seed, config, host counters),
`state.npz` (every array leaf of the run's state pytree, named by its path in the tree, e.g.
`.algo.actor_params['params']['Dense_0']['kernel']`; no pickles) and `envs.pkl` (the Gymnasium
sub-envs, pickled, so that a resumed run steps on exactly as the original would). Loading
checks the tag, the version and each leaf's shape and dtype, and says clearly what is wrong
with a missing, truncated or foreign file.

Versions: 1 (duetto up to dbe3a5c) stored the leaves by position (`arr_0`, `arr_1`, ...) in
the tree order of the state at that time; `migrate_v1` names them by the paths of that order.
2 (up to fd54f40) names every leaf by its path, so a state that gains a field still reads older
checkpoints. 3 stores each replay (data/replay.py: a `Replay` anywhere in the state, stacked
over runs or not) cut to its filled rows: every data leaf keeps the rows below the largest
`size` along its capacity axis, and loading pads it back to capacity with the zeros that the
rows past `size` hold, so a checkpoint grows with the data, not with the buffer. Versions 1
and 2 stored every replay whole, which loads the same way (the rows stored are its capacity).
"""

from __future__ import annotations

import io
import json
import os
import pickle
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import cloudpickle
import jax
import numpy as np

from duetto.data.replay import Replay
from duetto.errors import DuettoError

FORMAT = "duetto-checkpoint"
FORMAT_VERSION = 3
SUFFIX = ".ckpt"


def atomic_write(path: Path, write: Any) -> None:
    """Call write(file) on a temporary file beside `path`, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def is_checkpoint(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as z:
            return json.loads(z.read("meta.json")).get("format") == FORMAT
    except (OSError, zipfile.BadZipFile, KeyError, ValueError):
        return False


def save_checkpoint(path: Path, meta: dict, state: Any, envs: list) -> None:
    path = Path(path)
    if path.exists() and not (path.is_file() and is_checkpoint(path)):
        raise DuettoError(
            f"'{path}' exists and is not a duetto checkpoint; not overwriting it. "
            "Choose another path."
        )
    try:
        env_bytes = cloudpickle.dumps(envs)  # lambdas, classes of scripts: by value
    except Exception as e:  # noqa: BLE001 - any pickling failure means the same thing here
        raise DuettoError(
            f"cannot checkpoint: the environment cannot be pickled ({type(e).__name__}: {e}), "
            "and a checkpoint holds the env state so that resume is exact. Make the env "
            "picklable (drop open handles and lambdas from it)."
        ) from None
    stored = jax.tree.map(
        lambda node: filled_part(node) if isinstance(node, Replay) else node,
        jax.device_get(state),
        is_leaf=lambda node: isinstance(node, Replay),
    )
    named = {
        jax.tree_util.keystr(path): np.asarray(leaf)
        for path, leaf in jax.tree_util.tree_flatten_with_path(stored)[0]
    }
    arrays = io.BytesIO()
    np.savez(arrays, **named)  # type: ignore[arg-type]
    full_meta = {"format": FORMAT, "format_version": FORMAT_VERSION, **meta}

    def write(f: Any) -> None:
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as z:
            z.writestr("meta.json", json.dumps(full_meta, indent=1))
            z.writestr("state.npz", arrays.getvalue())
            z.writestr("envs.pkl", env_bytes)

    atomic_write(path, write)


def filled_part(replay: Replay) -> Replay:
    """A replay in host memory as a checkpoint stores it: each data leaf cut, along its
    capacity axis, to the rows below the largest `size` (of any run). Those past it hold the
    zeros the buffer was made with, which loading puts back; should one not be zero in every
    bit (a replay that writes elsewhere than data/replay.py does), the replay is stored whole
    and still resumes exactly."""
    rows = int(np.max(replay.size, initial=0))
    before = (slice(None),) * replay.rows_axis
    past = [np.asarray(leaf)[(*before, slice(rows, None))] for leaf in jax.tree.leaves(replay.data)]
    if any(_has_set_bits(leaf) for leaf in past):
        return replay
    return replay._replace(
        data=jax.tree.map(lambda leaf: np.asarray(leaf)[(*before, slice(rows))], replay.data)
    )


def _has_set_bits(x: np.ndarray) -> bool:
    """Whether any bit of x is set: -0.0 is not the 0.0 that loading writes."""
    return bool(np.any(x.view(f"u{x.dtype.itemsize}") if x.dtype.itemsize <= 8 else x))


def read_meta(path: Path) -> dict:
    """The meta of a checkpoint file, after checking that it is one duetto can read."""
    path = Path(path)
    if not path.exists():
        raise DuettoError(f"no checkpoint at '{path}'. Give a checkpoint file or a run directory.")
    if path.is_dir():
        raise DuettoError(f"'{path}' is a directory, not a checkpoint file.")
    with open(path, "rb") as f:
        head = f.read(4)
    if head != b"PK\x03\x04":
        raise DuettoError(f"'{path}' is not a duetto checkpoint (not a checkpoint archive).")
    try:
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
            if bad is not None:
                raise zipfile.BadZipFile(bad)
            meta = json.loads(z.read("meta.json"))
    except (zipfile.BadZipFile, EOFError, OSError) as e:
        raise DuettoError(
            f"checkpoint '{path}' is truncated or corrupt ({e}). Use an earlier checkpoint."
        ) from None
    except (KeyError, ValueError):
        raise DuettoError(f"'{path}' is not a duetto checkpoint (no valid meta.json).") from None
    if meta.get("format") != FORMAT:
        raise DuettoError(f"'{path}' is not a duetto checkpoint (format {meta.get('format')!r}).")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise DuettoError(
            f"checkpoint '{path}' has format version {meta['format_version']}; this duetto reads "
            f"up to version {FORMAT_VERSION}. Upgrade duetto."
        )
    return meta


def read_checkpoint(path: Path) -> tuple[dict, dict[str, np.ndarray] | list[np.ndarray], list]:
    """(meta, arrays, sub-envs) of a checkpoint file: arrays by tree path (version 2), or in
    tree order (version 1: see `restore_state`)."""
    meta = read_meta(path)
    with zipfile.ZipFile(path) as z:
        with np.load(io.BytesIO(z.read("state.npz")), allow_pickle=False) as npz:
            if meta.get("format_version", 1) >= 2:
                arrays: dict[str, np.ndarray] | list[np.ndarray] = {k: npz[k] for k in npz.files}
            else:
                arrays = [npz[f"arr_{i}"] for i in range(len(npz.files))]
        envs = pickle.loads(z.read("envs.pkl"))
    return meta, arrays, envs


def migrate_v1(path: Path, leaves: list[np.ndarray], template: Any) -> dict[str, np.ndarray]:
    """Version 1's leaves named by the tree paths of their order. Every state has kept the
    structure it had then, so that order is the template's; a field added later would be
    left out of these paths here (and take its fresh value on loading)."""
    paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(template)[0]]
    if len(leaves) != len(paths):
        raise DuettoError(
            f"checkpoint '{path}' (format 1) holds {len(leaves)} arrays where its config needs "
            f"{len(paths)}; it was written by an incompatible version."
        )
    return dict(zip(paths, leaves, strict=True))


def restore_state(
    path: Path, arrays: dict[str, np.ndarray] | list[np.ndarray], template: Any
) -> Any:
    """The checkpoint's arrays in `template`'s tree structure (shapes and dtypes), matched by
    tree path and checked; each replay's data padded back to its capacity (`filled_part`)."""
    if isinstance(arrays, list):
        arrays = migrate_v1(path, arrays, template)
    flat, treedef = jax.tree_util.tree_flatten_with_path(template)
    missing = [jax.tree_util.keystr(p) for p, _ in flat if jax.tree_util.keystr(p) not in arrays]
    if missing:
        raise DuettoError(
            f"checkpoint '{path}' lacks {len(missing)} of the {len(flat)} arrays its config "
            f"needs (first: {missing[0]}); it was written for another state."
        )
    stored = jax.tree_util.tree_map_with_path(
        lambda p, node: _stored_layout(path, p, node, arrays) if isinstance(node, Replay) else node,
        template,
        is_leaf=lambda node: isinstance(node, Replay),
    )
    leaves = []
    for (p, want), expected in zip(flat, jax.tree.leaves(stored), strict=True):
        name = jax.tree_util.keystr(p)
        got = arrays[name]
        if got.shape != expected.shape or got.dtype != expected.dtype:
            raise DuettoError(
                f"checkpoint '{path}': {name} is {got.dtype}{list(got.shape)}, expected "
                f"{expected.dtype}{list(expected.shape)}; it does not match its own config."
            )
        if got.shape != want.shape:  # a replay's data leaf, cut to its filled rows
            padded = np.zeros(want.shape, want.dtype)
            padded[tuple(slice(n) for n in got.shape)] = got
            got = padded
        leaves.append(jax.numpy.asarray(got))
    return jax.tree.unflatten(treedef, leaves)


def _stored_layout(path: Path, at: tuple, replay: Replay, arrays: dict[str, np.ndarray]) -> Replay:
    """The template of the replay at tree path `at` as the checkpoint stores it: every data
    leaf with as many rows along the capacity axis as the stored `reward` has (at most the
    capacity: versions 1 and 2 stored them all), which must be all the rows filled."""
    reward = arrays[jax.tree_util.keystr((*at, *_REWARD))]
    axis = replay.rows_axis
    rows = min(reward.shape[axis], replay.capacity) if reward.ndim > axis else replay.capacity
    filled = int(np.max(arrays[jax.tree_util.keystr((*at, _SIZE))], initial=0))
    if rows < filled:
        raise DuettoError(
            f"checkpoint '{path}': the replay {jax.tree_util.keystr(at)} holds {rows} rows where "
            f"{filled} are filled; it is damaged, or was not written by duetto."
        )

    def cut(leaf: Any) -> jax.ShapeDtypeStruct:
        return jax.ShapeDtypeStruct((*leaf.shape[:axis], rows, *leaf.shape[axis + 1 :]), leaf.dtype)

    return replay._replace(data=jax.tree.map(cut, replay.data))


# Tree paths inside a Replay: its data leaves are cut to the length of `reward`.
_REWARD = (jax.tree_util.GetAttrKey("data"), jax.tree_util.GetAttrKey("reward"))
_SIZE = jax.tree_util.GetAttrKey("size")
