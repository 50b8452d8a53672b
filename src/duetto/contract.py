"""The contract between an algorithm and the loops that run it.

An algorithm is a module of pure functions over one state pytree (DESIGN.md):

    init(key, spec, config, n_envs) -> state
    act(state, obs, key, deterministic) -> action          obs [B, obs_dim]
    update(state, batch, env_steps) -> (state, metrics)    metrics: METRICS (+ TD_ERROR)

and constants: NAME, LOOP ("offpolicy" or "onpolicy"), ACTION_SPACES, METRICS, CONFIG (a
frozen dataclass derived from `OffPolicyConfig` or `OnPolicyConfig`), PRESETS and
PRESET_STEPS. An on-policy module also gives `observe` (the observation as the networks see
it, updating normalisation statistics at each collected step; the rollout stores what it
returns), `action_shape`, `exploration_noise` and `explore` (the loops draw a rollout's
randomness ahead; explore takes what observe returned) and may give PRESET_ENVS. `update`
receives the loop clock: the env steps taken (summed over sub-envs) including the data in
`batch`.

An off-policy update receives a `Batch` (data/replay.py): obs, action, reward, next_obs,
discount and weight. Its target is y = reward + discount·V(next_obs): the loop has folded the
n-step return (`n_step`: reward is Σ_{k<m} γ^k r_{t+k}, discount γ^m·(1 − d), m ≤ n cut at
episode ends) and termination into them, so the algorithm never reads γ for its backup. weight
[B] is None unless the rows were drawn by priority (`prioritised`); then it holds the importance
weights, which the algorithm applies to its critic loss (losses.critic_regression), and its
metrics must also carry TD_ERROR: |δ| [B] per sample, which the loop pops (it is not a logged
metric) to update the rows' priorities. An algorithm that cannot give either refuses the
option in its config's `check` with one DuettoError. The loop reads the discount γ from the
state's `hparams["gamma"]`, so every off-policy config has a `gamma` field.

The state must carry `hparams` (the sweepable hyperparameters as traced float32 scalars, from
`config.hparams_of`) and `updates` (an int32 counter the algorithm advances once per update
call; the fused loop keeps it unbatched across runs, so that branches on it stay branches).

The loop fields are declared once here, in the config base classes; an algorithm changes a
default with `override(value, source)`, keeping the meaning and range of the base's field.
`check_module` is what registering an algorithm runs (duetto/algorithms/__init__.py): it
reports every way a module breaks this contract in one message.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Protocol, runtime_checkable

import jax

from duetto.config import build_config, hp, sweepable
from duetto.envs.spec import EnvSpec
from duetto.errors import DuettoError

LOOPS = ("offpolicy", "onpolicy")
TD_ERROR = "td_error"  # update's per-sample |δ| [B] for prioritised replay; not a metric
SPACES = ("box", "discrete", "multi_discrete", "binary")


@runtime_checkable
class AlgorithmState(Protocol):
    """What the loops read of an algorithm's state (besides passing it back)."""

    hparams: dict[str, jax.Array]
    updates: jax.Array

    def replace(self, **changes: Any) -> Any: ...


class Algorithm(Protocol):
    """An algorithm module (modules satisfy protocols in mypy)."""

    NAME: str
    LOOP: str
    ACTION_SPACES: tuple[str, ...]
    METRICS: tuple[str, ...]
    CONFIG: type[Config]
    PRESETS: dict[str, dict[str, Any]]
    PRESET_STEPS: dict[str, int]

    def init(self, key: jax.Array, spec: EnvSpec, config: Any, n_envs: int) -> Any: ...

    def act(
        self, state: Any, obs: jax.Array, key: jax.Array | None, deterministic: bool
    ) -> Any: ...

    def update(self, state: Any, batch: Any, env_steps: jax.Array) -> tuple[Any, dict]: ...


class OnPolicyAlgorithm(Algorithm, Protocol):
    """An on-policy module: the rollout's randomness is drawn ahead of its steps."""

    def action_shape(self, spec: EnvSpec) -> tuple[tuple[int, ...], Any]: ...

    def exploration_noise(self, state: Any, key: jax.Array, batch: tuple[int, ...]) -> Any: ...

    def observe(self, state: Any, obs: jax.Array, update: bool) -> tuple[Any, jax.Array]: ...

    def explore(self, state: Any, obs: jax.Array, noise: Any) -> tuple[Any, jax.Array]: ...


# ---- configs ---------------------------------------------------------------------------------


def override(value: Any, source: str, doc: str | None = None) -> Any:
    """A new default for a field the config's base declares: `source` names where the value
    comes from ("CleanRL"); `doc` replaces the base's meaning where the algorithm's differs."""
    return dataclasses.field(default=value, metadata={"override": (source, doc)})


CRITIC_OBS = ("actor", "privileged", "both")


@dataclass(frozen=True)
class Config:
    """The base of every algorithm's hyperparameters (fields declared with `config.hp`).

    `critic_obs` is every actor-critic's: what its critics (Q or V) read. "privileged" is the
    asymmetric actor-critic (Pinto et al. 2018): the critic reads the env's privileged
    observation (EnvSpec.privileged_dim, appended after the actor's: nets/encoder.py), which
    only the critic, used in training alone, may see."""

    critic_obs: str = hp(
        "actor",
        "what the critics read: actor (the actor's observation), privileged (the env's "
        "privileged observation only: the asymmetric actor-critic of Pinto et al. 2018 and "
        "Learning to Fly) or both (the two, concatenated); privileged and both need an env "
        "that gives one (duetto:Quadrotor-v0, or a Gymnasium env in "
        "duetto.PrivilegedObservation)",
        choices=CRITIC_OBS,
    )

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        bases = {
            f.name: f
            for base in cls.__mro__[1:]
            if dataclasses.is_dataclass(base)
            for f in dataclasses.fields(base)
        }
        for name, value in list(vars(cls).items()):
            if not (isinstance(value, dataclasses.Field) and "override" in value.metadata):
                continue
            if name not in bases:
                raise DuettoError(
                    f"{cls.__name__}: override() of '{name}', which no base config declares; "
                    "declare a new hyperparameter with hp()."
                )
            source, doc = value.metadata["override"]
            meta = dict(bases[name].metadata)
            base_doc = meta.get("base_doc") or re.sub(r"\s*\[[^\]]*\]$", "", meta["doc"])
            meta["doc"] = f"{doc or base_doc} [{source}]"
            setattr(cls, name, dataclasses.field(default=value.default, metadata=meta))

    def check(self, n_envs: int) -> None:
        """Reject a combination of values that no single range can (one DuettoError)."""

    def warn_if_idle(self, algo: str, end: int) -> None:
        """Warn when a run that ends at `end` env steps would never learn."""


def loop_hp(default: Any, doc: str, **bounds: Any) -> Any:
    """A loop field of a config base: its meaning without a source (an algorithm names the
    source of its default with `override`)."""
    field = hp(default, doc, **bounds)
    return dataclasses.field(default=default, metadata={**field.metadata, "base_doc": doc})


@dataclass(frozen=True)
class OffPolicyConfig(Config):
    """The fields the off-policy loops read (host and fused)."""

    buffer_size: int = loop_hp(1_000_000, "replay capacity, transitions", low=1)
    learning_starts: int = loop_hp(
        100, "env steps of warm-up actions before the first update", low=0
    )
    batch_size: int = loop_hp(256, "transitions per gradient step", low=1)
    gradient_steps: int = loop_hp(1, "gradient steps per update call", low=1)
    env_steps_per_update: int = loop_hp(
        1, "vector-env steps between update calls (SB3 train_freq)", low=1
    )
    warmup_actions: str = loop_hp(
        "uniform",
        "actions during the first learning_starts steps: uniform in the bounds, or the policy's",
        choices=("uniform", "policy"),
    )
    n_step: int = loop_hp(
        1,
        "steps of rewards summed before the bootstrap (n-step returns, cut at episode ends; "
        "1: the 1-step target) [Rainbow: Hessel et al. 2018; D4PG: Barth-Maron et al. 2018]",
        low=1,
    )
    prioritised: bool = loop_hp(
        False,
        "prioritised replay: rows drawn in proportion to (|δ| + per_eps)^per_alpha, critic "
        "losses weighted by importance weights [Schaul et al. 2016, proportional]",
    )
    per_alpha: float = loop_hp(
        0.6, "α, the priority exponent of prioritised replay [Schaul et al. 2016, B.2.1]", low=0
    )
    per_beta0: float = loop_hp(
        0.4,
        "β at the start, the importance-weight exponent, annealed linearly to 1 over "
        "per_beta_steps [Schaul et al. 2016, B.2.1]",
        low=0,
        high=1,
    )
    per_beta_steps: int = loop_hp(
        1_000_000,
        "env steps over which β goes from per_beta0 to 1 (set it to the run's length; the "
        "paper anneals over the whole run) [Schaul et al. 2016: to 1 at the end of learning]",
        low=1,
    )
    curriculum: str = loop_hp(
        "",
        "a curriculum of the env ('' none; duetto:Quadrotor-v0 has 'l2f', the reward curriculum "
        "of Learning to Fly): every so many env steps it changes the env's parameters and the "
        "loop recomputes the rewards in the replay, inside the compiled program (fused loop)",
    )
    per_eps: float = loop_hp(
        1e-6,
        "ε added to |δ| so that no priority is 0 [OpenAI baselines prioritized_replay_eps]",
        low=0,
        low_open=True,
    )

    def warn_if_idle(self, algo: str, end: int) -> None:
        if end <= self.learning_starts:  # updates start once learning_starts steps are taken
            warnings.warn(
                f"{algo}: learning_starts is {self.learning_starts} env steps and this run ends "
                f"at {end}: it will take warm-up actions only and never learn. Lower "
                f"learning_starts (e.g. learning_starts={max(end // 10, 1)}) or train longer.",
                stacklevel=4,
            )


@dataclass(frozen=True)
class OnPolicyConfig(Config):
    """The fields the on-policy loops read (host and fused)."""

    n_steps: int = loop_hp(2048, "vector steps per rollout, per sub-env", low=1)
    batch_size: int = loop_hp(64, "minibatch size; must divide n_steps × n_envs", low=1)
    n_epochs: int = loop_hp(10, "passes over each rollout", low=1)

    def check(self, n_envs: int) -> None:
        """Reject a rollout that minibatches cannot split evenly."""
        total = self.n_steps * n_envs
        if total % self.batch_size:
            fits = [b for b in (32, 64, 128, 256, 512, 1024) if total % b == 0 and b <= total]
            hint = f" (e.g. {', '.join(map(str, fits))})" if fits else ""
            raise DuettoError(
                f"batch_size {self.batch_size} does not divide the rollout of n_steps × n_envs"
                f" = {self.n_steps} × {n_envs} = {total} transitions. Choose a batch_size that "
                f"divides {total}{hint}, or change n_steps."
            )


CONFIG_BASES: dict[str, type[Config]] = {"offpolicy": OffPolicyConfig, "onpolicy": OnPolicyConfig}


# ---- the check run at registration ------------------------------------------------------------

_FUNCTIONS = {"init": 4, "act": 4, "update": 3}
_ON_POLICY_FUNCTIONS = {"action_shape": 1, "exploration_noise": 3, "explore": 3, "observe": 3}
_CONSTANTS: dict[str, type | tuple[type, ...]] = {
    "NAME": str,
    "LOOP": str,
    "ACTION_SPACES": tuple,
    "METRICS": tuple,
    "CONFIG": type,
    "PRESETS": Mapping,
    "PRESET_STEPS": Mapping,
}


def check_module(module: ModuleType) -> None:
    """Every way `module` breaks the contract, in one DuettoError (none: it passes)."""
    problems: list[str] = []
    for name, kind in _CONSTANTS.items():
        if not isinstance(getattr(module, name, None), kind):
            problems.append(f"{name} missing or not a {getattr(kind, '__name__', kind)}")
    loop = getattr(module, "LOOP", None)
    if isinstance(loop, str) and loop not in LOOPS:
        problems.append(f"LOOP is {loop!r}; it must be one of {', '.join(LOOPS)}")
    functions = dict(_FUNCTIONS, **(_ON_POLICY_FUNCTIONS if loop == "onpolicy" else {}))
    for name, arity in functions.items():
        fn = getattr(module, name, None)
        if not callable(fn):
            problems.append(f"function {name}() missing")
        elif len(inspect.signature(fn).parameters) < arity:
            problems.append(f"{name}() takes fewer than the {arity} arguments the loops pass")
    name = getattr(module, "NAME", "")
    if isinstance(name, str) and (not name or name != name.lower() or " " in name):
        problems.append(f"NAME {name!r} must be a non-empty lower-case word (the CLI's name)")
    spaces = getattr(module, "ACTION_SPACES", ())
    if isinstance(spaces, tuple) and (not spaces or set(spaces) - set(SPACES)):
        problems.append(f"ACTION_SPACES {spaces!r} must be a non-empty subset of {SPACES}")
    metrics = getattr(module, "METRICS", ())
    if isinstance(metrics, tuple) and (
        not metrics
        or len(set(metrics)) != len(metrics)
        or not all(isinstance(m, str) for m in metrics)
    ):
        problems.append("METRICS must be distinct metric names")
    if isinstance(metrics, tuple) and TD_ERROR in metrics:
        problems.append(f"METRICS must not name '{TD_ERROR}', the per-sample |δ| update may add")
    config = getattr(module, "CONFIG", None)
    base = CONFIG_BASES.get(loop) if isinstance(loop, str) else None
    if isinstance(config, type) and base is not None:
        if not (dataclasses.is_dataclass(config) and issubclass(config, base)):
            problems.append(
                f"CONFIG {config.__name__} must be a dataclass derived from {base.__name__}"
            )
        elif not config.__dataclass_params__.frozen:  # type: ignore[attr-defined]
            problems.append(f"CONFIG {config.__name__} must be frozen")
        elif loop == "offpolicy" and "gamma" not in sweepable(config):
            problems.append(
                f"CONFIG {config.__name__} has no sweepable 'gamma': the off-policy loops "
                "discount with the state's hparams['gamma']"
            )
        else:
            for preset, values in dict(getattr(module, "PRESETS", {})).items():
                try:
                    build_config(config, str(name), values, {})
                except DuettoError as e:
                    problems.append(f"preset '{preset}': {e}")
    steps = getattr(module, "PRESET_STEPS", {})
    presets = getattr(module, "PRESETS", {})
    if isinstance(steps, Mapping) and isinstance(presets, Mapping) and set(steps) - set(presets):
        problems.append(
            f"PRESET_STEPS names presets that PRESETS lacks: {set(steps) - set(presets)}"
        )
    if problems:
        raise DuettoError(
            f"algorithm module {module.__name__} breaks the contract (duetto/contract.py): "
            + "; ".join(problems)
            + "."
        )
