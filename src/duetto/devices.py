"""Devices for runs side by side: one CPU device per core, and the runs of a fused program
sharded across the devices.

XLA:CPU gives one device whose thread pool spreads each operation over the cores. For the small
networks of most RL runs that buys little: an operation is too small to split well, and the
batched matmuls of seeds vmapped together run on one thread (BENCHMARKS.md §2, §5). Several
runs in one program split better along the runs: with one device per core, each device runs
its share of the seeds on its own core. On a machine with several GPUs the same sharding puts
seeds on each GPU.

`duetto.configure()` (duetto/runtime.py; the CLI calls it) asks JAX for one CPU device per core
the process may use. Work that is not sharded (one run, the host loops) runs on the first device
with the same threads as before.

A split run's numbers depend on the split in their last bits (each device's matmuls see its
share of the batch), so the same seeds give the same bits on the same device count, and close
but not equal ones on another (`taskset`, another machine).
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

RUNS_AXIS = "runs"


def runs_sharding(n_runs: int) -> NamedSharding | None:
    """How to lay out n runs stacked on a leading axis: split over as many of the default
    backend's devices as divide n evenly, or None when that is one device."""
    devices = jax.devices()
    shards = max(d for d in range(1, len(devices) + 1) if n_runs % d == 0)
    if shards == 1:
        return None
    mesh = Mesh(np.asarray(devices[:shards]), (RUNS_AXIS,))
    return NamedSharding(mesh, PartitionSpec(RUNS_AXIS))
