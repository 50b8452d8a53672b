"""Flights of a trained quadrotor policy: deterministic episodes of duetto:Quadrotor-v0 recorded
in one compiled rollout, and a picture of them (3-D paths; position error and tilt over time).

    agent = duetto.TD3("duetto:Quadrotor-v0", preset="l2f", seed=0).learn()
    flights = record_flights(agent, episodes=6, seed=1)
    plot_flights(flights, "flights.png")
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from duetto.errors import DuettoError


class Flights(NamedTuple):
    """Episodes [E] of T steps: position [E, T, 3] (m), tilt [E, T] (degrees between the
    body's z axis and the vertical), alive [E, T] (1 until the episode ended)."""

    position: np.ndarray
    tilt: np.ndarray
    alive: np.ndarray
    dt: float

    @property
    def lengths(self) -> np.ndarray:
        return self.alive.sum(axis=1).astype(int)


def record_flights(agent: Any, episodes: int = 6, seed: int = 0, run: int = 0) -> Flights:
    """`episodes` deterministic episodes of run `run` of a fused quadrotor run, from start
    states drawn with `seed`, with the env's noise and disturbances on."""
    runner = agent.loop
    env = getattr(runner, "jax_env", None)
    if env is None or "Quadrotor" not in env.env_id:
        raise DuettoError(
            "record_flights needs a run trained on duetto:Quadrotor-v0 (or its variants) in the "
            f"fused loop; this one ran on {getattr(agent, 'env_id', 'another env')}."
        )
    algo = runner.algo
    state = jax.tree.map(lambda leaf: leaf[run], runner.algo_state)
    steps = env.max_steps

    @jax.jit
    def rollout(algo_state: Any, key: jax.Array) -> tuple:
        k_reset, k_steps = jax.random.split(key)
        obs, env_state = env.reset(k_reset, episodes)

        def step(carry: tuple, k: jax.Array) -> tuple:
            obs, env_state, alive = carry
            body = env_state.body
            action = algo.act(algo_state, obs, None, True)
            obs, env_state, _, terminated, truncated, _ = env.step(k, env_state, action)
            record = (body.position, body.orientation, alive)
            return (obs, env_state, alive * (1.0 - jnp.maximum(terminated, truncated))), record

        alive = jnp.ones((episodes,), jnp.float32)
        keys = jax.random.split(k_steps, steps)
        record: tuple[Any, Any, Any]
        _, record = jax.lax.scan(step, (obs, env_state, alive), keys)
        return record

    recorded: tuple[Any, Any, Any] = jax.device_get(rollout(state, jax.random.PRNGKey(seed)))
    position, q, alive = (np.asarray(x) for x in recorded)
    # The body z axis in the world is R(q)·e_z; its angle to the vertical: cos = 1 − 2(x² + y²).
    cos_tilt = np.clip(1 - 2 * (q[..., 1] ** 2 + q[..., 2] ** 2), -1.0, 1.0)
    swap = (1, 0)
    return Flights(
        position=np.asarray(position).transpose(1, 0, 2),
        tilt=np.degrees(np.arccos(cos_tilt)).transpose(swap),
        alive=np.asarray(alive).transpose(swap),
        dt=float(env.params.dt),
    )


def plot_flights(flights: Flights, path: str | Path, title: str | None = None) -> Path:
    """A picture of the flights: their 3-D paths (start ○, end ● or × where the episode was
    terminated), the distance to the target and the tilt over time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(13, 4.2))
    ax3 = fig.add_subplot(1, 3, 1, projection="3d")
    ax_d, ax_t = fig.add_subplot(1, 3, 2), fig.add_subplot(1, 3, 3)
    colours = plt.get_cmap("tab10")
    steps = flights.alive.shape[1]
    for i, n in enumerate(flights.lengths):
        p, c = flights.position[i, :n], colours(i % 10)
        t = np.arange(n) * flights.dt
        ax3.plot(p[:, 0], p[:, 1], p[:, 2], color=c, lw=1.2)
        ax3.scatter(*p[0], color=c, marker="o", facecolors="none")
        ax3.scatter(*p[-1], color=c, marker="o" if n == steps else "x")
        ax_d.plot(t, np.linalg.norm(p, axis=1), color=c, lw=1.2)
        ax_t.plot(t, flights.tilt[i, :n], color=c, lw=1.2)
    ax3.scatter(0, 0, 0, color="k", marker="+", s=60)
    ax3.set(xlabel="x (m)", ylabel="y (m)", zlabel="z (m)", title="paths (target +)")
    ax_d.set(xlabel="time (s)", ylabel="distance to target (m)", title="position error")
    ax_t.set(xlabel="time (s)", ylabel="tilt (°)", title="attitude")
    for ax in (ax_d, ax_t):
        ax.grid(alpha=0.3)
    full = int((flights.lengths == steps).sum())
    fig.suptitle(title or f"{full} of {len(flights.lengths)} flights last {steps} steps")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
