"""A decoder-only transformer policy of the Llama/Qwen2 family, in Flax.

RMSNorm before attention and MLP, rotary position embeddings (the half-split layout of Hugging
Face's `rotate_half`), grouped-query attention, SwiGLU, a final RMSNorm and a vocabulary head that
may share the embedding matrix; an optional value head reads the final hidden state (a scalar per
position, for token- or step-level critics, spec §8.1).

One forward serves training and sampling: without a cache it attends causally over `tokens`;
with a `KVCache` it writes this call's keys and values at slots `[index, index + T)` and attends
over every slot up to the query's own. Padding never enters attention (`key_mask`), and rotary
positions are given per token, so left-padded prompts see the same positions as unpadded ones.

Parameter names follow the Hugging Face checkpoints (`embed_tokens`, `layers_{i}/self_attn/q_proj`,
`mlp/gate_proj`, `norm`, `lm_head`), so duetto.lm.checkpoint maps weights one to one.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from duetto.errors import DuettoError


@dataclass(frozen=True)
class TransformerConfig:
    """Architecture of a decoder-only transformer (Llama/Qwen2 names in brackets).

    The size defaults are the spec's T1 policy (2 layers, width 64, 4 heads; SwiGLU width 128,
    ~0.08 M parameters with a 16-token vocabulary); rope_theta, rms_norm_eps and the q/k/v
    biases are Hugging Face's Qwen2Config defaults."""

    vocab_size: int
    """Number of token ids [vocab_size]."""
    hidden_size: int = 64
    """Width of the residual stream [hidden_size]."""
    num_layers: int = 2
    """Transformer blocks [num_hidden_layers]."""
    num_heads: int = 4
    """Query heads [num_attention_heads]."""
    num_kv_heads: int = 2
    """Key/value heads, each shared by num_heads / num_kv_heads queries [num_key_value_heads]."""
    head_dim: int | None = None
    """Width of one head; hidden_size / num_heads when None [head_dim]."""
    intermediate_size: int = 128
    """Width of the SwiGLU MLP [intermediate_size]."""
    rope_theta: float = 10000.0
    """Base of the rotary frequencies [rope_theta]."""
    rms_norm_eps: float = 1e-6
    """RMSNorm epsilon [rms_norm_eps]."""
    attention_bias: bool = True
    """Biases on the q/k/v projections: Qwen2 has them, Llama does not [attention_bias]."""
    tie_word_embeddings: bool = False
    """The head reuses the embedding matrix [tie_word_embeddings]."""
    value_head: bool = False
    """Add a linear value head on the final hidden state (duetto's, not in HF checkpoints)."""
    max_position: int = 4096
    """Longest sequence the rotary table is checked against [max_position_embeddings]."""

    def __post_init__(self) -> None:
        for name in ("vocab_size", "hidden_size", "num_layers", "num_heads", "num_kv_heads"):
            if getattr(self, name) < 1:
                raise DuettoError(
                    f"TransformerConfig.{name} must be >= 1, got {getattr(self, name)}"
                )
        if self.num_heads % self.num_kv_heads:
            raise DuettoError(
                f"num_heads ({self.num_heads}) must be a multiple of num_kv_heads "
                f"({self.num_kv_heads}) for grouped-query attention"
            )
        if self.head_dim is None and self.hidden_size % self.num_heads:
            raise DuettoError(
                f"hidden_size ({self.hidden_size}) is not divisible by num_heads "
                f"({self.num_heads}); give head_dim explicitly"
            )
        if self.dim % 2:
            raise DuettoError(f"rotary embeddings need an even head_dim, got {self.dim}")

    @property
    def dim(self) -> int:
        """Width of one attention head."""
        return self.head_dim if self.head_dim is not None else self.hidden_size // self.num_heads


class KVCache(NamedTuple):
    """Keys and values of every layer at every slot of a fixed-length buffer.

    k, v: [num_layers, batch, slots, num_kv_heads, head_dim]; key_mask: [batch, slots], 1 where a
    slot holds a real token (0 on left padding). Slots past the write position are masked by
    causality, so key_mask may already be 1 there.
    """

    k: jax.Array
    v: jax.Array
    key_mask: jax.Array

    @staticmethod
    def empty(config: TransformerConfig, batch: int, slots: int, key_mask: jax.Array) -> KVCache:
        shape = (config.num_layers, batch, slots, config.num_kv_heads, config.dim)
        zeros = jnp.zeros(shape, jnp.float32)
        return KVCache(zeros, zeros, key_mask.astype(bool))


class Output(NamedTuple):
    """logits: [batch, T, vocab] float32; values: [batch, T] or None; cache: updated or None."""

    logits: jax.Array
    values: jax.Array | None
    cache: KVCache | None


def positions_from_mask(mask: jax.Array) -> jax.Array:
    """Rotary positions that count real tokens only: [batch, T] from a [batch, T] mask.

    Left padding gets position 0 (it is never attended to), as Hugging Face's `generate` does.
    """
    return jnp.maximum(jnp.cumsum(mask.astype(jnp.int32), axis=-1) - 1, 0)


def rotary(x: jax.Array, positions: jax.Array, theta: float) -> jax.Array:
    """Rotate x: [batch, T, heads, dim] by angles positions * theta^(-2i/dim), half-split layout."""
    dim = x.shape[-1]
    inv_freq = 1.0 / (theta ** (jnp.arange(0, dim, 2, dtype=jnp.float32) / dim))
    angles = positions.astype(jnp.float32)[..., None] * inv_freq  # [batch, T, dim/2]
    angles = jnp.concatenate([angles, angles], axis=-1)[:, :, None, :]
    cos, sin = jnp.cos(angles), jnp.sin(angles)
    half = dim // 2
    rotated = jnp.concatenate([-x[..., half:], x[..., :half]], axis=-1)
    return x * cos + rotated * sin


class RMSNorm(nn.Module):
    eps: float

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        weight = self.param("weight", nn.initializers.ones, (x.shape[-1],))
        x32 = x.astype(jnp.float32)
        x32 = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + self.eps)
        return weight * x32.astype(x.dtype)


class Attention(nn.Module):
    config: TransformerConfig

    @nn.compact
    def __call__(
        self,
        x: jax.Array,
        positions: jax.Array,
        slots: jax.Array,
        key_mask: jax.Array,
        kv: tuple[jax.Array, jax.Array] | None,
        index: jax.Array | None,
    ) -> tuple[jax.Array, tuple[jax.Array, jax.Array] | None]:
        c = self.config
        batch, length, _ = x.shape
        init = nn.initializers.normal(0.02)
        bias = c.attention_bias

        def proj(name: str, heads: int) -> jax.Array:
            y = nn.Dense(heads * c.dim, use_bias=bias, kernel_init=init, name=name)(x)
            return y.reshape(batch, length, heads, c.dim)

        q = rotary(proj("q_proj", c.num_heads), positions, c.rope_theta)
        k = rotary(proj("k_proj", c.num_kv_heads), positions, c.rope_theta)
        v = proj("v_proj", c.num_kv_heads)
        new_kv = None
        if kv is not None:
            assert index is not None
            k = jax.lax.dynamic_update_slice_in_dim(kv[0], k, index, axis=1)
            v = jax.lax.dynamic_update_slice_in_dim(kv[1], v, index, axis=1)
            new_kv = (k, v)
        groups = c.num_heads // c.num_kv_heads
        q = q.reshape(batch, length, c.num_kv_heads, groups, c.dim)
        scores = jnp.einsum("btkgd,bskd->bkgts", q, k) / jnp.sqrt(c.dim).astype(q.dtype)
        key_slots = jnp.arange(k.shape[1])
        allowed = (key_slots[None, None, :] <= slots[:, :, None]) & key_mask[:, None, :]
        # A finite floor, not -inf: a padded query row with no key left stays finite (unused).
        scores = jnp.where(allowed[:, None, None], scores, jnp.finfo(scores.dtype).min)
        weights = jax.nn.softmax(scores.astype(jnp.float32), axis=-1).astype(v.dtype)
        out = jnp.einsum("bkgts,bskd->btkgd", weights, v).reshape(batch, length, -1)
        out = nn.Dense(c.hidden_size, use_bias=False, kernel_init=init, name="o_proj")(out)
        return out, new_kv


class SwiGLU(nn.Module):
    config: TransformerConfig

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        c = self.config
        init = nn.initializers.normal(0.02)
        gate = nn.Dense(c.intermediate_size, use_bias=False, kernel_init=init, name="gate_proj")
        up = nn.Dense(c.intermediate_size, use_bias=False, kernel_init=init, name="up_proj")
        down = nn.Dense(c.hidden_size, use_bias=False, kernel_init=init, name="down_proj")
        return down(nn.silu(gate(x)) * up(x))


class Block(nn.Module):
    config: TransformerConfig

    @nn.compact
    def __call__(
        self,
        x: jax.Array,
        positions: jax.Array,
        slots: jax.Array,
        key_mask: jax.Array,
        kv: tuple[jax.Array, jax.Array] | None,
        index: jax.Array | None,
    ) -> tuple[jax.Array, tuple[jax.Array, jax.Array] | None]:
        c = self.config
        h = RMSNorm(c.rms_norm_eps, name="input_layernorm")(x)
        h, kv = Attention(c, name="self_attn")(h, positions, slots, key_mask, kv, index)
        x = x + h
        h = RMSNorm(c.rms_norm_eps, name="post_attention_layernorm")(x)
        return x + SwiGLU(c, name="mlp")(h), kv


class Transformer(nn.Module):
    """Decoder-only transformer: tokens [batch, T] -> Output(logits [batch, T, vocab], ...).

    `mask` [batch, T] marks real tokens (0 on padding). `positions` [batch, T] are the rotary
    positions (default: `positions_from_mask(mask)`). With `cache`, this call's tokens occupy slots
    `[index, index + T)` of the cache, `mask` is ignored in favour of `cache.key_mask`, and the
    returned Output carries the updated cache.
    """

    config: TransformerConfig

    @nn.compact
    def __call__(
        self,
        tokens: jax.Array,
        mask: jax.Array | None = None,
        positions: jax.Array | None = None,
        cache: KVCache | None = None,
        index: jax.Array | int = 0,
    ) -> Output:
        c = self.config
        batch, length = tokens.shape
        if mask is None:
            mask = jnp.ones((batch, length), bool)
        if positions is None:
            positions = positions_from_mask(mask)
        index_arr = jnp.asarray(index, jnp.int32)
        slots = jnp.broadcast_to(index_arr + jnp.arange(length), (batch, length))
        key_mask = cache.key_mask if cache is not None else mask.astype(bool)
        embed = nn.Embed(
            c.vocab_size,
            c.hidden_size,
            embedding_init=nn.initializers.normal(0.02),
            name="embed_tokens",
        )
        x = embed(tokens)
        new_k, new_v = [], []
        for i in range(c.num_layers):
            kv = (cache.k[i], cache.v[i]) if cache is not None else None
            x, kv = Block(c, name=f"layers_{i}")(x, positions, slots, key_mask, kv, index_arr)
            if kv is not None:
                new_k.append(kv[0])
                new_v.append(kv[1])
        h = RMSNorm(c.rms_norm_eps, name="norm")(x)
        if c.tie_word_embeddings:
            logits = embed.attend(h.astype(jnp.float32))
        else:
            head = nn.Dense(
                c.vocab_size,
                use_bias=False,
                kernel_init=nn.initializers.normal(0.02),
                name="lm_head",
            )
            logits = head(h)
        values = None
        if c.value_head:
            values = nn.Dense(1, kernel_init=nn.initializers.normal(0.02), name="value_head")(h)
            values = values[..., 0].astype(jnp.float32)
        new_cache = None
        if cache is not None:
            new_cache = KVCache(jnp.stack(new_k), jnp.stack(new_v), cache.key_mask)
        return Output(logits.astype(jnp.float32), values, new_cache)


def init_params(config: TransformerConfig, key: jax.Array) -> dict:
    """Randomly initialised parameters (normal(0.02) weights, unit norms, zero biases)."""
    return _init_program(config)(key, jnp.zeros((1, 2), jnp.int32))["params"]


@functools.cache
def _init_program(config: TransformerConfig) -> Callable:
    return jax.jit(Transformer(config).init)


def count_params(params: dict) -> int:
    return int(sum(x.size for x in jax.tree_util.tree_leaves(params)))


class CompletionScores(NamedTuple):
    """logprobs: [batch, N] log pi(token), 0 off the mask; entropy: [batch, N] the entropy of
    pi at the position of each token, 0 off the mask; values: [batch, N] the value head at the
    state before each token, or None."""

    logprobs: jax.Array
    entropy: jax.Array
    values: jax.Array | None


def completion_logprobs(
    config: TransformerConfig,
    params: dict,
    prompt: jax.Array,
    prompt_mask: jax.Array,
    completion: jax.Array,
    completion_mask: jax.Array,
    temperature: float = 1.0,
) -> CompletionScores:
    """Scores of each completion token given the prompt and the earlier tokens, under
    softmax(logits / temperature). prompt: [batch, P] left-padded; completion: [batch, N]
    right-padded."""
    tokens = jnp.concatenate([prompt, completion], axis=1)
    mask = jnp.concatenate([prompt_mask, completion_mask], axis=1).astype(bool)
    out = Transformer(config).apply({"params": params}, tokens, mask)
    p = prompt.shape[1]
    logits = out.logits[:, p - 1 : -1] / temperature
    logp = jax.nn.log_softmax(logits, axis=-1)
    taken = jnp.take_along_axis(logp, completion[..., None], axis=-1)[..., 0]
    entropy = -jnp.sum(jnp.exp(logp) * logp, axis=-1)
    values = None if out.values is None else out.values[:, p - 1 : -1]
    return CompletionScores(
        jnp.where(completion_mask, taken, 0.0), jnp.where(completion_mask, entropy, 0.0), values
    )
