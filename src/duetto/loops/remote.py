"""Remote env runners: a host-loop run's sub-envs stepped by Ray actors, on this machine or on
any node of a cluster, for envs whose step costs more than the update.

    agent = duetto.SAC("HalfCheetah-v5", n_envs=4, seed=0)
    remote_envs(agent, runners=2)        # 2 actors, 2 sub-envs each
    agent.learn(100_000)

Each runner is an actor that owns a share of the sub-envs (a Gymnasium SyncVectorEnv in
SAME_STEP autoreset mode, as the host loop's) and steps them when the learner sends their
actions; the runners step at the same time, so a vector step costs the slowest runner's share
rather than the sum. The policy stays in the learner's one compiled program per vector step
(store the transition, update, choose the next actions): the data and the update order are
those of the local run, so a run with remote runners equals the local run with the same seed
bit for bit, whatever the number of runners (tests/test_ray_remote.py), and checkpoints hold
the runners' exact env states (fetched from them), so resume stays exact; a loaded run steps
its envs locally until `remote_envs` is called on it again.

What this is not (yet): RLlib's env runners, which hold a copy of the policy, roll out whole
fragments without the learner and receive parameters after each update, so that stepping and
updating overlap. That needs the host loops to split their per-step program into an acting
part (runner) and a learning part (learner); see the issue's notes.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from typing import Any

import cloudpickle
import gymnasium as gym
import numpy as np

from duetto.envs.gym import EnvCopy, wrap_vector_env
from duetto.errors import DuettoError


class EnvRunner:
    """A Ray actor's body: a share of the sub-envs, stepped on request."""

    def __init__(self, saved: bytes):
        envs = [copy.env for copy in pickle.loads(saved)]  # EnvCopy: exact states
        self.vec = wrap_vector_env(envs, "sync")

    def step(self, actions: np.ndarray) -> tuple:
        obs, reward, terminated, truncated, info = self.vec.step(actions)
        final = info.get("final_obs")
        finals = None
        if final is not None:
            mask = info.get("_final_obs", np.zeros(len(reward), bool))
            finals = [final[i] if mask[i] else None for i in range(len(reward))]
        return obs, reward, terminated, truncated, finals

    def snapshot(self) -> bytes:
        return cloudpickle.dumps([EnvCopy(e) for e in self.vec.envs])  # type: ignore[attr-defined]

    def close(self) -> None:
        self.vec.close()


class RemoteVectorEnv(gym.vector.VectorEnv):
    """A vector env whose sub-envs live in `runners` Ray actors (contiguous shares, as equal as
    they can be). `envs` (the sub-envs as they are now, copies) serves checkpoints and
    evaluation."""

    def __init__(self, envs: Sequence[gym.Env], runners: int, resources: dict[str, float]):
        import ray

        if not isinstance(runners, int) or isinstance(runners, bool) or runners < 1:
            raise DuettoError(f"runners must be a positive integer, got {runners!r}.")
        if runners > len(envs):
            raise DuettoError(
                f"{runners} runners for {len(envs)} sub-envs: give each runner at least one "
                f"(n_envs={runners} or more when making the agent)."
            )
        self.num_envs = len(envs)
        self.single_observation_space = envs[0].observation_space
        self.single_action_space = envs[0].action_space
        self.observation_space = gym.vector.utils.batch_space(
            self.single_observation_space, self.num_envs
        )
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, self.num_envs)
        self.metadata = {"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP}
        size, extra = divmod(len(envs), runners)
        self.bounds: list[tuple[int, int]] = []
        start = 0
        for i in range(runners):
            end = start + size + (1 if i < extra else 0)
            self.bounds.append((start, end))
            start = end
        actor = ray.remote(**_ray_options(resources))(EnvRunner)
        self.actors: list[Any] = [
            actor.remote(cloudpickle.dumps([EnvCopy(e) for e in envs[a:b]])) for a, b in self.bounds
        ]
        self._obs_space = self.observation_space

    def reset(self, *, seed: Any = None, options: Any = None) -> tuple:
        raise DuettoError(
            "remote runners continue the episodes of the envs they were given; make the agent "
            "(which resets its envs) first, then call remote_envs(agent)."
        )

    def step(self, actions: Any) -> tuple:
        import ray

        futures = [
            a.step.remote(actions[lo:hi])
            for a, (lo, hi) in zip(self.actors, self.bounds, strict=True)
        ]
        parts = ray.get(futures)
        obs = _concat([p[0] for p in parts])
        reward = np.concatenate([p[1] for p in parts])
        terminated = np.concatenate([p[2] for p in parts])
        truncated = np.concatenate([p[3] for p in parts])
        finals: list[Any] = []
        for p, (lo, hi) in zip(parts, self.bounds, strict=True):
            finals += p[4] if p[4] is not None else [None] * (hi - lo)
        info: dict[str, Any] = {}
        done = [f is not None for f in finals]
        if any(done):
            info["final_obs"] = np.array(finals + [0], dtype=object)[:-1]
            info["_final_obs"] = np.array(done)
        return obs, reward, terminated, truncated, info

    @property
    def envs(self) -> list[gym.Env]:
        """Copies of the sub-envs as the runners hold them now (exact states)."""
        import ray

        copies: list[gym.Env] = []
        for saved in ray.get([a.snapshot.remote() for a in self.actors]):
            copies += [c.env for c in pickle.loads(saved)]
        return copies

    def close_extras(self, **kwargs: Any) -> None:
        import ray

        for a in getattr(self, "actors", []):
            ray.kill(a)
        self.actors = []


def _concat(parts: list[Any]) -> Any:
    if isinstance(parts[0], dict):
        return {k: _concat([p[k] for p in parts]) for k in parts[0]}
    if isinstance(parts[0], tuple):
        return tuple(_concat([p[i] for p in parts]) for i in range(len(parts[0])))
    return np.concatenate(parts)


def _ray_options(resources: dict[str, float]) -> dict[str, Any]:
    options: dict[str, Any] = {"num_cpus": resources.get("cpu", 1)}
    if resources.get("gpu"):
        options["num_gpus"] = resources["gpu"]
    return options


def remote_envs(agent: Any, runners: int = 2, cpus_per_runner: float = 1) -> Any:
    """Move a host-loop agent's sub-envs into `runners` Ray actors (a local Ray is started if
    none is running; ray.init(address=...) first to use a cluster). Returns the agent."""
    import ray

    loop = agent.loop
    if getattr(loop, "kind", None) != "host":
        raise DuettoError(
            "remote env runners step Gymnasium sub-envs; a JAX-native env runs inside the "
            "compiled program already."
        )
    if not ray.is_initialized():
        from duetto.distributed.cluster import local_cores

        ray.init(num_cpus=local_cores(), include_dashboard=False, log_to_driver=False)
    from duetto.envs.gym import sub_envs

    envs = [copy.env for copy in sub_envs(loop.vec)]
    remote = RemoteVectorEnv(envs, runners, {"cpu": cpus_per_runner})
    loop.vec.close()
    loop.vec = remote
    return agent
