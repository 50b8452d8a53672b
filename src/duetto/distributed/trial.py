"""One Ray Tune trial: train one (algorithm, env, setting, seed) run into its run directory.

The run directory is the trial's whole state, written as a local `duetto train` writes it
(config.json, metrics.jsonl, checkpoints/, eval.json, curve.png). A trial checkpoints at every
evaluation (or every `checkpoint_every` env steps instead) and reports the evaluation's mean
return to Tune. A trial started again, after its worker died or when an interrupted sweep is
resumed, continues from the last checkpoint with duetto's exact resume (`duetto.load`, then
`learn()` finishes the planned steps), so its final parameters are those of an uninterrupted
run. A trial whose run finished is reported again without training. A JAX-native env trains every
seed of the trial in its one vmapped program; its reported return is the mean over seeds.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from duetto.callbacks import Callback, TrainingContext
from duetto.distributed.space import setting_tag
from duetto.runs.checkpoint import SUFFIX
from duetto.runs.rundir import read_json

_HELD: list[tuple[int, Any]] = []  # the cores (and their locks) this process holds until it exits


def trial_setting(config: dict[str, Any]) -> dict[str, Any]:
    """The hyperparameters a trial's config sets: a grid/random setting, or those a
    model-based searcher proposed (keys 'hp_<name>')."""
    setting = dict(config.get("setting") or {})
    setting.update({k[3:]: v for k, v in config.items() if k.startswith("hp_")})
    return setting


def trial_run_dir(config: dict[str, Any], trial_id: str | None = None) -> Path:
    """<out>/[<env>-][<trial id>-]<setting>seed-<s> (or seeds-<tag> for a JAX env's runs):
    the run directory of a trial, the same on every start of the trial."""
    from duetto.runs.rundir import seed_tag

    spec = config["spec"]
    name = ""
    if len(spec["envs"]) > 1:
        name += spec["env_tags"][spec["envs"].index(config["env"])] + "-"
    if spec["search"] == "optuna" and trial_id is not None:
        name += trial_id.split("_")[-1] + "-"  # sampled reals may agree to the digits shown
    name += setting_tag(trial_setting(config))
    seeds = config["seed"]
    name += f"seed-{seeds}" if isinstance(seeds, int) else f"seeds-{seed_tag(seeds)}"
    return Path(spec["out"]) / name


def finished(run_dir: Path) -> bool:
    """The run wrote its final evaluation and the checkpoint after it."""
    found = sorted((run_dir / "checkpoints").glob(f"step-*{SUFFIX}"))
    if not found or not (run_dir / "eval.json").exists():
        return False
    last = int(found[-1].name.split("-")[1].split(".")[0])
    return read_json(run_dir / "eval.json").get("step") == last


def pin_cores(count: int | None) -> list[int]:
    """Claim `count` of this machine's cores that no other duetto trial holds (a lock file per
    core, released by the kernel when the holder exits, even killed) and pin the calling thread
    to them, before JAX starts its threads: they inherit the mask. No claim (and no pinning)
    when `count` covers every core or too few are free."""
    if not count or not hasattr(os, "sched_setaffinity"):
        return []
    if _HELD:  # a reused worker: its cores, for this trial's thread too
        cores = [core for core, _ in _HELD]
        os.sched_setaffinity(0, set(cores))
        return cores
    cores = sorted(os.sched_getaffinity(0))
    if count >= len(cores):
        return []
    folder = Path(tempfile.gettempdir()) / "duetto-cores"
    folder.mkdir(exist_ok=True)
    got: list[tuple[int, Any]] = []
    for core in cores:
        lock = open(folder / f"core-{core}.lock", "a")  # noqa: SIM115 held for the process's life
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            continue
        got.append((core, lock))
        if len(got) == count:
            break
    if len(got) < count:
        for _, lock in got:
            lock.close()
        return []
    _HELD.extend(got)
    os.sched_setaffinity(0, {core for core, _ in got})
    return [core for core, _ in got]


class TuneReport(Callback):
    """Checkpoints every `checkpoint_every` env steps (None: at every evaluation), and after
    each new evaluation reports its mean return to Tune, which may stop the trial there (ASHA);
    all before the run's planned end, which learn() checkpoints itself after writing eval.json
    and run_trial reports after that. `seen`: the evaluation step reported already; `saved`:
    the step of the checkpoint the run started from."""

    def __init__(self, checkpoint_every: int | None, seen: int | None, saved: int):
        super().__init__(1)
        self.checkpoint_every = checkpoint_every
        self.seen = seen
        self.saved = saved

    def on_interval(self, ctx: TrainingContext) -> bool | None:
        agent, every = ctx.agent, self.checkpoint_every
        if agent.plan is None or ctx.env_steps >= agent.plan["end"]:
            return None
        if every is not None and self.saved // every < ctx.env_steps // every:
            self._checkpoint(ctx)
        ev = ctx.last_eval
        if ev is None or ev["step"] == self.seen:
            return None
        self.seen = ev["step"]
        if every is None:
            self._checkpoint(ctx)
        report(ev, ctx.env_steps)
        return None

    def _checkpoint(self, ctx: TrainingContext) -> None:
        if self.saved != ctx.env_steps:
            ctx.agent.checkpoint()
            self.saved = ctx.env_steps


def report(ev: dict[str, Any], env_steps: int) -> None:
    from ray import tune

    tune.report(
        {
            "return_mean": float(ev["return_mean"]),
            "env_steps": int(env_steps),
            "train_wall": float(ev.get("train_wall", 0.0)),
        }
    )


def run_trial(config: dict[str, Any]) -> None:
    """The Tune trainable: config = {"spec": the sweep's common options, "env", "seed" (an int,
    or a list for a JAX env), "setting" or "hp_<name>" values}."""
    from ray import tune

    spec = config["spec"]
    pin_cores(spec.get("cores_per_trial"))
    import duetto

    duetto.configure()
    trial_id = tune.get_context().get_trial_id()
    run_dir = trial_run_dir(config, trial_id)
    if finished(run_dir):
        ev = read_json(run_dir / "eval.json")
        report(ev, int(ev["step"]))
        return
    checkpoints = sorted((run_dir / "checkpoints").glob(f"step-*{SUFFIX}"))
    if checkpoints:
        agent = duetto.load(run_dir)
        seen = (agent.last_eval or {}).get("step")
        agent.learn(callbacks=[TuneReport(spec["checkpoint_every"], seen, agent.env_steps)])
    else:
        if run_dir.exists():
            shutil.rmtree(run_dir)  # died before its first checkpoint: nothing to continue
        cls = duetto.AGENTS[spec["algo"]]
        seeds = config["seed"]
        agent = cls(
            config["env"],
            seed=seeds if isinstance(seeds, int) else None,
            seeds=None if isinstance(seeds, int) else seeds,
            preset=spec["preset"],
            n_envs=spec["n_envs"],
            run_dir=run_dir,
            vectorization=spec["vectorization"],
            **{**spec["fixed"], **trial_setting(config)},
        )
        agent.learn(
            spec["steps"],
            eval_every=spec["eval_every"],
            eval_episodes=spec["eval_episodes"],
            stop_at_return=spec["stop_at_return"],
            callbacks=[TuneReport(spec["checkpoint_every"], None, 0)],
        )
    ev = agent.last_eval or {}
    if ev:
        report(ev, agent.env_steps)
    agent.close()
