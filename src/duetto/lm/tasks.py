"""Verifiable token tasks (testbed T1 of the sequence-models spec): prompts, an exact verifier, a
character tokenizer, correct solutions and plausible wrong ones for noisy demonstrations.

A task is a small object; users add their own by subclassing `TokenTask` and writing `problem`,
`solution`, `reward` and `corrupt`. Rewards are computed on decoded text in Python: a GRPO update
scores a few hundred completions, microseconds each.

- `DecisionTokens`: reward 1 iff the tokens at a few decision positions of the response equal a
  target that depends on the prompt; every other position is free filler (isolates credit
  assignment; spec §7.2's check uses decisions at positions 2 and 5 of 8 over 4 symbols).
- `ModularAddition`: "47+38=" -> column sums from the units up, then the answer mod 100,
  "15;08;85" (step tokens before the answer; only the answer is verified).
- `Sorting`: "3142>" -> the positions of the sorted digits, then the sorted digits, "1302=1234"
  (pointer steps before the answer; only the answer is verified).
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from duetto.errors import DuettoError, did_you_mean
from duetto.lm.sampler import pad_left
from duetto.lm.tokenizer import CharTokenizer, Tokenizer


@dataclass(frozen=True)
class Problem:
    """One prompt and what the verifier needs to score a completion of it."""

    prompt: str
    answer: str


class TokenTask(ABC):
    """A verifiable sequence task, over a character vocabulary unless `with_tokenizer` gives it
    another (a pretrained model's)."""

    name: str
    tokenizer: Tokenizer
    max_prompt_tokens: int
    """Prompts are left-padded to this width."""
    max_new_tokens: int
    """Longest completion, its <eos> included."""
    warmup_noise: float = 0.5
    """Demonstration error rate of the supervised warm-up that brings spec T1's tiny transformer
    to a pass@1 of 20-40 % (tests/test_lm_tasks.py, slow; measured at seed 0: addition 0.36,
    decision 0.39, sorting 0.29 with its 0.75)."""

    @abstractmethod
    def problem(self, rng: np.random.Generator) -> Problem:
        """A random problem."""

    @abstractmethod
    def solution(self, problem: Problem) -> str:
        """A correct completion (without <eos>)."""

    @abstractmethod
    def corrupt(self, problem: Problem, rng: np.random.Generator) -> str:
        """A plausible wrong completion: the kind of mistake a demonstrator makes."""

    @abstractmethod
    def reward(self, problem: Problem, completion: str) -> float:
        """The exact reward of a decoded completion (text before <eos>)."""

    def problems(self, rng: np.random.Generator, n: int) -> list[Problem]:
        return [self.problem(rng) for _ in range(n)]

    def with_tokenizer(self, tokenizer: Tokenizer, check: int = 256) -> TokenTask:
        """A copy of this task that reads and writes through `tokenizer` (for example a
        pretrained model's HFTokenizer). Prompt and completion widths are re-measured on `check`
        random problems (prompts, solutions and corruptions, with <eos>), keeping at least the
        current widths; a tokenizer that does not reproduce the task's text raises."""
        rng = np.random.default_rng(0)
        prompt_width, completion_width = self.max_prompt_tokens, self.max_new_tokens
        for problem in self.problems(rng, check):
            texts = [problem.prompt, self.solution(problem), self.corrupt(problem, rng)]
            for text in texts:
                if tokenizer.decode(tokenizer.encode(text)) != text:
                    raise DuettoError(
                        f"{self.name}: the tokenizer does not reproduce {text!r} (it decodes "
                        f"{tokenizer.decode(tokenizer.encode(text))!r}); its vocabulary lacks "
                        "characters the task writes"
                    )
            prompt_width = max(prompt_width, len(tokenizer.encode(texts[0])))
            for text in texts[1:]:
                completion_width = max(completion_width, len(tokenizer.encode(text)) + 1)
        task = copy.copy(self)
        task.tokenizer = tokenizer
        task.max_prompt_tokens, task.max_new_tokens = prompt_width, completion_width
        return task

    def demonstration(self, problem: Problem, rng: np.random.Generator, noise: float) -> str:
        """A demonstration that is wrong with probability `noise`."""
        return self.corrupt(problem, rng) if rng.random() < noise else self.solution(problem)

    def encode_prompts(self, problems: Sequence[Problem]) -> tuple[np.ndarray, np.ndarray]:
        """Left-padded prompts: (ids [n, max_prompt_tokens] int32, mask [n, ...] bool)."""
        rows = [self.tokenizer.encode(p.prompt) for p in problems]
        return pad_left(rows, self.tokenizer.pad_id, self.max_prompt_tokens)

    def encode_completions(self, completions: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Right-padded completions with <eos>: (ids [n, max_new_tokens], mask [n, ...])."""
        tok = self.tokenizer
        ids = np.full((len(completions), self.max_new_tokens), tok.pad_id, np.int32)
        mask = np.zeros(ids.shape, bool)
        for i, text in enumerate(completions):
            row = tok.encode(text) + [tok.eos_id]
            if len(row) > self.max_new_tokens:
                raise DuettoError(
                    f"{self.name}: completion {text!r} needs {len(row)} tokens with <eos>, "
                    f"more than max_new_tokens={self.max_new_tokens}"
                )
            ids[i, : len(row)] = row
            mask[i, : len(row)] = True
        return ids, mask

    def rewards(self, problems: Sequence[Problem], tokens: np.ndarray) -> np.ndarray:
        """Rewards [n] float32 of completion token rows [n, T] (decoded up to <eos>)."""
        if len(problems) != len(tokens):
            raise DuettoError(f"{len(problems)} problems but {len(tokens)} completions")
        return np.array(
            [
                self.reward(p, self.tokenizer.decode(t))
                for p, t in zip(problems, tokens, strict=True)
            ],
            np.float32,
        )


class DecisionTokens(TokenTask):
    """Reward 1 iff response[d] == (prompt[k] + k + 1) mod symbols at each decision position d_k.

    The prompt is one symbol per decision followed by ':'; the response is `length` symbols.
    Defaults from spec §7.2: decisions at positions 2 and 5 of 8, vocabulary of 4 symbols.
    `random_filler`: demonstrations fill the free positions at random (True) or with the first
    symbol (False). With fixed filler the warmed-up policy's samples share their filler, so a
    group's prefix tree branches at the decision positions, where TEMPO gives its credit; with
    random filler it branches at the first tokens and TEMPO is close to GRPO.
    """

    SYMBOLS = "abcdefgh"

    def __init__(
        self,
        symbols: int = 4,
        length: int = 8,
        decisions: Sequence[int] = (2, 5),
        random_filler: bool = True,
    ):
        if not 2 <= symbols <= len(self.SYMBOLS):
            raise DuettoError(f"DecisionTokens: symbols must be in [2, 8], got {symbols}")
        if not decisions or any(not 0 <= d < length for d in decisions):
            raise DuettoError(f"DecisionTokens: decisions {decisions} must lie in [0, {length})")
        self.name = "decision"
        self.symbols = self.SYMBOLS[:symbols]
        self.length = length
        self.decisions = tuple(sorted(set(decisions)))
        self.random_filler = random_filler
        self.tokenizer = CharTokenizer(self.symbols + ":")
        self.max_prompt_tokens = len(self.decisions) + 1
        self.max_new_tokens = length + 1

    def _target(self, prompt: str) -> str:
        n = len(self.symbols)
        return "".join(
            self.symbols[(self.symbols.index(c) + k + 1) % n] for k, c in enumerate(prompt[:-1])
        )

    def problem(self, rng: np.random.Generator) -> Problem:
        prompt = "".join(rng.choice(list(self.symbols), len(self.decisions))) + ":"
        return Problem(prompt, self._target(prompt))

    def _fill(self, targets: str, rng: np.random.Generator) -> str:
        if self.random_filler:
            out = list(rng.choice(list(self.symbols), self.length))
        else:
            out = [self.symbols[0]] * self.length
        for d, t in zip(self.decisions, targets, strict=True):
            out[d] = t
        return "".join(out)

    def solution(self, problem: Problem) -> str:
        # Deterministic filler: the first symbol everywhere but the decisions.
        out = [self.symbols[0]] * self.length
        for d, t in zip(self.decisions, problem.answer, strict=True):
            out[d] = t
        return "".join(out)

    def demonstration(self, problem: Problem, rng: np.random.Generator, noise: float) -> str:
        """Filler as `random_filler` says; each decision token is redrawn with probability
        `noise`."""
        targets = [
            self.symbols[rng.integers(len(self.symbols))] if rng.random() < noise else t
            for t in problem.answer
        ]
        return self._fill("".join(targets), rng)

    def corrupt(self, problem: Problem, rng: np.random.Generator) -> str:
        k = rng.integers(len(problem.answer))
        wrong = [s for s in self.symbols if s != problem.answer[k]]
        targets = list(problem.answer)
        targets[k] = wrong[rng.integers(len(wrong))]
        return self._fill("".join(targets), rng)

    def reward(self, problem: Problem, completion: str) -> float:
        if len(completion) < self.length:
            return 0.0
        return float(
            all(completion[d] == t for d, t in zip(self.decisions, problem.answer, strict=True))
        )


class ModularAddition(TokenTask):
    """'a+b=' with a, b < 10^digits; the completion writes each column's sum (two digits, with
    the carry in) from the units up, separated by ';', then the answer (a + b) mod 10^digits."""

    def __init__(self, digits: int = 2):
        if not 1 <= digits <= 4:
            raise DuettoError(f"ModularAddition: digits must be in [1, 4], got {digits}")
        self.name = "addition"
        self.digits = digits
        self.tokenizer = CharTokenizer("0123456789+=;")
        self.max_prompt_tokens = 2 * digits + 2
        self.max_new_tokens = 3 * digits + digits + 1

    def problem(self, rng: np.random.Generator) -> Problem:
        a, b = (int(x) for x in rng.integers(10**self.digits, size=2))
        answer = f"{(a + b) % 10**self.digits:0{self.digits}d}"
        return Problem(f"{a:0{self.digits}d}+{b:0{self.digits}d}=", answer)

    def _operands(self, problem: Problem) -> tuple[str, str]:
        a, b = problem.prompt[:-1].split("+")
        return a, b

    def _steps(self, a: str, b: str, slip: int | None = None) -> str:
        carry, columns, digits = 0, [], []
        for i in range(self.digits - 1, -1, -1):
            s = int(a[i]) + int(b[i]) + carry
            if slip == i:  # a demonstrator's slip: a column off by one
                s = s + 1 if s < 19 else s - 1
            columns.append(f"{s:02d}")
            digits.append(str(s % 10))
            carry = s // 10
        return ";".join(columns) + ";" + "".join(reversed(digits))

    def solution(self, problem: Problem) -> str:
        return self._steps(*self._operands(problem))

    def corrupt(self, problem: Problem, rng: np.random.Generator) -> str:
        return self._steps(*self._operands(problem), slip=int(rng.integers(self.digits)))

    def reward(self, problem: Problem, completion: str) -> float:
        return float(completion.rsplit(";", 1)[-1] == problem.answer)


class Sorting(TokenTask):
    """'3142>' (distinct digits): the completion lists the prompt positions of the digits in
    ascending order, then '=' and the sorted digits: '1302=1234'."""

    def __init__(self, length: int = 4):
        if not 2 <= length <= 5:
            raise DuettoError(f"Sorting: length must be in [2, 5], got {length}")
        self.name = "sorting"
        self.warmup_noise = 0.75
        self.length = length
        self.tokenizer = CharTokenizer("0123456789>=")
        self.max_prompt_tokens = length + 1
        self.max_new_tokens = 2 * length + 2

    def problem(self, rng: np.random.Generator) -> Problem:
        digits = "".join(str(d) for d in rng.choice(10, self.length, replace=False))
        return Problem(digits + ">", "".join(sorted(digits)))

    def _write(self, digits: str, order: Sequence[int]) -> str:
        return "".join(str(i) for i in order) + "=" + "".join(digits[i] for i in order)

    def solution(self, problem: Problem) -> str:
        digits = problem.prompt[:-1]
        return self._write(digits, sorted(range(self.length), key=lambda i: digits[i]))

    def corrupt(self, problem: Problem, rng: np.random.Generator) -> str:
        digits = problem.prompt[:-1]
        order = sorted(range(self.length), key=lambda i: digits[i])
        j = int(rng.integers(self.length - 1))  # swap two neighbours of the sorted order
        order[j], order[j + 1] = order[j + 1], order[j]
        return self._write(digits, order)

    def reward(self, problem: Problem, completion: str) -> float:
        return float(completion.rsplit("=", 1)[-1] == problem.answer)


TASKS: dict[str, type[TokenTask]] = {
    "decision": DecisionTokens,
    "addition": ModularAddition,
    "sorting": Sorting,
}


def make_task(name: str, **kwargs: object) -> TokenTask:
    """A task by name: 'decision', 'addition' or 'sorting'."""
    if name not in TASKS:
        raise DuettoError(
            f"unknown task {name!r}; tasks are {sorted(TASKS)}.{did_you_mean(name, TASKS)}"
        )
    return TASKS[name](**kwargs)  # type: ignore[arg-type]
