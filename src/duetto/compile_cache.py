"""JAX's persistent compilation cache, on by default in a user cache directory.

Compilation is the main fixed cost of a short run on CPU; with the cache warm, a second run of
the same program skips it. Set DUETTO_COMPILATION_CACHE=0 to turn it off, or to a path to move it.
"""

from __future__ import annotations

import os
from pathlib import Path

import jax


def enable_persistent_cache() -> None:
    setting = os.environ.get("DUETTO_COMPILATION_CACHE", "")
    if setting == "0":
        return
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    path = Path(setting) if setting else Path(base) / "duetto" / "jax"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return  # a read-only home: run without the cache
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
