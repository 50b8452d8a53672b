"""JAX's persistent compilation cache, on by default in a user cache directory, and beside it
duetto's cache of exported programs.

Compilation is the main fixed cost of a short run on CPU; with the cache warm, a second run of
the same program skips it. Tracing the program and lowering it to StableHLO come before that
cache can be looked up, and take about a second for a fused PPO run: `programs/` keeps the
lowered programs (`jax.export`), so that a warm run skips them too (see loops/compiled.py).
Set DUETTO_COMPILATION_CACHE=0 to turn both off, or to a path to move them.
"""

from __future__ import annotations

import hashlib
import os
from importlib import metadata
from pathlib import Path
from types import ModuleType

import jax

# JAX settings that change what a trace produces.
TRACE_SETTINGS = (
    "jax_enable_x64",
    "jax_default_matmul_precision",
    "jax_default_prng_impl",
    "jax_threefry_partitionable",
    "jax_numpy_rank_promotion",
    "jax_numpy_dtype_promotion",
)
_programs: Path | None = None
_fingerprint: str | None = None


def enable_persistent_cache() -> None:
    global _programs
    setting = os.environ.get("DUETTO_COMPILATION_CACHE", "")
    _programs = None
    if setting == "0":
        return
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    path = Path(setting) if setting else Path(base) / "duetto" / "jax"
    try:
        (path / "programs").mkdir(parents=True, exist_ok=True)
    except OSError:
        return  # a read-only home: run without the cache
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    _programs = path / "programs"


def program_dir() -> Path | None:
    """Where exported programs are kept (None: the cache is off)."""
    return _programs


def fingerprint() -> str:
    """What a traced program depends on beyond its own description: duetto's source and the
    versions of the libraries it traces through (hashed once per process), and the backend and
    JAX settings that change a trace (read at every call: they can change during a session)."""
    global _fingerprint
    if _fingerprint is None:
        h = hashlib.sha256()
        package = Path(__file__).resolve().parent
        for source in sorted(package.rglob("*.py")):
            h.update(str(source.relative_to(package)).encode())
            h.update(source.read_bytes())
        for dist in ("jax", "jaxlib", "flax", "optax", "gymnax", "numpy"):
            try:
                h.update(f"{dist}={metadata.version(dist)}".encode())
            except metadata.PackageNotFoundError:
                h.update(f"{dist}=none".encode())
        _fingerprint = h.hexdigest()
    settings = [jax.default_backend(), os.environ.get("XLA_FLAGS", "")]
    settings += [f"{name}={getattr(jax.config, name, None)}" for name in TRACE_SETTINGS]
    return f"{_fingerprint}|{'|'.join(settings)}"


def module_tag(module: ModuleType) -> str:
    """A module's name, and for one outside duetto (a user's algorithm), a hash of its source,
    which `fingerprint` does not cover."""
    source = getattr(module, "__file__", None)
    package = Path(__file__).resolve().parent
    if source is None or Path(source).resolve().is_relative_to(package):
        return module.__name__
    return f"{module.__name__}@{hashlib.sha256(Path(source).read_bytes()).hexdigest()[:16]}"
