"""`duetto.plot` and `duetto.report`: learning curves and multi-seed statistics over run
directories, with their inputs checked (the `duetto plot` / `duetto report` commands call
them)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from duetto.errors import DuettoError


def _run_dirs(runs: Iterable[str | Path] | str | Path) -> list[Path]:
    paths = [Path(r) for r in ([runs] if isinstance(runs, str | Path) else runs)]
    if not paths:
        raise DuettoError("no run directories given; pass one or more (e.g. model.run_dir).")
    for run in paths:
        if not (run / "config.json").exists():
            raise DuettoError(f"'{run}' is not a duetto run directory (no config.json).")
    return paths


def plot(
    runs: Iterable[str | Path] | str | Path,
    out: str | Path = "curve.png",
    aggregate: bool = False,
    x: str = "step",
) -> Path:
    """Draw the evaluation returns of run directories into the PNG `out` and return its path.

    aggregate=False: one line per run; True: one line per group of runs that differ only in
    their seed (grouped by algorithm, env and settings from each run's config.json), the mean
    over seeds with a 95 % bootstrap confidence band. x: "step" (env steps) or "train_wall"
    (training wall time). A multi-seed run directory stands for its runs. Runs on several envs
    are drawn in one panel per env, titled by its id, with one legend for the figure."""
    from duetto.analysis.curves import expand_runs, plot_learning_curve, plot_seed_band

    run_dirs = _run_dirs(runs)
    if x not in ("step", "train_wall"):
        raise DuettoError(f"x must be 'step' or 'train_wall', got {x!r}.")
    out = Path(out)
    if out.exists() and out.suffix.lower() != ".png":
        raise DuettoError(f"'{out}' exists and is not a PNG; not overwriting it.")
    if aggregate:
        return plot_seed_band(run_dirs, out, x=x)
    return plot_learning_curve(expand_runs(run_dirs), out, x=x)


def report(
    runs: Iterable[str | Path] | str | Path,
    out: str | Path = "report",
    refs: dict[str, tuple[float, float]] | None = None,
    reps: int = 5000,
) -> Path:
    """IQM, mean, median and optimality gap of the runs' final evaluation returns, normalised
    per env as (return − random) / (reference − random), with 95 % stratified-bootstrap
    confidence intervals (rliable) and performance profiles. Writes report.md, report.json,
    aggregates.png and profiles.png into the directory `out` and returns report.md's path.

    refs: {env: (random, reference)} for envs without built-in reference returns. Runs are
    grouped by algorithm (and by the settings that vary between one algorithm's runs)."""
    from duetto.analysis.report import write_report

    run_dirs = _run_dirs(runs)
    if reps < 100:
        raise DuettoError(f"reps must be at least 100 bootstrap resamples, got {reps}.")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DuettoError(f"'{out}' exists and is not a directory; not overwriting it.")
    return write_report(run_dirs, out, refs, reps=reps)
