"""On-policy rollouts and the generalised advantage estimator.

A rollout is T vector steps of N sub-envs, time-major: every field has leading axes [T, N].
`next_obs` is the observation each step reached: the true final observation where an episode
ended (terminated or truncated), so a truncated episode bootstraps from V(final observation)
while a terminated one does not bootstrap at all.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class Rollout(NamedTuple):
    obs: jnp.ndarray  # [T, N, obs_dim], raw (not normalised)
    action: jnp.ndarray  # [T, N, act_dim] float, or [T, N] int for Discrete
    log_prob: jnp.ndarray  # [T, N], log π_old(a|s) at collection time
    reward: jnp.ndarray  # [T, N], raw
    next_obs: jnp.ndarray  # [T, N, obs_dim], raw; the true final observation at an episode end
    terminated: jnp.ndarray  # [T, N], 1.0 where the episode truly ended (no bootstrap)
    done: jnp.ndarray  # [T, N], 1.0 where the episode ended for any reason (terminated|truncated)


def gae(
    reward: jnp.ndarray,
    value: jnp.ndarray,
    next_value: jnp.ndarray,
    terminated: jnp.ndarray,
    done: jnp.ndarray,
    gamma: float | jnp.ndarray,
    lam: float | jnp.ndarray,
) -> tuple[jnp.ndarray, jnp.ndarray]:
    """GAE(γ, λ) over [T, N] arrays -> (advantages, returns = advantages + value).

    δ_t = r_t + γ(1 − terminated_t)·V(s'_t) − V(s_t), where V(s'_t) is `next_value` (the value of
    the observation step t reached, the final one at an episode end);
    A_t = δ_t + γλ(1 − done_t)·A_{t+1}: the trace is cut at every episode end.
    """
    delta = reward + gamma * (1.0 - terminated) * next_value - value

    def backward(carry: jnp.ndarray, x: tuple) -> tuple[jnp.ndarray, jnp.ndarray]:
        delta_t, done_t = x
        adv = delta_t + gamma * lam * (1.0 - done_t) * carry
        return adv, adv

    _, adv = jax.lax.scan(backward, jnp.zeros_like(delta[0]), (delta, done), reverse=True)
    return adv, adv + value


def discounted_returns(
    acc: jnp.ndarray, reward: jnp.ndarray, done: jnp.ndarray, gamma: float | jnp.ndarray
) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Running discounted returns R_t = γ·R_{t−1} + r_t per sub-env, reset after each episode
    end (the quantity whose variance scales rewards in SB3's VecNormalize and Gymnasium's
    NormalizeReward): acc [N] carried in, reward/done [T, N] -> (acc out, R [T, N])."""

    def forward(carry: jnp.ndarray, x: tuple) -> tuple[jnp.ndarray, jnp.ndarray]:
        r, d = x
        ret = gamma * carry + r
        return ret * (1.0 - d), ret

    return jax.lax.scan(forward, acc, (reward, done))
