import os

# A `--workers` child: pinned to its share of the cores before JAX starts, so that XLA sizes
# its thread pool to that share (duetto.cli._train_in_workers sets this).
_cores = os.environ.pop("DUETTO_PIN_CORES", "")
if _cores and hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {int(c) for c in _cores.split(",")})

from duetto.cli import entry  # noqa: E402

entry()
