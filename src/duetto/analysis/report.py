"""Multi-seed statistics you can trust: `duetto report RUN_DIR...`.

After Agarwal et al., "Deep RL at the Edge of the Statistical Precipice" (NeurIPS 2021), through
their library rliable: a run's score is its final evaluation return, normalised per task as
(score − random) / (reference − random); for each algorithm the interquartile mean (IQM), mean,
median and optimality gap (mean shortfall below 1) over all runs of all tasks, with 95 %
stratified-bootstrap confidence intervals (runs resampled within each task), and performance
profiles (the fraction of runs scoring above τ). Algorithms and tasks come from the run
directories' configs; runs that differ only in seed are one algorithm.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from duetto.analysis.curves import eval_rows, expand_runs, run_labels
from duetto.errors import DuettoError
from duetto.runs.rundir import read_json, write_json

# (random policy, reference) returns for the score normalisation. Random: the mean return of
# uniform random actions; reference: the task's maximum (CartPole, Acrobot) or a solved level.
REFERENCE_SCORES: dict[str, tuple[float, float]] = {
    "CartPole-v1": (22.0, 500.0),  # episodes cap at 500
    "Acrobot-v1": (-500.0, -60.0),
    "Pendulum-v1": (-1200.0, -150.0),  # -150: RL-Zoo's SAC/TD3 level at 20k steps
    "MountainCarContinuous-v0": (-30.0, 93.0),
}
METRICS = ("IQM", "mean", "median", "optimality gap")


def normalise(task: str, scores: np.ndarray, refs: dict[str, tuple[float, float]]) -> np.ndarray:
    name = task.removeprefix("gymnax:")
    if name not in refs:
        raise DuettoError(
            f"no reference scores to normalise '{task}'; give them with "
            f"--ref {name}=RANDOM,REFERENCE (known: {', '.join(sorted(refs))})."
        )
    low, high = refs[name]
    return (scores - low) / (high - low)


def collect_scores(run_dirs: list[Path]) -> dict[str, dict[str, list[float]]]:
    """{algorithm label: {task: [final evaluation return per run]}}."""
    configs = {run: read_json(run / "config.json") for run in expand_runs(run_dirs)}
    labels = run_labels(list(configs.values()))
    scores: dict[str, dict[str, list[float]]] = {}
    for (run, config), label in zip(configs.items(), labels, strict=True):
        rows = eval_rows(run)
        if not rows:
            raise DuettoError(f"run '{run}' has no evaluation yet; train it first.")
        scores.setdefault(label, {}).setdefault(config["env"], []).append(rows[-1]["return_mean"])
    return scores


def score_matrices(
    scores: dict[str, dict[str, list[float]]], refs: dict[str, tuple[float, float]]
) -> tuple[dict[str, np.ndarray], list[str]]:
    """Normalised [runs, tasks] arrays per algorithm, over the tasks every algorithm has. An
    algorithm keeps all its runs; only where its tasks hold different numbers of runs does it
    keep the fewest of them on each (the first), as its array needs one count per task.
    Algorithms may differ in their counts: the bootstrap resamples each on its own."""
    tasks = sorted(set.intersection(*(set(t) for t in scores.values())))
    if not tasks:
        raise DuettoError("the algorithms share no task; report compares them on common tasks.")
    matrices = {}
    for label, per_task in scores.items():
        n = min(len(per_task[t]) for t in tasks)
        matrices[label] = np.stack(
            [normalise(t, np.asarray(per_task[t][:n], float), refs) for t in tasks], axis=1
        )
    return matrices, tasks


def aggregate_metrics(x: np.ndarray) -> np.ndarray:
    """IQM, mean, median, optimality gap of a [runs, tasks] array of normalised scores."""
    from rliable import metrics

    return np.array(
        [
            metrics.aggregate_iqm(x),
            metrics.aggregate_mean(x),
            metrics.aggregate_median(x),
            metrics.aggregate_optimality_gap(x),
        ]
    )


def interval_estimates(
    matrices: dict[str, np.ndarray], reps: int = 5000, seed: int = 0
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Point estimates [4] and 95 % stratified-bootstrap intervals [2, 4] per algorithm."""
    from rliable import library as rly

    with _quiet_bootstrap():
        return rly.get_interval_estimates(
            matrices, aggregate_metrics, reps=reps, random_state=np.random.RandomState(seed)
        )


@contextlib.contextmanager
def _quiet_bootstrap() -> Iterator[None]:
    """rliable seeds `arch`'s bootstrap with a RandomState, which arch deprecates in a
    FutureWarning addressed to rliable, not to duetto's users."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "random_state is deprecated", FutureWarning)
        yield


def write_report(
    run_dirs: list[Path],
    out: Path,
    refs: dict[str, tuple[float, float]] | None = None,
    reps: int = 5000,
) -> Path:
    """Write report.md, report.json, aggregates.png and profiles.png into `out`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from rliable import library as rly
    from rliable import plot_utils

    refs = {**REFERENCE_SCORES, **(refs or {})}
    scores = collect_scores(run_dirs)
    matrices, tasks = score_matrices(scores, refs)
    points, intervals = interval_estimates(matrices, reps=reps)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    n_runs = {label: m.shape[0] for label, m in matrices.items()}
    per_algo = ", ".join(f"{label} {n}" for label, n in n_runs.items())
    lines = [
        f"Tasks: {', '.join(tasks)}; runs per task: {per_algo}; scores normalised as "
        "(return − random) / (reference − random) with "
        + "; ".join(f"{t}: {refs[t.removeprefix('gymnax:')]}" for t in tasks)
        + f". 95 % stratified-bootstrap CIs ({reps} resamples).",
        "",
        "| algorithm | " + " | ".join(METRICS) + " |",
        "|---|" + "---|" * len(METRICS),
    ]
    for label in matrices:
        cells = [
            f"{points[label][i]:.3f} [{intervals[label][0, i]:.3f}, {intervals[label][1, i]:.3f}]"
            for i in range(len(METRICS))
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    (out / "report.md").write_text("\n".join(lines) + "\n")
    write_json(
        out / "report.json",
        {
            "tasks": tasks,
            "runs_per_task": n_runs,
            "metrics": list(METRICS),
            "point": {k: v.tolist() for k, v in points.items()},
            "ci95": {k: v.tolist() for k, v in intervals.items()},
            "scores": {k: v.tolist() for k, v in matrices.items()},
        },
    )

    fig, _ = plot_utils.plot_interval_estimates(
        points, intervals, metric_names=list(METRICS), algorithms=list(matrices)
    )
    fig.savefig(out / "aggregates.png", bbox_inches="tight", dpi=110)
    plt.close(fig)

    taus = np.linspace(0.0, 1.1, 45)
    with _quiet_bootstrap():
        profiles, profile_cis = rly.create_performance_profile(matrices, taus)
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=110)
    plot_utils.plot_performance_profiles(
        profiles,
        taus,
        performance_profile_cis=profile_cis,
        ax=ax,
        xlabel=r"normalised score $\tau$",
    )
    ax.legend(list(matrices), loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "profiles.png")
    plt.close(fig)
    return out / "report.md"
