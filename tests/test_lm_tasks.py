"""Token tasks (spec T1): exact verifiers, demonstrations, encoding, pass@k and the supervised
warm-up that gives RL its starting policy."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
import pytest

from duetto.errors import DuettoError
from duetto.lm import GRPO, HFTokenizer, TransformerConfig, load_pretrained
from duetto.lm.evaluation import evaluate, pass_at_k
from duetto.lm.supervised import WarmupConfig, warm_up
from duetto.lm.tasks import (
    TASKS,
    DecisionTokens,
    ModularAddition,
    Problem,
    Sorting,
    TokenTask,
    make_task,
)
from duetto.lm.tokenizer import CharTokenizer


@pytest.fixture(params=sorted(TASKS))
def task(request):
    return make_task(request.param)


def test_solutions_pass_and_corruptions_fail(task):
    rng = np.random.default_rng(0)
    for problem in task.problems(rng, 200):
        assert task.reward(problem, task.solution(problem)) == 1.0
        assert task.reward(problem, task.corrupt(problem, rng)) == 0.0
        assert task.reward(problem, "") == 0.0


def test_demonstration_noise_is_the_error_rate(task):
    rng = np.random.default_rng(1)
    problems = task.problems(rng, 400)
    clean = [task.reward(p, task.demonstration(p, rng, 0.0)) for p in problems]
    assert np.mean(clean) == 1.0
    wrong = [task.reward(p, task.demonstration(p, rng, 1.0)) for p in problems]
    if isinstance(task, DecisionTokens):  # a redrawn decision token is right 1 time in 4
        assert 0.0 < np.mean(wrong) < 0.2
    else:
        assert np.mean(wrong) == 0.0


def test_encoding_fits_the_declared_widths_and_round_trips(task):
    rng = np.random.default_rng(2)
    problems = task.problems(rng, 64)
    ids, mask = task.encode_prompts(problems)
    assert ids.shape == (64, task.max_prompt_tokens) and mask[:, -1].all()
    solutions = [task.solution(p) for p in problems]
    tokens, cmask = task.encode_completions(solutions)
    assert tokens.shape == (64, task.max_new_tokens)
    assert (tokens[np.arange(64), cmask.sum(1) - 1] == task.tokenizer.eos_id).all()
    np.testing.assert_array_equal(task.rewards(problems, tokens), 1.0)
    assert max(ids.max(), tokens.max()) < task.tokenizer.vocab_size


def test_worked_examples():
    assert ModularAddition().solution(Problem("47+38=", "85")) == "15;08;85"
    assert ModularAddition().solution(Problem("99+99=", "98")) == "18;19;98"
    assert Sorting().solution(Problem("3142>", "1234")) == "1302=1234"
    task = DecisionTokens()  # targets (prompt symbol + k + 1) mod 4 at positions 2 and 5
    problem = Problem("ad:", task._target("ad:"))
    assert problem.answer == "bb"
    assert task.reward(problem, "ccbccbcc") == 1.0
    assert task.reward(problem, "ddbaabdd") == 1.0  # filler is free
    assert task.reward(problem, "ccbccacc") == 0.0
    assert task.reward(problem, "ccbccb") == 0.0  # too short


def test_fixed_filler_demonstrations_differ_only_at_the_decisions():
    task = DecisionTokens(random_filler=False)
    rng = np.random.default_rng(5)
    problem = task.problem(rng)
    demos = {task.demonstration(problem, rng, 0.5) for _ in range(50)}
    free = [i for i in range(task.length) if i not in task.decisions]
    assert len(demos) > 1 and all(all(d[i] == "a" for i in free) for d in demos)
    assert all(task.reward(problem, task.corrupt(problem, rng)) == 0.0 for _ in range(20))


def test_bad_task_arguments_raise():
    with pytest.raises(DuettoError, match="Did you mean 'addition'"):
        make_task("adition")
    with pytest.raises(DuettoError, match="decisions"):
        DecisionTokens(decisions=(2, 9))
    with pytest.raises(DuettoError, match="more than max_new_tokens"):
        Sorting().encode_completions(["0123=01234567"])
    with pytest.raises(DuettoError, match="not in the vocabulary"):
        ModularAddition().tokenizer.encode("1-2")


def test_pass_at_k_by_hand():
    assert pass_at_k(4, 1, 1) == pytest.approx(0.25)
    assert pass_at_k(4, 1, 4) == 1.0
    assert pass_at_k(4, 0, 2) == 0.0
    assert pass_at_k(5, 2, 2) == pytest.approx(1 - 3 / 10)  # 1 - C(3,2)/C(5,2)
    with pytest.raises(DuettoError):
        pass_at_k(4, 5, 1)


def test_warm_up_learns_from_demonstrations():
    """A few dozen steps lower the per-token NLL well below the uniform policy's, and the noisy
    demonstrations' correct answers become more likely than chance."""
    task = DecisionTokens()
    config = TransformerConfig(
        vocab_size=task.tokenizer.vocab_size,
        hidden_size=32,
        num_layers=1,
        num_heads=2,
        num_kv_heads=1,
        intermediate_size=64,
    )
    _, losses = warm_up(task, config, WarmupConfig(steps=60, batch_size=32, learning_rate=3e-3))
    uniform = np.log(task.tokenizer.vocab_size)
    assert losses[0] > 0.9 * uniform and losses[-5:].mean() < 0.7 * uniform


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TASKS))
def test_default_warm_up_reaches_the_spec_pass_rate(name):
    """Spec T1: the warmed-up base policy has pass@1 of roughly 20-40 % with diverse samples
    (pass@8 well above pass@1). Measured (seed 0, 128 prompts x 8): pass@1 addition 0.36,
    decision 0.39, sorting 0.29; pass@8 0.91, 0.98, 0.93."""
    task = make_task(name)
    config = TransformerConfig(
        vocab_size=task.tokenizer.vocab_size,
        hidden_size=64,
        num_layers=2,
        num_heads=4,
        num_kv_heads=2,
        intermediate_size=128,
    )
    params, _ = warm_up(task, config, seed=0)
    problems = task.problems(np.random.default_rng(123), 128)
    result = evaluate(task, config, params, problems, jax.random.key(1), samples=8, ks=(1, 8))
    assert 0.15 <= result["pass@1"] <= 0.45, result
    assert result["pass@8"] >= result["pass@1"] + 0.3, result


class UnitsAddition(TokenTask):
    """A user's own task: 'a+b=' with digits a, b; the answer is the units digit of a + b."""

    def __init__(self):
        self.name = "units"
        self.tokenizer = CharTokenizer("0123456789+=")
        self.max_prompt_tokens, self.max_new_tokens = 4, 2

    def problem(self, rng):
        a, b = rng.integers(10, size=2)
        return Problem(f"{a}+{b}=", str((a + b) % 10))

    def solution(self, problem):
        return problem.answer

    def corrupt(self, problem, rng):
        return str((int(problem.answer) + 1 + rng.integers(9)) % 10)

    def reward(self, problem, completion):
        return float(completion == problem.answer)


FIXTURE = Path(__file__).parent / "fixtures" / "lm" / "tiny-qwen2"


def test_with_tokenizer_moves_a_task_onto_a_pretrained_tokenizer():
    """with_tokenizer moves a user's task onto a Hugging Face tokenizer (the fixture's character
    vocabulary, other ids than the task's own)."""
    hf = HFTokenizer(FIXTURE)
    task = UnitsAddition().with_tokenizer(hf)
    assert task.tokenizer is hf and task.name == "units"
    problem = Problem("7+8=", "5")
    ids, mask = task.encode_prompts([problem])
    assert ids[0].tolist() == hf.encode("7+8=") == [11, 14, 12, 15]
    tokens, _ = task.encode_completions(["5"])
    assert task.rewards([problem], tokens)[0] == 1.0
    with pytest.raises(DuettoError, match="does not reproduce"):
        ModularAddition().with_tokenizer(hf)  # the fixture's vocabulary has no ';'


@pytest.mark.slow
def test_grpo_trains_a_loaded_checkpoint_through_its_tokenizer():
    config, params, hf = load_pretrained(FIXTURE)
    task = UnitsAddition().with_tokenizer(hf)
    agent = GRPO(task, model=(config, params), run_dir=False, prompts_per_update=2, group_size=2)
    metrics = agent.step()
    assert 0.0 <= metrics["reward"] <= 1.0 and np.isfinite(metrics["loss"])
