"""Replay storage, rollouts and return estimators."""

from duetto.data.replay import Replay, Transition, replay_add, replay_init, replay_sample

__all__ = ["Replay", "Transition", "replay_add", "replay_init", "replay_sample"]
