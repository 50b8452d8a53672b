"""Stable-Baselines3 habits: what works as in SB3, and a clear answer where duetto differs.

Works as in SB3: `duetto.SAC("MlpPolicy", "Pendulum-v1")` (the policy follows from the
observation space), `learn(total_timesteps=..., callback=..., progress_bar=True)`,
`action, state = model.predict(obs)`, `duetto.SAC.load(path)`. SB3 keyword names that mean
something else here (or nothing) get one message that names duetto's equivalent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from duetto.errors import DuettoError

# duetto picks the encoder from the observation space, as these SB3 policy names do.
POLICIES = ("MlpPolicy", "CnnPolicy", "MultiInputPolicy")

# SB3 constructor keywords that duetto spells or handles differently: what to write instead.
NAMES = {
    "train_freq": "env_steps_per_update: env steps between update rounds (SB3's "
    "train_freq=(n, 'step'); per-episode training is not offered)",
    "ent_coef": "init_temperature: the initial α, which SAC then learns (SB3's "
    "ent_coef='auto_0.1' is init_temperature=0.1; a fixed α is not offered); PPO's ent_coef "
    "is called ent_coef",
    "target_entropy": "target_entropy_scale: the target entropy is −scale × action dims "
    "(SB3's target_entropy='auto' is scale 1)",
    "net_arch": "hidden: the hidden widths of every network, e.g. hidden=(256, 256)",
    "policy_kwargs": "plain keywords: hidden=(...), activation=..., log_std_init=..., "
    "weight_init=... (see 'duetto train ALGO --help')",
    "action_noise": "exploration_noise: σ of the Gaussian exploration noise in [-1, 1] action "
    "units (TD3, DDPG)",
    "target_policy_noise": "target_noise: σ of the target policy smoothing noise (TD3, DDPG)",
    "verbose": "learn(progress=True) for a progress bar; metrics go to the run directory's "
    "metrics.jsonl and TensorBoard files",
    "tensorboard_log": "run_dir=: every run writes TensorBoard files under <run_dir>/tb",
    "device": "duetto.configure(...) and JAX's default device (JAX_PLATFORMS=cpu or cuda)",
    "use_sde": "nothing: generalised state-dependent exploration is not offered",
    "sde_sample_freq": "nothing: generalised state-dependent exploration is not offered",
    "target_kl": "nothing: PPO here has no early stopping on KL",
    "replay_buffer_class": "nothing: the replay is part of the compiled state",
    "replay_buffer_kwargs": "buffer_size=",
    "optimize_memory_usage": "nothing: next observations are stored as they come",
    "stats_window_size": "log_every= in learn(): env steps between logged rows",
    "_init_setup_model": "nothing: the model is built at once",
}

# SB3 learn() keywords: the accepted ones are mapped in learn_arguments; the rest are answered.
LEARN_NAMES = {
    "log_interval": "log_every= (env steps between logged rows, not episodes)",
    "tb_log_name": "run_dir= when making the agent (TensorBoard files go to <run_dir>/tb)",
}


def sb3_name(key: str) -> str | None:
    """The message for an SB3 keyword that duetto does not take, or None."""
    if key in NAMES:
        return f"'{key}' is Stable-Baselines3's name; here it is {NAMES[key]}."
    return None


def sb3_positional_policy(env: Any, sb3_env: Any, hyperparameters: dict[str, Any]) -> Any:
    """The env, with SB3's policy argument taken out: SAC("MlpPolicy", env) or
    SAC(policy="MlpPolicy", env=env)."""
    policy = hyperparameters.pop("policy", None)
    if isinstance(env, str) and env in POLICIES:
        policy, env = env, sb3_env
    elif sb3_env is not None:
        raise DuettoError(
            f"a second positional argument ({sb3_env!r}) is only for SB3's form "
            "SAC('MlpPolicy', env); give the seed as seed=."
        )
    if policy is not None and policy not in POLICIES:
        raise DuettoError(
            f"policy {policy!r}: duetto takes SB3's policy names ({', '.join(POLICIES)}) and "
            "chooses the networks from the observation space; custom policy classes are not "
            "offered (use hidden=, activation=, ...)."
        )
    if env is None:
        raise DuettoError("give an environment: an id such as 'Pendulum-v1' or a gymnasium.Env.")
    return env


def sb3_learn_arguments(
    total_steps: int | None, callbacks: Sequence[Any], progress: bool, extra: dict[str, Any]
) -> tuple[int | None, Sequence[Any], bool]:
    """learn()'s (total_steps, callbacks, progress) with SB3's spellings folded in:
    total_timesteps, callback (one or a list), progress_bar, reset_num_timesteps=False."""
    extra = dict(extra)
    if "total_timesteps" in extra:
        if total_steps is not None:
            raise DuettoError("give total_steps or total_timesteps (SB3's name), not both.")
        total_steps = extra.pop("total_timesteps")
    if "callback" in extra:
        one = extra.pop("callback")
        if one is not None:
            callbacks = [*callbacks, *(one if isinstance(one, list | tuple) else [one])]
    progress = bool(extra.pop("progress_bar", progress))
    if extra.pop("reset_num_timesteps", False):
        raise DuettoError(
            "reset_num_timesteps=True: duetto counts env steps over the whole run and every "
            "learn() call continues it; make a new agent to start a new run."
        )
    for key in extra:
        hint = LEARN_NAMES.get(key)
        raise DuettoError(
            f"learn() got an unknown keyword '{key}'"
            + (f"; it is Stable-Baselines3's, here it is {hint}." if hint else ".")
        )
    return total_steps, callbacks, progress
