"""Learning curves of benchmarks/sac_pendulum.py: evaluation return against env steps and
against training wall time, mean and min–max over seeds, one colour per library.

    python benchmarks/plot_sac_pendulum.py benchmarks/results/sac_pendulum.json
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

NAMES = {"sb3": "Stable-Baselines3", "sbx": "SBX", "duetto": "duetto"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results", type=Path)
    p.add_argument("--out", type=Path, help="PNG (default: beside the results)")
    args = p.parse_args()
    runs = json.loads(args.results.read_text())["runs"]
    by_lib: dict[str, list[list[dict]]] = defaultdict(list)
    for run in runs:
        by_lib[run["lib"]].append(run["evals"])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), dpi=110, sharey=True)
    for lib, curves in by_lib.items():
        steps = [e["step"] for e in curves[0]]
        returns = np.array([[e["return_mean"] for e in c] for c in curves])
        walls = np.array([[e["train_wall_s"] for e in c] for c in curves]).mean(axis=0)
        for ax, x in zip(axes, (steps, walls), strict=True):
            (line,) = ax.plot(
                x,
                returns.mean(axis=0),
                marker="o",
                markersize=3,
                label=f"{NAMES.get(lib, lib)} ({len(curves)} seeds)",
            )
            ax.fill_between(
                x, returns.min(axis=0), returns.max(axis=0), color=line.get_color(), alpha=0.15
            )
    axes[0].set_xlabel("env steps")
    axes[1].set_xlabel("training wall time, s (compilation included, evaluation excluded)")
    axes[0].set_ylabel("evaluation return (10 deterministic episodes)")
    for ax in axes:
        ax.axhline(-200, color="grey", linewidth=0.8, linestyle="--")
        ax.grid(alpha=0.3)
    axes[1].legend(loc="lower right")
    fig.suptitle("SAC on Pendulum-v1, RL-Zoo preset, same machine, same run")
    fig.tight_layout()
    out = args.out or args.results.with_suffix(".png")
    fig.savefig(out)
    print(out)


if __name__ == "__main__":
    main()
