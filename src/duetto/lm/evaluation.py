"""Evaluation of a policy on a token task: pass@k from sampled completions."""

from __future__ import annotations

from collections.abc import Sequence
from math import comb

import jax
import numpy as np

from duetto.errors import DuettoError
from duetto.lm.model import TransformerConfig
from duetto.lm.sampler import make_sampler
from duetto.lm.tasks import Problem, TokenTask


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples of which c are correct (Chen et al. 2021, eq. 1):
    1 - C(n - c, k) / C(n, k)."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise DuettoError(f"pass_at_k needs 0 <= c <= n and 1 <= k <= n, got n={n} c={c} k={k}")
    return 1.0 - comb(n - c, k) / comb(n, k)


def evaluate(
    task: TokenTask,
    config: TransformerConfig,
    params: dict,
    problems: Sequence[Problem],
    key: jax.Array,
    samples: int = 8,
    ks: Sequence[int] = (1,),
    temperature: float = 1.0,
) -> dict[str, float]:
    """Mean pass@k over `problems`, from `samples` completions each (reward > 0 counts as
    correct), e.g. {'pass@1': 0.31}."""
    sample = make_sampler(
        config,
        task.max_new_tokens,
        temperature=temperature,
        stop_tokens=[task.tokenizer.eos_id],
        pad_id=task.tokenizer.pad_id,
    )
    ids, mask = task.encode_prompts(problems)
    ids, mask = np.repeat(ids, samples, 0), np.repeat(mask, samples, 0)
    out = sample(params, ids, mask, key)
    repeated = [p for p in problems for _ in range(samples)]
    correct = (task.rewards(repeated, np.asarray(out.tokens)) > 0).reshape(len(problems), samples)
    counts = correct.sum(1)
    return {
        f"pass@{k}": float(np.mean([pass_at_k(samples, int(c), k) for c in counts])) for k in ks
    }
