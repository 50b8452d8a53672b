"""The fused loop: a JAX-native env, collection, updates and evaluation in compiled programs,
vmapped over seeds.

One iteration is one rollout and one update (on-policy) or one vector step with its stored
transition and `gradient_steps` updates (off-policy). `train(state, n)` runs n iterations as one
compiled loop for every seed at once; `evaluate(state, episodes)` plays deterministic episodes
to their end in-graph. The host calls `train` once per chunk (an evaluation interval), so that
progress, logs, evaluations and checkpoints still happen during a long run, and both programs
take the chunk length as an argument: they compile once per run, whatever the budget.

The state of every seed has a leading [n_seeds] axis, split over the devices when there are
several (duetto/devices.py: on a CPU, one device per core), so that each device trains its share
of the seeds. The loop knows an algorithm only by the contract (duetto/contract.py).

`FusedRunner` is the runner of this loop (loops/runner.py): the runs' state between chunks, and
what the facade reads of it.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import flax
import jax
import jax.numpy as jnp
import numpy as np

from duetto.config import check_sweep
from duetto.contract import Algorithm, Config
from duetto.data.replay import Replay, Transition
from duetto.data.rollout import Rollout
from duetto.devices import runs_sharding
from duetto.envs.jaxenv import JaxEnv, StepNoise, make_jax_env
from duetto.envs.spaces import ObsEdge
from duetto.errors import DuettoError
from duetto.loops.compiled import ONCE_OPTIONS, TRAIN_OPTIONS, Program
from duetto.loops.offpolicy import (
    check_replay_memory,
    empty_replay,
    maybe_gradient_steps,
    store,
    warmup_action,
)
from duetto.runs.checkpoint import restore_state

EVAL_SEED_OFFSET = 1_000_000  # evaluation episodes never share seeds with training envs


class FusedState(flax.struct.PyTreeNode):
    """One seed's run (the loop vmaps it over seeds); all of it is checkpointed."""

    algo: Any
    replay: Replay | None  # off-policy only
    env_state: Any  # [n_envs] gymnax states
    obs: jnp.ndarray  # [n_envs, obs_dim], the observation the next action is for
    key: jax.Array
    eval_key: jax.Array  # evaluation episodes are seeded from (eval_key, env_steps)
    env_steps: jnp.ndarray  # int32 []
    episode_return: jnp.ndarray  # [n_envs], of the running training episodes
    episode_length: jnp.ndarray  # [n_envs]
    env_params: Any = None  # the env's parameters as a curriculum has made them (else None)
    curriculum_level: Any = None  # int32 []: the curriculum steps taken (else None)


class FusedLoop:
    """The compiled programs of one fused run (an algorithm, a gymnax env, n_envs, n_seeds)."""

    def __init__(self, algo: Any, config: Any, env: JaxEnv, n_envs: int):
        self.algo, self.config, self.env, self.n_envs = algo, config, env, n_envs
        self.on_policy = algo.LOOP == "onpolicy"
        self.steps_per_iteration = n_envs * (config.n_steps if self.on_policy else 1)
        config.check(n_envs)
        name = getattr(config, "curriculum", "")
        self.curriculum = env.curriculum(name) if name else None
        self._train = Program(self._train_all, TRAIN_OPTIONS, donate=(0,))
        self._evaluate = Program(
            jax.vmap(self._evaluate_one, in_axes=(0, None, None)), ONCE_OPTIONS, static=(1,)
        )
        self._init = Program(self._init_one, ONCE_OPTIONS)
        self._curriculum = Program(jax.vmap(self._curriculum_one), ONCE_OPTIONS, donate=(0,))
        self.sharding: jax.sharding.Sharding | None = None  # of the runs' axis, set by place
        self._layout: FusedState | None = None  # the state's shapes and sharding (prepare)

    # ---- state ----------------------------------------------------------------------------

    def _init_one(self, key: jax.Array, eval_key: jax.Array) -> FusedState:
        algo, config, env, n = self.algo, self.config, self.env, self.n_envs
        k_algo, k_env, k_loop = jax.random.split(key, 3)
        algo_state = algo.init(k_algo, env.spec, config, n)
        replay = None
        if not self.on_policy:
            replay = empty_replay(config, env.spec)
        obs, env_state = env.reset(k_env, n)
        return FusedState(
            algo=algo_state,
            replay=replay,
            env_state=env_state,
            obs=obs,
            key=k_loop,
            eval_key=eval_key,
            env_steps=jnp.zeros((), jnp.int32),
            episode_return=jnp.zeros((n,), jnp.float32),
            episode_length=jnp.zeros((n,), jnp.int32),
            env_params=None if self.curriculum is None else jax.tree.map(jnp.asarray, env.params),
            curriculum_level=None if self.curriculum is None else jnp.zeros((), jnp.int32),
        )

    def init(self, seeds: list[int], eval_offset: int) -> FusedState:
        """A fresh state per seed: [n_seeds] along the leading axis, in host memory (see
        `place`).

        One seed per call of the init program, stacked on the host (NumPy: no program per
        leaf). Vmapped, XLA:CPU (jax 0.10.2) deadlocks executing the init program at times:
        every thread waits on a futex and the process uses no CPU. It needs the batched QR
        decompositions of orthogonal initialisation: always at 128 seeds or more, and once in
        a test run at 3 seeds."""
        states = [
            self._init(jax.random.PRNGKey(s), jax.random.PRNGKey(s + eval_offset)) for s in seeds
        ]
        return jax.tree.map(lambda *leaves: np.stack([np.asarray(x) for x in leaves]), *states)

    def prepare(self, n_runs: int, train: bool) -> None:
        """Lay out the state of n runs (`place`), and with `train` start compiling the train
        program in the background while the caller builds the state (loops/compiled.py:
        Program.prepare)."""
        if not self.on_policy:
            check_replay_memory(self.config, self.env.spec, n_runs)
        self.sharding = runs_sharding(n_runs)
        self._layout = jax.tree.map(
            lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=self.sharding),
            self.shapes(n_runs),
        )
        if train:
            count = jax.ShapeDtypeStruct((), jnp.int32)
            self._train.prepare(self._layout, count, count)

    def prepare_evaluate(self, episodes: int) -> None:
        """Start compiling the evaluate program (after `prepare`), while the first chunk of
        training compiles and runs."""
        self._evaluate.prepare(self._layout, episodes, jax.ShapeDtypeStruct((), jnp.int32))

    def place(self, state: FusedState) -> FusedState:
        """The runs' state on the devices, in the layout `prepare` chose: split along the runs
        over as many devices as divide their number (duetto/devices.py), or on the default
        device. The programs keep that layout, so a run is placed once."""
        return jax.device_put(state, self.sharding)

    def shapes(self, n_seeds: int) -> FusedState:
        key = jax.ShapeDtypeStruct((2,), jnp.uint32)
        one = jax.eval_shape(self._init_one, key, key)
        return jax.tree.map(lambda x: jax.ShapeDtypeStruct((n_seeds, *x.shape), x.dtype), one)

    # ---- one iteration --------------------------------------------------------------------

    def _env_step(self, fs: FusedState, action: jnp.ndarray, noise: StepNoise) -> tuple:
        obs, env_state, reward, terminated, truncated, final = self.env.step_from(
            noise, fs.env_state, action, fs.env_params
        )
        done = jnp.maximum(terminated, truncated)
        ep_return = fs.episode_return + reward
        ep_length = fs.episode_length + 1
        finished = (jnp.sum(ep_return * done), jnp.sum(done))
        fs = fs.replace(
            env_state=env_state,
            obs=obs,
            env_steps=fs.env_steps + self.n_envs,
            episode_return=ep_return * (1.0 - done),
            episode_length=ep_length * (1 - done.astype(jnp.int32)),
        )
        return fs, (reward, terminated, done, final), finished

    def _on_policy_iteration(
        self, fs: FusedState, steps_before: jnp.ndarray
    ) -> tuple[FusedState, dict, tuple]:
        algo, batch = self.algo, (self.config.n_steps, self.n_envs)
        # The rollout's randomness drawn before its steps, in four calls of the generator
        # instead of about five per step: on a CPU each call is a loop of small operations
        # (BENCHMARKS.md §5). An env whose dynamics are random still draws in each step.
        key, k_act, k_env = jax.random.split(fs.key, 3)
        noise = (algo.exploration_noise(fs.algo, k_act, batch), self.env.step_noise(k_env, batch))

        def step(fs: FusedState, noise: tuple) -> tuple[FusedState, tuple]:
            act_noise, env_noise = noise
            algo_state, seen = algo.observe(fs.algo, fs.obs, True)  # as the host loop does
            action, log_prob = algo.explore(algo_state, seen, act_noise)
            fs, (reward, terminated, done, final), finished = self._env_step(
                fs.replace(algo=algo_state), action, env_noise
            )
            final_seen = algo.observe(algo_state, final, False)[1]
            row = Rollout(seen, action, log_prob, reward, final_seen, terminated, done)
            return fs, (row, finished)

        fs, (rollout, finished) = jax.lax.scan(step, fs.replace(key=key), noise)
        algo_state, metrics = algo.update(fs.algo, rollout, steps_before + self.steps_per_iteration)
        ones = jnp.ones((), jnp.float32)
        return fs.replace(algo=algo_state), metrics, (jax.tree.map(jnp.sum, finished), ones)

    def _off_policy_iteration(
        self, fs: FusedState, steps_before: jnp.ndarray
    ) -> tuple[FusedState, dict, tuple]:
        """One env step and, when due, `gradient_steps` updates. `steps_before` is the env
        steps before this iteration, the same for every run and not batched: the conditions
        made from it stay real branches under vmap (a batched predicate would make `lax.cond`
        compute the updates on every iteration and discard them)."""
        algo, config = self.algo, self.config
        key, k_act, k_env, k_sample = jax.random.split(fs.key, 4)
        obs = fs.obs
        action_dim = self.env.spec.action_dim
        action = jax.lax.cond(
            steps_before < config.learning_starts,
            lambda: warmup_action(algo, config, fs.algo, obs, k_act, action_dim),
            lambda: algo.act(fs.algo, obs, k_act, False),
        )
        fs, (reward, terminated, done, final), finished = self._env_step(
            fs.replace(key=key), action, self.env.step_noise(k_env, (self.n_envs,))
        )
        assert fs.replay is not None
        replay = store(fs.replay, Transition(obs, action, reward, final, terminated, done))
        steps_after = steps_before + self.n_envs
        ready = steps_after >= max(config.learning_starts, 1)
        algo_state, replay, metrics, weight = maybe_gradient_steps(
            algo, config, fs.algo, replay, k_sample, ready, steps_after, self.n_envs
        )
        return fs.replace(algo=algo_state, replay=replay), metrics, (finished, weight)

    def _curriculum_one(self, fs: FusedState) -> FusedState:
        """One step of the curriculum for a run: the env's parameters updated and the replay's
        rewards recomputed with them (the filled rows; the rest stay 0)."""
        assert self.curriculum is not None and fs.replay is not None
        params = self.curriculum.update(fs.env_params)
        data = fs.replay.data
        relabelled = self.env.relabel(data.obs, data.action, data.next_obs, data.terminated, params)
        filled = jnp.arange(data.reward.shape[0]) < fs.replay.size
        reward = jnp.where(filled, relabelled, data.reward)
        replay = fs.replay._replace(data=data._replace(reward=reward))
        return fs.replace(
            env_params=params, replay=replay, curriculum_level=fs.curriculum_level + 1
        )

    def to_curriculum(self, env_steps: int) -> int | None:
        """The env steps left before the next curriculum step is due (None: no curriculum).
        A train call stops there: the step runs as a program of its own between two train
        calls (a branch on the replay inside the train loop would copy the whole replay at
        every iteration)."""
        if self.curriculum is None:
            return None
        every = self.curriculum.every
        return (env_steps // every + 1) * every - env_steps

    # ---- programs -------------------------------------------------------------------------

    def _train_all(
        self, fs: FusedState, iterations: jnp.ndarray, start_steps: jnp.ndarray
    ) -> tuple[FusedState, dict]:
        """`iterations` iterations of every run from env step `start_steps` (every run's, not
        batched); returns the state and each run's chunk summary: the mean of each update
        metric, and the sum and count of the training episodes that ended.

        Each iteration is vmapped over the runs with the algorithm's update counter
        (`updates`) passed unbatched: the runs update in lockstep, so the counter is the same
        for all, and conditions made from it (TD3's and DSAC-T's delayed actor steps) stay real
        branches instead of computing both sides for every run."""
        iterate = self._on_policy_iteration if self.on_policy else self._off_policy_iteration
        n_runs = fs.env_steps.shape[0]
        axes = jax.tree.map(lambda _: 0, fs)
        axes = axes.replace(algo=axes.algo.replace(updates=None))
        step_all = jax.vmap(iterate, in_axes=(axes, None), out_axes=(axes, 0, 0))

        def body(i: jnp.ndarray, carry: tuple) -> tuple:
            fs, sums, weight, ep_sum, ep_count = carry
            fs, metrics, ((f_sum, f_count), w) = step_all(
                fs, start_steps + i * self.steps_per_iteration
            )
            sums = jax.tree.map(lambda s, m: s + w * m, sums, metrics)
            return fs, sums, weight + w, ep_sum + f_sum, ep_count + f_count

        # one counter in the loop; the state keeps one per run
        fs = fs.replace(algo=fs.algo.replace(updates=fs.algo.updates[0]))
        zero = jnp.zeros((n_runs,), jnp.float32)
        zeros = {k: zero for k in self.algo.METRICS}
        fs, sums, weight, ep_sum, ep_count = jax.lax.fori_loop(
            0, iterations, body, (fs, zeros, zero, zero, zero)
        )
        updates = jnp.broadcast_to(fs.algo.updates, (n_runs,))
        fs = fs.replace(algo=fs.algo.replace(updates=updates))
        summary = {
            "metrics": jax.tree.map(lambda s: s / jnp.maximum(weight, 1.0), sums),
            "updated": weight,
            "episode_return_sum": ep_sum,
            "episodes": ep_count,
        }
        if self.sharding is not None:  # the next chunk takes the state as this one did
            fs, summary = jax.lax.with_sharding_constraint((fs, summary), self.sharding)
        return fs, summary

    def _evaluate_one(self, fs: FusedState, episodes: int, seed: jnp.ndarray) -> dict:
        """Deterministic returns of `episodes` fresh episodes, played to their end (or the time
        limit) in one loop; seeded by (eval_key, env_steps), so that a resumed run evaluates as
        the original did, or by `seed` when it is not negative."""
        env, algo = self.env, self.algo
        own = jax.random.fold_in(fs.eval_key, fs.env_steps)
        key = jnp.where(seed < 0, own, jax.random.PRNGKey(jnp.maximum(seed, 0)))
        k_reset, k_steps = jax.random.split(key)
        obs, env_state = env.reset(k_reset, episodes)
        zeros = jnp.zeros((episodes,), jnp.float32)

        def cond(carry: tuple) -> jnp.ndarray:
            t, _, _, _, _, running = carry
            return (t < env.max_steps) & (running.sum() > 0)

        def body(carry: tuple) -> tuple:
            t, obs, env_state, returns, lengths, running = carry
            action = algo.act(fs.algo, obs, None, True)
            obs, env_state, reward, terminated, truncated, _ = env.step(
                jax.random.fold_in(k_steps, t), env_state, action
            )
            returns = returns + reward * running
            lengths = lengths + running
            running = running * (1.0 - jnp.maximum(terminated, truncated))
            return t + 1, obs, env_state, returns, lengths, running

        carry = (0, obs, env_state, zeros, zeros, jnp.ones((episodes,), jnp.float32))
        _, _, _, returns, lengths, _ = jax.lax.while_loop(cond, body, carry)
        return {"returns": returns, "lengths": lengths}

    def train(self, state: FusedState, iterations: int) -> tuple[FusedState, dict]:
        """`iterations` iterations of every run (runs step in lockstep: one env-step count),
        after the curriculum's steps that are due by this env step (one per `every` env steps
        reached, the first at `every`)."""
        steps = int(state.env_steps[0])
        if self.curriculum is not None:
            due = steps // self.curriculum.every
            while int(state.curriculum_level[0]) < due:
                state = self._curriculum(state)
        # Read before `state` is donated; a host number, on no device of its own.
        start = jnp.asarray(steps, jnp.int32)
        return self._train(state, jnp.asarray(iterations, jnp.int32), start)

    def evaluate(self, state: FusedState, episodes: int, seed: int | None = None) -> dict:
        return self._evaluate(state, episodes, jnp.asarray(-1 if seed is None else seed, jnp.int32))


def check_seeds(seeds: Sequence[int]) -> list[int]:
    seeds = list(seeds)
    if not seeds:
        raise DuettoError("seeds is empty; give at least one seed, e.g. seeds=[0, 1, 2].")
    for s in seeds:
        if not isinstance(s, int | np.integer) or isinstance(s, bool) or s < 0:
            raise DuettoError(f"seeds must be non-negative integers, got {s!r}.")
    if len(set(seeds)) != len(seeds):
        raise DuettoError(f"seeds has repeats ({seeds}); each seed must appear once.")
    return [int(s) for s in seeds]


class FusedRunner:
    """The runs of one fused program between chunks (the runner of loops/runner.py).

    The runs are the seeds, or with a sweep every (swept values, seed) combination, stacked on
    the leading axis of the state in the order of `runs`."""

    kind: ClassVar[str] = "fused"
    runs_have_dirs: ClassVar[bool] = True
    default_log_every: ClassVar[int] = 1  # a row per compiled chunk

    def __init__(
        self,
        algo: Algorithm,
        config: Config,
        env_id: str,
        seeds: Sequence[int],
        n_envs: int,
        sweep: dict[str, Any],
        state: FusedState | None = None,
    ):
        self.algo, self.config, self.env_id = algo, config, env_id
        self.seeds = check_seeds(seeds)
        self.sweep = check_sweep(type(config), algo.NAME, sweep)
        if not isinstance(n_envs, int | np.integer) or n_envs < 1:
            raise DuettoError(f"n_envs must be at least 1, got {n_envs}.")
        self.n_envs = int(n_envs)
        names = list(self.sweep)
        self.runs: list[dict[str, Any]] = [
            {"seed": seed, "hparams": dict(zip(names, combo, strict=True))}
            for combo in itertools.product(*self.sweep.values())
            for seed in self.seeds
        ]
        self.jax_env = make_jax_env(env_id, algo.NAME, algo.ACTION_SPACES)
        self.loop = FusedLoop(algo, config, self.jax_env, self.n_envs)
        # A new run is about to train: its train program compiles while the seeds' states are
        # built. A loaded one may only be evaluated, and compiles on its first `learn`.
        self.loop.prepare(len(self.runs), train=state is None)
        if state is None:
            state = self.loop.init([r["seed"] for r in self.runs], EVAL_SEED_OFFSET)
            if self.sweep:
                hparams = dict(state.algo.hparams)
                for name in names:
                    hparams[name] = np.asarray([r["hparams"][name] for r in self.runs], np.float32)
                state = state.replace(algo=state.algo.replace(hparams=hparams))
        self.loop_state = self.loop.place(state)
        self._sums: list[dict[str, float]] = [{} for _ in self.runs]
        self._policy = jax.jit(lambda s, o: algo.act(s, o, None, True))
        self._sample = jax.jit(lambda s, o, k: algo.act(s, o, k, False))

    @property
    def env_steps(self) -> int:
        return int(self.loop_state.env_steps[0])

    @property
    def state(self) -> FusedState:
        return self.loop_state

    @property
    def algo_state(self) -> Any:
        return self.loop_state.algo

    @property
    def obs_edge(self) -> ObsEdge:
        return ObsEdge(self.jax_env.observation_space)

    @property
    def devices(self) -> int:
        """How many devices the runs are split over (duetto/devices.py)."""
        sharding = self.loop.sharding
        return 1 if sharding is None else len(sharding.device_set)

    def planned(self, steps: int) -> int:
        per = self.loop.steps_per_iteration
        return -(-steps // per) * per

    def prepare_evaluation(self, episodes: int) -> None:
        self.loop.prepare_evaluate(int(episodes))

    def advance(self, steps: int, chunk: int, hook: Callable[[int], bool]) -> None:
        """Whole iterations, `chunk` env steps (rounded up to iterations) per compiled call."""
        per = self.loop.steps_per_iteration
        remaining = -(-steps // per)
        per_chunk = max(-(-chunk // per), 1)
        while remaining > 0:
            iterations = min(per_chunk, remaining)
            to_curriculum = self.loop.to_curriculum(self.env_steps)
            if to_curriculum is not None:  # a chunk ends where a curriculum step is due
                iterations = min(iterations, max(-(-to_curriculum // per), 1))
            remaining -= iterations
            self.loop_state, summary = self.loop.train(self.loop_state, iterations)
            self._accumulate(jax.device_get(summary))
            if hook(self.env_steps) is False:
                break

    def _accumulate(self, summary: dict[str, Any]) -> None:
        """Per run: metric sums weighted by the iterations that updated, and episode sums."""
        for i, sums in enumerate(self._sums):
            weight = float(summary["updated"][i])
            for name, value in summary["metrics"].items():
                sums[name] = sums.get(name, 0.0) + weight * float(value[i])
            for name in ("updated", "episode_return_sum", "episodes"):
                key = "weight" if name == "updated" else name
                sums[key] = sums.get(key, 0.0) + float(summary[name][i])

    def read_train(self) -> list[dict[str, float]]:
        rows = []
        for sums in self._sums:
            weight = sums.pop("weight", 0.0)
            episode_sum, episodes = sums.pop("episode_return_sum", 0.0), sums.pop("episodes", 0.0)
            row = {k: v / weight for k, v in sums.items()} if weight > 0 else {}
            if episodes > 0:
                row["episode_return"] = episode_sum / episodes
            rows.append(row)
        self._sums = [{} for _ in self.runs]
        return rows

    def evaluate(self, episodes: int, seed: int | None) -> tuple[np.ndarray, np.ndarray]:
        result = jax.device_get(self.loop.evaluate(self.loop_state, int(episodes), seed))
        return np.asarray(result["returns"], np.float64), np.asarray(result["lengths"])

    def act(self, run: int, obs: np.ndarray, key: Any) -> np.ndarray:
        state = jax.tree.map(lambda leaf: leaf[run], self.algo_state)
        x = jnp.asarray(obs, jnp.float32)  # [n, obs_dim], made by obs_edge
        action = self._policy(state, x) if key is None else self._sample(state, x, key)
        return np.asarray(self.jax_env.to_env(action))

    @property
    def time_limit(self) -> int | None:
        return self.jax_env.max_steps

    def identity(self) -> dict[str, Any]:
        return {"loop": self.kind, "seeds": self.seeds, "sweep": self.sweep}

    def progress(self) -> dict[str, Any]:
        return {"devices": self.devices}

    def saved_envs(self) -> list:
        return []

    def close(self) -> None:
        pass


class FusedKind:
    """How fused runners are made (loops/runner.py: RunnerKind)."""

    def create(
        self,
        algo: Algorithm,
        env: Any,
        seeds: Sequence[int],
        config: Config,
        n_envs: int,
        sweep: dict[str, list[float]],
        vectorization: str,
    ) -> FusedRunner:
        if vectorization != "sync":
            raise DuettoError(
                "vectorization applies to Gymnasium envs; a JAX-native env steps inside the "
                "compiled program."
            )
        return FusedRunner(algo, config, env, seeds, n_envs, sweep)

    def restore(
        self,
        algo: Algorithm,
        config: Config,
        meta: dict[str, Any],
        ckpt: Path,
        arrays: dict[str, np.ndarray] | list[np.ndarray],
        envs: list,
        env: Any,
    ) -> FusedRunner:
        if env is not None:
            raise DuettoError("a fused run resumes on its own JAX-native env; do not pass env=.")
        sweep = meta.get("sweep") or {}
        n_runs = len(meta["seeds"]) * int(np.prod([len(v) for v in sweep.values()]))
        jax_env = make_jax_env(meta["env"], algo.NAME, algo.ACTION_SPACES)
        template = FusedLoop(algo, config, jax_env, meta["n_envs"]).shapes(n_runs)
        state = restore_state(ckpt, arrays, template)
        runner = FusedRunner(algo, config, meta["env"], meta["seeds"], meta["n_envs"], sweep, state)
        saved = meta.get("devices", 1)
        if saved != runner.devices:
            warnings.warn(
                f"'{ckpt}' was trained with its runs split over {saved} device(s); here they are "
                f"split over {runner.devices}. The runs continue, but not bit-identically with "
                f"training on {saved} (duetto.configure(cpu_devices={saved}) matches it on a "
                "CPU).",
                stacklevel=4,
            )
        return runner
