"""What the two host loops share: Gymnasium vector envs in Python, everything else compiled.

A host loop holds its run state packed (`data/packing.py`) and makes one compiled call per
vector-env step. It moves observations in and actions out; which program runs at a step
(`collect` or `train`) is decided by the concrete loop from the env-step count alone, so a
resumed run takes the same path as the original.

Programs take `(carry, reward, next_obs, terminated, done, obs)` and return `(carry, action)`:
reward, terminated, done [n_envs]; next_obs the observation each sub-env reached (the true
final one at an episode end); obs the observation the next action is for (after autoreset).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np

from duetto.contract import Algorithm, Config
from duetto.data.packing import Packing
from duetto.envs.gym import (
    ActionEdge,
    EnvLike,
    check_finite,
    describe_env,
    env_name,
    env_spec,
    evaluation_copy,
    final_observations,
    make_vector_env,
    sub_envs,
    wrap_vector_env,
)
from duetto.envs.spaces import ObsEdge
from duetto.envs.spec import EnvSpec
from duetto.errors import DuettoError
from duetto.loops.compiled import ONCE_OPTIONS, Program
from duetto.loops.evaluation import evaluate_policy
from duetto.runs.checkpoint import restore_state


class Programs(NamedTuple):
    """start(state, obs) chooses the first action; collect and train take a step's results
    (see the module docstring). Each is a function over the structured loop state."""

    start: Callable
    collect: Callable
    train: Callable


def compile_packed(
    programs: Programs, packing: Packing, big: str | None, options: dict[str, Any]
) -> Programs:
    """Each program as one jitted call over the packed carry `(big leaf, packed rest)`, donated
    so that large buffers (the replay) are updated in place; it returns the new carry and the
    action to take. `big` names a state field kept out of the packing (or None)."""

    def packed(program: Callable, opts: dict[str, Any]) -> Program:
        def run(carry: tuple, *args: Any) -> tuple[tuple, jnp.ndarray]:
            held, rest = carry
            ls = packing.unpack(rest)
            if big is not None:
                ls = ls.replace(**{big: held})
            ls = program(ls, *args)
            held = getattr(ls, big) if big is not None else None
            rest = packing.pack(ls.replace(**{big: None}) if big is not None else ls)
            return (held, rest), ls.last_action

        return Program(run, opts, donate=(0,))

    start, collect, train = programs
    # start runs once per reset: it gets no LLVM optimisation (see loops/compiled.py).
    return Programs(packed(start, ONCE_OPTIONS), packed(collect, options), packed(train, options))


class EpisodeTracker:
    """Returns and lengths of the episodes that end, per sub-env, on the host."""

    def __init__(self, n_envs: int):
        self.returns = np.zeros(n_envs)
        self.lengths = np.zeros(n_envs, dtype=np.int64)
        self.finished: list[tuple[float, int]] = []

    def record(self, reward: np.ndarray, done: np.ndarray) -> None:
        self.returns += reward
        self.lengths += 1
        for i in np.flatnonzero(done):
            self.finished.append((float(self.returns[i]), int(self.lengths[i])))
            self.returns[i] = 0.0
            self.lengths[i] = 0

    def drain(self) -> list[tuple[float, int]]:
        out, self.finished = self.finished, []
        return out

    def state(self) -> dict:
        return {"returns": self.returns.tolist(), "lengths": self.lengths.tolist()}

    def restore(self, state: dict) -> None:
        self.returns = np.asarray(state["returns"], dtype=np.float64)
        self.lengths = np.asarray(state["lengths"], dtype=np.int64)


class HostLoop:
    """Drives a Gymnasium vector env with compiled programs: one run (a seed), the runner of
    the host loops (loops/runner.py).

    Subclasses give `make_programs(algo, config, n_envs)` (over the structured state), `big`
    (a state field kept out of the packing, or None), `build_state` and `use_train(env_steps)`.
    """

    kind: ClassVar[str] = "host"
    runs_have_dirs: ClassVar[bool] = False
    default_log_every: ClassVar[int] = 1000
    big: ClassVar[str | None] = None
    compile_options: ClassVar[dict[str, Any]] = {}  # XLA options (see loops/compiled.py)

    def __init__(
        self,
        algo: Algorithm,
        config: Config,
        env: EnvLike,
        seed: int,
        vec: gym.vector.VectorEnv,
        vectorization: str,
        state: Any = None,
    ):
        self.algo: Any = algo  # an off- or on-policy module, as the subclass runs it
        self.config: Any = config
        self.seed = seed
        self.vec, self.vectorization = vec, vectorization
        self.n_envs = vec.num_envs
        self.env_id = env_name(env)
        self.env_build = describe_env(env)  # how the env was made (config.json)
        self.spec: EnvSpec = env_spec(vec, algo.NAME, algo.ACTION_SPACES)
        config.check(self.n_envs)
        if state is None:
            state = self.init_state(jax.random.PRNGKey(seed))
        self.edge = ActionEdge(vec.single_action_space)
        self.obs_edge = ObsEdge(vec.single_observation_space)
        self.packing = Packing(self._without_big(state))
        programs = self.make_programs(algo, config, self.n_envs)
        self.programs = compile_packed(programs, self.packing, self.big, self.compile_options)
        self.state = state
        self.episodes = EpisodeTracker(self.n_envs)
        self.runs = [{"seed": seed, "hparams": {}}]
        self._env_steps = int(state.env_steps)
        self._last_sums: dict[str, float] = {}
        self._last_count = 0
        self._policy = jax.jit(lambda s, o: algo.act(s, o, None, True))
        self._sample = jax.jit(lambda s, o, k: algo.act(s, o, k, False))

    # ---- what a subclass gives ----------------------------------------------------------------

    def make_programs(self, algo: Any, config: Any, n_envs: int) -> Programs:
        raise NotImplementedError

    def build_state(self, key: jax.Array) -> Any:
        """A fresh loop state (traced: `init_state` compiles it as one program)."""
        raise NotImplementedError

    def use_train(self, env_steps: int) -> bool:
        """Whether the step that brings the run from `env_steps` runs `train`."""
        raise NotImplementedError

    # ---- state ------------------------------------------------------------------------------

    def init_state(self, key: jax.Array) -> Any:
        """A fresh run state, built by one compiled program (op-by-op it would compile dozens);
        it runs once: no LLVM optimisation to wait for."""
        return Program(self.build_state, ONCE_OPTIONS)(key)

    def state_shapes(self) -> Any:
        """The run state's structure, shapes and dtypes, without computing it."""
        return jax.eval_shape(self.build_state, jax.random.PRNGKey(0))

    def _without_big(self, state: Any) -> Any:
        return state.replace(**{self.big: None}) if self.big is not None else state

    @property
    def state(self) -> Any:
        """The run state as a pytree (a copy; the loop itself keeps it packed). Packing and
        unpacking on the host compile nothing: as XLA programs they took 0.3–0.4 s each to
        compile, a tenth of a short run."""
        small = self.packing.unpack_host(self.carry[1])
        if self.big is None:
            return small
        return small.replace(**{self.big: jax.device_put(self.carry[0], may_alias=False)})

    @state.setter
    def state(self, state: Any) -> None:
        big = getattr(state, self.big) if self.big is not None else None
        self.carry = (big, self.packing.pack_host(self._without_big(state)))
        self.action = state.last_action

    @property
    def algo_state(self) -> Any:
        """The algorithm's part of the state (a copy), without copying `big` (the replay)."""
        return self.packing.unpack_host(self.carry[1]).algo

    @property
    def env_steps(self) -> int:
        return self._env_steps

    # ---- running ----------------------------------------------------------------------------

    def reset(self) -> None:
        """Start the sub-envs (sub-env i gets seed + i) and choose the first action."""
        obs, _ = self.vec.reset(seed=self.seed)
        flat = self.obs_edge(obs, self.n_envs)
        check_finite(self.env_steps, observation=flat)
        self.carry, self.action = self.programs.start(self.carry, jnp.asarray(flat))

    def planned(self, steps: int) -> int:
        return steps

    def prepare_evaluation(self, episodes: int) -> None:
        pass  # the evaluation program is the deterministic policy, compiled on first use

    def advance(self, steps: int, chunk: int, hook: Callable[[int], bool]) -> None:
        """At least `steps` env steps, `hook` after every vector step."""
        vec, n = self.vec, self.n_envs
        target = self.env_steps + steps
        while self.env_steps < target:
            obs, reward, terminated, truncated, info = vec.step(self.edge(self.action, n))
            done = terminated | truncated
            next_obs = final_observations(self.obs_edge, obs, done, info)
            check_finite(self.env_steps, observation=next_obs, reward=reward)
            program = (
                self.programs.train if self.use_train(self.env_steps) else self.programs.collect
            )
            self.carry, self.action = program(
                self.carry,
                np.asarray(reward, np.float32),
                next_obs,
                np.asarray(terminated, np.float32),
                np.asarray(done, np.float32),
                self.obs_edge(obs, n),
            )
            self._env_steps += n
            self.episodes.record(reward, done)
            if hook(self.env_steps) is False:
                break

    def read_train(self) -> list[dict[str, float]]:
        """Mean of each update metric since the last read (none before learning starts), and
        the mean return and length of the training episodes that ended since then."""
        # Read on the host at once (no copy back to the device); not the replay.
        state = self.packing.unpack(tuple(np.asarray(b) for b in self.carry[1]))
        sums, count = state.metric_sums, int(state.metric_count)
        calls = count - self._last_count
        row: dict[str, float] = {}
        if calls > 0:
            row = {k: (float(v) - self._last_sums.get(k, 0.0)) / calls for k, v in sums.items()}
        self._last_sums = {k: float(v) for k, v in sums.items()}
        self._last_count = count
        finished = self.episodes.drain()
        if finished:
            row["episode_return"] = float(np.mean([r for r, _ in finished]))
            row["episode_length"] = float(np.mean([n for _, n in finished]))
        return [row]

    def evaluate(self, episodes: int, seed: int | None) -> tuple[np.ndarray, np.ndarray]:
        # Copies of the env as training has it now (its arguments, wrappers and normalising
        # statistics, frozen), so that evaluation in this process, after load and in `duetto
        # eval` runs on exactly the env the run trained on.
        trained = evaluation_copy(sub_envs(self.vec)[0].env)
        vec = wrap_vector_env([evaluation_copy(trained) for _ in range(episodes)])
        if seed is None:
            # Fresh start states at each evaluation, fixed by (seed, step), so that a resumed
            # run evaluates exactly as the original would have.
            state = np.random.SeedSequence([self.seed, self.env_steps]).generate_state(1)
            seed = int(state[0]) % 2**31
        algo_state = self.algo_state
        try:
            result = evaluate_policy(
                lambda o: np.asarray(self._policy(algo_state, jnp.asarray(o))),
                vec,
                seed,
                time_limit(trained),
            )
        finally:
            vec.close()
        return np.asarray([result["returns"]]), np.asarray([result["lengths"]])

    def act(self, run: int, obs: np.ndarray, key: Any) -> np.ndarray:
        x = jnp.asarray(obs, jnp.float32)  # [n, obs_dim], made by obs_edge
        if key is None:
            action = self._policy(self.algo_state, x)
        else:
            action = self._sample(self.algo_state, x, key)
        return self.edge(action, obs.shape[0])

    # ---- what a checkpoint and config.json say ----------------------------------------------

    @property
    def time_limit(self) -> int | None:
        return time_limit(sub_envs(self.vec)[0].env)

    def identity(self) -> dict[str, Any]:
        return {
            "loop": self.kind,
            "seed": self.seed,
            "vectorization": self.vectorization,
            "env_build": self.env_build,
        }

    def progress(self) -> dict[str, Any]:
        return {"episodes": self.episodes.state()}

    def saved_envs(self) -> list:
        return sub_envs(self.vec)

    def close(self) -> None:
        """Close the envs (async sub-env processes end)."""
        self.vec.close()


def time_limit(env: gym.Env) -> int | None:
    """The env's own episode limit (its registered max_episode_steps), if it has one."""
    return getattr(env.spec, "max_episode_steps", None)


class HostKind:
    """How host runners are made (loops/runner.py: RunnerKind): the off-policy or on-policy
    loop, by the algorithm's LOOP."""

    loops: dict[str, type[HostLoop]] = {}  # filled by loops/offpolicy.py and loops/onpolicy.py

    def create(
        self,
        algo: Algorithm,
        env: Any,
        seeds: Sequence[int],
        config: Config,
        n_envs: int,
        sweep: dict[str, list[float]],
        vectorization: str,
    ) -> HostLoop:
        if sweep:
            raise DuettoError(
                "sweep= trains several hyperparameter values in one compiled program, which "
                "needs a JAX-native env such as 'gymnax:CartPole-v1'."
            )
        if len(seeds) != 1:
            raise DuettoError(
                f"seeds= trains several seeds in one compiled program, which needs a JAX-native "
                f"env such as 'gymnax:{env_name(env)}'. For a Gymnasium env, make one agent per "
                "seed (the CLI's --seeds does this)."
            )
        vec = make_vector_env(env, n_envs, vectorization)
        loop = self.loops[algo.LOOP](algo, config, env, seeds[0], vec, vectorization)
        loop.reset()
        return loop

    def restore(
        self,
        algo: Algorithm,
        config: Config,
        meta: dict[str, Any],
        ckpt: Path,
        arrays: dict[str, np.ndarray] | list[np.ndarray],
        envs: list,
        env: Any,
    ) -> HostLoop:
        """The run of a checkpoint; `env` (not None) replaces its saved sub-envs, which starts
        fresh episodes (the continuation is then not bit-exact)."""
        vectorization = meta.get("vectorization", "sync")
        replaced = env is not None
        if replaced:
            vec = make_vector_env(env, meta["n_envs"], vectorization)
        else:
            vec = wrap_vector_env(envs, vectorization)
            env = meta["env"] if meta["env"] in gym.registry else envs[0]
        cls = self.loops[algo.LOOP]
        shell = cls.__new__(cls)
        shell.algo, shell.config, shell.n_envs = algo, config, meta["n_envs"]
        shell.spec = env_spec(vec, algo.NAME, algo.ACTION_SPACES)
        state = restore_state(ckpt, arrays, shell.state_shapes())
        loop = cls(algo, config, env, meta["seed"], vec, vectorization, state)
        loop.env_build = meta.get("env_build", loop.env_build)
        if replaced:
            loop.reset()
        loop.episodes.restore(meta["episodes"])
        loop.read_train()  # the sums so far belong to logs already written
        return loop
