"""The command line: `duetto train|sweep|eval|plot|report|list`.

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


def _train_parser(algo_name: str | None, command: str = "train") -> tuple[_Parser, list[str]]:
    sweep = command == "sweep"
    prog = f"duetto {command} {algo_name}" if algo_name else f"duetto {command}"
    p = _Parser(
        prog=prog,
        description="Train every setting of a search space for every seed, each (env, setting, "
        "seed) a Ray Tune trial writing its own run directory."
        if sweep
        else "Train an agent and write a run directory.",
    )
    if algo_name is not None:
        p.add_argument("algo", help="algorithm (see 'duetto list')")
    p.add_argument(
        "--env",
        help="Gymnasium id (e.g. Pendulum-v1: host loop) or JAX-native id "
        "(e.g. gymnax:CartPole-v1: fused loop)"
        + ("; several, comma-separated, are searched alike" if sweep else ""),
    )
    p.add_argument(
        "--steps",
        type=parse_steps,
        help="env steps each trial trains; default: the preset's budget, else 20000"
        if sweep
        else "env steps to train (with --resume: steps to add; without, the run finishes its "
        "planned steps); default: the preset's budget, else 20000",
    )
    if not sweep:
        p.add_argument(
            "--seed", type=int, help="the one integer that determines the run (default 0)"
        )
    p.add_argument(
        "--seeds",
        type=parse_seeds,
        help="several seeds, e.g. 0-7 or 0,3,5 (default 0): every setting is trained for each; "
        "a gymnax env trains them in one vmapped program (one trial)"
        if sweep
        else "several seeds, e.g. 0-7 or 0,3,5: one vmapped program on a gymnax env; on a "
        "Gymnasium env each seed a Ray Tune trial (see --workers); a run directory per seed "
        "and an aggregate",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None if sweep else 1,
        help="trials at a time, each pinned to its share of a machine's cores (default: one per "
        "CPU of the Ray cluster)"
        if sweep
        else "with --seeds on a Gymnasium env: train this many seeds at a time as concurrent "
        "Ray Tune trials, each pinned to its share of the CPU cores (default 1: one after "
        "another)",
    )
    p.add_argument(
        "--address",
        help="a Ray cluster to run the trials on (HOST:6379, or auto; default: RAY_ADDRESS, "
        "else a local Ray started for this command)",
    )
    if sweep:
        p.add_argument(
            "--search",
            choices=("grid", "random", "optuna"),
            default="grid",
            help="grid: every combination of the lists; random: --samples seeded draws of the "
            "ranges, each crossed with the lists; optuna: --samples settings proposed by "
            "Optuna's TPE from the returns so far (one seed per trial on a Gymnasium env)",
        )
        p.add_argument("--samples", type=int, help="settings to draw (random, optuna)")
        p.add_argument("--search-seed", type=int, default=0, help="seed of the draws (default 0)")
        p.add_argument(
            "--asha",
            action="store_true",
            help="stop trials early with ASHA on their evaluation return (rungs every "
            "--eval-every env steps, a third go on)",
        )
        p.add_argument(
            "--cpus-per-trial", type=float, default=1.0, help="CPUs a trial asks Ray for"
        )
        p.add_argument(
            "--gpus-per-trial", type=float, default=0.0, help="GPUs (or a share) per trial"
        )
        p.add_argument(
            "--max-failures",
            type=int,
            default=3,
            help="times a trial whose worker died is started again from its last checkpoint",
        )
    else:
        p.add_argument(
            "--sweep",
            action="append",
            metavar="NAME=V1,V2",
            help="gymnax envs: train every value of a sweepable hyperparameter (repeatable: "
            "every combination) for every seed, in the same one program",
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
    p.add_argument(
        "--out",
        help="sweep directory (default runs/<algo>-<env>-sweep-<time>)"
        if sweep
        else "run directory (default runs/<algo>-<env>-s<seed>-<time>)",
    )
    p.add_argument(
        "--resume",
        metavar="SWEEP_DIR" if sweep else "RUN_DIR",
        help="continue an interrupted sweep: finished trials are kept, unfinished ones "
        "continue from their checkpoints"
        if sweep
        else "continue a run from its last checkpoint",
    )
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
    if sweep:
        return _add_hyperparameters(p, algo_name, sweep=True)
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar (default: when the output is a terminal)",
    )
    return _add_hyperparameters(p, algo_name, sweep=False)


def _add_hyperparameters(
    p: _Parser, algo_name: str | None, sweep: bool
) -> tuple[_Parser, list[str]]:
    """A flag per field of the algorithm's config; for a sweep each takes a value, a list
    V1,V2 (list fields: A,B/C,D) or a range uniform|loguniform|randint:LOW:HIGH."""
    from duetto.algorithms import get_algorithm
    from duetto.config import describe_range

    hp_names: list[str] = []
    if algo_name is None:
        return p, hp_names
    algo = get_algorithm(algo_name)
    what = "search space" if sweep else "hyperparameters"
    group = p.add_argument_group(
        f"{algo.NAME} {what}"
        + (
            ": a value, a list V1,V2 (a list field: 64,64/256,256), or a range "
            "uniform:LOW:HIGH, loguniform:LOW:HIGH, randint:LOW:HIGH"
            if sweep
            else ""
        )
    )
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
            metavar="SPEC"
            if sweep
            else "INT"
            if isinstance(default, tuple)
            else type(default).__name__.upper(),
            help=f"{field.metadata['doc']}{'; ' + extra if extra else ''} (default: {shown})"
            + ("; sweepable" if field.metadata.get("sweep") and not sweep else ""),
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
        if (
            algo_name
            or args.env
            or args.preset
            or args.out
            or args.seeds
            or args.workers != 1
            or args.address
        ):
            raise DuettoError(
                "--resume continues a run as it was configured; give only "
                "--resume RUN_DIR, and --steps to train more than it planned (evaluation and "
                "checkpoint options change its schedule)."
            )
        if not Path(args.resume).is_dir():
            raise DuettoError(f"no run directory at '{args.resume}' to resume.")
        config_file = Path(args.resume) / "config.json"
        config = read_json(config_file) if config_file.exists() else {}
        if config.get("loop") == "sweep" or (
            config.get("loop") == "host" and config.get("seed", 0) is None
        ):
            what = "a sweep" if config.get("loop") == "sweep" else "one run per seed"
            raise DuettoError(
                f"'{args.resume}' holds {what}; continue all its runs with 'duetto sweep "
                f"--resume {args.resume}', or one of them with --resume RUN_DIR."
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
        host_seeds = args.seeds is not None and args.seed is None and not is_jax_env(args.env)
        if args.workers != 1 or args.address:
            if args.workers < 1:
                raise DuettoError(f"--workers must be at least 1, got {args.workers}.")
            if not host_seeds:
                raise DuettoError(
                    f"{'--workers' if args.workers != 1 else '--address'} is for the seeds of "
                    "--seeds on a Gymnasium env, each a Ray Tune trial; a gymnax env trains all "
                    "its seeds in one program already (for sweeps: 'duetto sweep')."
                )
        if host_seeds:
            from duetto.runs.seeds import train_host_seeds

            return train_host_seeds(cls, args, hps)
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


def cmd_sweep(argv: list[str]) -> int:
    from duetto.algorithms import get_algorithm
    from duetto.distributed.sweep import resume_sweep, sweep

    algo_name = argv[0] if argv and not argv[0].startswith("-") else None
    if algo_name is not None:
        get_algorithm(algo_name)
    parser, hp_names = _train_parser(algo_name, "sweep")
    args, extra = parser.parse_known_args(argv)
    _reject_unknown(extra, parser)
    if args.resume:
        given = [a for a in argv if a.startswith("--") and a.split("=")[0] != "--resume"]
        if algo_name or [a for a in given if a.split("=")[0] != "--address"]:
            raise DuettoError(
                "--resume continues a sweep as it was planned; give only --resume SWEEP_DIR "
                "(and --address to run it on a cluster)."
            )
        resume_sweep(args.resume, address=args.address)
        return 0
    if algo_name is None:
        raise DuettoError(
            "give an algorithm, e.g. 'duetto sweep sac --env Pendulum-v1 --seeds 0-4 "
            "--learning-rate 3e-4,1e-3' (see 'duetto list'), or --resume SWEEP_DIR."
        )
    if not args.env:
        raise DuettoError(
            f"give an environment with --env, e.g. 'duetto sweep {algo_name} --env Pendulum-v1'."
        )
    space = {
        n: ",".join(v)
        if isinstance(v, list) and len(v) > 1 and "/" not in "".join(v)
        else ("".join(v) if isinstance(v, list) else v)
        for n in hp_names
        if (v := getattr(args, f"hp_{n}")) is not None
    }
    sweep(
        algo_name,
        [e for e in args.env.split(",") if e.strip()],
        seeds=args.seeds or [0],
        space=space,
        search=args.search,
        samples=args.samples,
        search_seed=args.search_seed,
        steps=args.steps,
        preset=args.preset,
        n_envs=args.n_envs,
        vectorization=args.vectorization,
        eval_every=args.eval_every,
        eval_episodes=args.eval_episodes,
        checkpoint_every=args.checkpoint_every,
        stop_at_return=args.stop_at_return,
        asha=args.asha,
        workers=args.workers,
        cpus_per_trial=args.cpus_per_trial,
        gpus_per_trial=args.gpus_per_trial,
        max_failures=args.max_failures,
        address=args.address,
        out=args.out,
    )
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
    "sweep": cmd_sweep,
    "eval": cmd_eval,
    "plot": cmd_plot,
    "report": cmd_report,
    "list": cmd_list,
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(
            "usage: duetto {train,sweep,eval,plot,report,list} ...\n\n"
            "  train ALGO --env ID   train an agent (duetto train sac --help)\n"
            "  train --resume DIR    continue a run exactly\n"
            "  sweep ALGO --env ID   seeds x settings as Ray Tune trials (duetto sweep --help)\n"
            "  sweep --resume DIR    continue an interrupted sweep\n"
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
