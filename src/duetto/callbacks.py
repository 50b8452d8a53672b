"""Training callbacks: evaluate, checkpoint, stop at a return threshold, or run your function.

A callback is called with a `TrainingContext` after every vector-env step (host loops) or every
compiled chunk (fused loop); it acts when its `every` interval (in env steps) is crossed.
Returning False stops training.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from duetto.agent import Agent


@dataclass
class TrainingContext:
    """What a callback sees: all public, the same for every loop."""

    agent: Agent
    env_steps: int  # env steps taken so far in the whole run (per run)
    steps_this_call: int  # env steps taken in this learn() call
    start_steps: int = 0  # env steps when this learn() call started
    last_eval: dict[str, Any] | None = None  # the latest evaluation (agent.record_evaluation)
    extra: dict[str, Any] = field(default_factory=dict)


class Callback:
    every: int = 1

    def __init__(self, every: int = 1):
        if every < 1:
            from duetto.errors import DuettoError

            raise DuettoError(f"a callback's interval must be at least 1 env step, got {every}.")
        self.every = every
        self._next: int | None = None

    def __call__(self, ctx: TrainingContext) -> bool | None:
        if self._next is None:
            self._next = ctx.start_steps // self.every * self.every + self.every
        if ctx.env_steps < self._next:
            return None
        self._next = ctx.env_steps // self.every * self.every + self.every
        return self.on_interval(ctx)

    def on_interval(self, ctx: TrainingContext) -> bool | None:
        raise NotImplementedError


class EvaluateEvery(Callback):
    """Deterministic evaluation over `episodes` episodes every `every` env steps."""

    def __init__(self, every: int, episodes: int = 10):
        super().__init__(every)
        self.episodes = episodes

    def on_interval(self, ctx: TrainingContext) -> bool | None:
        ctx.last_eval = ctx.agent.record_evaluation(self.episodes)
        return None


class CheckpointEvery(Callback):
    """Write a checkpoint into the run directory every `every` env steps."""

    def on_interval(self, ctx: TrainingContext) -> bool | None:
        ctx.agent.checkpoint()
        return None


class StopOnReturn(Callback):
    """Stop when the latest evaluation's mean return reaches `threshold` (checked each step,
    acting on whichever evaluation ran last)."""

    def __init__(self, threshold: float):
        super().__init__(1)
        self.threshold = threshold
        self._seen: int | None = None

    def on_interval(self, ctx: TrainingContext) -> bool | None:
        ev = ctx.last_eval
        if ev is None or ev["step"] == self._seen:
            return None
        self._seen = ev["step"]
        if ev["return_mean"] >= self.threshold:
            ctx.extra["stopped"] = f"evaluation return {ev['return_mean']:.1f} ≥ {self.threshold}"
            return False
        return None


class FunctionCallback(Callback):
    """Calls `fn(ctx)` every `every` env steps; `fn` returns False to stop training."""

    def __init__(self, fn: Callable[[TrainingContext], bool | None], every: int = 1):
        super().__init__(every)
        self.fn = fn

    def on_interval(self, ctx: TrainingContext) -> bool | None:
        return self.fn(ctx)
