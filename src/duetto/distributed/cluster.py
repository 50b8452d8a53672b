"""Where duetto's Ray work runs: a local Ray started for one command, or a cluster joined by
address.

With no address (and no RAY_ADDRESS), `ray_session` starts a Ray instance on this machine with
one CPU per core this process may use, and shuts it down when the command ends. With an
address ('auto', 'HOST:6379', 'ray://HOST:10001') it joins that cluster and leaves it running.
A Ray already initialized in the process (a test, a notebook) is used as it is.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator

from duetto.errors import DuettoError


def local_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@contextlib.contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None) -> Iterator[None]:
    """Ray for the duration of the `with` block (see the module docstring). `num_cpus`: the
    CPUs a local Ray offers (default: the cores this process may use)."""
    import ray

    if ray.is_initialized():
        yield
        return
    address = address or os.environ.get("RAY_ADDRESS") or None
    # duetto's trials report through Tune; Ray's own dashboard and usage report are not needed
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # ray.init starts its processes with fork and exec at once, which is safe after JAX started
    warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
    if address:
        _check_reachable(address)
    try:
        if address:
            ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
        else:
            ray.init(
                # "local": a new instance even where `ray start` left one running
                address="local",
                num_cpus=num_cpus or local_cores(),
                include_dashboard=False,
                logging_level=logging.ERROR,
                log_to_driver=False,
            )
    except (ConnectionError, TimeoutError, ValueError, RuntimeError) as e:
        where = f"the Ray cluster at '{address}'" if address else "a local Ray"
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DuettoError(
            f"cannot start or join {where}: {first}. Start a head with 'ray start --head' and "
            "give its address (--address HOST:6379 or RAY_ADDRESS), or give none for a local Ray."
        ) from None
    try:
        yield
    finally:
        ray.shutdown()


def _check_reachable(address: str) -> None:
    """Fail at once, with one line, where nothing listens at HOST:PORT (ray.init would retry
    for minutes); 'auto' and addresses without a port are left to Ray."""
    import socket

    where = address.removeprefix("ray://")
    host, sep, port = where.rpartition(":")
    if where == "auto" or not sep or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as e:
        raise DuettoError(
            f"no Ray cluster answers at '{address}' ({e.strerror or e}). Start a head with "
            "'ray start --head --port 6379' and give HOST:6379, or give no --address for a "
            "local Ray."
        ) from None
