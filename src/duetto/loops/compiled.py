"""Programs compiled ahead of time with their own XLA:CPU options, and kept lowered on disk.

Compilation is most of a short run's wall time on CPU. Programs whose speed matters little (init,
evaluation) get no LLVM optimisation at all; the small-network training programs get LLVM's
cheaper pipeline, which compiles about a second faster at a run time within a few per cent.

A program given an `identity` (a string that names everything the function closes over: the
algorithm, its config, the env) is also kept after tracing and lowering, as a serialized
`jax.export` artifact under the cache's `programs/` directory. Its file name hashes the identity,
the argument signature and `compile_cache.fingerprint()` (duetto's source, library versions, JAX
settings), so that any change makes a new file rather than reusing a stale one. A warm run then
deserializes the program instead of tracing and lowering it, and JAX's persistent cache supplies
the compiled code: the same StableHLO, hence the same executable and the same numbers.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import io
import os
import pickle
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

from duetto.compile_cache import fingerprint, program_dir

TRAIN_OPTIONS = {"xla_backend_optimization_level": 1, "xla_llvm_disable_expensive_passes": True}
# Programs that run once or rarely (init, evaluate, start) also take XLA:CPU's older loop
# emitters: a fused init compiles in 0.6 s instead of 1.5 s, with the same bits here. The
# newer ones stay for the train programs, which run 14 % slower with the older (PPO, fused).
ONCE_OPTIONS = {"xla_backend_optimization_level": 0, "xla_cpu_use_fusion_emitters": False}
EXPORT_FORMAT = 1
MAX_PROGRAMS = 500  # files kept in the cache's programs/ directory (tens of KB each)


class Program:
    """`fn` jitted and compiled ahead of time with its own XLA options (`jax.jit`'s
    compiler_options do not reach every compile path), once per argument signature.

    `static` and `donate` are `jax.jit`'s static_argnums and donate_argnums; `identity`, when
    given, turns on the exported-program cache (see the module docstring)."""

    def __init__(
        self,
        fn: Callable,
        options: dict[str, Any],
        static: tuple[int, ...] = (),
        donate: tuple[int, ...] = (),
        identity: str | None = None,
    ):
        self.fn, self.options, self.static, self.donate = fn, options, static, donate
        self.identity = identity
        self.jitted = jax.jit(fn, static_argnums=static, donate_argnums=donate)
        self.compiled: dict[Any, Any] = {}
        self.last: tuple[tuple, Any] | None = None

    def __call__(self, *args: Any) -> Any:
        dynamic = [a for i, a in enumerate(args) if i not in self.static]
        if self.last is not None and self.last[0] == tuple(args[i] for i in self.static):
            try:  # the common case: the arguments of the previous call, checked by XLA
                return self.last[1](*dynamic)
            except (TypeError, ValueError):
                pass
        signature = self._signature(args)
        compiled = self.compiled.get(signature)
        if compiled is None:
            compiled = self._compile(args, signature)
        elif isinstance(compiled, Future):  # compiled in the background (`prepare`)
            try:
                compiled = compiled.result()
            except BaseException:
                del self.compiled[signature]  # the next call tries again, in the foreground
                raise
        self.compiled[signature] = compiled
        self.last = (signature[2], compiled)
        return compiled(*dynamic)

    def prepare(self, *args: Any) -> None:
        """Start compiling for arguments like these (`jax.ShapeDtypeStruct` leaves will do) in
        a background thread: XLA compiles without holding Python's lock, so programs that a
        run needs one after another compile side by side. The first call with such arguments
        waits for the result. The worker thread traces with the process's JAX settings, not
        with a context manager's of the calling thread (`with jax.enable_x64(...)`)."""
        signature = self._signature(args)
        if signature not in self.compiled:
            self.compiled[signature] = _background().submit(self._compile, args, signature)

    def _signature(self, args: tuple) -> tuple:
        dynamic = [a for i, a in enumerate(args) if i not in self.static]
        return (
            jax.tree.structure(dynamic),
            tuple((jnp.shape(x), jnp.result_type(x), _split(x)) for x in jax.tree.leaves(dynamic)),
            tuple(args[i] for i in self.static),
        )

    def cache_size(self) -> int:
        return len(self.compiled)

    # ---- compilation ----------------------------------------------------------------------

    def _compile(self, args: tuple, signature: tuple) -> Callable:
        store = program_dir()
        if self.identity is None or store is None:
            return self.jitted.lower(*args).compile(self.options)
        in_tree, avals, statics = signature
        key = hashlib.sha256(
            repr(
                (EXPORT_FORMAT, self.identity, fingerprint(), str(in_tree), avals, statics)
            ).encode()
        ).hexdigest()
        path = store / f"{key[:40]}.program"
        loaded = _load(path)
        if loaded is None:
            try:
                loaded = self._export(args, in_tree, avals)
            except Exception:  # noqa: BLE001 - the cache must not stop a run: compile plainly
                # (an error of the program itself is raised again by this trace)
                return self.jitted.lower(*args).compile(self.options)
            _save(path, *loaded)
        exported, out_tree = loaded
        # The donated arguments' leaves, in the flat argument list of the exported program.
        donated, position = [], 0
        for i, arg in enumerate(args):
            if i in self.static:
                continue
            n = len(jax.tree.leaves(arg))
            if i in self.donate:
                donated += range(position, position + n)
            position += n
        leaves = jax.tree.leaves([a for i, a in enumerate(args) if i not in self.static])
        try:
            flat = jax.jit(exported.call, donate_argnums=tuple(donated))
            compiled = flat.lower(*leaves).compile(self.options)
        except Exception:  # noqa: BLE001 - a file that loads but does not fit: drop it
            path.unlink(missing_ok=True)
            return self.jitted.lower(*args).compile(self.options)

        def call(*dynamic: Any) -> Any:
            leaves, tree = jax.tree.flatten(list(dynamic))
            if tree != in_tree:
                raise TypeError(f"arguments {tree} do not match the program's {in_tree}")
            return jax.tree.unflatten(out_tree, compiled(*leaves))

        return call

    def _export(self, args: tuple, in_tree: Any, avals: tuple) -> tuple[Any, Any]:
        """Trace and lower `fn` for these arguments as a function of flat leaves."""
        out: dict[str, Any] = {}

        def flat(*leaves: Any) -> list:
            dynamic = iter(jax.tree.unflatten(in_tree, leaves))
            full = [a if i in self.static else next(dynamic) for i, a in enumerate(args)]
            result, out["tree"] = jax.tree.flatten(self.fn(*full))
            return result

        shapes = [
            jax.ShapeDtypeStruct(shape, dtype, sharding=split) for shape, dtype, split in avals
        ]
        exported = jax.export.export(jax.jit(flat))(*shapes)
        return exported, out["tree"]


@functools.cache
def _background() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=2, thread_name_prefix="duetto-compile")


def _split(x: Any) -> jax.sharding.Sharding | None:
    """The sharding of an argument split over several devices (part of a program's signature:
    the program is partitioned for it), or None for one on a single device or on the host."""
    sharding = getattr(x, "sharding", None)
    return sharding if sharding is not None and len(sharding.device_set) > 1 else None


class _Pickler(pickle.Pickler):
    """Writes classes (the node types of an output structure) by name, without the import
    check of pickle's own: that would import a class's parent packages, all of gymnax for an
    env state class that duetto loaded without them (see envs/jaxenv.py)."""

    def persistent_id(self, obj: Any) -> Any:
        return ("class", obj.__module__, obj.__qualname__) if isinstance(obj, type) else None


class _Unpickler(pickle.Unpickler):
    """Reads what _Pickler wrote, taking a class from its module when that is imported."""

    def persistent_load(self, pid: Any) -> Any:
        _, module, qualname = pid
        found = sys.modules.get(module) or importlib.import_module(module)
        return functools.reduce(getattr, qualname.split("."), found)


def _load(path: Path) -> tuple[Any, Any] | None:
    """An exported program and its output structure, or None if absent or unreadable."""
    try:
        with path.open("rb") as f:
            blob = _Unpickler(f).load()
        loaded = jax.export.deserialize(bytearray(blob["exported"])), blob["out_tree"]
    except Exception:  # noqa: BLE001 - absent, truncated or foreign: export it again
        return None
    try:
        os.utime(path)  # recently used: kept longest by _prune
    except OSError:
        pass  # a read-only cache still serves
    return loaded


def _save(path: Path, exported: Any, out_tree: Any) -> None:
    """Written whole or not at all (a temporary file renamed over), best effort: a cache that
    cannot be written (a full disk, no `flatbuffers` for the serialization) only costs the next
    run its tracing."""
    tmp = None
    try:
        buffer = io.BytesIO()
        _Pickler(buffer).dump({"exported": bytes(exported.serialize()), "out_tree": out_tree})
        blob = buffer.getvalue()
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
        os.replace(tmp, path)
        _prune(path.parent)
    except Exception:  # noqa: BLE001
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def _prune(store: Path, keep: int = MAX_PROGRAMS) -> None:
    """Drop the least recently used programs beyond `keep` (each change of duetto's source or
    of a setting writes new ones; the old ones would otherwise pile up), and stale temporary
    files."""
    files = sorted(store.glob("*.program"), key=lambda f: f.stat().st_mtime)
    for stale in files[: max(len(files) - keep, 0)]:
        stale.unlink(missing_ok=True)
    hour_ago = time.time() - 3600
    for tmp in store.glob("*.tmp"):  # left by a process killed while writing
        if tmp.stat().st_mtime < hour_ago:
            tmp.unlink(missing_ok=True)
