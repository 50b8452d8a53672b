"""Learning-curve pictures from run directories: one line per run, or the mean over seeds with a
bootstrap confidence band."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from duetto.runs.rundir import read_json, read_metrics


def eval_rows(run_dir: Path) -> list[dict[str, Any]]:
    """The evaluation rows of a run, one per env step (a resumed run may repeat a step: the last
    row wins), in step order."""
    evals = {}
    for row in read_metrics(run_dir):
        if row.get("kind") == "eval":
            evals[row["step"]] = row
    return [evals[k] for k in sorted(evals)]


def expand_runs(paths: list[Path]) -> list[Path]:
    """Run directories, with a multi-run directory (--seeds, sweeps) replaced by its runs."""
    runs: list[Path] = []
    for path in map(Path, paths):
        config = read_json(path / "config.json")
        if "seeds" in config and not (path / "metrics.jsonl").exists():
            runs += sorted(p.parent for p in path.glob("*/config.json"))
        else:
            runs.append(path)
    return runs


def run_settings(config: dict[str, Any]) -> dict[str, Any]:
    """A run's hyperparameters as its config.json records them, with those added to duetto
    after the run was made filled in with what the run ran with (the field's `before` value
    where its default changed since, else its default, which keeps the behaviour from before
    it), so that such a run groups with the same setting run later."""
    from duetto.algorithms import ALGORITHMS

    settings = dict(config.get("config", {}))
    algo = ALGORITHMS.get(config.get("algo", ""))
    for field in dataclasses.fields(algo.CONFIG) if algo is not None else ():
        if field.name not in settings and field.default is not dataclasses.MISSING:
            ran_with = field.metadata.get("before")
            ran_with = field.default if ran_with is None else ran_with
            settings[field.name] = json.loads(json.dumps(ran_with))  # as config.json has it
    return settings


def _group_key(config: dict[str, Any]) -> tuple[str, str]:
    """Runs that differ only in their seed share a group: (algorithm and settings, env)."""
    return (f"{config['algo']} {sorted(run_settings(config).items())!r}", config["env"])


def aggregate(
    curves: list[tuple[np.ndarray, np.ndarray]], level: float = 0.95, resamples: int = 2000
) -> dict[str, np.ndarray]:
    """Mean over seeds of curves [(x, y)] at the x values every curve has, with a percentile
    bootstrap confidence interval of that mean (seeds resampled with replacement)."""
    common = sorted(set.intersection(*(set(np.asarray(x).tolist()) for x, _ in curves)))
    ys = np.array(
        [
            [dict(zip(np.asarray(x).tolist(), np.asarray(y), strict=True))[c] for c in common]
            for x, y in curves
        ]
    )  # [seeds, points]
    rng = np.random.default_rng(0)
    picks = rng.integers(0, len(curves), size=(resamples, len(curves)))
    means = ys[picks].mean(axis=1)  # [resamples, points]
    tail = (1.0 - level) / 2.0
    return {
        "x": np.asarray(common, dtype=float),
        "mean": ys.mean(axis=0),
        "low": np.quantile(means, tail, axis=0),
        "high": np.quantile(means, 1.0 - tail, axis=0),
        "n": np.asarray(len(curves)),
    }


def _figure() -> tuple[Any, Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=110)
    return plt, fig, ax


def _finish(plt: Any, fig: Any, ax: Any, title: str, x: str, out: Path) -> Path:
    ax.set_title(title)
    ax.set_xlabel("env steps" if x == "step" else "training wall time (s)")
    ax.set_ylabel("evaluation return (deterministic)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out)
    plt.close(fig)
    return out


def plot_learning_curve(run_dirs: list[Path], out: Path, x: str = "step") -> Path:
    """Evaluation return against env steps (x='step') or training wall time (x='train_wall'),
    one line per run, with ± one standard deviation over evaluation episodes."""
    plt, fig, ax = _figure()
    for run_dir in run_dirs:
        rows = eval_rows(run_dir)
        if not rows:
            continue
        xs = [r[x] for r in rows]
        mean = np.array([r["return_mean"] for r in rows])
        std = np.array([r["return_std"] for r in rows])
        config = read_json(Path(run_dir) / "config.json")
        (line,) = ax.plot(
            xs, mean, marker="o", markersize=3, label=f"{config['algo']} s{config['seed']}"
        )
        ax.fill_between(xs, mean - std, mean + std, color=line.get_color(), alpha=0.2)
    first = read_json(Path(run_dirs[0]) / "config.json")
    return _finish(plt, fig, ax, f"{first['algo'].upper()} on {first['env']}", x, out)


def plot_seed_band(run_dirs: list[Path], out: Path, x: str = "step") -> Path:
    """Mean evaluation return over the seeds of each group of runs (runs that differ only in
    their seed), with a 95 % bootstrap confidence band of the mean. With x='train_wall' the x
    of each point is the mean wall time over seeds at that env step."""
    configs = {run: read_json(run / "config.json") for run in expand_runs(run_dirs)}
    groups: dict[tuple[str, str], list[Path]] = {}
    for run, config in configs.items():
        groups.setdefault(_group_key(config), []).append(run)
    labels = run_labels([configs[runs[0]] for runs in groups.values()])
    plt, fig, ax = _figure()
    envs = set()
    for ((_, env), runs), name in zip(groups.items(), labels, strict=True):
        curves, walls = [], []
        for run in runs:
            rows = eval_rows(run)
            if rows:
                steps = np.array([r["step"] for r in rows])
                curves.append((steps, np.array([r["return_mean"] for r in rows])))
                walls.append((steps, np.array([r["train_wall"] for r in rows])))
        if not curves:
            continue
        band = aggregate(curves)
        xs = band["x"] if x == "step" else aggregate(walls, resamples=1)["mean"]
        (line,) = ax.plot(xs, band["mean"], label=f"{name} (mean of {int(band['n'])} seeds)")
        ax.fill_between(xs, band["low"], band["high"], color=line.get_color(), alpha=0.25)
        envs.add(env)
    title = " / ".join(sorted(envs)) + ": mean and 95 % bootstrap CI over seeds"
    return _finish(plt, fig, ax, title, x, out)


def run_labels(configs: list[dict[str, Any]]) -> list[str]:
    """Each config's label: its algorithm, then the numeric hyperparameters whose values
    differ between that algorithm's configs (as in a sweep). Different algorithms are told
    apart by their names, so their differing settings are not named."""
    settings = [run_settings(c) for c in configs]
    by_algo: dict[str, list[dict[str, Any]]] = {}
    for config, own in zip(configs, settings, strict=True):
        by_algo.setdefault(config["algo"], []).append(own)
    varying = {
        algo: [
            k
            for k in sorted(set().union(*runs))
            if all(isinstance(r.get(k), int | float) for r in runs)
            and len({repr(r.get(k)) for r in runs}) > 1
        ]
        for algo, runs in by_algo.items()
    }
    return [
        config["algo"] + "".join(f" {k}={own[k]:g}" for k in varying[config["algo"]])
        for config, own in zip(configs, settings, strict=True)
    ]
