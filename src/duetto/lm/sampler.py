"""KV-cache sampling compiled as one program: prefill the prompt, then one token per step.

Shapes are fixed (prompt [batch, P] left-padded, completions [batch, max_new_tokens]), so one
compilation serves every batch of that shape; a row stops at its first stop token and the loop
ends early once every row has stopped. Temperature 0 is greedy decoding.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from duetto.errors import DuettoError
from duetto.lm.model import KVCache, Transformer, TransformerConfig, positions_from_mask


class Samples(NamedTuple):
    """tokens: [batch, N] int32, `pad_id` after the stop token; mask: [batch, N] bool, True up to
    and including the stop token; logprobs: [batch, N] float32, log pi(token) under the
    temperature-scaled softmax (before top-p, as TRL's old log-probs), 0 where mask is False."""

    tokens: jax.Array
    mask: jax.Array
    logprobs: jax.Array


def pad_left(rows: Sequence[Sequence[int]], pad_id: int, length: int | None = None) -> tuple:
    """Left-pad token lists into (ids [batch, length] int32, mask [batch, length] bool)."""
    if not rows or any(len(r) == 0 for r in rows):
        raise DuettoError("pad_left needs at least one prompt and no empty prompt")
    width = max(len(r) for r in rows) if length is None else length
    if max(len(r) for r in rows) > width:
        raise DuettoError(f"a prompt has {max(len(r) for r in rows)} tokens, more than {width}")
    ids = np.full((len(rows), width), pad_id, np.int32)
    mask = np.zeros((len(rows), width), bool)
    for i, r in enumerate(rows):
        ids[i, width - len(r) :] = r
        mask[i, width - len(r) :] = True
    return ids, mask


def top_p_filter(logits: jax.Array, top_p: float) -> jax.Array:
    """Nucleus filter (Holtzman et al. 2020): keep the smallest set of tokens whose probability
    reaches top_p; the rest get -inf. logits: [batch, vocab]."""
    ordered = jnp.sort(logits, axis=-1)[:, ::-1]
    probs = jax.nn.softmax(ordered, axis=-1)
    keep = (jnp.cumsum(probs, axis=-1) - probs) < top_p  # the first token is always kept
    threshold = jnp.min(jnp.where(keep, ordered, jnp.inf), axis=-1, keepdims=True)
    return jnp.where(logits < threshold, -jnp.inf, logits)


def make_sampler(
    config: TransformerConfig,
    max_new_tokens: int,
    *,
    temperature: float = 1.0,
    top_p: float = 1.0,
    stop_tokens: Sequence[int] = (),
    pad_id: int = 0,
) -> Callable[[dict, ArrayLike, ArrayLike, jax.Array], Samples]:
    """A jitted `sample(params, prompt [batch, P], prompt_mask [batch, P], key) -> Samples`.

    Prompts must be left-padded (the last column real for every row): `pad_left` makes them.
    """
    if max_new_tokens < 1:
        raise DuettoError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    if temperature < 0:
        raise DuettoError(f"temperature must be >= 0 (0 is greedy), got {temperature}")
    if not 0.0 < top_p <= 1.0:
        raise DuettoError(f"top_p must be in (0, 1], got {top_p}")
    for t in (*stop_tokens, pad_id):
        if not 0 <= t < config.vocab_size:
            raise DuettoError(f"token id {t} is outside the vocabulary [0, {config.vocab_size})")
    return _sampler(
        config, max_new_tokens, float(temperature), float(top_p), tuple(stop_tokens), pad_id
    )


@functools.cache
def _sampler(
    config: TransformerConfig,
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    stop_tokens: tuple[int, ...],
    pad_id: int,
) -> Callable[[dict, ArrayLike, ArrayLike, jax.Array], Samples]:
    """make_sampler's program, one per set of arguments: a second trainer or a resumed run in
    the same process reuses the compiled sampler."""
    model = Transformer(config)
    stops = jnp.asarray(list(stop_tokens) or [-1], jnp.int32)
    n = max_new_tokens

    def choose(logits: jax.Array, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        scaled = logits / temperature if temperature > 0 else logits
        logp = jax.nn.log_softmax(scaled, axis=-1)
        if temperature == 0:
            token = jnp.argmax(logits, axis=-1)
        else:
            filtered = top_p_filter(scaled, top_p) if top_p < 1.0 else scaled
            token = jax.random.categorical(key, filtered, axis=-1)
        return token.astype(jnp.int32), jnp.take_along_axis(logp, token[:, None], -1)[:, 0]

    @jax.jit
    def sample(params: dict, prompt: jax.Array, prompt_mask: jax.Array, key: jax.Array) -> Samples:
        batch, length = prompt.shape
        prompt_mask = prompt_mask.astype(bool)
        key_mask = jnp.concatenate([prompt_mask, jnp.ones((batch, n), bool)], axis=1)
        cache = KVCache.empty(config, batch, length + n, key_mask)
        out = model.apply(
            {"params": params}, prompt, prompt_mask, positions_from_mask(prompt_mask), cache, 0
        )
        first_position = prompt_mask.sum(-1).astype(jnp.int32)

        def cond(state: tuple) -> jax.Array:
            step, _, _, _, _, _, _, done = state
            return (step < n) & ~jnp.all(done)

        def body(state: tuple) -> tuple:
            step, cache, logits, key, tokens, mask, logprobs, done = state
            key, sub = jax.random.split(key)
            token, logp = choose(logits, sub)
            token = jnp.where(done, pad_id, token)
            tokens = tokens.at[:, step].set(token)
            mask = mask.at[:, step].set(~done)
            logprobs = logprobs.at[:, step].set(jnp.where(done, 0.0, logp))
            done = done | jnp.isin(token, stops)
            out = model.apply(
                {"params": params},
                token[:, None],
                None,
                (first_position + step)[:, None],
                cache,
                length + step,
            )
            return step + 1, out.cache, out.logits[:, -1], key, tokens, mask, logprobs, done

        state = (
            jnp.int32(0),
            out.cache,
            out.logits[:, -1],
            key,
            jnp.full((batch, n), pad_id, jnp.int32),
            jnp.zeros((batch, n), bool),
            jnp.zeros((batch, n), jnp.float32),
            jnp.zeros((batch,), bool),
        )
        state = jax.lax.while_loop(cond, body, state)
        return Samples(state[4], state[5], state[6])

    def checked(params: dict, prompt: ArrayLike, prompt_mask: ArrayLike, key: jax.Array) -> Samples:
        if isinstance(prompt_mask, np.ndarray) and not prompt_mask[:, -1].all():
            raise DuettoError("prompts must be left-padded: the last column must be a real token")
        return sample(params, prompt, prompt_mask, key)

    return checked
