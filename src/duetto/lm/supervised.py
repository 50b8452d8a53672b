"""Supervised warm-up on noisy demonstrations: the base policy RL starts from.

Spec T1: a tiny model trained by maximum likelihood on demonstrations that are wrong with
probability `noise`, so that the policy reaches a pass@1 of roughly 20-40 % with diverse samples
and RL has something to improve. The whole run is one compiled `lax.scan` over minibatches.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import optax

from duetto.errors import DuettoError
from duetto.lm.model import TransformerConfig, completion_logprobs, init_params
from duetto.lm.tasks import TokenTask


@dataclass(frozen=True)
class WarmupConfig:
    """Supervised warm-up. Defaults were chosen on this repository's tasks (tests/test_lm_tasks.py
    measures the pass@1 they give), not taken from a paper."""

    steps: int = 800
    """Adam steps."""
    batch_size: int = 64
    """Demonstrations per step."""
    learning_rate: float = 1e-3
    """Adam step size."""
    noise: float | None = None
    """Probability that a demonstration is wrong (None: the task's `warmup_noise`)."""

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1:
            raise DuettoError(f"steps and batch_size must be >= 1, got {self}")
        if self.noise is not None and not 0.0 <= self.noise <= 1.0:
            raise DuettoError(f"noise must be a probability, got {self.noise}")


def demonstrations(
    task: TokenTask, rng: np.random.Generator, n: int, noise: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """n demonstrations: (prompt [n, P], prompt_mask, completion [n, N], completion_mask)."""
    problems = task.problems(rng, n)
    prompt, prompt_mask = task.encode_prompts(problems)
    completion, completion_mask = task.encode_completions(
        [task.demonstration(p, rng, noise) for p in problems]
    )
    return prompt, prompt_mask, completion, completion_mask


def nll(
    config: TransformerConfig,
    params: dict,
    prompt: jax.Array,
    prompt_mask: jax.Array,
    completion: jax.Array,
    completion_mask: jax.Array,
) -> jax.Array:
    """Mean negative log-likelihood per completion token (<eos> included)."""
    logp = completion_logprobs(
        config, params, prompt, prompt_mask, completion, completion_mask
    ).logprobs
    return -jnp.sum(logp) / jnp.maximum(jnp.sum(completion_mask), 1)


def warm_up(
    task: TokenTask,
    config: TransformerConfig,
    warmup: WarmupConfig | None = None,
    seed: int = 0,
    params: dict | None = None,
) -> tuple[dict, np.ndarray]:
    """Train `params` (random from `seed` when None) on noisy demonstrations of `task`.

    Returns (params, losses [steps]).
    """
    warmup = warmup or WarmupConfig()
    if config.vocab_size < task.tokenizer.vocab_size:
        raise DuettoError(
            f"the model's vocabulary ({config.vocab_size}) is smaller than the task's "
            f"({task.tokenizer.vocab_size})"
        )
    rng = np.random.default_rng(seed)
    if params is None:
        params = init_params(config, jax.random.key(seed))
    noise = task.warmup_noise if warmup.noise is None else warmup.noise
    flat = demonstrations(task, rng, warmup.steps * warmup.batch_size, noise)
    data = tuple(x.reshape(warmup.steps, warmup.batch_size, -1) for x in flat)
    optimizer = optax.adam(warmup.learning_rate)

    @jax.jit
    def train(params: dict, data: tuple) -> tuple[dict, jax.Array]:
        def step(carry: tuple, batch: tuple) -> tuple[tuple, jax.Array]:
            params, opt_state = carry
            loss, grads = jax.value_and_grad(lambda p: nll(config, p, *batch))(params)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), loss

        (params, _), losses = jax.lax.scan(step, (params, optimizer.init(params)), data)
        return params, losses

    params, losses = train(params, data)
    return params, np.asarray(losses)
