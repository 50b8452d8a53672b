"""The GRPO trainer: it learns on a probe task, writes a run directory, and resumes exactly."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from duetto.errors import DuettoError
from duetto.lm import TransformerConfig, init_params
from duetto.lm.grpo import GRPO
from duetto.lm.tasks import DecisionTokens
from duetto.runs.rundir import read_json, read_metrics

# One tiny policy and one set of shapes and step sizes for every test here: runs that differ only
# in evaluation, sampling or advantages share their compiled programs.
SMALL = dict(hidden_size=16, num_layers=1, num_heads=2, num_kv_heads=1, intermediate_size=32)
FAST = dict(
    prompts_per_update=8,
    group_size=4,
    learning_rate=1e-2,
    eval_prompts=8,
    eval_samples=2,
    eval_every=2,
)


def probe_task() -> DecisionTokens:
    """A one-token decision: reward 1 iff the completion is the prompt's symbol shifted by one,
    out of 2 symbols (a random policy, which also emits special tokens, scores ~0.2)."""
    return DecisionTokens(symbols=2, length=1, decisions=(0,))


def policy(task, seed: int = 0):
    config = TransformerConfig(vocab_size=task.tokenizer.vocab_size, **SMALL)
    return config, init_params(config, jax.random.key(seed))


def test_grpo_raises_the_reward_of_a_probe_task():
    """From a random policy, GRPO's group advantages push the decision token to the rewarded one
    (measured over seeds 0-2: from 0.17-0.29 to 0.93-0.96 in 25 updates)."""
    task = probe_task()
    agent = GRPO(task, model=policy(task), seed=0, run_dir=False, **FAST)
    rewards = [agent.step()["reward"] for _ in range(25)]
    assert np.mean(rewards[:3]) < 0.5
    assert np.mean(rewards[-5:]) > 0.85, rewards


def _without_timings(rows):
    return [{k: v for k, v in r.items() if not k.endswith("_seconds")} for r in rows]


def test_run_directory_and_exact_resume(tmp_path):
    task = probe_task()
    straight = GRPO(task, model=policy(task), seed=3, run_dir=tmp_path / "straight", **FAST)
    straight.learn(4)
    half = GRPO(task, model=policy(task), seed=3, run_dir=tmp_path / "half", **FAST)
    half.learn(2)
    resumed = GRPO.resume(tmp_path / "half").learn(2)

    for a, b in zip(jax.tree.leaves(straight.state), jax.tree.leaves(resumed.state), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    rows = read_metrics(tmp_path / "straight")
    assert _without_timings(rows) == _without_timings(read_metrics(tmp_path / "half"))
    assert _without_timings(rows) == _without_timings(straight.history)
    assert [r["step"] for r in rows if r["kind"] == "train"] == [1, 2, 3, 4]
    assert [r["step"] for r in rows if r["kind"] == "eval"] == [0, 2, 4]
    assert all(0.0 <= r["pass@1"] <= r["pass@2"] <= 1.0 for r in rows if r["kind"] == "eval")
    config = read_json(tmp_path / "straight" / "config.json")
    assert config["task"] == "decision" and config["hyperparameters"]["group_size"] == 4
    assert sorted(p.name for p in (tmp_path / "straight" / "checkpoints").iterdir()) == [
        "step-0000000004.ckpt"
    ]


def test_zero_variance_filter_drops_flat_groups():
    """With every group's rewards equal, the filter leaves no token in the loss: zero gradient."""
    task = probe_task()
    agent = GRPO(
        task,
        model=policy(task),
        seed=0,
        run_dir=False,
        filter_zero_variance=True,
        temperature=0.0,
        **FAST,
    )
    metrics = agent.step()  # greedy sampling: a group's two samples are identical
    assert metrics["zero_variance"] == 1.0
    assert metrics["grad_norm"] == 0.0 and metrics["loss"] == 0.0 and metrics["kl"] == 0.0


def test_bad_grpo_arguments_raise(tmp_path):
    task = probe_task()
    with pytest.raises(DuettoError, match="unknown GRPO hyperparameters \\['lr'\\]"):
        GRPO(task, model=policy(task), run_dir=False, lr=1e-3)
    with pytest.raises(DuettoError, match="group_size >= 2"):
        GRPO(task, model=policy(task), run_dir=False, group_size=1)
    with pytest.raises(DuettoError, match="aggregation"):
        GRPO(task, model=policy(task), run_dir=False, aggregation="mean")
    small = TransformerConfig(vocab_size=3, **SMALL)
    with pytest.raises(DuettoError, match="vocabulary"):
        GRPO(task, model=(small, init_params(small, jax.random.key(0))), run_dir=False)
    GRPO(task, model=policy(task), run_dir=tmp_path / "empty")
    with pytest.raises(DuettoError, match="no checkpoints"):
        GRPO.resume(tmp_path / "empty")
    with pytest.raises(DuettoError, match="already exists"):
        GRPO(task, model=policy(task), run_dir=tmp_path)


def test_tempo_option_trains_on_token_advantages():
    """With tempo=True the update takes [B, T] token advantages; at eta 0 it is GRPO exactly."""
    task = probe_task()
    common = dict(model=policy(task), seed=1, run_dir=False, **FAST)
    grpo = GRPO(task, **common)
    tempo = GRPO(task, tempo=True, tempo_eta=0.0, **common)
    a, b = grpo.step(), tempo.step()
    assert a["loss"] == pytest.approx(b["loss"], abs=1e-6)
    leaves = zip(
        jax.tree.leaves(grpo.state.params), jax.tree.leaves(tempo.state.params), strict=True
    )
    for x, y in leaves:
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=1e-6)


def test_d3s_options_keep_fewer_tokens():
    """At the start of the schedule D^3S keeps half of each group (the variance-maximising half)
    and 30 % of the remaining tokens; the update counts the tokens it back-propagates."""
    task = probe_task()
    common = dict(model=policy(task), seed=2, run_dir=False, **FAST)
    full = GRPO(task, **common).step()
    d3s = GRPO(task, d3s_sample_start=0.5, d3s_token_start=0.3, **common).step()
    rows = FAST["prompts_per_update"] * FAST["group_size"]
    assert full["tokens"] == full["completion_tokens"] * rows  # every token of every sample
    assert 0 < d3s["tokens"] < 0.5 * full["tokens"]  # the same samples (same seed and policy)
    both = GRPO(task, tempo=True, d3s_sample_start=0.5, **common).step()  # a tree of all samples
    assert 0 < both["tokens"] < full["tokens"]
    with pytest.raises(DuettoError, match="d3s_token_start"):
        GRPO(task, model=policy(task), run_dir=False, d3s_token_start=0.0)


def test_no_positive_resampling_retires_solved_prompts_and_resumes(tmp_path):
    """With a pool of 3 prompts and a threshold of 0.5, a prompt whose group passes half the time
    is never drawn again; the pass rates survive a resume, so later draws are the same."""
    task = probe_task()
    options = dict(FAST, prompt_pool=3, npr_threshold=0.5, eval_every=0)
    straight = GRPO(task, model=policy(task), seed=4, run_dir=tmp_path / "a", **options)
    half = GRPO(task, model=policy(task), seed=4, run_dir=tmp_path / "b", **options)
    seen = []
    for _ in range(3):
        retired = straight.pass_rate >= 0.5
        problems, index = straight._problems(int(straight.state.update))
        assert not retired[index].any()  # a retired prompt is never drawn
        seen.append(straight.step())
    half.learn(2)
    resumed = GRPO.resume(tmp_path / "b")
    np.testing.assert_array_equal(resumed.pass_rate, half.pass_rate)
    resumed.step()
    np.testing.assert_array_equal(resumed.pass_rate, straight.pass_rate)
    assert seen[-1]["retired_prompts"] == np.sum(straight.pass_rate >= 0.5)
    with pytest.raises(DuettoError, match="prompt_pool"):
        GRPO(task, model=policy(task), run_dir=False, npr_threshold=0.9)
