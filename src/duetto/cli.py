"""The command line: `duetto train|eval|plot|list`.

Hyperparameter flags are derived from the algorithm's config dataclass: each field becomes
`--field-name` with its default, meaning and valid range in `--help`.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any, NoReturn

from duetto.envs.jaxenv import is_jax_env, jax_env_names
from duetto.errors import DuettoError, did_you_mean
from duetto.runs.interrupt import Interrupted
from duetto.runs.rundir import read_json, seed_tag


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad input as one DuettoError line instead of a usage dump."""

    def error(self, message: str) -> NoReturn:
        raise DuettoError(f"{message}. See '{self.prog} --help'.")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _train_parser(algo_name: str | None) -> tuple[_Parser, list[str]]:
    from duetto.algorithms import get_algorithm
    from duetto.config import describe_range

    prog = f"duetto train {algo_name}" if algo_name else "duetto train"
    p = _Parser(prog=prog, description="Train an agent and write a run directory.")
    if algo_name is not None:
        p.add_argument("algo", help="algorithm (see 'duetto list')")
    p.add_argument(
        "--env",
        help="Gymnasium id (e.g. Pendulum-v1: host loop) or JAX-native id "
        "(e.g. gymnax:CartPole-v1: fused loop)",
    )
    p.add_argument(
        "--steps",
        type=parse_steps,
        help="env steps to train (with --resume: steps to add; without, the run finishes its "
        "planned steps); "
        "default: the preset's budget, else 20000",
    )
    p.add_argument("--seed", type=int, help="the one integer that determines the run (default 0)")
    p.add_argument(
        "--seeds",
        type=parse_seeds,
        help="several seeds, e.g. 0-7 or 0,3,5: one vmapped program on a gymnax env, one run "
        "after another on a Gymnasium env; a run directory per seed and an aggregate",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="with --seeds on a Gymnasium env: train this many seeds at a time, each in its own "
        "process pinned to its share of the CPU cores (default 1: one after another)",
    )
    p.add_argument(
        "--sweep",
        action="append",
        metavar="NAME=V1,V2",
        help="gymnax envs: train every value of a sweepable hyperparameter (repeatable: every "
        "combination) for every seed, in the same one program",
    )
    p.add_argument(
        "--n-envs",
        type=int,
        help="sub-envs of the training vector env (default: the preset's, or 1)",
    )
    p.add_argument(
        "--vectorization",
        choices=("sync", "async"),
        default="sync",
        help="step Gymnasium sub-envs in this process (sync) or a subprocess each (async)",
    )
    p.add_argument("--preset", help="named hyperparameter set (see 'duetto list')")
    p.add_argument("--out", help="run directory (default runs/<algo>-<env>-s<seed>-<time>)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its last checkpoint")
    p.add_argument(
        "--eval-every", type=int, help="env steps between evaluations (default: a tenth of --steps)"
    )
    p.add_argument("--eval-episodes", type=int, help="episodes per evaluation (default 10)")
    p.add_argument(
        "--checkpoint-every",
        type=int,
        help="env steps between checkpoints (one is always written at the end)",
    )
    p.add_argument(
        "--stop-at-return", type=float, help="stop once an evaluation's mean return reaches this"
    )
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar (default: when the output is a terminal)",
    )
    hp_names: list[str] = []
    if algo_name is not None:
        algo = get_algorithm(algo_name)
        group = p.add_argument_group(f"{algo.NAME} hyperparameters")
        for field in dataclasses.fields(algo.CONFIG):
            default = field.default
            shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
            extra = describe_range(field)
            group.add_argument(
                _flag(field.name),
                dest=f"hp_{field.name}",
                default=None,
                # a list: --hidden 64 64 or --hidden 64,64 (build_config reads either)
                nargs="+" if isinstance(default, tuple) else None,
                metavar="INT" if isinstance(default, tuple) else type(default).__name__.upper(),
                help=f"{field.metadata['doc']}{'; ' + extra if extra else ''} (default: {shown})"
                + ("; sweepable" if field.metadata.get("sweep") else ""),
            )
            hp_names.append(field.name)
    return p, hp_names


def parse_steps(text: str) -> int:
    """--steps: a positive whole number of env steps (1e6 and 1_000_000 are fine too)."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not (value >= 1 and value.is_integer()):
        raise DuettoError(
            f"--steps must be a positive whole number of env steps (e.g. 20000 or 1e6), "
            f"got '{text}'."
        )
    return int(value)


def parse_seeds(text: str) -> list[int]:
    """'0-7' -> [0..7]; '0,3,5' -> [0, 3, 5]; '4' -> [4]."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            if "-" in part.strip()[1:]:
                lo, hi = part.split("-", 1)
                if int(hi) < int(lo):
                    raise ValueError
                seeds += range(int(lo), int(hi) + 1)
            else:
                seeds.append(int(part))
    except ValueError:
        raise DuettoError(
            f"--seeds '{text}' is not a seed list; write a range like 0-7 or a list like 0,3,5."
        ) from None
    if len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise DuettoError(f"--seeds '{text}' must list distinct non-negative seeds.")
    return seeds


def _parse_sweep(items: list[str]) -> dict[str, list[str]]:
    """['learning_rate=1e-3,3e-4', ...] -> {'learning_rate': ['1e-3', '3e-4'], ...}."""
    sweep: dict[str, list[str]] = {}
    for item in items:
        name, sep, values = item.partition("=")
        name = name.strip().lstrip("-").replace("-", "_")
        if not sep or not name or not values.strip():
            raise DuettoError(f"--sweep '{item}' must look like NAME=V1,V2 (e.g. gamma=0.98,0.99).")
        if name in sweep:
            raise DuettoError(f"--sweep names '{name}' twice; give all its values at once.")
        sweep[name] = [v for v in values.split(",") if v.strip()]
    return sweep


def _reject_unknown(extra: list[str], parser: _Parser) -> None:
    if not extra:
        return
    known = [s for a in parser._actions for s in a.option_strings]
    bad = extra[0].split("=")[0]
    if bad.startswith("-"):
        raise DuettoError(
            f"unknown option '{bad}' for {parser.prog}.{did_you_mean(bad, known)} "
            f"See '{parser.prog} --help' for every hyperparameter."
        )
    raise DuettoError(f"unexpected argument '{bad}' for {parser.prog}.")


def cmd_train(argv: list[str]) -> int:
    import duetto
    from duetto.algorithms import get_algorithm

    algo_name = argv[0] if argv and not argv[0].startswith("-") else None
    if algo_name is not None:
        get_algorithm(algo_name)
    parser, hp_names = _train_parser(algo_name)
    args, extra = parser.parse_known_args(argv)
    _reject_unknown(extra, parser)
    progress = sys.stdout.isatty() if args.progress is None else args.progress

    if args.resume:
        if algo_name or args.env or args.preset or args.out or args.seeds or args.workers != 1:
            raise DuettoError(
                "--resume continues a run as it was configured; give only "
                "--resume RUN_DIR, and --steps to train more than it planned (evaluation and "
                "checkpoint options change its schedule)."
            )
        if not Path(args.resume).is_dir():
            raise DuettoError(f"no run directory at '{args.resume}' to resume.")
        config_file = Path(args.resume) / "config.json"
        config = read_json(config_file) if config_file.exists() else {}
        if config.get("loop") == "host" and config.get("seed", 0) is None:
            raise DuettoError(
                f"'{args.resume}' holds one run per seed; resume each of them: "
                f"--resume {Path(args.resume) / 'seed-N'}."
            )
        agent = duetto.load(args.resume)
    else:
        if algo_name is None:
            raise DuettoError(
                "give an algorithm, e.g. 'duetto train sac --env Pendulum-v1' "
                "(see 'duetto list'), or --resume RUN_DIR."
            )
        if not args.env:
            raise DuettoError(
                f"give an environment with --env, e.g. 'duetto train {algo_name} "
                "--env Pendulum-v1'."
            )
        hps = {
            n: ",".join(v) if isinstance(v, list) else v
            for n in hp_names
            if (v := getattr(args, f"hp_{n}")) is not None
        }
        cls = duetto.AGENTS[get_algorithm(algo_name).NAME]
        sweep: Any = _parse_sweep(args.sweep) if args.sweep else None  # checked by the config
        if args.workers != 1:
            if args.workers < 1:
                raise DuettoError(f"--workers must be at least 1, got {args.workers}.")
            if args.seeds is None or is_jax_env(args.env):
                raise DuettoError(
                    "--workers trains the seeds of --seeds on a Gymnasium env in parallel "
                    "processes; a gymnax env trains all its seeds in one program already."
                )
        if args.seeds is not None and args.seed is None and not is_jax_env(args.env):
            from duetto.runs.seeds import train_host_seeds

            return train_host_seeds(cls, args, hps, lambda a: _learn(a, args, progress), _report)
        agent = cls(
            args.env,
            seed=args.seed,
            seeds=args.seeds,
            preset=args.preset,
            n_envs=args.n_envs,
            run_dir=args.out,
            vectorization=args.vectorization,
            sweep=sweep,
            **hps,
        )
    _learn(agent, args, progress)
    _report(agent)
    return 0


def _learn(agent: Any, args: argparse.Namespace, progress: bool) -> None:
    """Train as the command line says. A resumed run without --steps finishes its last learn()
    call; with --steps it adds that many; either way the options not given are the run's."""
    from duetto.algorithms import PRESET_BUDGET

    options = {
        "eval_every": args.eval_every,
        "eval_episodes": args.eval_episodes,
        "checkpoint_every": args.checkpoint_every,
        "stop_at_return": args.stop_at_return,
    }
    steps = args.steps
    if args.resume:
        if steps is None and agent.plan is None:
            raise DuettoError(
                f"'{args.resume}' does not record how many steps it planned (a checkpoint of "
                "an older duetto); give --steps, the env steps to add."
            )
        if steps is None and agent.plan["end"] <= agent.env_steps:
            raise DuettoError(
                f"'{args.resume}' has finished its training at {agent.plan['end']} env steps; "
                "give --steps to train more."
            )
        saved = (agent.plan or {}).get("options", {})
        options = {k: saved.get(k) if v is None else v for k, v in options.items()}
    elif steps is None:
        steps = PRESET_BUDGET(agent.algorithm, agent.preset)
    agent.learn(steps, **options, progress=progress)


def _report(agent: Any) -> None:
    ev, many = agent.last_eval or {}, len(agent.runs) > 1
    who = f"seeds {seed_tag(agent.seeds)}" if len(agent.seeds) > 1 else f"seed {agent.seed}"
    if "seed_returns" in ev:
        per_run = ", ".join(
            f"{name} {r:.1f}" for name, r in zip(agent.run_names, ev["seed_returns"], strict=False)
        )
        what = (
            f"evaluation ({len(ev['returns'][0])} episodes per run, deterministic): "
            f"return {ev['return_mean']:.1f}, mean over runs ({per_run})"
        )
    else:
        what = (
            f"evaluation ({len(ev.get('returns', []))} episodes, deterministic): "
            f"return {ev.get('return_mean', float('nan')):.1f} ± {ev.get('return_std', 0.0):.1f}"
        )
    print(
        f"{agent.algorithm.NAME} on {agent.env_id}, {who}: {agent.env_steps} env steps"
        f"{' per seed' if many else ''} in {agent.train_wall:.1f} s of training"
    )
    print(what)
    if agent.run_dir is not None:
        print(f"run directory: {agent.run_dir}")
        print(f"learning curve: {agent.run_dir / 'curve.png'}")


def cmd_eval(argv: list[str]) -> int:
    import duetto

    p = _Parser(prog="duetto eval", description="Evaluate a trained run deterministically.")
    p.add_argument("run", help="run directory or checkpoint file")
    p.add_argument("--episodes", type=int, default=10, help="episodes to run (default 10)")
    p.add_argument("--seed", type=int, help="seed of the first evaluation episode")
    args = p.parse_args(argv)
    agent = duetto.load(args.run)
    result = agent.evaluate(args.episodes, seed=args.seed)
    print(
        f"{agent.algorithm.NAME} on {agent.env_id} after {agent.env_steps} env steps: "
        f"return {result['return_mean']:.1f} ± {result['return_std']:.1f} over "
        f"{args.episodes} episodes (mean length {result['length_mean']:.0f})"
    )
    return 0


def cmd_plot(argv: list[str]) -> int:
    from duetto.analysis.facade import plot

    p = _Parser(
        prog="duetto plot",
        description="Draw learning curves of run directories, one panel per env.",
    )
    p.add_argument(
        "runs", nargs="+", help="run directories (a --seeds directory stands for its runs)"
    )
    p.add_argument(
        "--aggregate",
        action="store_true",
        help="one line per group of runs that differ only in seed: the mean over seeds with a "
        "95%% bootstrap confidence band (default: one line per run)",
    )
    p.add_argument("--out", default="curve.png", help="picture to write (default curve.png)")
    p.add_argument(
        "--x",
        choices=("step", "train_wall"),
        default="step",
        help="x axis: env steps or training wall time",
    )
    args = p.parse_args(argv)
    print(plot(args.runs, args.out, aggregate=args.aggregate, x=args.x))
    return 0


def cmd_report(argv: list[str]) -> int:
    from duetto.analysis.facade import report

    p = _Parser(
        prog="duetto report",
        description="IQM, mean, median and optimality gap over runs, with stratified-bootstrap "
        "confidence intervals (rliable), and performance profiles.",
    )
    p.add_argument(
        "runs", nargs="+", help="run directories (a --seeds directory stands for its runs)"
    )
    p.add_argument("--out", default="report", help="directory to write (default ./report)")
    p.add_argument(
        "--ref",
        action="append",
        default=[],
        metavar="ENV=RANDOM,REFERENCE",
        help="returns that normalise an env's scores to 0 and 1 (built in for the classic tasks)",
    )
    p.add_argument("--reps", type=int, default=5000, help="bootstrap resamples (default 5000)")
    args = p.parse_args(argv)
    refs = {}
    for item in args.ref:
        name, _, values = item.partition("=")
        try:
            low, high = (float(v) for v in values.split(","))
        except ValueError:
            raise DuettoError(f"--ref '{item}' must look like ENV=RANDOM,REFERENCE.") from None
        if low == high:
            raise DuettoError(f"--ref '{item}': the two returns must differ.")
        refs[name.removeprefix("gymnax:")] = (low, high)
    out = Path(args.out)
    path = report(args.runs, out, refs, reps=args.reps)
    print(path.read_text(), end="")
    print(
        f"written: {path}, {out / 'report.json'}, {out / 'aggregates.png'}, {out / 'profiles.png'}"
    )
    return 0


def cmd_list(argv: list[str]) -> int:
    import gymnasium as gym

    from duetto.algorithms import ALGORITHMS, PRESET_BUDGET
    from duetto.envs.gym import missing_dependency

    _Parser(prog="duetto list", description="List algorithms, presets and envs.").parse_args(argv)
    print("algorithms:")
    for name, algo in sorted(ALGORITHMS.items()):
        print(f"  {name:8s} actions: {', '.join(algo.ACTION_SPACES)}")
        for preset, values in algo.PRESETS.items():
            shown = ", ".join(f"{k}={v}" for k, v in values.items())
            print(f"    preset {preset:6s} {PRESET_BUDGET(algo, preset):>7} steps  {shown}")
    print("environments (Gymnasium ids; those that need a package not installed say which):")
    line = "  "
    for env_id in sorted(k for k in gym.registry if "/" not in k):
        missing = missing_dependency(env_id)
        item = env_id if missing is None else f"{env_id} (needs {missing[0]})"
        if len(line) + len(item) > 96:
            print(line)
            line = "  "
        line += item + "  "
    print(line)
    print(
        "JAX-native environments (fused loop; tested: CartPole, Pendulum, Acrobot, MountainCarC.):"
    )
    print("  " + "  ".join(jax_env_names()[:5]) + "  ...")
    return 0


COMMANDS = {
    "train": cmd_train,
    "eval": cmd_eval,
    "plot": cmd_plot,
    "report": cmd_report,
    "list": cmd_list,
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(
            "usage: duetto {train,eval,plot,report,list} ...\n\n"
            "  train ALGO --env ID   train an agent (duetto train sac --help)\n"
            "  train --resume DIR    continue a run exactly\n"
            "  eval RUN_DIR          evaluate a trained run\n"
            "  plot RUN_DIR...       draw learning curves (--aggregate: mean over seeds)\n"
            "  report RUN_DIR...     IQM, mean, median, optimality gap with bootstrap CIs\n"
            "  list                  algorithms, presets, environments"
        )
        return 0 if argv else 2
    try:
        import duetto

        duetto.configure()
        if argv[0] not in COMMANDS:
            raise DuettoError(
                f"unknown command '{argv[0]}'.{did_you_mean(argv[0], COMMANDS)} "
                f"Commands: {', '.join(COMMANDS)}."
            )
        return COMMANDS[argv[0]](argv[1:])
    except DuettoError as e:
        print(f"duetto: error: {e}", file=sys.stderr)
        return e.exit_code
    except BrokenPipeError:
        return 0
    except Interrupted as e:
        print(f"duetto: {e}", file=sys.stderr)
        if e.checkpoint is not None:
            print(
                f"duetto: continue with: duetto train --resume {e.checkpoint.parent.parent}",
                file=sys.stderr,
            )
        return e.exit_code
    except KeyboardInterrupt:
        print("duetto: interrupted", file=sys.stderr)
        return 130


def entry() -> Any:
    sys.exit(main())
