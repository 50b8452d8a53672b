"""What duetto may change in the user's process, and only when asked: `duetto.configure`.

Importing duetto changes nothing in the process. The CLI calls `configure()` before anything
starts JAX, and a library user may do the same:

    import duetto
    duetto.configure()                          # one CPU device per core, compilation cache on
    duetto.configure(cpu_devices=1, compilation_cache=False)   # plain JAX

- `cpu_devices`: XLA:CPU gives one device whose thread pool spreads each operation over the
  cores, which buys little for the small networks of RL. With one device per core, the runs
  of a fused program (seeds, sweeps) are split along the runs instead, each device running
  its share on its own core (duetto/devices.py; BENCHMARKS.md §5: 16 seeds of fused SAC in
  4.94× one seed's time on two devices, 9.5× on one). A split run's numbers depend on the
  split in their last bits. It must be set before JAX starts its backends (the first array or
  computation); later, it is refused with a warning. DUETTO_CPU_DEVICES overrides it (1: one
  device).
- `compilation_cache`: JAX's persistent compilation cache, so that a second run of the same
  program skips XLA's compilation (the main fixed cost of a short run on CPU): True for a
  directory in the user's cache ($XDG_CACHE_HOME/duetto/jax), a path, or False.
  DUETTO_COMPILATION_CACHE overrides it (0: off; a path).
- A process started by `duetto train --workers` is pinned to its share of the cores
  (DUETTO_PIN_CORES, set by the CLI for its children), before JAX's threads exist: they
  inherit the mask of the thread that creates them.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import jax

from duetto.errors import DuettoError


def configure(
    *, cpu_devices: int | None = None, compilation_cache: bool | str | Path = True
) -> None:
    """Set up this process for duetto (see the module docstring). `cpu_devices` None: one per
    core this process may use."""
    _pin_cores()
    _cpu_devices(cpu_devices)
    _compilation_cache(compilation_cache)


def _pin_cores() -> None:
    cores = os.environ.pop("DUETTO_PIN_CORES", "")
    if cores and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(c) for c in cores.split(",")})


def _cpu_devices(count: int | None) -> None:
    from jax._src import xla_bridge

    setting = os.environ.get("DUETTO_CPU_DEVICES", "")
    asked = bool(setting) or count is not None
    if setting:
        count = int(setting) if setting.isdigit() and int(setting) > 0 else 0
        if not count:
            raise DuettoError(
                f"DUETTO_CPU_DEVICES must be a positive integer (1 turns the per-core CPU "
                f"devices off), got {setting!r}."
            )
    elif count is None:
        count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    elif not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise DuettoError(f"cpu_devices must be a positive integer or None, got {count!r}.")
    devices = jax.config.jax_num_cpu_devices  # type: ignore[attr-defined]
    if devices == count:
        return
    if (
        devices != -1
        or "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", "")
        or xla_bridge.backends_are_initialized()
    ):
        if not asked:
            return  # the default, one device per core, where JAX leaves the choice
        warnings.warn(
            f"duetto.configure: {count} CPU device(s) not set: JAX's CPU device count is set "
            "already (jax_num_cpu_devices, XLA_FLAGS), or JAX has started. Call "
            "duetto.configure() before the first JAX computation.",
            stacklevel=3,
        )
        return
    jax.config.update("jax_num_cpu_devices", count)


def _compilation_cache(cache: bool | str | Path) -> None:
    setting = os.environ.get("DUETTO_COMPILATION_CACHE", "")
    if setting == "0" or (not setting and cache is False):
        return
    if setting:
        path = Path(setting)
    elif cache is True:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        path = Path(base) / "duetto" / "jax"
    else:
        path = Path(cache)  # type: ignore[arg-type]  # a str or Path here
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return  # a read-only home: run without the cache
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
