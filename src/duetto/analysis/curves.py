"""Learning-curve pictures from run directories: one line per run, or the mean over seeds with a
bootstrap confidence band; one panel per env, titled by its id, with one legend."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from duetto.errors import DuettoError
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
            # a sweep's directory holds multi-run directories too (a JAX env's seeds)
            runs += expand_runs(sorted(p.parent for p in path.glob("*/config.json")))
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


def _figure(envs: list[str]) -> tuple[Any, Any, dict[str, Any]]:
    """pyplot, a figure and one panel per env (at most three a row)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(len(envs), 3)
    rows = -(-len(envs) // cols)
    size = (6.4, 4.0) if cols == 1 else (4.8 * cols, 3.6 * rows + 0.6)
    fig = plt.figure(figsize=size, dpi=110, layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).flat
    for ax in axes[len(envs) :]:
        ax.remove()
    return plt, fig, dict(zip(envs, axes, strict=False))


class _Colours:
    """One colour per label, the same in every panel."""

    def __init__(self) -> None:
        import matplotlib

        self.cycle = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
        self.given: dict[str, str] = {}

    def __call__(self, label: str) -> str:
        return self.given.setdefault(label, self.cycle[len(self.given) % len(self.cycle)])


def _label(fig: Any, panels: dict[str, Any], title: str, x: str) -> None:
    """Titles, axis names and the legend. One panel is titled `title` and holds its legend;
    several are titled by their env, under `title`, with one legend (each label once) below."""
    xlabel = "env steps" if x == "step" else "training wall time (s)"
    ylabel = "evaluation return (deterministic)"
    for env, ax in panels.items():
        ax.grid(alpha=0.3)
        ax.set_xlabel(xlabel)
        if ax.get_subplotspec().is_first_col():
            ax.set_ylabel(ylabel)
        if len(panels) == 1:
            ax.set_title(title)
            ax.legend(loc="lower right", fontsize=8)
        else:
            ax.set_title(env)
    if len(panels) > 1:
        fig.suptitle(title)
        entries: dict[str, Any] = {}
        for ax in panels.values():
            for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
                entries.setdefault(label, handle)
        fig.legend(
            list(entries.values()),
            list(entries),
            loc="outside lower center",
            ncols=min(len(entries), 4),
            fontsize=8,
        )


def _save(plt: Any, fig: Any, out: Path) -> Path:
    out = Path(out)
    fig.savefig(out)
    plt.close(fig)
    return out


def _by_env(configs: dict[Path, dict[str, Any]], drawn: set[Path]) -> list[str]:
    """The envs of the runs that have something to draw (of all runs, when none has), sorted."""
    if not configs:
        raise DuettoError("no runs to plot: the multi-run directories given hold none yet.")
    return sorted({configs[run]["env"] for run in (drawn or configs)})


def _told_apart(labels: list[str], runs: list[Path]) -> list[str]:
    """Labels that appear once in a panel: one shared by several lines (runs, or groups of
    runs, whose settings differ in no number) gets the name of its (first) run's directory."""
    return [
        f"{label} ({run.name})" if labels.count(label) > 1 else label
        for label, run in zip(labels, runs, strict=True)
    ]


def curve_figure(run_dirs: list[Path], x: str = "step") -> tuple[Any, Any]:
    """(pyplot, figure) of `plot_learning_curve`: a panel per env, a line per run labelled by
    its algorithm, the settings that vary between that algorithm's runs in the panel, and its
    seed."""
    configs = {Path(run): read_json(Path(run) / "config.json") for run in run_dirs}
    rows = {run: eval_rows(run) for run in configs}
    envs = _by_env(configs, {run for run, r in rows.items() if r})
    plt, fig, panels = _figure(envs)
    colour = _Colours()
    for env, ax in panels.items():
        runs = [run for run in configs if configs[run]["env"] == env and rows[run]]
        names = run_labels([configs[run] for run in runs])
        labels = [f"{n} s{configs[run].get('seed')}" for run, n in zip(runs, names, strict=True)]
        for run, label in zip(runs, _told_apart(labels, runs), strict=True):
            xs = [r[x] for r in rows[run]]
            mean = np.array([r["return_mean"] for r in rows[run]])
            std = np.array([r["return_std"] for r in rows[run]])
            c = colour(label)
            ax.plot(xs, mean, marker="o", markersize=3, color=c, label=label)
            ax.fill_between(xs, mean - std, mean + std, color=c, alpha=0.2)
    algos = " / ".join(dict.fromkeys(c["algo"].upper() for c in configs.values()))
    _label(fig, panels, f"{algos} on {envs[0]}" if len(envs) == 1 else algos, x)
    return plt, fig


def plot_learning_curve(run_dirs: list[Path], out: Path, x: str = "step") -> Path:
    """Evaluation return against env steps (x='step') or training wall time (x='train_wall'),
    one line per run, with ± one standard deviation over evaluation episodes; one panel per
    env."""
    plt, fig = curve_figure(run_dirs, x)
    return _save(plt, fig, out)


def band_figure(run_dirs: list[Path], x: str = "step") -> tuple[Any, Any]:
    """(pyplot, figure) of `plot_seed_band`: a panel per env, a band per group of runs, labelled
    by its algorithm and the settings that vary between that algorithm's groups in the panel."""
    configs = {run: read_json(run / "config.json") for run in expand_runs(run_dirs)}
    groups: dict[tuple[str, str], list[Path]] = {}
    for run, config in configs.items():
        groups.setdefault(_group_key(config), []).append(run)
    bands: dict[str, list[tuple[str, dict[str, np.ndarray], np.ndarray]]] = {}
    drawn: set[Path] = set()
    for env in sorted({env for _, env in groups}):
        here = [runs for (_, e), runs in groups.items() if e == env]
        names = _told_apart(run_labels([configs[r[0]] for r in here]), [r[0] for r in here])
        for runs, name in zip(here, names, strict=True):
            curves, walls = [], []
            for run in runs:
                rows = eval_rows(run)
                if rows:
                    steps = np.array([r["step"] for r in rows])
                    curves.append((steps, np.array([r["return_mean"] for r in rows])))
                    walls.append((steps, np.array([r["train_wall"] for r in rows])))
                    drawn.add(run)
            if curves:
                band = aggregate(curves)
                xs = band["x"] if x == "step" else aggregate(walls, resamples=1)["mean"]
                bands.setdefault(env, []).append((name, band, xs))
    envs = _by_env(configs, drawn)
    plt, fig, panels = _figure(envs)
    colour = _Colours()
    seeds: dict[str, set[int]] = {}  # a group's seed counts over the panels
    for env_bands in bands.values():
        for name, band, _ in env_bands:
            seeds.setdefault(name, set()).add(int(band["n"]))
    for env, env_bands in bands.items():
        for name, band, xs in env_bands:
            n = sorted(seeds[name])
            count = f"{n[0]} seed" if n == [1] else f"{n[0]} seeds"
            count = count if len(n) == 1 else f"{n[0]}–{n[-1]} seeds"
            c = colour(name)
            ax = panels[env]
            ax.plot(xs, band["mean"], color=c, label=f"{name} (mean of {count})")
            ax.fill_between(xs, band["low"], band["high"], color=c, alpha=0.25)
    what = "mean and 95 % bootstrap CI over seeds"
    _label(fig, panels, f"{envs[0]}: {what}" if len(envs) == 1 else what, x)
    return plt, fig


def plot_seed_band(run_dirs: list[Path], out: Path, x: str = "step") -> Path:
    """Mean evaluation return over the seeds of each group of runs (runs that differ only in
    their seed), with a 95 % bootstrap confidence band of the mean; one panel per env. With
    x='train_wall' the x of each point is the mean wall time over seeds at that env step."""
    plt, fig = band_figure(run_dirs, x)
    return _save(plt, fig, out)


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
