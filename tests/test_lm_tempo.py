"""TEMPO's prefix-tree advantage: the unit identities of spec §7.2."""

from __future__ import annotations

import numpy as np
import pytest

from duetto.errors import DuettoError
from duetto.lm.tempo import branch_differences, tempo_advantages


def group(rows, width):
    tokens = np.zeros((len(rows), width), np.int32)
    mask = np.zeros((len(rows), width), bool)
    for i, r in enumerate(rows):
        tokens[i, : len(r)] = r
        mask[i, : len(r)] = True
    return tokens, mask


def test_differences_vanish_where_the_tree_does_not_branch():
    # All four share "7 7", branch at t=2, and the last two share "7 7 5 1".
    tokens, mask = group([[7, 7, 3, 1], [7, 7, 4, 1], [7, 7, 5, 1], [7, 7, 5, 1]], 5)
    values = np.array([1.0, -1.0, 0.5, 0.5])
    delta = branch_differences(tokens, mask, values)
    assert (delta[:, :2] == 0).all() and (delta[:, 3:] == 0).all()
    # V(root) = V(7) = V(7 7) = mean = 0.25; V(7 7 3) = 1, V(7 7 4) = -1, V(7 7 5) = 0.5.
    np.testing.assert_allclose(delta[:, 2], [0.75, -1.25, 0.25, 0.25])


def test_differences_telescope_to_the_normalised_reward():
    rng = np.random.default_rng(0)
    for _ in range(20):
        lengths = rng.integers(0, 6, size=8)
        # vocab 2 for much sharing, then the stop token 9 (or a full-width row)
        rows = [list(rng.integers(0, 2, size=n)) + ([9] if n < 5 else [0]) for n in lengths]
        tokens, mask = group(rows, 6)
        values = rng.normal(size=8)
        # identical completions score alike (one verifier), as they would in training
        for i in range(8):
            for j in range(i):
                if rows[i] == rows[j]:
                    values[i] = values[j]
        delta = branch_differences(tokens, mask, values)
        np.testing.assert_allclose(delta.sum(1), values - values.mean(), atol=1e-12)
        assert (delta[~mask] == 0).all()


def test_first_token_divergence_changes_only_the_first_token():
    tokens, mask = group([[1, 5, 5], [2, 5, 5], [3, 5], [4, 6, 6]], 3)
    adv = np.array([[1.5, -0.5, -0.5, -0.5]])  # centred: V(root) = 0
    tempo = tempo_advantages(tokens[None], mask[None], adv, eta=0.5)[0]
    grpo = np.where(mask, adv[0][:, None], 0.0)
    np.testing.assert_allclose(tempo[:, 0] - grpo[:, 0], 0.5 * adv[0], rtol=1e-6)
    np.testing.assert_array_equal(tempo[:, 1:], grpo[:, 1:])


def test_tempo_is_grpo_when_eta_is_zero_and_shapes_are_checked():
    tokens, mask = group([[1, 2], [1, 3]], 2)
    adv = np.array([[1.0, -1.0]])
    np.testing.assert_array_equal(
        tempo_advantages(tokens[None], mask[None], adv, eta=0.0)[0], [[1.0, 1.0], [-1.0, -1.0]]
    )
    with pytest.raises(DuettoError, match="P, G, T"):
        tempo_advantages(tokens, mask, adv)
    tokens, mask = group([[1], [1, 3]], 2)  # no stop token: [1] is a prefix of [1, 3]
    with pytest.raises(DuettoError, match="proper prefix"):
        tempo_advantages(tokens[None], mask[None], adv)
