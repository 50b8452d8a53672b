"""Symphony's fading replay (control.md §5; Ishuov et al. 2025, `SuspensionRailway/symphony`,
symphony.py `ReplayBuffer`, HEAD 2025-12-24): rows drawn with a fixed weight by age, and the
buffer filled by tiling the exploration data.

The weight of the row at age position i (0 the oldest) of L filled rows is
w_i = tanh((π·i/L)^e), e Euler's number, normalised over the rows: 0 for the oldest, 0.5 at
about a quarter of the buffer, ≈ 1 for the newest half. The newest 70 % of the rows hold about
92 % of the probability and the oldest 30 % about 8 % (tests/test_replay_blocks.py computes
both). The official buffer rolls its arrays on every insert so that position is age; on the
ring, age position i is row (ptr − size + i) mod capacity.

Rows are drawn by rejection: uniform candidates accepted with probability w_i (w_i ≤ 1; about
3 in 4 are), the first accepted one kept. That costs O(batch·candidates) per draw for any
filled size, where an inverse CDF over the weights costs O(capacity) (the official code's
`torch.multinomial` over the whole buffer). With 8 candidates the drawn distribution is the
fading one up to a share ≈ 2e-5 of rows whose candidates were all rejected.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from duetto.data.replay import Replay

CANDIDATES = 8  # per row drawn; all are rejected with probability ≈ 0.254^8 ≈ 2e-5


def fading_weight(age: jnp.ndarray, size: jnp.ndarray | int) -> jnp.ndarray:
    """w = tanh((π·age/size)^e), unnormalised, of age positions (0 the oldest) among `size`
    filled rows: [...] -> [...]."""
    return jnp.tanh(jnp.power(math.pi * age / size, math.e))


def fading_rows(
    replay: Replay, key: jax.Array, batch_size: int, candidates: int = CANDIDATES
) -> jnp.ndarray:
    """Rows drawn with replacement with probability w_i / Σ_j w_j by age position i among the
    filled rows of one run's replay: int32 [batch_size]. Where all of a row's candidates are
    rejected (probability ≈ 0.254^candidates) it keeps the heaviest; a single filled row,
    whose weight is 0, is always drawn."""
    k_age, k_accept = jax.random.split(key)
    size = jnp.maximum(replay.size, 1)
    age = jax.random.randint(k_age, (batch_size, candidates), 0, size)
    weight = fading_weight(age, size)
    accept = jax.random.uniform(k_accept, (batch_size, candidates)) < weight
    first = jnp.where(accept.any(axis=1), jnp.argmax(accept, axis=1), jnp.argmax(weight, axis=1))
    chosen = jnp.take_along_axis(age, first[:, None], axis=1)[:, 0]
    return (replay.ptr - size + chosen) % replay.capacity


def tile_fill(replay: Replay) -> Replay:
    """The replay filled by tiling its rows 0..size−1 (the exploration data, before the ring
    first wraps) to its whole capacity, the newest row last: row j holds the exploration row
    (j − capacity) mod size, so a capacity that is `times` × size gives `times` copies in
    order, as Symphony's `norm_fill(times)` does (torch `repeat(times, 1)`); otherwise the
    oldest rows hold the last part of one partial copy. The next write then overwrites the
    oldest row, 0. A full replay is returned unchanged."""
    capacity = replay.capacity
    size = jnp.maximum(replay.size, 1)
    source = (jnp.arange(capacity) - capacity) % size
    full = replay.size >= capacity  # then `source` is every row in place
    return Replay(
        data=jax.tree.map(lambda store: store[source], replay.data),
        ptr=jnp.where(full, replay.ptr, 0).astype(jnp.int32),
        size=jnp.full_like(replay.size, capacity),
    )
