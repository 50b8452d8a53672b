"""Devices for runs side by side: one CPU device per core, and the runs of a fused program
sharded across the devices.

XLA:CPU gives one device whose thread pool spreads each operation over the cores. For the small
networks of most RL runs that buys little: an operation is too small to split well, and the
batched matmuls of seeds vmapped together run on one thread (BENCHMARKS.md §2, §5). Several
runs in one program split better along the runs: with one device per core, each device runs
its share of the seeds on its own core. On a machine with several GPUs the same sharding puts
seeds on each GPU.

At import, duetto asks JAX for one CPU device per core it may use (`jax_num_cpu_devices`),
unless the count is set already (that option, JAX_NUM_CPU_DEVICES, or XLA_FLAGS'
--xla_force_host_platform_device_count), JAX has started its backends, or
DUETTO_CPU_DEVICES says otherwise (1: one device, as plain JAX). Work that is not sharded
(one run, the host loops) runs on the first device with the same threads as before.

A split run's numbers depend on the split in their last bits (each device's matmuls see its
share of the batch), so the same seeds give the same bits on the same device count, and close
but not equal ones on another (`taskset`, another machine).
"""

from __future__ import annotations

import os
import warnings

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from duetto.errors import DuettoError

RUNS_AXIS = "runs"


def use_cpu_cores() -> None:
    """One CPU device per usable core (see the module docstring), when nothing says otherwise."""
    from jax._src import xla_bridge

    setting = os.environ.get("DUETTO_CPU_DEVICES", "")
    if setting:
        count = int(setting) if setting.isdigit() and int(setting) > 0 else 0
        if not count:
            raise DuettoError(
                f"DUETTO_CPU_DEVICES must be a positive integer (1 turns the per-core CPU "
                f"devices off), got {setting!r}."
            )
    else:
        count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    if (
        jax.config.jax_num_cpu_devices != -1
        or "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", "")
        or xla_bridge.backends_are_initialized()
    ):
        if setting:
            warnings.warn(
                f"DUETTO_CPU_DEVICES={setting} is ignored: JAX's CPU device count is set "
                "already (jax_num_cpu_devices, XLA_FLAGS, or JAX started before duetto was "
                "imported). Import duetto first, or set the count in JAX itself.",
                stacklevel=3,
            )
        return
    jax.config.update("jax_num_cpu_devices", count)


def runs_sharding(n_runs: int) -> NamedSharding | None:
    """How to lay out n runs stacked on a leading axis: split over as many of the default
    backend's devices as divide n evenly, or None when that is one device."""
    devices = jax.devices()
    shards = max(d for d in range(1, len(devices) + 1) if n_runs % d == 0)
    if shards == 1:
        return None
    mesh = Mesh(np.asarray(devices[:shards]), (RUNS_AXIS,))
    return NamedSharding(mesh, PartitionSpec(RUNS_AXIS))
