"""Seed aggregation for learning curves, on synthetic run directories with known answers."""

import json

import numpy as np

from duetto.analysis.curves import (
    aggregate,
    band_figure,
    curve_figure,
    expand_runs,
    plot_seed_band,
)
from duetto.cli import main


def _run(
    path, seed, returns, lr=1e-3, steps=(1000, 2000, 3000), algo="ppo", env="gymnax:CartPole-v1"
):
    path.mkdir(parents=True)
    config = {
        "algo": algo,
        "env": env,
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


def _legend(fig):
    """The labels of the figure's one legend, and of the legends inside its panels."""
    inside = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    shared = [[t.get_text() for t in legend.get_texts()] for legend in fig.legends]
    return shared, [[t.get_text() for t in legend.get_texts()] for legend in inside]


def test_runs_on_several_envs_get_a_panel_each_and_one_legend(tmp_path):
    """`duetto plot runs/sac-*` over HalfCheetah and Pendulum runs: a panel per env titled by
    its id, one legend that names each line once, a line the same colour in every panel."""
    runs = [
        _run(tmp_path / f"sac-{env}-s{seed}", seed, [seed, seed + 1, seed + 2], algo="sac", env=env)
        for env in ("Pendulum-v1", "HalfCheetah-v5")
        for seed in (0, 1)
    ]
    runs.append(_run(tmp_path / "td3-Pendulum-v1-s0", 0, [1, 2, 3], algo="td3", env="Pendulum-v1"))

    plt, fig = curve_figure(runs)
    assert [ax.get_title() for ax in fig.axes] == ["HalfCheetah-v5", "Pendulum-v1"]
    assert [len(ax.get_lines()) for ax in fig.axes] == [2, 3]
    assert _legend(fig) == ([["sac s0", "sac s1", "td3 s0"]], [])
    colours = [{ln.get_label(): ln.get_color() for ln in ax.get_lines()} for ax in fig.axes]
    assert colours[0]["sac s0"] == colours[1]["sac s0"] != colours[1]["sac s1"]
    assert fig._suptitle.get_text() == "SAC / TD3"
    plt.close(fig)

    plt, fig = band_figure(runs)
    assert [ax.get_title() for ax in fig.axes] == ["HalfCheetah-v5", "Pendulum-v1"]
    assert _legend(fig) == ([["sac (mean of 2 seeds)", "td3 (mean of 1 seed)"]], [])
    plt.close(fig)

    for flags in ([], ["--aggregate"]):
        out = tmp_path / f"curve{len(flags)}.png"
        assert main(["plot", *map(str, runs), *flags, "--out", str(out)]) == 0
        assert out.stat().st_size > 10_000


def test_runs_on_one_env_stay_one_panel_with_a_label_per_line(tmp_path):
    """One env: one panel with its legend inside, titled as before; runs of a sweep with the
    same seed are told apart by the setting that varies."""
    runs = [
        _run(tmp_path / f"lr{lr:g}-s{s}", s, [s, s + 1, s + 2], lr=lr)
        for lr in (1e-3, 3e-4)
        for s in (0, 1)
    ]
    plt, fig = curve_figure(runs)
    (ax,) = fig.axes
    assert ax.get_title() == "PPO on gymnax:CartPole-v1" and not fig.legends
    ((labels,),) = _legend(fig)[1:]
    assert labels == [
        "ppo learning_rate=0.001 s0",
        "ppo learning_rate=0.001 s1",
        "ppo learning_rate=0.0003 s0",
        "ppo learning_rate=0.0003 s1",
    ]
    plt.close(fig)

    # Runs whose settings differ in no number: each line named by its directory
    twice = [_run(tmp_path / f"again-{d}", 0, [0, 1, 2]) for d in ("a", "b")]
    plt, fig = curve_figure(twice)
    assert _legend(fig)[1] == [["ppo s0 (again-a)", "ppo s0 (again-b)"]]
    plt.close(fig)

    plt, fig = band_figure(runs)
    (ax,) = fig.axes
    assert ax.get_title() == "gymnax:CartPole-v1: mean and 95 % bootstrap CI over seeds"
    assert _legend(fig) == (
        [],
        [
            [
                "ppo learning_rate=0.001 (mean of 2 seeds)",
                "ppo learning_rate=0.0003 (mean of 2 seeds)",
            ]
        ],
    )
    plt.close(fig)
