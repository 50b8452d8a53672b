"""Checkpoint files: one zip archive, written atomically, with a format version.

Members: `meta.json` (format tag and version, algorithm, env, seed, config, host counters),
`state.npz` (every array leaf of the run's state pytree, named by its path in the tree, e.g.
`.algo.actor_params['params']['Dense_0']['kernel']`; no pickles) and `envs.pkl` (the Gymnasium
sub-envs, pickled, so that a resumed run steps on exactly as the original would). Loading
checks the tag, the version and each leaf's shape and dtype, and says clearly what is wrong
with a missing, truncated or foreign file.

Versions: 1 (duetto up to dbe3a5c) stored the leaves by position (`arr_0`, `arr_1`, ...) in
the tree order of the state at that time; `migrate_v1` names them by the paths of that order.
2 names every leaf by its path, so a state that gains a field still reads older checkpoints.
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

import jax
import numpy as np

from duetto.errors import DuettoError

FORMAT = "duetto-checkpoint"
FORMAT_VERSION = 2
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
        env_bytes = pickle.dumps(envs)
    except Exception as e:  # noqa: BLE001 - any pickling failure means the same thing here
        raise DuettoError(
            f"cannot checkpoint: the environment cannot be pickled ({type(e).__name__}: {e}), "
            "and a checkpoint holds the env state so that resume is exact. Make the env "
            "picklable (drop open handles and lambdas from it)."
        ) from None
    named = {
        jax.tree_util.keystr(path): np.asarray(leaf)
        for path, leaf in jax.tree_util.tree_flatten_with_path(jax.device_get(state))[0]
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
    tree path and checked."""
    if isinstance(arrays, list):
        arrays = migrate_v1(path, arrays, template)
    flat, treedef = jax.tree_util.tree_flatten_with_path(template)
    missing = [jax.tree_util.keystr(p) for p, _ in flat if jax.tree_util.keystr(p) not in arrays]
    if missing:
        raise DuettoError(
            f"checkpoint '{path}' lacks {len(missing)} of the {len(flat)} arrays its config "
            f"needs (first: {missing[0]}); it was written for another state."
        )
    leaves = []
    for p, want in flat:
        name = jax.tree_util.keystr(p)
        got = arrays[name]
        if got.shape != want.shape or got.dtype != want.dtype:
            raise DuettoError(
                f"checkpoint '{path}': {name} is {got.dtype}{list(got.shape)}, expected "
                f"{want.dtype}{list(want.shape)}; it does not match its own config."
            )
        leaves.append(jax.numpy.asarray(got))
    return jax.tree.unflatten(treedef, leaves)
