"""Checkpoint files: one zip archive, written atomically, with a format version.

Members: `meta.json` (format tag and version, algorithm, env, seed, config, host counters),
`state.npz` (every array leaf of the run's state pytree, in tree order; no pickles) and
`envs.pkl` (the Gymnasium sub-envs, pickled, so that a resumed run steps on exactly as the
original would). Loading checks the tag, the version and each leaf's shape and dtype, and
says clearly what is wrong with a missing, truncated or foreign file.
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
FORMAT_VERSION = 1
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
    leaves = [np.asarray(x) for x in jax.tree.leaves(jax.device_get(state))]
    arrays = io.BytesIO()
    np.savez(arrays, *leaves)
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


def read_checkpoint(path: Path) -> tuple[dict, list[np.ndarray], list]:
    """(meta, array leaves in tree order, sub-envs) of a checkpoint file."""
    meta = read_meta(path)
    with zipfile.ZipFile(path) as z:
        with np.load(io.BytesIO(z.read("state.npz")), allow_pickle=False) as npz:
            leaves = [npz[f"arr_{i}"] for i in range(len(npz.files))]
        envs = pickle.loads(z.read("envs.pkl"))
    return meta, leaves, envs


def restore_state(path: Path, leaves: list[np.ndarray], template: Any) -> Any:
    """Put checkpoint leaves into `template`'s tree structure, checking shapes and dtypes."""
    expected, treedef = jax.tree.flatten(template)
    if len(leaves) != len(expected):
        raise DuettoError(
            f"checkpoint '{path}' holds {len(leaves)} arrays where its config needs "
            f"{len(expected)}; it was written by an incompatible version."
        )
    for i, (got, want) in enumerate(zip(leaves, expected, strict=True)):
        if got.shape != want.shape or got.dtype != want.dtype:
            raise DuettoError(
                f"checkpoint '{path}': array {i} is {got.dtype}{list(got.shape)}, expected "
                f"{want.dtype}{list(want.shape)}; it does not match its own config."
            )
    return jax.tree.unflatten(treedef, [jax.numpy.asarray(x) for x in leaves])
