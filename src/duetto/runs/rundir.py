"""Run directories: where a training run writes its config, metrics, checkpoints and pictures.

runs/<algo>-<env>-s<seed>-<YYYYmmdd-HHMMSS>/
    config.json       resolved config (algorithm, env, seed, every hyperparameter)
    metrics.jsonl     one JSON row per train log ("kind": "train") and evaluation ("eval")
    tb/               TensorBoard event files
    checkpoints/      step-<env steps>.ckpt
    eval.json         the final evaluation
    curve.png         the learning curve
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from duetto.errors import DuettoError
from duetto.runs.checkpoint import SUFFIX, atomic_write


def default_run_dir(algo: str, env: str, seed: int | str, root: str = "runs") -> Path:
    safe_env = re.sub(r"[^A-Za-z0-9_.-]+", "_", env)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = Path(root) / f"{algo}-{safe_env}-s{seed}-{stamp}"
    n = 1
    while path.exists():
        n += 1
        path = Path(root) / f"{algo}-{safe_env}-s{seed}-{stamp}-{n}"
    return path


def seed_tag(seeds: list[int]) -> str:
    """'3' for one seed, '0-7' for a contiguous range, else the list joined by '_'."""
    if len(seeds) == 1:
        return str(seeds[0])
    if seeds == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"{seeds[0]}-{seeds[-1]}"
    return "_".join(map(str, seeds))


def check_new_run_dir(path: Path) -> None:
    """Refuse a path that holds anything: an existing run is never reused or overwritten."""
    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise DuettoError(
            f"run directory '{path}' already exists. Choose another --out, or continue that run "
            f"with 'duetto train --resume {path}'."
        )


def create_run_dir(path: Path, config: dict[str, Any]) -> Path:
    """Make a new run directory (see check_new_run_dir)."""
    path = Path(path)
    check_new_run_dir(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        (path / "checkpoints").mkdir(exist_ok=True)
        write_json(path / "config.json", config)
    except OSError as e:
        raise DuettoError(
            f"cannot write the run directory '{path}': {e.strerror or e}. Choose a writable "
            "place with --out (run_dir= in Python), or run_dir=False for no run directory."
        ) from None
    return path


def write_json(path: Path, obj: Any) -> None:
    atomic_write(Path(path), lambda f: f.write(json.dumps(obj, indent=2).encode()))


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def checkpoint_path(run_dir: Path, env_steps: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"step-{env_steps:010d}{SUFFIX}"


def latest_checkpoint(run_dir: Path) -> Path:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DuettoError(f"no run directory at '{run_dir}'.")
    found = sorted((run_dir / "checkpoints").glob(f"step-*{SUFFIX}"))
    if not found:
        raise DuettoError(
            f"'{run_dir}' has no checkpoints (expected {run_dir}/checkpoints/step-*{SUFFIX}): "
            "the run stopped before writing one (a run writes one at its end, when stopped by "
            "Ctrl-C or SIGTERM, and every --checkpoint-every steps), so there is nothing to "
            "resume. Train it again with another --out."
        )
    return found[-1]


def read_metrics(run_dir: Path) -> list[dict]:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue  # a line cut short by a crash
    return rows


def truncate_metrics(run_dir: Path, step: int) -> None:
    """Drop the rows logged after env step `step` (and any line cut short) from a run's
    metrics.jsonl: a run resumed from its checkpoint at `step` logs those steps again,
    identically."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return
    lines = path.read_text().splitlines()
    kept = []
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if row.get("step", 0) <= step:
            kept.append(line)
    if len(kept) != len(lines):
        atomic_write(path, lambda f: f.write("".join(f"{k}\n" for k in kept).encode()))
