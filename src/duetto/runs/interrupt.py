"""Stopping a run on SIGINT (Ctrl-C) or SIGTERM without losing it.

While `learn` runs, the first of these signals asks the loop to stop at the next step boundary
(after the vector-env step or compiled chunk in progress), where the run's state and its envs
agree; `learn` then writes a checkpoint and raises `Interrupted`. A second Ctrl-C stops at once,
without a checkpoint.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """learn() stopped on a signal after `env_steps` env steps; `checkpoint` is where the run
    was saved (None for an agent without a run directory)."""

    def __init__(self, signum: int, env_steps: int, checkpoint: Path | None):
        super().__init__(signum, env_steps, checkpoint)
        self.signum, self.env_steps, self.checkpoint = signum, env_steps, checkpoint

    def __str__(self) -> str:
        name = signal.Signals(self.signum).name
        saved = f"checkpoint: {self.checkpoint}" if self.checkpoint else "no run directory"
        return f"stopped by {name} at env step {self.env_steps} ({saved})"

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class StopRequests:
    """Within `with`, SIGINT and SIGTERM set `signum` instead of stopping the process (on the
    main thread; elsewhere signals keep their handlers). A second SIGINT raises
    KeyboardInterrupt at once."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if self.signum is None:
            print(
                f"duetto: {signal.Signals(signum).name}: stopping after this step and writing a "
                "checkpoint (Ctrl-C again stops at once, without one)",
                file=sys.stderr,
                flush=True,
            )
        self.signum = signum

    def __enter__(self) -> StopRequests:
        if threading.current_thread() is threading.main_thread():
            for s in SIGNALS:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous = {}
