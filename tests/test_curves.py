"""Seed aggregation for learning curves, on synthetic run directories with known answers."""

import json

import numpy as np

from duetto.analysis.curves import aggregate, expand_runs, plot_seed_band
from duetto.cli import main


def _run(path, seed, returns, lr=1e-3, steps=(1000, 2000, 3000)):
    path.mkdir(parents=True)
    config = {
        "algo": "ppo",
        "env": "gymnax:CartPole-v1",
        "seed": seed,
        "config": {"learning_rate": lr, "hidden": [64, 64]},
    }
    (path / "config.json").write_text(json.dumps(config))
    rows = [
        {"kind": "eval", "step": s, "train_wall": s / 1000, "return_mean": r, "return_std": 0}
        for s, r in zip(steps, returns, strict=True)
    ]
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_aggregate_mean_and_bootstrap_band():
    x = np.array([1, 2, 3])
    curves = [
        (x, np.array([1.0, 2.0, 3.0])),
        (x, np.array([3.0, 4.0, 5.0])),
        (np.array([1, 2]), np.array([2.0, 3.0])),
    ]  # the third seed lacks step 3
    band = aggregate(curves, resamples=4000)
    np.testing.assert_array_equal(band["x"], [1, 2])
    np.testing.assert_allclose(band["mean"], [2.0, 3.0])
    # Resampled means of {1, 3, 2} (+1 at the second point) lie in [1, 3]; the 95 % interval
    # of the mean of three draws is strictly inside and contains the mean.
    assert np.all(band["low"] >= [1.0, 2.0]) and np.all(band["high"] <= [3.0, 4.0])
    assert np.all(band["low"] < band["mean"]) and np.all(band["mean"] < band["high"])
    same = aggregate([(x, np.ones(3)), (x, np.ones(3))])
    np.testing.assert_array_equal(same["low"], same["high"])  # no spread, no band


def test_multi_run_directories_expand_and_group(tmp_path):
    parent = tmp_path / "sweep"
    parent.mkdir()
    (parent / "config.json").write_text(json.dumps({"algo": "ppo", "env": "x", "seeds": [0, 1]}))
    runs = [
        _run(parent / f"learning_rate={lr:g}-seed-{s}", s, [s, s + 1, s + 2], lr=lr)
        for lr in (1e-3, 3e-4)
        for s in (0, 1)
    ]
    assert sorted(expand_runs([parent])) == sorted(runs)
    out = plot_seed_band([parent], tmp_path / "band.png")
    assert out.stat().st_size > 10_000
    assert main(["plot", str(parent), "--aggregate", "--out", str(tmp_path / "b.png")]) == 0
    assert main(["plot", str(parent), "--x", "train_wall", "--out", str(tmp_path / "c.png")]) == 0


def test_runs_made_before_a_hyperparameter_existed_group_with_its_default():
    """A run whose config.json predates a hyperparameter ran with that hyperparameter's
    default of the time, so it groups (plot) and is labelled (report) with runs that record that
    value: `weight_init` came in with Flax's LeCun weights as its default, now PyTorch's."""
    from duetto.algorithms import sac
    from duetto.analysis.curves import _group_key, run_settings
    from duetto.config import config_to_dict

    full = json.loads(json.dumps(config_to_dict(sac.SACConfig())))  # as config.json holds it
    old = {k: v for k, v in full.items() if k != "weight_init"}
    lecun = {**full, "weight_init": "lecun"}
    assert full["weight_init"] == "torch"
    assert run_settings({"algo": "sac", "config": old}) == lecun
    key = lambda c: _group_key({"algo": "sac", "env": "Hopper-v5", "config": c})  # noqa: E731
    assert key(old) == key(lecun)
    assert key(old) != key(full)
    # one without a changed default takes that default
    no_tau = {k: v for k, v in full.items() if k != "tau"}
    assert run_settings({"algo": "sac", "config": no_tau}) == full
    # an unknown algorithm (a run of another program) is left as it is
    assert run_settings({"algo": "other", "config": {"a": 1}}) == {"a": 1}
