"""Report statistics on synthetic scores with known answers, and the report command."""

import json

import numpy as np
import pytest

from duetto.analysis.report import aggregate_metrics, interval_estimates, normalise, score_matrices
from duetto.cli import main
from duetto.errors import DuettoError


def test_aggregate_metrics_known_answers():
    # 8 runs x 1 task: IQM is the mean of the middle half (3, 4, 5, 6 -> 4.5, scaled by 1/10).
    x = (np.arange(1, 9, dtype=float) / 10)[:, None]
    iqm, mean, median, gap = aggregate_metrics(x)
    np.testing.assert_allclose([iqm, mean, median], [0.45, 0.45, 0.45])
    np.testing.assert_allclose(gap, np.mean(1 - x))  # every score is below 1
    skewed = np.array([[0.0], [0.1], [0.2], [0.3], [0.4], [0.5], [0.6], [10.0]])
    iqm, mean, median, gap = aggregate_metrics(skewed)
    np.testing.assert_allclose(iqm, 0.35)  # the outlier does not move the IQM...
    np.testing.assert_allclose(mean, 12.1 / 8)  # ...but drags the mean
    np.testing.assert_allclose(gap, (1 + 0.9 + 0.8 + 0.7 + 0.6 + 0.5 + 0.4 + 0) / 8)


def test_stratified_bootstrap_intervals():
    rng = np.random.default_rng(0)
    const = {"a": np.full((5, 2), 0.7)}
    points, cis = interval_estimates(const, reps=500)
    np.testing.assert_allclose(cis["a"][0], cis["a"][1])  # no spread, no interval
    noisy = {"b": rng.normal(0.5, 0.1, size=(20, 3))}
    points, cis = interval_estimates(noisy, reps=2000)
    assert np.all(cis["b"][0] <= points["b"]) and np.all(points["b"] <= cis["b"][1])
    width = cis["b"][1, 1] - cis["b"][0, 1]  # the mean's CI: about 2 x 1.96 x 0.1 / sqrt(60)
    assert 0.03 < width < 0.07


def test_normalise_and_missing_reference():
    refs = {"CartPole-v1": (22.0, 500.0)}
    np.testing.assert_allclose(
        normalise("gymnax:CartPole-v1", np.array([22.0, 500.0]), refs), [0.0, 1.0]
    )
    with pytest.raises(DuettoError, match="--ref Hopper-v5=RANDOM,REFERENCE"):
        normalise("Hopper-v5", np.array([1.0]), refs)
    scores = {"x": {"A": [1, 2, 3], "B": [4, 5]}, "y": {"A": [1, 1, 1, 1]}}
    m, tasks = score_matrices(scores, {"A": (0.0, 10.0), "B": (0.0, 10.0)})
    # every algorithm keeps all its runs on the common tasks, whatever the others have
    assert tasks == ["A"] and m["x"].shape == (3, 1) and m["y"].shape == (4, 1)
    scores["y"]["B"] = [2, 2, 2, 2]
    m, tasks = score_matrices(scores, {"A": (0.0, 10.0), "B": (0.0, 10.0)})
    # within one algorithm, one count per task: x keeps its first 2 runs on A as on B
    assert tasks == ["A", "B"] and m["x"].shape == (2, 2) and m["y"].shape == (4, 2)
    np.testing.assert_allclose(m["x"], [[0.1, 0.4], [0.2, 0.5]])


def _run(path, algo, env, seed, final, lr=3e-4):
    path.mkdir(parents=True)
    cfg = {"algo": algo, "env": env, "seed": seed, "config": {"learning_rate": lr}}
    (path / "config.json").write_text(json.dumps(cfg))
    rows = [
        {
            "kind": "eval",
            "step": 1000,
            "train_wall": 1.0,
            "return_mean": final - 50,
            "return_std": 0.0,
        },
        {"kind": "eval", "step": 2000, "train_wall": 2.0, "return_mean": final, "return_std": 0.0},
    ]
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_report_command_from_run_directories(tmp_path, capsys):
    for s in range(4):
        _run(tmp_path / f"ppo-{s}", "ppo", "CartPole-v1", s, 500.0 - 10 * s)
        _run(tmp_path / f"sac-{s}", "sac", "CartPole-v1", s, 261.0)
    runs = [str(p) for p in sorted(tmp_path.glob("*-*"))]
    out = tmp_path / "rep"
    assert main(["report", *runs, "--out", str(out), "--reps", "500"]) == 0
    report = json.loads((out / "report.json").read_text())
    # sac: every run scores (261 - 22) / 478 = 0.5
    np.testing.assert_allclose(report["point"]["sac"], [0.5, 0.5, 0.5, 0.5])
    assert (out / "aggregates.png").exists() and (out / "profiles.png").exists()
    assert "| ppo |" in capsys.readouterr().out
    assert main(["report", runs[0], "--ref", "CartPole-v1=1,1"]) == 2
    assert "must differ" in capsys.readouterr().err


def test_report_names_an_algorithms_own_varying_settings(tmp_path):
    """Runs of one algorithm that differ in a numeric setting are told apart by it; settings
    that differ only between algorithms (their defaults) do not name anything."""
    from duetto.analysis.report import collect_scores

    for s in range(2):
        _run(tmp_path / f"ppo-{s}", "ppo", "CartPole-v1", s, 500.0)
        _run(tmp_path / f"sac-a{s}", "sac", "CartPole-v1", s, 200.0, lr=3e-4)
        _run(tmp_path / f"sac-b{s}", "sac", "CartPole-v1", s, 300.0, lr=1e-3)
    scores = collect_scores(sorted(tmp_path.glob("*-*")))
    assert sorted(scores) == ["ppo", "sac learning_rate=0.0003", "sac learning_rate=0.001"]
    assert scores["sac learning_rate=0.001"]["CartPole-v1"] == [300.0, 300.0]


def test_plot_and_report_from_python_and_their_bad_input(tmp_path, capsys):
    """duetto.plot and duetto.report, the Python side of the commands: they write what they
    return; a path that is not a run directory, or an output path that holds something else,
    gets one message and leaves what is on disk as it was (through the command: exit 2)."""
    import duetto

    for s in range(3):
        _run(tmp_path / f"ppo-{s}", "ppo", "CartPole-v1", s, 480.0 + s)
    runs = sorted(tmp_path.glob("ppo-*"))
    png = duetto.plot(runs, tmp_path / "band.png", aggregate=True)
    assert png == tmp_path / "band.png" and png.read_bytes()[:4] == b"\x89PNG"
    md = duetto.report(runs, tmp_path / "rep", reps=200)
    assert md == tmp_path / "rep" / "report.md" and "| ppo |" in md.read_text()

    notes = tmp_path / "notes.txt"
    notes.write_text("keep me")
    with pytest.raises(DuettoError, match="is not a duetto run directory"):
        duetto.plot([*runs, tmp_path], tmp_path / "x.png")
    with pytest.raises(DuettoError, match="exists and is not a PNG"):
        duetto.plot(runs, notes)
    with pytest.raises(DuettoError, match="exists and is not a directory"):
        duetto.report(runs, notes)
    with pytest.raises(DuettoError, match="at least 100"):
        duetto.report(runs, tmp_path / "rep2", reps=10)
    with pytest.raises(DuettoError, match="'step' or 'train_wall'"):
        duetto.plot(runs, tmp_path / "y.png", x="time")
    assert notes.read_text() == "keep me"
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "rep2").exists()
    assert main(["plot", str(runs[0]), "--out", str(notes)]) == 2
    assert "not a PNG" in capsys.readouterr().err and notes.read_text() == "keep me"
