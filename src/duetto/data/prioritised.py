"""Proportional prioritised replay (Schaul, Quan, Antonoglou, Silver, ICLR 2016, §3.3–3.4).

Row i is drawn with probability P(i) = p_i / Σ_k p_k. A row's priority is p_i = (|δ_i| + ε)^α
from its last TD error δ_i; a new row gets the largest priority given so far, so that it is
drawn soon. A drawn row's loss is weighted by w_i = (N·P(i))^−β / max_j w_j, which for β = 1
undoes the bias of the non-uniform draw; β is annealed from β_0 to 1 over training
(`annealed_beta`). A batch of B rows is stratified: one row from each of B equal segments of
the total priority (the paper's Appendix B.2.1; Dopamine's `stratified_sample` too).

The priorities are two flat binary trees of 2P nodes, P the replay's capacity rounded up to a
power of two: node j has children 2j and 2j + 1, node 1 is the root, row r's leaf is node
P + r (node 0 is unused). `sums` holds subtree sums, which a draw descends; `mins` holds
subtree minima over the rows given a priority (+inf where none is), so max_j w_j =
(N·p_min / Σp)^−β comes from the root and w_i = (p_min / p_i)^β. A change of leaves recomputes
their ancestors from their children, level by level, so the sums never drift.

Defaults: α = 0.6 and β_0 = 0.4, the paper's proportional variant (Appendix B.2.1, Atari);
ε = 1e-6, OpenAI baselines' `prioritized_replay_eps` (the paper gives no value).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from duetto.data.replay import Replay, write_rows

ALPHA = 0.6  # priority exponent α
BETA0 = 0.4  # importance-weight exponent β at the start, annealed to 1
EPSILON = 1e-6  # ε added to |δ| so that no row's priority is 0


class Priorities(NamedTuple):
    """The priority trees of one replay (see the module docstring): sums [2P], mins [2P] and
    max_priority [] (the largest priority given so far, 1.0 at first)."""

    sums: jnp.ndarray
    mins: jnp.ndarray
    max_priority: jnp.ndarray

    @property
    def leaves(self) -> int:
        """P: the capacity rounded up to a power of two."""
        return self.sums.shape[-1] // 2

    @property
    def depth(self) -> int:
        """log2 P: the levels between a leaf and the root."""
        return self.leaves.bit_length() - 1


def priorities_init(capacity: int) -> Priorities:
    """No row given a priority yet, for a replay of `capacity` rows."""
    leaves = 1 << (capacity - 1).bit_length()
    return Priorities(
        sums=jnp.zeros((2 * leaves,), jnp.float32),
        mins=jnp.full((2 * leaves,), jnp.inf, jnp.float32),
        max_priority=jnp.ones((), jnp.float32),
    )


def priorities_set(priorities: Priorities, rows: jnp.ndarray, priority: jnp.ndarray) -> Priorities:
    """Row `rows` [B] given priority `priority` [B] (≥ 0); a row listed twice gets the larger
    of its priorities (a scatter of duplicates would keep an unspecified one)."""
    order = jnp.argsort(rows)
    leaf = rows[order] + priorities.leaves
    first = jnp.concatenate([jnp.ones((1,), bool), leaf[1:] != leaf[:-1]])
    segment = jnp.cumsum(first) - 1  # the duplicates of a row, sorted together
    largest = jax.ops.segment_max(priority[order], segment, num_segments=leaf.shape[0])
    # Every write depends on `priority`, so reads of the trees that it came from come first
    # and the trees are written in place (a write that did not would copy them whole).
    value = largest[segment].astype(jnp.float32)
    sums = priorities.sums.at[leaf].set(value)
    mins = priorities.mins.at[leaf].set(value)

    def level(i: jax.Array, trees: tuple[jnp.ndarray, jnp.ndarray]) -> tuple:
        sums, mins = trees
        node = jnp.right_shift(leaf, i)
        left, right = 2 * node, 2 * node + 1
        sums = sums.at[node].set(sums[left] + sums[right])
        mins = mins.at[node].set(jnp.minimum(mins[left], mins[right]))
        return sums, mins

    sums, mins = jax.lax.fori_loop(1, priorities.depth + 1, level, (sums, mins))
    return priorities._replace(sums=sums, mins=mins)


def priorities_add(priorities: Priorities, replay: Replay, n: int) -> Priorities:
    """The rows the next `replay_add` of n rows writes into `replay` given the largest priority
    so far (call it with the replay before the write)."""
    rows = write_rows(replay, n)
    return priorities_set(priorities, rows, jnp.broadcast_to(priorities.max_priority, (n,)))


def priorities_update(
    priorities: Priorities,
    rows: jnp.ndarray,
    td_error: jnp.ndarray,
    alpha: jnp.ndarray | float = ALPHA,
    epsilon: jnp.ndarray | float = EPSILON,
) -> Priorities:
    """The drawn `rows` [B] given p = (|δ| + ε)^α from their TD errors δ [B]."""
    priority = jnp.power(jnp.abs(td_error) + epsilon, alpha)
    priorities = priorities._replace(
        max_priority=jnp.maximum(priorities.max_priority, jnp.max(priority))
    )
    return priorities_set(priorities, rows, priority)


def prioritised_rows(
    priorities: Priorities, key: jax.Array, batch_size: int, beta: jnp.ndarray | float
) -> tuple[jnp.ndarray, jnp.ndarray]:
    """(rows int32 [B], importance weights [B] in (0, 1]): row b drawn with probability
    proportional to priority from the b-th of B equal segments of the total priority."""
    sums = priorities.sums
    u = (jnp.arange(batch_size) + jax.random.uniform(key, (batch_size,))) * sums[1] / batch_size

    def descend(_: jax.Array, carry: tuple[jnp.ndarray, jnp.ndarray]) -> tuple:
        node, u = carry
        left = 2 * node
        # Rounding can leave u at or past a subtree's sum: never step into a subtree of sum 0.
        right = (u >= sums[left]) & (sums[left + 1] > 0)
        return left + right, jnp.where(right, u - sums[left], u)

    start = jnp.ones((batch_size,), jnp.int32)
    node, _ = jax.lax.fori_loop(0, priorities.depth, descend, (start, u))
    weight = jnp.power(jnp.minimum(priorities.mins[1] / sums[node], 1.0), beta)
    return node - priorities.leaves, weight


def annealed_beta(
    step: jnp.ndarray | int, total_steps: int, beta0: jnp.ndarray | float = BETA0
) -> jnp.ndarray:
    """β linearly from β_0 at step 0 to 1 at `total_steps` (env steps), then 1."""
    progress = jnp.minimum(jnp.asarray(step, jnp.float32) / max(total_steps, 1), 1.0)
    return beta0 + (1.0 - beta0) * progress
