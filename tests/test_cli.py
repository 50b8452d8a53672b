"""The command line end to end, including bad input: one message, non-zero exit, disk intact."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

ENV = dict(os.environ)  # the session's compilation cache (tests/conftest.py), as a user has one
SMALL = [
    "--hidden",
    "32,32",
    "--batch-size",
    "32",
    "--learning-starts",
    "64",
    "--buffer-size",
    "1000",
]


def duetto(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "duetto", *map(str, args)],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=cwd,
    )


def _ckpt_arrays(path):
    import io
    import zipfile

    with zipfile.ZipFile(path) as z, np.load(io.BytesIO(z.read("state.npz"))) as npz:
        return [npz[k] for k in sorted(npz.files)]  # named by tree path


def test_train_eval_resume_end_to_end(tmp_path):
    out = tmp_path / "run"
    r = duetto(
        "train",
        "sac",
        "--env",
        "Pendulum-v1",
        "--steps",
        300,
        "--seed",
        3,
        "--eval-every",
        150,
        "--eval-episodes",
        2,
        "--out",
        out,
        *SMALL,
    )
    assert r.returncode == 0, r.stderr
    assert "evaluation (2 episodes" in r.stdout and str(out) in r.stdout
    for name in (
        "config.json",
        "metrics.jsonl",
        "eval.json",
        "curve.png",
        "checkpoints/step-0000000300.ckpt",
    ):
        assert (out / name).exists(), name
    assert list((out / "tb").iterdir())
    config = json.loads((out / "config.json").read_text())
    assert config["config"]["hidden"] == [32, 32] and config["seed"] == 3
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["kind"] == "eval"] == [150, 300]
    assert all("train_wall" in r for r in rows)

    r = duetto("train", "--resume", out, "--steps", 300, "--eval-every", 150)
    assert r.returncode == 0, r.stderr
    assert (out / "checkpoints/step-0000000600.ckpt").exists()

    straight = tmp_path / "straight"
    r = duetto(
        "train",
        "sac",
        "--env",
        "Pendulum-v1",
        "--steps",
        600,
        "--seed",
        3,
        "--out",
        straight,
        *SMALL,
    )
    assert r.returncode == 0, r.stderr
    for a, b in zip(
        _ckpt_arrays(out / "checkpoints/step-0000000600.ckpt"),
        _ckpt_arrays(straight / "checkpoints/step-0000000600.ckpt"),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)

    r = duetto("eval", out, "--episodes", 3)
    assert r.returncode == 0, r.stderr
    assert "after 600 env steps" in r.stdout and "over 3 episodes" in r.stdout

    r = duetto("plot", out, straight, "--out", tmp_path / "both.png")
    assert r.returncode == 0 and (tmp_path / "both.png").stat().st_size > 1000

    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    r = duetto("train", "sac", "--env", "Pendulum-v1", "--out", out)
    assert r.returncode == 2 and "already exists" in r.stderr
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before


def test_list_and_help():
    r = duetto("list")
    assert r.returncode == 0 and "sac" in r.stdout and "zoo" in r.stdout
    assert "Pendulum-v1" in r.stdout
    r = duetto("train", "sac", "--help")
    assert r.returncode == 0
    for flag in ("--learning-rate", "--tau", "--gamma", "--batch-size", "--hidden"):
        assert flag in r.stdout
    assert "default: 0.005" in r.stdout and "paper" in r.stdout


@pytest.mark.parametrize(
    "args,message",
    [
        (["train", "sac", "--env", "CartPole-v1"], "needs a continuous (Box) action space"),
        (["train", "sac", "--env", "Pendulum-v9"], "unknown environment 'Pendulum-v9'"),
        (["train", "sacc", "--env", "Pendulum-v1"], "Did you mean 'sac'?"),
        (["train", "sac", "--env", "Pendulum-v1", "--lr", "1e-3"], "unknown option '--lr'"),
        (["train", "sac", "--env", "Pendulum-v1", "--gamma", "2"], "'gamma' is 2.0; it must be in"),
        (["train", "sac", "--env", "Pendulum-v1", "--preset", "fats"], "Did you mean 'fast'?"),
        (["train", "sac"], "give an environment with --env"),
        (["train", "sac", "--env", "Pendulum-v1", "--steps", "0"], "--steps must be a positive"),
        (["train", "--resume", "/nonexistent/run", "--steps", "10"], "no run directory"),
        (["eval", "/nonexistent/run"], "no checkpoint at"),
        (["fly"], "unknown command 'fly'"),
    ],
)
def test_bad_input_gets_one_clear_line_and_nonzero_exit(args, message):
    r = duetto(*args)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert message in lines[0]
    assert "Traceback" not in r.stderr


def test_host_seeds_as_concurrent_tune_trials_equal_local_runs(tmp_path):
    common = ["train", "sac", "--env", "Pendulum-v1", "--steps", "300", "--eval-every", "150"]
    common += ["--eval-episodes", "2", *SMALL]
    r = duetto(*common, "--seeds", "0-1", "--workers", "2", "--out", tmp_path / "workers")
    assert r.returncode == 0, r.stderr
    assert "training 2 trials, 2 at a time" in r.stdout and "seed-1: started" in r.stdout
    r = duetto(*common, "--seed", "1", "--out", tmp_path / "local")
    assert r.returncode == 0, r.stderr
    workers = json.loads((tmp_path / "workers" / "eval.json").read_text())
    local = json.loads((tmp_path / "local" / "eval.json").read_text())
    assert workers["seeds"] == [0, 1]
    # each run depends on its seed alone, not on the process, the cores or Ray
    assert workers["seed_returns"][1] == local["return_mean"]
    assert len(set(workers["seed_returns"])) == 2
    final = sorted((tmp_path / "local" / "checkpoints").glob("*.ckpt"))[-1].name
    for a, b in zip(
        _ckpt_arrays(tmp_path / "workers" / "seed-1" / "checkpoints" / final),
        _ckpt_arrays(tmp_path / "local" / "checkpoints" / final),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)
    config = json.loads((tmp_path / "workers" / "config.json").read_text())
    assert config["seeds"] == [0, 1] and config["loop"] == "host"
    assert (tmp_path / "workers" / "curve.png").stat().st_size > 0
    r = duetto("train", "--resume", tmp_path / "workers")
    assert r.returncode == 2
    assert f"duetto sweep --resume {tmp_path / 'workers'}" in r.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--seeds", "0-1", "--workers", "0"], "--workers must be at least 1"),
        (["--workers", "2"], "--workers is for the seeds of --seeds"),
        (["--address", "auto"], "--address is for the seeds of --seeds"),
        (["--seeds", "0-1", "--workers", "2", "--gamma", "2"], "'gamma' is 2.0"),
        (["--seeds", "0-1", "--gamma", "0.9,0.99"], "'gamma' must be a number"),
        (["--seeds", "0-1", "--address", "127.0.0.1:9"], "no Ray cluster answers at"),
    ],
)
def test_workers_bad_input_stops_before_anything_is_written(tmp_path, extra, message):
    out = tmp_path / "never"
    r = duetto("train", "sac", "--env", "Pendulum-v1", "--out", out, *extra)
    assert r.returncode != 0
    assert message in r.stderr.strip().splitlines()[-1]
    assert not out.exists()


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--gamma", "uniform:0.9:0.99"], "grid search tries lists"),
        (["--gamma", "uniform:0.9"], "must look like uniform:LOW:HIGH"),
        (["--batch-size", "loguniform:8:64", "--search", "random", "--samples", "2"], "randint"),
        (
            ["--search", "optuna", "--samples", "2", "--seeds", "0-1", "--gamma", "uniform:0.9:1"],
            "give one seed",
        ),
        (["--learning-rte", "1e-3"], "Did you mean '--learning-rate'"),
        (["--samples", "3"], "samples is for random and optuna search"),
    ],
)
def test_sweep_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, extra, message):
    from duetto.cli import main

    out = str(tmp_path / "never")
    assert main(["sweep", "sac", "--env", "Pendulum-v1", "--out", out, *extra]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err
    assert not (tmp_path / "never").exists()
    assert main(["sweep", "--resume", out]) == 2
    assert "is not a sweep directory" in capsys.readouterr().err


def test_list_flags_take_spaces_or_commas(tmp_path):
    from duetto.cli import main

    for i, form in enumerate((["8", "9"], ["8,9"])):
        out = tmp_path / f"run{i}"
        args = ["train", "sac", "--env", "Pendulum-v1", "--steps", "60", "--no-progress"]
        args += ["--learning-starts", "30", "--batch-size", "8", "--out", str(out)]
        assert main([*args, "--hidden", *form]) == 0
        assert json.loads((out / "config.json").read_text())["config"]["hidden"] == [8, 9]
