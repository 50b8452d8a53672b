"""Learning-curve pictures from run directories."""

from __future__ import annotations

from pathlib import Path

from duetto.runs.rundir import read_json, read_metrics


def plot_learning_curve(run_dirs: list[Path], out: Path, x: str = "step") -> Path:
    """Evaluation return against env steps (x='step') or training wall time (x='train_wall'),
    one line per run, with ± one standard deviation over evaluation episodes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=110)
    for run_dir in run_dirs:
        evals = {}
        for row in read_metrics(run_dir):
            if row.get("kind") == "eval":
                evals[row["step"]] = row  # a resumed run may repeat a step: keep the last
        if not evals:
            continue
        rows = [evals[k] for k in sorted(evals)]
        xs = [r[x] for r in rows]
        mean = [r["return_mean"] for r in rows]
        std = [r["return_std"] for r in rows]
        config = read_json(Path(run_dir) / "config.json")
        label = f"{config['algo']} s{config['seed']}"
        (line,) = ax.plot(xs, mean, marker="o", markersize=3, label=label)
        ax.fill_between(
            xs,
            [m - s for m, s in zip(mean, std, strict=True)],
            [m + s for m, s in zip(mean, std, strict=True)],
            color=line.get_color(),
            alpha=0.2,
        )
    first = read_json(Path(run_dirs[0]) / "config.json")
    ax.set_title(f"{first['algo'].upper()} on {first['env']}")
    ax.set_xlabel("env steps" if x == "step" else "training wall time (s)")
    ax.set_ylabel("evaluation return (deterministic)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out)
    plt.close(fig)
    return out
