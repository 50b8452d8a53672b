"""The loops: host off-policy and on-policy over Gymnasium vector envs, and the fused loop over
a JAX-native env; each a runner of the loop protocol (loops/runner.py), registered here under
the name its checkpoints carry."""

from __future__ import annotations

from duetto.loops import offpolicy, onpolicy  # noqa: F401 - they register the host loops
from duetto.loops.fused import FusedKind
from duetto.loops.host import HostKind
from duetto.loops.runner import Runner, RunnerKind

RUNNERS: dict[str, RunnerKind] = {"host": HostKind(), "fused": FusedKind()}

__all__ = ["RUNNERS", "Runner", "RunnerKind"]
