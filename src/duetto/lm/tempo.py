"""TEMPO's prefix-tree advantage (Tran, Yao, Yu, arXiv 2509.18314; spec §7.2).

The G completions of one prompt form a prefix tree over tokens. Each node u (a token prefix) gets
the nonparametric value V(u) = mean of the normalised rewards r~_i of the completions through it,
so V(root) = 0 for GRPO-normalised rewards. A token t of completion i goes from its parent prefix
s_t to its child s_{t+1}; where s_t branches (two or more children) the token gets the temporal
difference V(s_{t+1}) - V(s_t) on top of its sequence advantage:

    A_{i,t} = A_i + eta * 1[s_t has >= 2 children] * (V(s_{t+1}) - V(s_t)).

Where s_t has one child every completion through s_t also passes s_{t+1}, so the difference is
exactly 0 and TEMPO equals GRPO there; summed over a completion's tokens the differences
telescope to V(leaf) - V(root) = r~_i. Identical completions share their leaf; the stop token
is a node like any other, so no completion is a proper prefix of another. eta = 1 is the spec's
reconstruction [recon], not a published value.
"""

from __future__ import annotations

import numpy as np

from duetto.errors import DuettoError


def tempo_advantages(
    tokens: np.ndarray, mask: np.ndarray, advantages: np.ndarray, eta: float = 1.0
) -> np.ndarray:
    """Token advantages [P, G, T] from completions tokens, mask [P, G, T] (True on real tokens,
    a prefix of each row) and GRPO-normalised sequence advantages [P, G]."""
    tokens, mask = np.asarray(tokens), np.asarray(mask, bool)
    advantages = np.asarray(advantages, np.float64)
    if tokens.ndim != 3 or mask.shape != tokens.shape or advantages.shape != tokens.shape[:2]:
        raise DuettoError(
            f"tempo_advantages needs tokens and mask [P, G, T] and advantages [P, G]; got "
            f"{tokens.shape}, {mask.shape}, {advantages.shape}"
        )
    out = np.repeat(advantages[:, :, None], tokens.shape[2], axis=2)
    for p in range(tokens.shape[0]):
        out[p] += eta * branch_differences(tokens[p], mask[p], advantages[p])
    return np.where(mask, out, 0.0).astype(np.float32)


def branch_differences(tokens: np.ndarray, mask: np.ndarray, values: np.ndarray) -> np.ndarray:
    """1[s_t branches] * (V(s_{t+1}) - V(s_t)) for one group: tokens, mask [G, T], values [G]
    (the r~_i that V averages) -> [G, T], 0 on padding."""
    g, t_max = tokens.shape
    lengths = mask.sum(1)
    total: dict[tuple[int, ...], float] = {}
    count: dict[tuple[int, ...], int] = {}
    children: dict[tuple[int, ...], set[int]] = {}
    prefixes = []
    for i in range(g):
        row = tuple(int(x) for x in tokens[i, : lengths[i]])
        prefixes.append(row)
        for t in range(len(row) + 1):
            node = row[:t]
            total[node] = total.get(node, 0.0) + float(values[i])
            count[node] = count.get(node, 0) + 1
            if t < len(row):
                children.setdefault(node, set()).add(row[t])
    delta = np.zeros((g, t_max))
    for i, row in enumerate(prefixes):
        if row in children:
            raise DuettoError(
                f"completion {i} is a proper prefix of another: completions must end with their "
                "stop token (or fill the width), so that each ends at a leaf of its own"
            )
        for t in range(len(row)):
            parent, child = row[:t], row[: t + 1]
            if len(children[parent]) >= 2:
                delta[i, t] = total[child] / count[child] - total[parent] / count[parent]
    return delta
