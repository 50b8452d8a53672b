"""A terminal progress bar: steps, steps/s, the last evaluation return and the ETA."""

from __future__ import annotations

import time

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)


class TrainingProgress:
    """Redrawn at most 10 times a second, so it costs nothing per step."""

    def __init__(self, total: int, start: int, description: str):
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[sps]:>7} steps/s"),
            TextColumn("eval {task.fields[last_eval]:>8}"),
            TimeRemainingColumn(),
            refresh_per_second=10,
        )
        self._task = self._progress.add_task(
            description, total=total, completed=0, sps="-", last_eval="-"
        )
        self._start_steps = start
        self._t0 = time.perf_counter()
        self._next = 0.0
        self._progress.start()

    def update(self, steps_done: int, last_eval: float | None, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now < self._next:
            return
        self._next = now + 0.1
        sps = steps_done / max(now - self._t0, 1e-9)
        self._progress.update(
            self._task,
            completed=steps_done,
            sps=f"{sps:,.0f}",
            last_eval="-" if last_eval is None else f"{last_eval:.1f}",
        )

    def close(self) -> None:
        self._progress.stop()
