"""Critic-free policy-gradient losses for sequence policies (spec §7), as pure functions.

Shapes: a batch holds P prompts x G completions, flattened prompt-major to B = P·G rows;
per-token arrays are [B, T] with `mask` [B, T] True on completion tokens (the stop token included).

Pieces, each behind an option:
- advantages: GRPO's group z-score (DeepSeekMath, arXiv 2402.03300), RLOO's leave-one-out
  baseline (Ahmadian et al., arXiv 2402.14740), Dr.GRPO's unscaled centring (Liu et al.,
  arXiv 2503.20783), ScaleRL's batch-level scale (Khatri et al., arXiv 2510.13786);
- a mask of zero-variance groups (DAPO's dynamic sampling, Yu et al. arXiv 2503.14476; ScaleRL's
  zero-variance filtering);
- per-token objectives: PPO-clip with asymmetric ranges (DAPO's clip-higher) and CISPO's
  truncated, detached importance weight (MiniMax-M1, arXiv 2506.13585);
- the k3 estimator of KL(pi_theta || pi_ref) (Schulman 2020, "Approximating KL divergence"),
  optionally importance-weighted by the ratio, as TRL does;
- aggregation over tokens: per sequence (GRPO), per token (DAPO/BNPO), by a constant (Dr.GRPO)
  or per prompt (ScaleRL).

`TRL_LOSS_TYPES` maps TRL 1.16's `loss_type` names onto these options;
tests/test_lm_losses.py checks that they return TRL's numbers on TRL's own batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import jax
import jax.numpy as jnp

from duetto.errors import DuettoError

Baseline = Literal["mean", "leave_one_out"]
Scale = Literal["group", "batch", "none"]
Objective = Literal["clip", "cispo"]
Aggregation = Literal["sequence", "token", "constant", "prompt"]


def group_advantages(
    rewards: jax.Array,
    baseline: Baseline = "mean",
    scale: Scale = "group",
    eps: float = 1e-4,
    ddof: int = 1,
) -> jax.Array:
    """Sequence advantages [P, G] from rewards [P, G].

    baseline "mean": r_i - mean_j r_j (GRPO); "leave_one_out": r_i - mean_{j != i} r_j (RLOO).
    scale "group": / (std of the group + eps) (GRPO); "batch": / (std of all P·G rewards + eps)
    (ScaleRL); "none": unscaled (Dr.GRPO; RLOO). `ddof` 1 is the Bessel-corrected std that TRL
    uses, eps 1e-4 TRL's; DeepSeekMath does not state either.
    """
    if rewards.ndim != 2:
        raise DuettoError(f"rewards must be [prompts, group], got shape {rewards.shape}")
    g = rewards.shape[1]
    if baseline == "mean":
        centred = rewards - rewards.mean(axis=1, keepdims=True)
    elif baseline == "leave_one_out":
        if g < 2:
            raise DuettoError("a leave-one-out baseline needs groups of at least 2")
        centred = (rewards - rewards.mean(axis=1, keepdims=True)) * g / (g - 1)
    else:
        raise DuettoError(f"baseline must be 'mean' or 'leave_one_out', got {baseline!r}")
    if scale == "group":
        return centred / (rewards.std(axis=1, ddof=ddof, keepdims=True) + eps)
    if scale == "batch":
        return centred / (rewards.std(ddof=ddof) + eps)
    if scale == "none":
        return centred
    raise DuettoError(f"scale must be 'group', 'batch' or 'none', got {scale!r}")


def zero_variance_groups(rewards: jax.Array) -> jax.Array:
    """[P] True where every completion of a prompt got the same reward: such a group has zero
    advantage everywhere and only dilutes the batch (DAPO dynamic sampling, ScaleRL)."""
    return jnp.all(rewards == rewards[:, :1], axis=1)


def k3_kl(logp: jax.Array, ref_logp: jax.Array) -> jax.Array:
    """Per-token k3 estimate of KL(pi_theta || pi_ref): exp(d) - d - 1 with d = ref - logp.
    Non-negative, unbiased under samples from pi_theta."""
    d = ref_logp - logp
    return jnp.exp(d) - d - 1.0


def clip_objective(
    logp: jax.Array,
    old_logp: jax.Array,
    advantages: jax.Array,
    clip_low: float,
    clip_high: float,
) -> jax.Array:
    """Per-token PPO-clip loss -min(rho A, clip(rho, 1 - clip_low, 1 + clip_high) A):
    logp, old_logp [B, T], advantages [B] or [B, T] -> [B, T]."""
    a = advantages[:, None] if advantages.ndim == 1 else advantages
    ratio = jnp.exp(logp - old_logp)
    clipped = jnp.clip(ratio, 1.0 - clip_low, 1.0 + clip_high)
    return -jnp.minimum(ratio * a, clipped * a)


def cispo_objective(
    logp: jax.Array, old_logp: jax.Array, advantages: jax.Array, max_weight: float
) -> jax.Array:
    """Per-token CISPO loss -sg(min(rho, max_weight)) A log pi_theta: the importance weight is
    truncated and detached, so every token keeps a REINFORCE gradient. [B, T]."""
    a = advantages[:, None] if advantages.ndim == 1 else advantages
    weight = jax.lax.stop_gradient(jnp.minimum(jnp.exp(logp - old_logp), max_weight))
    return -weight * a * logp


def aggregate(
    per_token: jax.Array,
    mask: jax.Array,
    mode: Aggregation,
    group_size: int | None = None,
    max_tokens: int | None = None,
) -> jax.Array:
    """Reduce a per-token loss [B, T] over real tokens to a scalar.

    "sequence": mean over sequences of each sequence's token mean (GRPO; TRL "grpo").
    Rows (or, for "prompt", groups) without a real token are left out of the means: that is how
    a zero-variance filter drops a group without changing shapes.
    "token": sum over all tokens / number of tokens (DAPO; TRL "bnpo", "dapo").
    "constant": sum / (B · max_tokens) (Dr.GRPO; max_tokens defaults to T).
    "prompt": mean over prompts of the token mean of each prompt's group (ScaleRL).
    """
    m = mask.astype(per_token.dtype)
    total = per_token * m
    if mode == "sequence":
        # Rows without a token (a filtered group) do not count in the mean.
        rows = jnp.maximum(jnp.sum(m.sum(-1) > 0), 1)
        return jnp.sum(total.sum(-1) / jnp.maximum(m.sum(-1), 1.0)) / rows
    if mode == "token":
        return total.sum() / jnp.maximum(m.sum(), 1.0)
    if mode == "constant":
        return total.sum() / (per_token.shape[0] * (max_tokens or per_token.shape[1]))
    if mode == "prompt":
        if group_size is None or per_token.shape[0] % group_size:
            raise DuettoError(
                f"prompt aggregation needs a group_size dividing the batch ({per_token.shape[0]})"
            )
        per_prompt = total.reshape(-1, group_size * per_token.shape[1]).sum(-1)
        tokens = m.reshape(-1, group_size * per_token.shape[1]).sum(-1)
        prompts = jnp.maximum(jnp.sum(tokens > 0), 1)
        return jnp.sum(per_prompt / jnp.maximum(tokens, 1.0)) / prompts
    raise DuettoError(
        f"aggregation must be 'sequence', 'token', 'constant' or 'prompt', got {mode!r}"
    )


@dataclass(frozen=True)
class PolicyLoss:
    """The per-token objective, its KL penalty and its aggregation.

    Defaults are GRPO's (DeepSeekMath: eps 0.2, beta 0.04, per-sequence length normalisation).
    DAPO: clip_high 0.28, aggregation "token", beta 0. Dr.GRPO: aggregation "constant" (with
    unscaled advantages). ScaleRL: objective "cispo", aggregation "prompt".
    """

    objective: Objective = "clip"
    clip_low: float = 0.2
    """rho is clipped below at 1 - clip_low (PPO's eps; DeepSeekMath 0.2)."""
    clip_high: float = 0.2
    """rho is clipped above at 1 + clip_high (DAPO's clip-higher: 0.28)."""
    cispo_max_weight: float = 5.0
    """CISPO's truncation of rho (TRL's setting for loss_type "cispo", epsilon_high 5.0)."""
    beta: float = 0.04
    """Weight of the k3 KL to the reference policy (DeepSeekMath 0.04; 0 needs no reference)."""
    kl_ratio_weighted: bool = False
    """Multiply the k3 term by rho, correcting for samples drawn from pi_old (TRL's default)."""
    aggregation: Aggregation = "sequence"
    max_tokens: int | None = None
    """Dr.GRPO's constant: the completion budget (None: the batch's width T)."""

    def __post_init__(self) -> None:
        if self.objective not in ("clip", "cispo"):
            raise DuettoError(f"objective must be 'clip' or 'cispo', got {self.objective!r}")
        if self.aggregation not in ("sequence", "token", "constant", "prompt"):
            raise DuettoError(f"unknown aggregation {self.aggregation!r}")
        if self.clip_low < 0 or self.clip_high < 0 or self.beta < 0:
            raise DuettoError("clip_low, clip_high and beta must be >= 0")

    def __call__(
        self,
        logp: jax.Array,
        old_logp: jax.Array,
        advantages: jax.Array,
        mask: jax.Array,
        ref_logp: jax.Array | None = None,
        group_size: int | None = None,
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """(loss, metrics) from per-token log-probs [B, T] under pi_theta, pi_old and pi_ref,
        advantages [B] (or [B, T] for token-level credit) and the completion mask [B, T]."""
        if self.objective == "clip":
            per_token = clip_objective(logp, old_logp, advantages, self.clip_low, self.clip_high)
        else:
            per_token = cispo_objective(logp, old_logp, advantages, self.cispo_max_weight)
        m = mask.astype(jnp.float32)
        ratio = jnp.exp(logp - old_logp)
        tokens = jnp.maximum(m.sum(), 1.0)
        metrics = {
            "ratio": (ratio * m).sum() / tokens,
            "clip_fraction": (
                ((ratio < 1.0 - self.clip_low) | (ratio > 1.0 + self.clip_high)) * m
            ).sum()
            / tokens,
        }
        if self.beta > 0:
            if ref_logp is None:
                raise DuettoError("beta > 0 needs the reference policy's log-probs (ref_logp)")
            kl = k3_kl(logp, ref_logp)
            metrics["kl"] = (kl * m).sum() / tokens
            if self.kl_ratio_weighted:
                kl = kl * ratio
            per_token = per_token + self.beta * kl
        loss = aggregate(per_token, mask, self.aggregation, group_size, self.max_tokens)
        return loss, metrics


TRL_LOSS_TYPES: dict[str, dict[str, object]] = {
    "grpo": {"objective": "clip", "aggregation": "sequence"},
    "bnpo": {"objective": "clip", "aggregation": "token"},
    "dr_grpo": {"objective": "clip", "aggregation": "constant"},
    "dapo": {"objective": "clip", "aggregation": "token"},
    "cispo": {"objective": "cispo", "aggregation": "token"},
}
"""TRL 1.16 `loss_type` -> PolicyLoss options (with kl_ratio_weighted=True, TRL's KL). TRL's
"dapo" divides by the active tokens of the whole generation batch across gradient-accumulation
steps and processes; with one process and one micro-batch that is "token"."""
